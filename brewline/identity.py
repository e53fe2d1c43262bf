"""What names a release and what it may carry: the version and service-name rules, the
workflow id, and the environment a release may set on its containers.

Pure functions with no I/O, imported by the CLI, the config validator and workflows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

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
    if "+" in version:
        # the version is every image's tag, and an OCI tag cannot hold '+': refuse it
        # here rather than after the tests and scans, at build
        raise InvalidName(
            f"version {version!r} is not allowed: semver build metadata ('+...') cannot be "
            "an image tag; use a pre-release instead, e.g. 1.0.0-build.7"
        )
    return version


def validate_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidName(f"{kind} {name!r} is not allowed: use {NAME_RULE}")
    return name


# Who starts a release or decides a gate: a login or an e-mail address, ASCII only, so
# "alice " and alice spelt with a Cyrillic a cannot pass for alice (or dodge the
# separation of duties as someone who only looks like her).
PERSON = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}", re.ASCII)
PERSON_RULE = (
    "ASCII letters, digits and . _ @ + -, starting with a letter or digit, at most 64 "
    "characters (a login or an e-mail address)"
)


def validate_person(kind: str, name: str) -> str:
    """Return a person's name (initiator, approver) unchanged if allowed, else InvalidName."""
    if not isinstance(name, str) or not PERSON.fullmatch(name):
        raise InvalidName(f"{kind} {name!r} is not allowed: use {PERSON_RULE}")
    return name


# A workflow id the activities may use as a folder name: no '/', no leading '.' or '-'.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}", re.ASCII)


def validate_release_id(release_id: str) -> str:
    """Return a release id unchanged if it is safe as a folder name, else InvalidName."""
    if not isinstance(release_id, str) or not SAFE_ID.fullmatch(release_id):
        raise InvalidName(
            f"release id {release_id!r} is not allowed: letters, digits and . _ + -, "
            "starting with a letter or digit (it names the release's folders)"
        )
    return release_id


def name_problems(*checks: Callable[[], object]) -> list[str]:
    """Run each check; the InvalidName messages of those that fail, in order."""
    problems: list[str] = []
    for check in checks:
        try:
            check()
        except InvalidName as exc:
            problems.append(str(exc))
    return problems


def request_problems(
    workflow_id: str,
    version: str,
    services: Iterable[str],
    environments: Iterable[str],
    initiator: str,
    known_services: Iterable[str],
    known_environments: Iterable[str],
) -> list[str]:
    """What is wrong with a release request as the workflow receives it (empty: nothing).

    starter.py checks all of this before starting anything; the workflow checks again,
    because anyone with access to the namespace can start it directly.
    """
    problems = name_problems(
        lambda: validate_release_id(workflow_id),
        lambda: validate_version(version),
        lambda: validate_person("initiator", initiator),
    )
    names = list(services)
    if not names:
        problems.append("a release needs at least one service")
    known = set(known_services)
    for name in names:
        if name not in known:
            problems.append(f"service {name!r} is not in the pipeline ({', '.join(sorted(known))})")
    places = set(known_environments)
    for name in environments:
        if name not in places:
            problems.append(
                f"environment {name!r} is not in the pipeline ({', '.join(sorted(places))})"
            )
    return problems


def release_id(project: str, services: Iterable[str], version: str) -> str:
    """The workflow id of a release: the same services and version give the same id.

    Service order does not matter, so `release api-gateway,producer` and
    `release producer,api-gateway` are one release and can never deploy twice.
    """
    names = sorted(set(services))
    return f"release-{project}-{'+'.join(names)}-{version}"


# Environment variables a release may set on the containers of its new version.
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}", re.ASCII)
RESERVED_ENV = ("LISTEN_ADDR",)  # the platform sets it: the port the router reaches
RESERVED_ENV_PREFIX = "BREWLINE_"
MAX_ENV_VALUE = 1024
MAX_ENV_PER_SERVICE = 32


def validate_container_env(
    services: Iterable[str], container_env: dict[str, dict[str, str]]
) -> list[str]:
    """Every problem with a release's container environment (empty when it is allowed).

    Keys are services of the release; names are upper-case identifiers the platform does
    not own; values are one printable line of at most MAX_ENV_VALUE characters.
    """
    released = set(services)
    problems: list[str] = []
    for service, env in container_env.items():
        if service not in released:
            problems.append(
                f"container env for {service!r}: not a service of this release "
                f"({', '.join(sorted(released))})"
            )
            continue
        if len(env) > MAX_ENV_PER_SERVICE:
            problems.append(
                f"container env for {service}: {len(env)} variables; at most {MAX_ENV_PER_SERVICE}"
            )
        for name, value in env.items():
            if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
                problems.append(
                    f"container env {name!r} for {service}: use upper-case letters, digits "
                    "and '_', not starting with a digit, at most 64 characters"
                )
                continue  # the value's problems would print this name raw (a newline...)
            if name in RESERVED_ENV or name.startswith(RESERVED_ENV_PREFIX):
                problems.append(
                    f"container env {name!r} for {service}: set by the platform; "
                    f"{', '.join(RESERVED_ENV)} and {RESERVED_ENV_PREFIX}* cannot be set"
                )
            if not isinstance(value, str) or len(value) > MAX_ENV_VALUE:
                problems.append(
                    f"container env {name}={value!r} for {service}: the value must be text "
                    f"of at most {MAX_ENV_VALUE} characters"
                )
            elif not value.isprintable():
                problems.append(
                    f"container env {name}={value!r} for {service}: the value must be one "
                    "line of printable characters"
                )
    return problems
