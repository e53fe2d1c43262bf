"""No subprocess receives a user-supplied string unvalidated: the activities' own checks
(run before any process starts) refuse option-like, path-like and shell-like versions and
service names, and a trailing newline (the checks use fullmatch: `$` would let one pass).
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError

from activities.golang import _check_package
from activities.images import _check_names
from brewline.model import BuildInput
from tests.properties.strategies import PROPERTY, commit, hostile_text, semver, valid_name


def _build_input(version: str, service: str = "api-gateway") -> BuildInput:
    return BuildInput("release-x", service, version, "/src", "mod", "./svc", "svc/Containerfile")


def _refused(call: object, *args: object) -> bool:
    try:
        call(*args)  # type: ignore[operator]
    except ApplicationError as exc:
        assert exc.non_retryable
        return True
    return False


def _inert(value: str) -> bool:
    return (
        bool(value)
        and not value.startswith("-")
        and "/" not in value
        and not any(ch.isspace() or ch == "\x00" for ch in value)
    )


@PROPERTY
@given(hostile_text(st.one_of(semver(), commit())).filter(lambda v: not v.endswith("\n")))
@example("-o")
@example("--set=x")
@example("1.0.0 -o /tmp/x")
def test_build_image_refuses_option_or_path_like_versions(version: str) -> None:
    if not _refused(_check_names, _build_input(version)):
        assert _inert(version), version


@PROPERTY
@given(hostile_text(valid_name()).filter(lambda v: not v.endswith("\n")))
@example("-api")
@example("../api")
def test_build_image_refuses_option_or_path_like_service_names(service: str) -> None:
    if not _refused(_check_names, _build_input("1.0.0", service)):
        assert _inert(service), service


@PROPERTY
@given(st.one_of(st.text(max_size=20), hostile_text(st.just("./api-gateway"))))
@example("-o")
@example("./a b")
def test_go_packages_are_never_options(package: str) -> None:
    if not _refused(_check_package, package):
        assert package and not package.startswith("-")
        assert not any(ch.isspace() for ch in package)


@pytest.mark.parametrize("version", ["1.0.0\n", "1.0.0\n\n"])
def test_build_image_refuses_a_version_with_a_trailing_newline(version: str) -> None:
    assert _refused(_check_names, _build_input(version))
