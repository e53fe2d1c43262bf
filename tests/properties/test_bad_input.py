"""Bad input, property-based: versions, names, release ids, container env, the CLI and
approvals either pass the documented rule or get ONE clear error naming the value, and
nothing is started.

Runs in a few seconds: derandomized hypothesis, no example database (strategies.PROPERTY).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import socket
import tempfile
from pathlib import Path

import yaml
from hypothesis import assume, example, given
from hypothesis import strategies as st

import starter
from brewline import canary as c
from brewline.approval import refusal
from brewline.identity import (
    COMMIT,
    ENV_NAME,
    MAX_ENV_PER_SERVICE,
    MAX_ENV_VALUE,
    MAX_VERSION_LENGTH,
    NAME,
    RESERVED_ENV,
    RESERVED_ENV_PREFIX,
    SEMVER,
    InvalidName,
    release_id,
    validate_container_env,
    validate_name,
    validate_person,
    validate_version,
)
from brewline.model import ApprovalConfig
from tests.properties.strategies import (
    PROPERTY,
    SHELL_META,
    SLOW_PROPERTY,
    commit,
    hostile_text,
    semver,
    valid_name,
)

SERVICES = ["api-gateway", "producer", "consumer", "auth-service"]  # the repo's pipeline.yaml


def assert_inert(value: str) -> None:
    """What a value that reaches an argv or a path must never be: an option, a path, or
    something a shell (or a person reading a log) would take for something else."""
    assert value, value
    assert not value.startswith("-"), value
    assert "/" not in value and ".." not in value, value
    assert not SHELL_META & set(value), value
    assert value.isascii() and value.isprintable(), value


def assert_one_clear_error(exc: Exception, value: object) -> None:
    message = str(exc)
    assert repr(value) in message, message
    assert "\n" not in message, message


# ------------------------------------------------------------------------ versions
@PROPERTY
@given(st.one_of(semver(), commit()))
def test_every_documented_version_is_accepted(version: str) -> None:
    assert validate_version(version) == version
    assert_inert(version)


@PROPERTY
@given(hostile_text(st.one_of(semver(), commit())))
@example("1.0.0\n")
@example("--set=image.tag=x")
@example("-o")
@example("../../etc/passwd")
@example("1.0.0\x00")
@example("1.\uff12.3")
@example("v1.0.0" + "-a" * 100)
def test_a_version_is_valid_by_the_rule_or_refused_naming_it(version: str) -> None:
    try:
        accepted = validate_version(version)
    except InvalidName as exc:
        assert_one_clear_error(exc, version)
        assert "semantic version" in str(exc)
        return
    assert accepted == version
    assert SEMVER.fullmatch(version) or COMMIT.fullmatch(version)
    assert len(version) <= MAX_VERSION_LENGTH
    assert_inert(version.replace("+", "").replace(".", ""))  # '.' and '+' are semver's own


@PROPERTY
@given(st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.text()), st.binary()))
def test_a_version_that_is_not_text_is_refused(value: object) -> None:
    try:
        validate_version(value)  # type: ignore[arg-type]
    except InvalidName as exc:
        assert_one_clear_error(exc, value)
    else:
        raise AssertionError(f"{value!r} accepted as a version")


# ------------------------------------------------------------------------ names
@PROPERTY
@given(hostile_text(valid_name()))
@example("api-gateway\n")
@example("-api")
@example("api/../x")
@example("\u0430pi")  # Cyrillic a
@example("API")
def test_a_service_or_environment_name_is_a_dns_label_or_refused(name: str) -> None:
    for kind in ("service", "environment", "project"):
        try:
            accepted = validate_name(kind, name)
        except InvalidName as exc:
            assert_one_clear_error(exc, name)
            assert str(exc).startswith(kind)
            continue
        assert accepted == name and NAME.fullmatch(name)
        assert len(name) <= 40 and name.islower() and not name.endswith("-")
        assert_inert(name)


@PROPERTY
@given(
    st.one_of(st.none(), st.integers(), st.lists(st.text()), st.dictionaries(st.text(), st.text()))
)
def test_a_name_that_is_not_text_is_refused(value: object) -> None:
    try:
        validate_name("service", value)  # type: ignore[arg-type]
    except InvalidName as exc:
        assert_one_clear_error(exc, value)
    else:
        raise AssertionError(f"{value!r} accepted as a name")


# ------------------------------------------------------------------------ release ids
@PROPERTY
@given(
    valid_name(),
    st.lists(valid_name(), min_size=1, max_size=4),
    st.one_of(semver(), commit()),
    st.randoms(use_true_random=False),
)
def test_a_release_id_is_inert_and_independent_of_service_order(
    project: str, services: list[str], version: str, rnd: object
) -> None:
    rid = release_id(project, services, version)
    shuffled = list(services) * 2
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert release_id(project, shuffled, version) == rid
    assert rid.startswith(f"release-{project}-")
    assert_inert(rid.replace("+", "").replace(".", ""))


# A small alphabet of names and versions that look alike, so collisions are reachable.
_LOOKALIKE_NAMES = ["a", "b", "a-b", "a-1", "a-v1", "ab", "b-1", "a-abc1234"]
_LOOKALIKE_VERSIONS = ["1.0.0", "v1.0.0", "1.0.0-1", "1.0.0-b", "0.1.0", "abc1234", "1.0.0-b-1"]


@PROPERTY
@given(
    st.tuples(
        st.sets(st.sampled_from(_LOOKALIKE_NAMES), min_size=1, max_size=3),
        st.sampled_from(_LOOKALIKE_VERSIONS),
    ),
    st.tuples(
        st.sets(st.sampled_from(_LOOKALIKE_NAMES), min_size=1, max_size=3),
        st.sampled_from(_LOOKALIKE_VERSIONS),
    ),
)
def test_two_different_releases_never_share_an_id(
    one: tuple[set[str], str], other: tuple[set[str], str]
) -> None:
    # the same id would attach the second release to the first (USE_EXISTING)
    if release_id("p", *one) == release_id("p", *other):
        assert one == other


def test_every_lookalike_pair_has_its_own_id() -> None:
    """The exhaustive version of the property above, over the whole small alphabet."""
    seen: dict[str, tuple[frozenset[str], str]] = {}
    for size in (1, 2, 3):
        for names in itertools.combinations(_LOOKALIKE_NAMES, size):
            for version in _LOOKALIKE_VERSIONS:
                rid = release_id("p", names, version)
                assert seen.setdefault(rid, (frozenset(names), version)) == (
                    frozenset(names),
                    version,
                ), rid


# ------------------------------------------------------------------------ container env
env_names = st.one_of(
    st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True),
    st.sampled_from([*RESERVED_ENV, "BREWLINE_X", "PATH", "1X", "x", "A B", "A=B", "A\n", ""]),
    hostile_text(st.just("FAULT_ERROR_RATE")),
)
env_values = st.one_of(
    st.text(max_size=30),
    hostile_text(st.just("0.2")),
    st.integers(MAX_ENV_VALUE - 2, MAX_ENV_VALUE + 2).map(lambda n: "x" * n),
)


@PROPERTY
@given(
    st.dictionaries(
        st.one_of(st.sampled_from(SERVICES), hostile_text(st.sampled_from(SERVICES))),
        st.dictionaries(env_names, env_values, max_size=4),
        max_size=3,
    )
)
def test_container_env_is_allowed_or_each_problem_names_the_variable(
    container_env: dict[str, dict[str, str]],
) -> None:
    released = ["api-gateway", "producer"]
    problems = validate_container_env(released, container_env)
    assert all(isinstance(p, str) and "\n" not in p for p in problems)
    for service, env in container_env.items():
        if service not in released:
            assert any(repr(service) in p for p in problems), problems
            continue
        for name, value in env.items():
            allowed = (
                bool(ENV_NAME.fullmatch(name))
                and name not in RESERVED_ENV
                and not name.startswith(RESERVED_ENV_PREFIX)
                and len(value) <= MAX_ENV_VALUE
                and value.isprintable()
            )
            if not allowed:
                assert any(repr(name) in p or f" {name}=" in p for p in problems), problems
        if len(env) > MAX_ENV_PER_SERVICE:
            assert any(str(MAX_ENV_PER_SERVICE) in p for p in problems)
    if not problems:
        for env in container_env.values():
            for name, value in env.items():
                assert ENV_NAME.fullmatch(name) and value.isprintable(), (name, value)
                assert "\n" not in value and "\x00" not in value


# ------------------------------------------------------------------------ starter.py
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A pipeline of its own (the repo's four services, staging then production and
# nothing else), so these properties do not follow edits of the repo's pipeline.yaml.
PIPELINE = {
    "version": 1,
    "project": "go-coffee",
    "go_module": "examples/go-coffee",
    "services": {name: {"package": f"./{name}"} for name in SERVICES},
    "environments": {
        "staging": {"target": "local"},
        "production": {"target": "local"},
    },
}
_PIPELINE_DIR = tempfile.TemporaryDirectory(prefix="brewline-properties-")
PIPELINE_PATH = Path(_PIPELINE_DIR.name) / "pipeline.yaml"
PIPELINE_PATH.write_text(yaml.safe_dump(PIPELINE))


def _run_starter(argv: list[str]) -> tuple[int, str]:
    """starter.main in-process against an address where nothing listens; (code, stderr)."""
    err = io.StringIO()
    address = ["--address", f"127.0.0.1:{_free_port()}"]
    argv = [*argv, f"--pipeline={PIPELINE_PATH}"] if argv[0] == "release" else argv
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = asyncio.run(starter.main([*address, *argv]))
    return code, err.getvalue()


UNREACHABLE = "cannot reach Temporal"


def _valid(check: object, value: str) -> bool:
    try:
        check(value)  # type: ignore[operator]
    except InvalidName:
        return False
    return True


def assert_refused_before_connecting(argv: list[str], value: str) -> None:
    code, err = _run_starter(argv)
    assert code == 2, (argv, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert UNREACHABLE not in err, f"{value!r} reached the connection: {err}"
    assert repr(value) in err, err


@SLOW_PROPERTY
@given(hostile_text(st.one_of(semver(), commit())))
@example("1.0.0;reboot")
@example("--set=image.tag=evil")
@example("-o")
@example("1.0.0\n")
def test_starter_refuses_a_bad_version_before_connecting(version: str) -> None:
    argv = ["release", "--services", "api-gateway", f"--version={version}"]
    if _valid(validate_version, version):
        code, err = _run_starter(argv)
        assert code == 2 and UNREACHABLE in err  # valid: it got as far as connecting
        return
    assert_refused_before_connecting(argv, version)


@SLOW_PROPERTY
@given(hostile_text(st.sampled_from(SERVICES)).filter(lambda s: "," not in s))
@example("api-gateway;id")
@example("--services")
@example("../producer")
@example("\u0430pi-gateway")
def test_starter_refuses_an_unknown_service_before_connecting(service: str) -> None:
    assume(service.strip() and service.strip() not in SERVICES)
    assume(service.strip() != "--")  # argparse drops a lone '--' value: "needs a service"
    argv = ["release", f"--services={service}", "--version", "1.0.0"]
    assert_refused_before_connecting(argv, service.strip())


@SLOW_PROPERTY
@given(hostile_text(st.sampled_from(["staging", "production"])).filter(lambda s: "," not in s))
def test_starter_refuses_an_unknown_environment_before_connecting(environment: str) -> None:
    assume(environment.strip() and environment.strip() not in ("staging", "production"))
    argv = ["release", "--services", "api-gateway", "--version", "1.0.0"]
    argv.append(f"--environments={environment}")
    assert_refused_before_connecting(argv, environment.strip())


@SLOW_PROPERTY
@given(
    st.one_of(st.sampled_from(SERVICES), hostile_text(st.just("api-gateway"))),
    env_names,
    env_values,
)
def test_starter_container_env_is_valid_or_refused_before_connecting(
    service: str, name: str, value: str
) -> None:
    item = f"{service}:{name}={value}"
    argv = ["release", "--services", "api-gateway", "--version", "1.0.0"]
    argv.append(f"--container-env={item}")
    code, err = _run_starter(argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    if UNREACHABLE in err:  # it got as far as connecting: the value must be allowed
        parsed = starter._container_env([item])
        assert validate_container_env(["api-gateway"], parsed) == []
        assert_inert(name.strip())
    else:
        assert "container-env" in err or "container env" in err, err


@SLOW_PROPERTY
@given(hostile_text(st.sampled_from(["alice", "carol", "j.doe", "ci-bot"])))
@example("alice ")
@example(" alice")
@example("alice\n")
@example("\u0430lice")  # Cyrillic a: looks like alice, is not
@example("alice\u200b")
@example("")
def test_starter_refuses_a_bad_initiator_before_connecting(initiator: str) -> None:
    """`--as` names who started the release: the gate compares it with the approver, so
    a name with spaces, invisible or look-alike characters would let alice approve a
    release she started as 'alice '."""
    argv = ["release", "--services", "api-gateway", "--version", "1.0.0", f"--as={initiator}"]
    if _valid(lambda v: validate_person("initiator", v), initiator):
        code, err = _run_starter(argv)
        assert code == 2 and UNREACHABLE in err
        assert_inert(initiator.replace(".", "").replace("@", "").replace("+", ""))
        return
    if initiator == "":
        # an empty --as falls back to $BREWLINE_USER or the login, as documented
        return
    assert_refused_before_connecting(argv, initiator)


@SLOW_PROPERTY
@given(hostile_text(st.just("/work/main")))
@example("/tmp/\x00")
@example("--source")
def test_starter_refuses_a_source_tree_without_the_go_module(source: str) -> None:
    argv = ["release", "--services", "api-gateway", "--version", "1.0.0", f"--source={source}"]
    code, err = _run_starter(argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    if UNREACHABLE not in err:
        assert "source" in err, err


# ------------------------------------------------------------------------ approvals
APPROVERS = ["alice", "bob"]
people = st.one_of(
    st.sampled_from([*APPROVERS, "carol", "mallory"]),
    hostile_text(st.sampled_from(APPROVERS)),
    st.sampled_from(APPROVERS).flatmap(
        lambda n: st.sampled_from(
            [n.upper(), n.title(), f"{n} ", f" {n}", f"{n}\t", f"{n}\u200b", f"{n}\u00a0"]
        )
    ),
)


@PROPERTY
@given(
    initiator=people,
    approver=people,
    approve=st.booleans(),
    reason=st.one_of(st.just(""), st.text(max_size=20)),
    allow_self=st.booleans(),
)
@example(initiator="alice ", approver="alice", approve=True, reason="", allow_self=False)
@example(initiator="Alice", approver="alice", approve=True, reason="", allow_self=False)
@example(initiator="alice", approver="alice\u00a0", approve=True, reason="", allow_self=False)
def test_only_listed_approvers_decide_and_never_their_own_release(
    initiator: str, approver: str, approve: bool, reason: str, allow_self: bool
) -> None:
    config = ApprovalConfig(approvers=list(APPROVERS), allow_self_approval=allow_self)
    why = refusal(config, initiator, approver, approve, reason)
    if why is None:
        assert approver.strip() in APPROVERS, approver
        if not allow_self:
            same = approver.strip().casefold() == initiator.strip().casefold()
            assert not same, f"{initiator!r} approved their own release as {approver!r}"
        if not approve:
            assert reason.strip()
    else:
        assert isinstance(why, str) and why


@PROPERTY
@given(
    actor=people,
    action=st.one_of(st.sampled_from(c.ACTIONS), st.text(max_size=10)),
    initiator=st.sampled_from(["alice", "alice ", "Alice", "carol"]),
)
def test_canary_controls_follow_the_approval_rules(actor: str, action: str, initiator: str) -> None:
    """promote, promote-full and resume are decisions: the canary asks `refusal` with the
    CanaryControl's actor (workflows/canary.py `_refusal`), as an approval."""
    control = c.CanaryControl(actor=actor, action=action)
    config = ApprovalConfig(approvers=list(APPROVERS))
    why = refusal(config, initiator, control.actor, True, control.reason)
    if why is None:
        assert control.actor.strip() in APPROVERS
        assert control.actor.strip().casefold() != initiator.strip().casefold()
