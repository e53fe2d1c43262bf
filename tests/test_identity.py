"""Version and name rules, and the release id that makes a release unique."""

from __future__ import annotations

import pytest

from brewline.approval import refusal
from brewline.identity import (
    InvalidName,
    release_id,
    validate_container_env,
    validate_name,
    validate_version,
)
from brewline.model import ApprovalConfig


@pytest.mark.parametrize(
    "version",
    [
        "1.4.0",
        "v2.0.0",
        "1.0.0-rc.1",
        "0.0.1-alpha-beta.1",
        "abc1234",
        "0123456789abcdef0123456789abcdef01234567",
    ],
)
def test_allowed_versions(version: str) -> None:
    assert validate_version(version) == version


@pytest.mark.parametrize("version", ["1.0.0+build.7", "0.0.1-alpha-beta.1+sha.5114f85"])
def test_build_metadata_is_refused_before_anything_runs(version: str) -> None:
    """Semver allows '+build', an image tag does not: refuse it up front, not at build."""
    with pytest.raises(InvalidName, match=r"build metadata \('\+\.\.\.'\) cannot be an image tag"):
        validate_version(version)


@pytest.mark.parametrize(
    "version",
    [
        "",
        "1.4",
        "01.2.3",
        "1.2.3-",
        "latest",
        "1.2.3; rm -rf /",
        "--set=x",
        "../../etc",
        "ABC1234",
        "abc123",
        "1.2.3\n",
        "1.\uff12.3",  # a full-width digit
        "a" * 41,
        "1.0.0-" + "a" * 200,
    ],
)
def test_refused_versions_name_the_value(version: str) -> None:
    with pytest.raises(InvalidName) as info:
        validate_version(version)
    assert repr(version) in str(info.value)
    assert "semantic version" in str(info.value)


@pytest.mark.parametrize("name", ["Api", "api_gateway", "-api", "api-", "1api", "a" * 41, ""])
def test_refused_service_names(name: str) -> None:
    with pytest.raises(InvalidName, match="service"):
        validate_name("service", name)


def test_release_id_ignores_service_order_and_duplicates() -> None:
    a = release_id("go-coffee", ["producer", "api-gateway"], "1.4.0")
    b = release_id("go-coffee", ["api-gateway", "producer", "producer"], "1.4.0")
    assert a == b == "release-go-coffee-api-gateway+producer-1.4.0"
    assert release_id("go-coffee", ["api-gateway"], "1.4.1") != a


def test_approval_rules() -> None:
    cfg = ApprovalConfig(approvers=["alice", "bob"])
    assert refusal(cfg, "carol", "alice", True, "") is None
    assert refusal(cfg, "carol", "bob", False, "broken canary") is None
    assert "may not approve" in (refusal(cfg, "carol", "mallory", True, "") or "")
    assert "separation of duties" in (refusal(cfg, "alice", "alice", True, "") or "")
    assert "needs a reason" in (refusal(cfg, "carol", "bob", False, " ") or "")
    assert "approver's name" in (refusal(cfg, "carol", "  ", True, "") or "")
    self_ok = ApprovalConfig(approvers=["alice"], allow_self_approval=True)
    assert refusal(self_ok, "alice", "alice", True, "") is None


def test_container_env_rules_name_the_value_and_what_is_allowed() -> None:
    services = ["api-gateway", "producer"]
    assert validate_container_env(services, {"producer": {"FAULT_ERROR_RATE": "0.2"}}) == []
    assert validate_container_env(services, {}) == []
    problems = validate_container_env(
        services,
        {
            "consumer": {"A": "1"},
            "producer": {
                "lower": "x",
                "LISTEN_ADDR": "0.0.0.0:80",
                "BREWLINE_TOKEN": "x",
                "MULTI": "a\nb",
                "LONG": "x" * 1025,
            },
        },
    )
    joined = "\n".join(problems)
    assert len(problems) == 6, joined
    assert "container env for 'consumer': not a service of this release" in joined
    assert "container env 'lower' for producer: use upper-case letters" in joined
    assert "'LISTEN_ADDR' for producer: set by the platform" in joined
    assert "'BREWLINE_TOKEN' for producer: set by the platform" in joined
    assert "MULTI='a\\nb' for producer: the value must be one line" in joined
    assert "LONG=" in joined and "at most 1024 characters" in joined
    too_many = {f"V{i}": "1" for i in range(33)}
    assert validate_container_env(services, {"producer": too_many}) == [
        "container env for producer: 33 variables; at most 32"
    ]
