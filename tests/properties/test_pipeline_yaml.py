"""pipeline.yaml, property-based: the repo's file with wrong types, unknown keys, strings
where maps are expected, huge numbers, negative durations, escaping paths and option-like
strings either validates or raises ConfigError whose problems each name the key; no other
exception (KeyError, TypeError, AttributeError...) ever escapes.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from brewline.config import ConfigError, load, validate
from brewline.platform import REPO_ROOT
from tests.properties.strategies import HOSTILE_TOKENS, SLOW_PROPERTY

BASE: Any = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text())


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into the tree (keys and list indexes), the root included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(BASE)
TOP_KEYS = {str(k) for k in BASE} | {"canary", "notify", "approval", "infra", "build", "scan"}

weird_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.sampled_from([-1, -3600, 0, 2**63, 10**400, float("nan"), float("inf"), -0.5]),
    st.sampled_from(HOSTILE_TOKENS),
    st.sampled_from(["-1s", "-5m", "99999999999999d", "1h-1m", "/etc", "../../..", "./-o"]),
    st.sampled_from(["--set=x", "-o", "--config=/etc/passwd", "a\x00b", "/absolute/path"]),
    st.text(max_size=12),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.just({"unknown": {"nested": [1, 2]}}),
    st.just([[[[]]]]),
)


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    tree = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        op = draw(st.sampled_from(["replace", "delete", "add-key"]))
        if not path:
            if op == "replace":
                return draw(weird_values)
            continue
        parent = tree
        try:
            for step in path[:-1]:
                parent = parent[step]
            last = path[-1]
            if op == "replace":
                parent[last] = draw(weird_values)
            elif op == "delete":
                del parent[last]
            elif isinstance(parent.get(last) if isinstance(parent, dict) else None, dict):
                parent[last][draw(st.sampled_from(["x", "--set", "", "1", "../a"]))] = 1
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # an earlier mutation removed or replaced this path
    return tree


def names_a_key(problem: str) -> bool:
    return (
        problem.startswith("unknown key ")
        or problem.startswith("the file")
        or any(problem.startswith(key) for key in TOP_KEYS)
    )


@SLOW_PROPERTY
@given(mutated())
def test_a_mutated_pipeline_validates_or_names_each_problem(tree: Any) -> None:
    try:
        config = validate(tree)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError with no problem"
        for problem in exc.problems:
            assert isinstance(problem, str) and problem
            assert names_a_key(problem), problem
        return
    # what validates never carries a path out of the tree or an option into an argv
    for path in (
        config.go_module,
        config.scan.semgrep_rules,
        config.infra.terraform_dir,
        *config.scan.shared_paths,
        *(s.containerfile for s in config.services),
    ):
        assert not path.startswith("/") and ".." not in Path(path).parts, path
    for service in config.services:
        assert service.package.startswith("./"), service.package


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"version: 1\nproject: \xff\xfe\n", "not UTF-8 text"),
        (b"[" * 1500 + b"]" * 1500, "nested too deeply"),
        (b"version: [1\n", "not valid YAML"),
        (b"- a\n- b\n", "the file must be a mapping"),
    ],
)
def test_an_unreadable_pipeline_is_one_config_error(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert any(expected in p for p in info.value.problems), info.value.problems
