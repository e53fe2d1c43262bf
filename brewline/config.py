"""Load and validate pipeline.yaml into a PipelineConfig.

Validation collects every problem before failing, so a person fixes the file in one go:
`ConfigError.problems` lists them, each naming the key, the value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import yaml

from brewline.identity import NAME_RULE, InvalidName, validate_name
from brewline.model import (
    ApprovalConfig,
    BuildConfig,
    EnvironmentConfig,
    InfraConfig,
    PipelineConfig,
    ScanConfig,
    ServiceConfig,
    TestConfig,
)
from brewline.severity import SEVERITIES

KNOWN_TARGETS = ("local",)
DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
SMOKE_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
T = TypeVar("T")


class ConfigError(ValueError):
    """pipeline.yaml is not valid; `problems` lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source} is not valid ({len(problems)} problems):\n{lines}")


def parse_duration(value: object) -> int:
    """'24h', '90m', '1h30m', '45s', '2d' or a whole number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return value
    if isinstance(value, str):
        match = DURATION.fullmatch(value.strip())
        if match and any(match.groups()):
            d, h, m, s = (int(g) if g else 0 for g in match.groups())
            return ((d * 24 + h) * 60 + m) * 60 + s
    raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 10m, 24h, 1h30m, 2d)")


class _Reader:
    """Reads one mapping of the YAML tree, recording problems instead of raising."""

    def __init__(self, problems: list[str], where: str, data: object) -> None:
        self.problems = problems
        self.where = where
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems.append(f"{where or 'the file'} must be a mapping, got {data!r}")
            data = {}
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def get(
        self,
        name: str,
        default: T,
        convert: Callable[[Any], T],
        required: bool = False,
    ) -> T:
        self.seen.add(name)
        if name not in self.data:
            if required:
                self.problems.append(f"{self.key(name)} is required")
            return default
        try:
            return convert(self.data[name])
        except (ValueError, TypeError) as exc:
            self.problems.append(f"{self.key(name)}: {exc}")
            return default

    def sub(self, name: str) -> _Reader:
        self.seen.add(name)
        return _Reader(self.problems, self.key(name), self.data.get(name))

    def finish(self) -> None:
        unknown = sorted(set(map(str, self.data)) - self.seen)
        for name in unknown:
            self.problems.append(
                f"unknown key {self.key(name)!r}; allowed here: {', '.join(sorted(self.seen))}"
            )


def _string(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} must be a non-empty string")
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} must be true or false")
    return value


def _relative_path(value: object) -> str:
    text = _string(value)
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{text!r} must be a path inside the source tree (relative, no '..')")
    return text


def _package(value: object) -> str:
    text = _relative_path(value)
    if not text.startswith("./"):
        raise ValueError(f"{text!r} must be a Go package path starting with './'")
    return text


def _smoke_path(value: object) -> str:
    text = _string(value)
    if not SMOKE_PATH.fullmatch(text) or ".." in text:
        raise ValueError(f"{text!r} must be a URL path such as /health")
    return text


def _number(low: float, high: float) -> Callable[[Any], float]:
    def convert(value: object) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (low <= value <= high)
        ):
            raise ValueError(f"{value!r} must be a number from {low:g} to {high:g}")
        return float(value)

    return convert


def _whole(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
            raise ValueError(f"{value!r} must be a whole number from {low} to {high}")
        return value

    return convert


def _duration(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: object) -> int:
        seconds = parse_duration(value)
        if not low <= seconds <= high:
            raise ValueError(f"{value!r} must be between {low}s and {high}s")
        return seconds

    return convert


def _severity(value: object) -> str:
    text = _string(value).upper()
    if text not in SEVERITIES:
        raise ValueError(f"{value!r} is not a severity; allowed: {', '.join(SEVERITIES)}")
    return text


def _list_of(convert: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    def convert_list(value: object) -> list[T]:
        if not isinstance(value, list):
            raise ValueError(f"{value!r} must be a list")
        return [convert(item) for item in value]

    return convert_list


def _variables(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{value!r} must be a mapping of variable names to strings")
    out: dict[str, str] = {}
    for name, val in value.items():
        if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
            raise ValueError(f"variable name {name!r} must be an identifier")
        if not isinstance(val, str | int | float) or isinstance(val, bool):
            raise ValueError(f"variable {name!r} must be a string or number, got {val!r}")
        out[name] = str(val)
    return out


def _name(kind: str) -> Callable[[Any], str]:
    def convert(value: object) -> str:
        try:
            return validate_name(kind, value)  # type: ignore[arg-type]
        except InvalidName as exc:
            raise ValueError(str(exc)) from None

    return convert


def _named_entries(
    parent: _Reader, key: str, kind: str, at_least: str
) -> Iterator[tuple[str, _Reader]]:
    """The entries of a mapping keyed by name (services, environments), names checked."""
    node = parent.sub(key)
    if not node.data:
        node.problems.append(f"{key} must list {at_least}")
    for name in node.data:
        node.seen.add(str(name))
        try:
            validate_name(kind, name)
        except InvalidName as exc:
            node.problems.append(f"{key}: {exc}")
            continue
        yield name, node.sub(name)


def validate(data: object, source: str = "pipeline.yaml") -> PipelineConfig:
    """Validate the parsed YAML tree; raise ConfigError listing every problem."""
    problems: list[str] = []
    top = _Reader(problems, "", data)
    schema = top.get("version", 0, _whole(1, 1), required=True)
    del schema
    project = top.get("project", "project", _name("project"), required=True)
    go_module = top.get("go_module", ".", _relative_path, required=True)

    services: list[ServiceConfig] = []
    for name, svc in _named_entries(top, "services", "service", "at least one service"):
        package = svc.get("package", f"./{name}", _package)
        services.append(
            ServiceConfig(
                name=name,
                package=package,
                containerfile=svc.get(
                    "containerfile", f"{package[2:]}/Containerfile", _relative_path
                ),
                smoke_path=svc.get("smoke_path", "/health", _smoke_path),
            )
        )
        svc.finish()

    test_node = top.sub("test")
    test = TestConfig(
        coverage_min=test_node.get("coverage_min", 0.0, _number(0, 100)),
        timeout_seconds=test_node.get("timeout", 600, _duration(10, 6 * 3600)),
    )
    test_node.finish()

    scan_node = top.sub("scan")
    scan = ScanConfig(
        fail_on=scan_node.get("fail_on", "HIGH", _severity),
        semgrep_rules=scan_node.get("semgrep_rules", "policy/semgrep/go.yml", _relative_path),
        shared_paths=scan_node.get("shared_paths", [], _list_of(_relative_path)),
    )
    scan_node.finish()

    build_node = top.sub("build")
    build = BuildConfig(parallelism=build_node.get("parallelism", 2, _whole(1, 16)))
    build_node.finish()

    infra_node = top.sub("infra")
    infra = InfraConfig(
        terraform_dir=infra_node.get("terraform_dir", "terraform/envs/local", _relative_path),
        variables=infra_node.get("variables", {}, _variables),
    )
    infra_node.finish()

    environments: list[EnvironmentConfig] = []
    for name, env in _named_entries(
        top, "environments", "environment", "at least one environment, in release order"
    ):
        target = env.get("target", "local", _string)
        if target not in KNOWN_TARGETS:
            problems.append(
                f"environments.{name}.target: {target!r} is not a known deploy target; "
                f"allowed: {', '.join(KNOWN_TARGETS)}"
            )
        environments.append(
            EnvironmentConfig(
                name=name,
                target=target,
                requires_approval=env.get("requires_approval", False, _bool),
            )
        )
        env.finish()

    approval_node = top.sub("approval")
    approval = ApprovalConfig(
        approvers=approval_node.get("approvers", [], _list_of(_string)),
        allow_self_approval=approval_node.get("allow_self_approval", False, _bool),
        timeout_seconds=approval_node.get("timeout", 24 * 3600, _duration(60, 30 * 86400)),
    )
    approval_node.finish()
    if any(e.requires_approval for e in environments) and not approval.approvers:
        problems.append(
            "approval.approvers must name at least one person: "
            + ", ".join(e.name for e in environments if e.requires_approval)
            + " requires approval"
        )
    top.finish()

    if problems:
        raise ConfigError(source, problems)
    return PipelineConfig(
        project=project,
        go_module=go_module,
        services=services,
        environments=environments,
        test=test,
        scan=scan,
        build=build,
        infra=infra,
        approval=approval,
    )


def load(path: Path) -> PipelineConfig:
    """Read and validate a pipeline.yaml file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read it: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from None
    return validate(data, str(path))


__all__ = ["NAME_RULE", "ConfigError", "load", "parse_duration", "validate"]
