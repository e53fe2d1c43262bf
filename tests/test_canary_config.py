"""The canary: section of pipeline.yaml: every problem listed, each naming key and value."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from brewline.analysis import BUILTIN_METRICS, AnalysisSpec, MetricSpec
from brewline.canary_config import (
    DEFAULT_CANARY,
    CanaryConfig,
    CanaryStep,
    LoadSpec,
    validate_canary,
)

EXAMPLE = """
canary:
  traffic: load-generator
  load: {path: /health, rate: 20, concurrency: 2}
  analysis: {interval: 5s, count: 6, failure_limit: 1, inconclusive_limit: 2,
             consecutive_error_limit: 3, min_requests: 20,
             on_inconclusive: pause}
  metrics:
    - name: request-success-rate
    - name: request-duration-p99
      threshold: 0.25
    - name: my-metric
      query: 'sum(rate(traefik_service_requests_total{service="{canary}",code="429"}[{interval}]))'
      condition: "<="
      threshold: 0.2
      unit: requests per second
  steps:
    - set_weight: 10
    - pause: 10s
    - analysis: {}
    - set_weight: 50
    - pause: {}
    - pause: {duration: 1m}
    - pause: 30
    - analysis:
"""


def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE)["canary"]


def problems_of(data: object) -> list[str]:
    problems: list[str] = []
    assert validate_canary(data, problems) is None
    assert problems
    return problems


def test_the_documented_example_is_valid() -> None:
    problems: list[str] = []
    config = validate_canary(example(), problems)
    assert problems == []
    assert config == CanaryConfig(
        steps=[
            CanaryStep("set_weight", weight=10),
            CanaryStep("pause", pause_seconds=10),
            CanaryStep("analysis"),
            CanaryStep("set_weight", weight=50),
            CanaryStep("pause", pause_seconds=None),
            CanaryStep("pause", pause_seconds=60),
            CanaryStep("pause", pause_seconds=30),
            CanaryStep("analysis"),
        ],
        analysis=AnalysisSpec(
            metrics=[
                BUILTIN_METRICS["request-success-rate"],
                MetricSpec(
                    name="request-duration-p99",
                    query=BUILTIN_METRICS["request-duration-p99"].query,
                    condition="<=",
                    threshold=0.25,
                    unit="seconds",
                ),
                MetricSpec(
                    name="my-metric",
                    query='sum(rate(traefik_service_requests_total{service="{canary}",'
                    'code="429"}[{interval}]))',
                    condition="<=",
                    threshold=0.2,
                    unit="requests per second",
                ),
            ],
            interval_seconds=5,
            count=6,
            failure_limit=1,
            inconclusive_limit=2,
            consecutive_error_limit=3,
            min_requests=20,
        ),
        traffic="load-generator",
        load=LoadSpec(path="/health", rate_per_second=20.0, concurrency=2),
        on_inconclusive="pause",
    )


@pytest.mark.parametrize("section", [None, {}])
def test_an_empty_section_is_the_default(section: object) -> None:
    problems: list[str] = []
    config = validate_canary(section, problems)
    assert problems == []
    assert config == DEFAULT_CANARY
    assert config is not DEFAULT_CANARY  # a copy: changing it never changes the default
    assert config.analysis.metrics[0] is not BUILTIN_METRICS["request-success-rate"]


def test_keys_left_out_take_the_default() -> None:
    problems: list[str] = []
    config = validate_canary({"analysis": {"count": 5}, "traffic": "users"}, problems)
    assert problems == []
    assert config is not None
    assert config.analysis.count == 5
    assert config.analysis.interval_seconds == DEFAULT_CANARY.analysis.interval_seconds
    assert config.steps == DEFAULT_CANARY.steps
    assert config.traffic == "users"


def test_the_default_canary_is_the_demo_rollout() -> None:
    steps = DEFAULT_CANARY.steps
    assert [s.weight for s in steps if s.kind == "set_weight"] == [10, 20, 50, 80]
    assert [s.kind for s in steps] == [
        "set_weight",
        "pause",
        "analysis",
        "set_weight",
        "analysis",
        "set_weight",
        "analysis",
        "set_weight",
        "analysis",
    ]
    assert steps[1].pause_seconds == 5
    spec = DEFAULT_CANARY.analysis
    assert (spec.interval_seconds, spec.count) == (5, 3)
    assert [m.name for m in spec.metrics] == ["request-success-rate", "request-duration-p99"]
    assert DEFAULT_CANARY.on_inconclusive == "rollback"
    # At the smallest weight the load still gives the canary twice min_requests per window,
    # so a healthy canary is never inconclusive for lack of traffic.
    smallest = min(s.weight for s in steps if s.kind == "set_weight")
    per_window = DEFAULT_CANARY.load.rate_per_second * smallest / 100 * spec.interval_seconds
    assert per_window >= 2 * spec.min_requests


def test_the_default_canary_passes_its_own_validation() -> None:
    """Written out as YAML, DEFAULT_CANARY validates back to itself."""
    as_yaml = {
        "traffic": DEFAULT_CANARY.traffic,
        "load": {
            "path": DEFAULT_CANARY.load.path,
            "rate": DEFAULT_CANARY.load.rate_per_second,
            "concurrency": DEFAULT_CANARY.load.concurrency,
        },
        "analysis": {
            "interval": f"{DEFAULT_CANARY.analysis.interval_seconds}s",
            "count": DEFAULT_CANARY.analysis.count,
            "failure_limit": DEFAULT_CANARY.analysis.failure_limit,
            "inconclusive_limit": DEFAULT_CANARY.analysis.inconclusive_limit,
            "consecutive_error_limit": DEFAULT_CANARY.analysis.consecutive_error_limit,
            "min_requests": DEFAULT_CANARY.analysis.min_requests,
            "on_inconclusive": DEFAULT_CANARY.on_inconclusive,
        },
        "metrics": [{"name": m.name} for m in DEFAULT_CANARY.analysis.metrics],
        "steps": [
            {"set_weight": s.weight}
            if s.kind == "set_weight"
            else {"pause": f"{s.pause_seconds}s"}
            if s.kind == "pause"
            else {"analysis": {}}
            for s in DEFAULT_CANARY.steps
        ],
    }
    problems: list[str] = []
    assert validate_canary(as_yaml, problems) == DEFAULT_CANARY
    assert problems == []


def test_all_problems_are_listed_at_once() -> None:
    data = {
        "traffic": "bots",
        "load": {"path": "health", "rate": 0, "concurrency": 2, "burst": 1},
        "analysis": {"interval": "1s", "count": 2, "failure_limit": 2, "on_inconclusive": "wait"},
        "metrics": [
            {"name": "request-succes-rate"},
            {"name": "request-duration-p99", "query": "up"},
            {
                "name": "mine",
                "query": 'sum(x{service="{canary}",c="{cluster}"}[{interval}])',
                "condition": "==",
                "threshold": float("inf"),
            },
            {"name": "Bad_Name"},
            {},
            {"name": "request-success-rate"},
            {"name": "request-success-rate", "threshold": 0.9},
        ],
        "steps": [
            {"analysis": {}},
            {"set_weight": 50},
            {"set_weight": 20},
            {"set_weight": 101},
            {"pause": "soon"},
            {"jump": 3},
            {"set_weight": 60, "pause": "5s"},
            {"analysis": {"count": 3}},
        ],
        "surprise": True,
    }
    problems = problems_of(data)
    assert problems == [
        "canary.traffic: 'bots' is not allowed; use one of: load-generator, users",
        "canary.load.path: 'health' must be a URL path such as /health",
        "canary.load.rate: 0 must be a number from 1 to 1000",
        "unknown key 'canary.load.burst'; allowed here: concurrency, path, rate",
        "canary.analysis.interval: '1s' must be between 2s and 3600s",
        "canary.analysis.on_inconclusive: 'wait' is not allowed; use one of: rollback, pause",
        "canary.analysis.failure_limit: 2 lets every one of the 2 measurements fail; "
        "use at most count - 1 (1)",
        "canary.metrics[0].name: 'request-succes-rate' is not a built-in metric "
        "(request-success-rate, request-duration-p99, success-rate-vs-stable, p99-vs-stable); "
        "a custom metric needs query, condition and threshold",
        "canary.metrics[1]: 'request-duration-p99' is a built-in metric, so query cannot be "
        "changed (only threshold); give a custom metric a name of its own",
        'canary.metrics[2].query: \'sum(x{service="{canary}",c="{cluster}"}[{interval}])\' '
        "uses unknown placeholder(s) {cluster}; allowed: {service}, {environment}, "
        "{version}, {interval}, {stable}, {canary}, {namespace}",
        "canary.metrics[2].condition: '==' is not a condition; use one of: >=, <=, >, <",
        "canary.metrics[2].threshold: inf must be a finite number",
        "canary.metrics[3].name: metric 'Bad_Name' is not allowed: use lower-case letters, "
        "digits and '-', starting with a letter, at most 40 characters",
        "canary.metrics[4].name is required",
        "canary.metrics[6].name: 'request-success-rate' is listed twice",
        "canary.steps[0].analysis: comes before any traffic reaches the canary (weight 0): "
        "put a set_weight above 0 before it",
        "canary.steps[2].set_weight: 20 is below the weight before it (50); weights must not "
        "decrease (roll back instead)",
        "canary.steps[3].set_weight: 101 must be a whole number from 0 to 100",
        "canary.steps[4].pause: 'soon' is not a duration (use e.g. 30s, 10m, 24h, 1h30m, 2d)",
        "canary.steps[5]: unknown step 'jump'; allowed: set_weight, pause, analysis",
        "canary.steps[6]: {'set_weight': 60, 'pause': '5s'} must be one mapping with one key: "
        "set_weight, pause, analysis",
        "canary.steps[7].analysis: {'count': 3} must be {}: the analysis is set under "
        "canary.analysis",
        "unknown key 'canary.surprise'; allowed here: analysis, load, metrics, sequential, "
        "steps, traffic",
    ]


def test_problems_are_appended_to_the_callers_list_under_its_key() -> None:
    problems = ["an earlier problem elsewhere in pipeline.yaml"]
    config = validate_canary({"traffic": "users"}, problems, where="environments.prod.canary")
    # The section itself is fine: an earlier problem does not make it invalid.
    assert config is not None
    assert validate_canary({"traffic": "x"}, problems, where="environments.prod.canary") is None
    assert problems == [
        "an earlier problem elsewhere in pipeline.yaml",
        "environments.prod.canary.traffic: 'x' is not allowed; use one of: load-generator, users",
    ]


def test_the_section_must_be_a_mapping() -> None:
    assert problems_of(["set_weight: 10"]) == ["canary must be a mapping, got ['set_weight: 10']"]


def test_steps_need_an_analysis() -> None:
    steps = [{"set_weight": 10}, {"pause": "10s"}, {"set_weight": 100}]
    assert problems_of({"steps": steps}) == [
        "canary.steps must include at least one analysis step: without one, nothing checks "
        "the canary before it is promoted"
    ]


@pytest.mark.parametrize("steps", [[], None, "set_weight: 10", {"set_weight": 10}])
def test_steps_must_be_a_non_empty_list(steps: object) -> None:
    assert problems_of({"steps": steps}) == [
        f"canary.steps: {steps!r} must be a list of steps (set_weight, pause, analysis), "
        "with at least one analysis"
    ]


@pytest.mark.parametrize("metrics", [[], None, {"name": "request-success-rate"}])
def test_metrics_must_be_a_non_empty_list(metrics: object) -> None:
    assert problems_of({"metrics": metrics}) == [
        f"canary.metrics: {metrics!r} must list at least one metric (built-ins: "
        "request-success-rate, request-duration-p99, success-rate-vs-stable, p99-vs-stable)"
    ]


def test_custom_metric_needs_query_condition_and_threshold() -> None:
    assert problems_of({"metrics": [{"name": "mine", "query": "up"}]}) == [
        "canary.metrics[0].condition is required",
        "canary.metrics[0].threshold is required",
    ]
    assert problems_of({"metrics": [{"name": "mine", "query": "", "condition": ">"}]}) == [
        "canary.metrics[0].query: '' must be a non-empty string",
        "canary.metrics[0].threshold is required",
    ]


def test_custom_query_may_use_every_placeholder() -> None:
    query = (
        'sum(rate(x{service="{canary}",app="{service}",env="{environment}",'
        'version="{version}"}[{interval}])) / sum(rate(x{service="{stable}"}[{interval}]))'
    )
    problems: list[str] = []
    metric = {"name": "ratio", "query": query, "condition": "<", "threshold": 2}
    config = validate_canary({"metrics": [metric]}, problems)
    assert problems == []
    assert config is not None
    assert config.analysis.metrics == [MetricSpec("ratio", query, "<", 2.0)]


def test_builtin_comparisons_can_be_chosen() -> None:
    problems: list[str] = []
    metrics = [{"name": "success-rate-vs-stable"}, {"name": "p99-vs-stable", "threshold": 2}]
    config = validate_canary({"metrics": metrics}, problems)
    assert problems == []
    assert config is not None
    assert [(m.name, m.condition, m.threshold) for m in config.analysis.metrics] == [
        ("success-rate-vs-stable", ">=", -0.01),
        ("p99-vs-stable", "<=", 2.0),
    ]


def test_weights_may_stay_and_reach_100() -> None:
    problems: list[str] = []
    steps = [{"set_weight": 0}, {"set_weight": 20}, {"analysis": None}, {"set_weight": 20}]
    config = validate_canary({"steps": [*steps, {"set_weight": 100}]}, problems)
    assert problems == []
    assert config is not None
    assert [s.weight for s in config.steps if s.kind == "set_weight"] == [0, 20, 20, 100]


@pytest.mark.parametrize(
    ("pause", "problem"),
    [
        ("0s", "'0s' must be between 1s and 86400s"),
        ({"duration": "2d"}, "'2d' must be between 1s and 86400s"),
        ({"until": "later"}, "{'until': 'later'} must be a duration, {duration: 10s}, or {}"),
        (True, "True is not a duration"),
    ],
)
def test_pause_forms(pause: object, problem: str) -> None:
    steps = [{"set_weight": 10}, {"pause": pause}, {"analysis": {}}]
    (found,) = problems_of({"steps": steps})
    assert found.startswith("canary.steps[1].pause: ")
    assert problem in found


def test_input_is_not_changed() -> None:
    data = example()
    before = copy.deepcopy(data)
    validate_canary(data, [])
    assert data == before


def test_the_sequential_judge_is_selected_with_its_own_bounds() -> None:
    problems: list[str] = []
    cfg = validate_canary(
        {
            "analysis": {"judge": "sequential", "interval": "5s", "count": 60},
            "sequential": {"alpha": 0.005, "max_increase": 0.01, "latency": False},
        },
        problems,
    )
    assert problems == []
    assert cfg is not None and cfg.judge == "sequential"
    assert (cfg.sequential.alpha, cfg.sequential.max_increase, cfg.sequential.latency) == (
        0.005,
        0.01,
        False,
    )
    assert cfg.sequential.beta == 0.05  # left out: the judge's default
    assert DEFAULT_CANARY.judge == "threshold"


def test_bad_judge_settings_are_listed_with_the_key() -> None:
    problems: list[str] = []
    cfg = validate_canary(
        {
            "analysis": {"judge": "bayes"},
            "sequential": {"alpha": 0.7, "harmful_ratio": 1, "min_canary_requests": 0},
        },
        problems,
    )
    assert cfg is None
    assert problems == [
        "canary.analysis.judge: 'bayes' is not allowed; use one of: threshold, sequential",
        "canary.sequential.min_canary_requests: 0 must be a whole number from 1 to 10000000",
        "canary.sequential.alpha=0.7 is not allowed: use a number between 0 and 0.5, e.g. 0.01",
        "canary.sequential.harmful_ratio=1.0 is not allowed: use a finite ratio above 1, "
        "e.g. 2 (a canary with twice stable's rate is harmful)",
    ]
