"""What names a release: the version rule, the service-name rule and the workflow id.

Pure functions with no I/O, imported by the CLI, the config validator and workflows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Patterns are used with fullmatch (a trailing newline never passes) and ASCII only.
# Semantic Versioning 2.0.0 (the grammar from semver.org), with an optional leading "v".
SEMVER = re.compile(
    r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)
COMMIT = re.compile(r"[0-9a-f]{7,40}")
# A DNS label (RFC 1123), as Kubernetes names and image repositories want.
NAME = re.compile(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?")
MAX_VERSION_LENGTH = 128
VERSION_RULE = "a semantic version such as 1.4.0 or v2.0.0-rc.1, or a 7-40 character hex commit"
NAME_RULE = "lower-case letters, digits and '-', starting with a letter, at most 40 characters"


class InvalidName(ValueError):
    """A version or service name that does not follow the rules; the message says which."""


def validate_version(version: str) -> str:
    """Return the version unchanged if allowed, else raise InvalidName naming it."""
    if (
        not isinstance(version, str)
        or len(version) > MAX_VERSION_LENGTH
        or not (SEMVER.fullmatch(version) or COMMIT.fullmatch(version))
    ):
        raise InvalidName(f"version {version!r} is not allowed: use {VERSION_RULE}")
    return version


def validate_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidName(f"{kind} {name!r} is not allowed: use {NAME_RULE}")
    return name


def release_id(project: str, services: Iterable[str], version: str) -> str:
    """The workflow id of a release: the same services and version give the same id.

    Service order does not matter, so `release api-gateway,producer` and
    `release producer,api-gateway` are one release and can never deploy twice.
    """
    names = sorted(set(services))
    return f"release-{project}-{'+'.join(names)}-{version}"
