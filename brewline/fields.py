"""Reading pipeline.yaml: a mapping reader that records problems instead of raising, and
the converters every section uses (durations, bounded numbers, paths, names).

A converter takes the raw YAML value and returns the typed one, or raises ValueError
with a message naming the value and what is allowed; `Reader.get` turns that into one
entry of the problem list, so a person sees every problem of the file at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any, TypeVar

from brewline.identity import InvalidName, validate_name

DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
SMOKE_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
T = TypeVar("T")


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


class Reader:
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

    def sub(self, name: str) -> Reader:
        self.seen.add(name)
        return Reader(self.problems, self.key(name), self.data.get(name))

    def finish(self) -> None:
        unknown = sorted(set(map(str, self.data)) - self.seen)
        for name in unknown:
            self.problems.append(
                f"unknown key {self.key(name)!r}; allowed here: {', '.join(sorted(self.seen))}"
            )


def nonempty(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} must be a non-empty string")
    return value


def flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} must be true or false")
    return value


def relative_path(value: object) -> str:
    text = nonempty(value)
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{text!r} must be a path inside the source tree (relative, no '..')")
    # these paths reach go, semgrep, trivy and terraform as arguments: a part starting
    # with '-' could be read as an option, a control character breaks every tool
    if any(part.startswith("-") for part in path.parts) or not text.isprintable():
        raise ValueError(f"{text!r} must be a plain path: printable, no part starting with '-'")
    return text


def go_package(value: object) -> str:
    text = relative_path(value)
    if not text.startswith("./"):
        raise ValueError(f"{text!r} must be a Go package path starting with './'")
    return text


def url_path(value: object) -> str:
    text = nonempty(value)
    if not SMOKE_PATH.fullmatch(text) or ".." in text:
        raise ValueError(f"{text!r} must be a URL path such as /health")
    return text


def number(low: float, high: float) -> Callable[[Any], float]:
    def convert(value: object) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (low <= value <= high)
        ):
            raise ValueError(f"{value!r} must be a number from {low:g} to {high:g}")
        return float(value)

    return convert


def whole(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
            raise ValueError(f"{value!r} must be a whole number from {low} to {high}")
        return value

    return convert


def duration(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: object) -> int:
        seconds = parse_duration(value)
        if not low <= seconds <= high:
            raise ValueError(f"{value!r} must be between {low}s and {high}s")
        return seconds

    return convert


def list_of(convert: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    def convert_list(value: object) -> list[T]:
        if not isinstance(value, list):
            raise ValueError(f"{value!r} must be a list")
        return [convert(item) for item in value]

    return convert_list


def variables(value: object) -> dict[str, str]:
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


def checked_name(kind: str) -> Callable[[Any], str]:
    def convert(value: object) -> str:
        try:
            return validate_name(kind, value)  # type: ignore[arg-type]
        except InvalidName as exc:
            raise ValueError(str(exc)) from None

    return convert


def named_entries(
    parent: Reader, key: str, kind: str, at_least: str
) -> Iterator[tuple[str, Reader]]:
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
