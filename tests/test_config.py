"""pipeline.yaml validation: every problem is listed, each naming the key and value."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from brewline.config import ConfigError, load, parse_duration, validate
from brewline.platform import REPO_ROOT


def repo_pipeline() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text())


def test_the_repository_pipeline_is_valid() -> None:
    config = load(REPO_ROOT / "pipeline.yaml")
    assert [s.name for s in config.services] == [
        "api-gateway",
        "producer",
        "consumer",
        "auth-service",
    ]
    assert config.service("producer").containerfile == "producer/Containerfile"
    assert [(e.name, e.requires_approval) for e in config.environments] == [
        ("staging", False),
        ("production", True),
    ]
    assert config.approval.timeout_seconds == 24 * 3600
    assert config.scan.fail_on == "HIGH"
    for svc in config.services:  # every service named in the config exists in the tree
        assert (REPO_ROOT / config.go_module / svc.package).is_dir()
        assert (REPO_ROOT / config.go_module / svc.containerfile).is_file()


def test_all_problems_are_listed_at_once() -> None:
    data = repo_pipeline()
    data["services"]["Bad_Name"] = {"package": "./x"}
    data["services"]["producer"]["package"] = "../../etc"
    data["test"]["coverage_min"] = 150
    data["scan"]["fail_on"] = "SEVERE"
    data["environments"]["production"]["target"] = "mars"
    data["approval"]["timeout"] = "soon"
    data["approval"]["approvers"] = []
    data["surprise"] = 1
    with pytest.raises(ConfigError) as info:
        validate(data)
    problems = info.value.problems
    joined = "\n".join(problems)
    assert len(problems) == 8, joined
    assert "service 'Bad_Name' is not allowed" in joined
    assert "services.producer.package: '../../etc'" in joined
    assert "test.coverage_min: 150 must be a number from 0 to 100" in joined
    assert "scan.fail_on: 'SEVERE' is not a severity" in joined
    assert "'mars' is not a known deploy target; allowed: local" in joined
    assert "approval.timeout: 'soon' is not a duration" in joined
    assert "approval.approvers must name at least one person" in joined
    assert "unknown key 'surprise'" in joined
    assert str(info.value).startswith("pipeline.yaml is not valid (8 problems)")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("services"), "services must list at least one service"),
        (lambda d: d.pop("environments"), "environments must list at least one"),
        (lambda d: d.update(version=2), "version: 2 must be a whole number from 1 to 1"),
        (lambda d: d["build"].update(parallelism=0), "build.parallelism: 0"),
        (lambda d: d["services"]["producer"].update(smoke_path="health"), "smoke_path"),
        (lambda d: d["infra"].update(variables={"bad-name": "x"}), "variable name 'bad-name'"),
        (lambda d: d["environments"]["staging"].update(requires_approval="yes"), "true or false"),
        (
            lambda d: d["services"]["producer"].update(port=1),
            "unknown key 'services.producer.port'",
        ),
    ],
)
def test_each_rule_names_the_key(mutate: Any, expected: str) -> None:
    data = copy.deepcopy(repo_pipeline())
    mutate(data)
    with pytest.raises(ConfigError) as info:
        validate(data)
    assert expected in str(info.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("services: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="version is required"):
        load(empty)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("90m", 5400), ("1h30m", 5400), ("45s", 45), ("2d", 172800), (30, 30)],
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "10 minutes", "-5", -5, True, "1.5h"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(text)
