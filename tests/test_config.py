"""pipeline.yaml validation: every problem is listed, each naming the key and value."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from brewline.canary_config import DEFAULT_CANARY
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
    assert [e.strategy for e in config.environments] == ["direct", "canary"]
    assert config.canary is not None
    assert [s.weight for s in config.canary.steps if s.kind == "set_weight"] == [10, 20, 50, 80]
    assert config.service("api-gateway").load_path == "/api/v1/menu"
    assert config.notify.webhook == ""
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
        (
            lambda d: d["environments"]["production"].update(strategy="blue-green"),
            "environments.production.strategy: 'blue-green' is not a deploy strategy; "
            "use direct (all traffic at once) or canary",
        ),
        (lambda d: d["services"]["producer"].update(load_path="orders"), "load_path: 'orders'"),
        (
            lambda d: d.update(notify={"webhook": "ftp://chat.example"}),
            "notify.webhook: must be an http(s) URL on loopback or a secret reference",
        ),
        (
            # a chat webhook URL is a credential: never inline, never in workflow history
            lambda d: d.update(notify={"webhook": "https://hooks.slack.com/services/T/B/x"}),
            "notify.webhook: https://hooks.slack.com/... is a webhook URL written in the file: "
            "it is a credential",
        ),
        (lambda d: d.update(notify={"channel": "#x"}), "unknown key 'notify.channel'"),
        (
            lambda d: d["canary"]["analysis"].update(count=0),
            "canary.analysis.count: 0 must be a whole number from 1 to 1000",
        ),
    ],
)
def test_each_rule_names_the_key(mutate: Any, expected: str) -> None:
    data = copy.deepcopy(repo_pipeline())
    mutate(data)
    with pytest.raises(ConfigError) as info:
        validate(data)
    assert expected in str(info.value)


def test_a_canary_environment_without_a_canary_section_gets_the_default() -> None:
    data = repo_pipeline()
    del data["canary"]
    assert validate(data).canary == DEFAULT_CANARY
    data["environments"]["production"]["strategy"] = "direct"
    assert validate(data).canary is None  # nothing uses it
    data["notify"] = {"webhook": "env:BREWLINE_WEBHOOK_URL"}
    assert validate(data).notify.webhook == "env:BREWLINE_WEBHOOK_URL"
    data["notify"] = {"webhook": "http://127.0.0.1:9009/hook"}  # loopback may be inline
    assert validate(data).notify.webhook == "http://127.0.0.1:9009/hook"


def test_canary_problems_are_listed_with_the_rest() -> None:
    data = repo_pipeline()
    data["canary"]["steps"] = [{"analysis": {}}]
    data["canary"]["metrics"] = [{"name": "request-success-rate", "query": "up"}]
    data["test"]["coverage_min"] = -1
    with pytest.raises(ConfigError) as info:
        validate(data)
    joined = "\n".join(info.value.problems)
    assert len(info.value.problems) == 3, joined
    assert "canary.steps[0].analysis: comes before any traffic reaches the canary" in joined
    assert "'request-success-rate' is a built-in metric, so query cannot be changed" in joined
    assert "test.coverage_min: -1" in joined


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


def kubernetes_production(**spec: Any) -> dict[str, Any]:
    data = repo_pipeline()
    data["environments"]["production"]["target"] = "kubernetes"
    data["environments"]["production"]["kubernetes"] = {"namespace": "go-coffee", **spec}
    data["approval"]["allow_unsigned"] = False  # only a local pipeline may allow unsigned
    return data


def test_a_kubernetes_environment_names_the_prometheus_that_scrapes_its_ingress() -> None:
    url = "https://prometheus.monitoring.svc:9090/prom"
    production = validate(kubernetes_production(prometheus_url=url)).environment("production")
    assert production.kubernetes is not None
    assert production.kubernetes.prometheus_url == url
    direct = kubernetes_production()
    direct["environments"]["production"]["strategy"] = "direct"
    default = validate(direct).environment("production").kubernetes
    assert default is not None and default.prometheus_url == ""  # no canary: none needed


@pytest.mark.parametrize(
    "url", ["prometheus:9090", "ftp://prometheus", "http://", "http://p:9090/?q=up", "", 9090]
)
def test_a_prometheus_url_that_is_not_http_is_one_clear_problem(url: object) -> None:
    with pytest.raises(ConfigError) as info:
        validate(kubernetes_production(prometheus_url=url))
    assert len(info.value.problems) == 1, info.value.problems
    (problem,) = info.value.problems
    assert problem.startswith("environments.production.kubernetes.prometheus_url: ")
    assert "http(s) URL of the Prometheus that scrapes the cluster's ingress-nginx" in problem


def test_the_demo_allows_unsigned_approvals_and_names_the_allowed_signers() -> None:
    approval = load(REPO_ROOT / "pipeline.yaml").approval
    assert (approval.allowed_signers, approval.allow_unsigned) == ("policy/allowed_signers", True)
    assert (REPO_ROOT / approval.allowed_signers).is_file()


def test_the_aws_example_requires_signed_approvals() -> None:
    approval = load(REPO_ROOT / "examples" / "pipeline-aws.yaml").approval
    assert (approval.allowed_signers, approval.allow_unsigned) == ("policy/allowed_signers", False)


def test_unsigned_approvals_outside_a_local_pipeline_are_refused_naming_both() -> None:
    data = kubernetes_production(prometheus_url="https://prometheus.monitoring.svc:9090")
    data["approval"]["allow_unsigned"] = True
    with pytest.raises(ConfigError) as info:
        validate(data)
    assert info.value.problems == [
        "approval.allow_unsigned: true is for a local demo only, but "
        "environments.production.target is 'kubernetes': set allow_unsigned: false and "
        "name approval.allowed_signers"
    ]


def test_required_signatures_need_an_allowed_signers_file() -> None:
    data = repo_pipeline()
    data["approval"]["allow_unsigned"] = False
    del data["approval"]["allowed_signers"]
    with pytest.raises(ConfigError) as info:
        validate(data)
    (problem,) = info.value.problems
    assert problem.startswith("approval.allowed_signers must name the allowed-signers file")
    assert "allow_unsigned: true" in problem
    # the default is to require signatures
    del data["approval"]["allow_unsigned"]
    data["approval"]["allowed_signers"] = "policy/allowed_signers"
    assert validate(data).approval.allow_unsigned is False


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("allowed_signers", "../../etc/ssh/keys", "approval.allowed_signers: '../../etc/ssh/keys'"),
        ("allowed_signers", "/etc/allowed_signers", "approval.allowed_signers: '/etc/allowed_s"),
        ("allow_unsigned", "yes", "approval.allow_unsigned: 'yes'"),
    ],
)
def test_bad_signing_settings_name_the_key(key: str, value: str, expected: str) -> None:
    data = repo_pipeline()
    data["approval"][key] = value
    with pytest.raises(ConfigError) as info:
        validate(data)
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


@pytest.mark.parametrize("path", ["--config=x", "policy/-rf", "helm\x00", "a\nb"])
def test_a_path_that_a_tool_could_take_for_an_option_is_refused(path: str) -> None:
    """scan.shared_paths and the like reach semgrep, trivy, go and terraform as arguments."""
    data = repo_pipeline()
    data["scan"]["shared_paths"] = [path]
    with pytest.raises(ConfigError) as info:
        validate(data)
    assert "scan.shared_paths: " in str(info.value)
    assert "must be a plain path: printable, no part starting with '-'" in str(info.value)


@pytest.mark.parametrize("approver", [" alice", "alice\n", "al ice", ""])
def test_an_approver_that_nobody_could_sign_in_as_is_refused(approver: str) -> None:
    data = repo_pipeline()
    data["approval"]["approvers"] = ["bob", approver]
    with pytest.raises(ConfigError) as info:
        validate(data)
    assert "approval.approvers: approver" in str(info.value)
