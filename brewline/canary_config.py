"""The `canary:` section of pipeline.yaml: steps, traffic, load and analysis.

Validated like the rest of pipeline.yaml (brewline/config.py): every problem is appended
to a list, naming the key, the value and what is allowed, so a person fixes the file in
one go. Every key left out takes DEFAULT_CANARY's value, so `canary: {}` is the default.

    canary:
      traffic: load-generator        # or "users" (real traffic in a cluster)
      load: {path: /health, rate: 20, concurrency: 2}
      analysis: {interval: 5s, count: 6, failure_limit: 1, inconclusive_limit: 2,
                 consecutive_error_limit: 3, min_requests: 20,
                 on_inconclusive: pause,   # or rollback
                 on_error: pause,          # Prometheus errors past the limit; or rollback
                 judge: threshold}         # or sequential: brewline/judge.py, see below
      sequential: {alpha: 0.01, beta: 0.05, harmful_ratio: 2, max_increase: 0.005,
                   min_canary_requests: 200, latency: true}
      metrics:
        - name: request-success-rate      # a built-in, optionally overriding threshold
        - name: my-metric                 # a custom one
          query: 'sum(rate(...{service="{canary}"}[{interval}]))'
          condition: "<="
          threshold: 0.2
      # placeholders of a custom query: {service} {environment} {version} {interval}
      # {stable} {canary} {namespace}; what the arms are called depends on the router
      # (brewline.analysis.query_vars): on the local platform (Traefik) {stable} and
      # {canary} are the leaf services `<env>-<service>-<track>@file` and {namespace} the
      # environment; on Kubernetes (ingress-nginx) {stable} is the stable Service and
      # Ingress, {canary} the canary's (`<service>-canary`), {namespace} the namespace,
      # and canary requests are counted under ingress="{stable}" with
      # canary=~"{namespace}-{canary}-.+" (stable ones have canary=""). The built-ins have
      # a template for each router.
      steps:
        - set_weight: 10
        - pause: 10s
        - analysis: {}                    # measure now: count x interval
        - set_weight: 50
        - pause: {}                       # wait for a person (`starter.py promote`)
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from brewline.analysis import (
    BUILTIN_METRICS,
    CONDITIONS,
    PLACEHOLDERS,
    AnalysisSpec,
    MetricSpec,
    render_query,
    unknown_placeholders,
)
from brewline.fields import (
    Reader,
    checked_name,
    duration,
    flag,
    nonempty,
    number,
    url_path,
    whole,
)
from brewline.judge import JudgeSpec, validate_spec

TRAFFIC_SOURCES = ("load-generator", "users")
ON_INCONCLUSIVE = ("rollback", "pause")
STEP_KINDS = ("set_weight", "pause", "analysis")
# threshold: each metric against its condition, Argo Rollouts' limits (brewline.analysis);
# sequential: canary against stable from the router's counters (brewline.judge)
JUDGES = ("threshold", "sequential")
MAX_QUERY_LENGTH = 4000
# Values that pass render_query's rules, to check a custom query renders at all.
_SAMPLE_VARS = {
    "service": "api-gateway",
    "environment": "production",
    "version": "1.0.0",
    "interval": "5s",
    "stable": "production-api-gateway-stable@file",
    "canary": "production-api-gateway-canary@file",
    "namespace": "production",
}


@dataclass
class CanaryStep:
    """One step: shift traffic (`weight`), wait (`pause_seconds`; None waits for a person
    to promote) or run the analysis (count x interval)."""

    kind: str  # set_weight, pause or analysis
    weight: int = 0  # set_weight: percent of requests to the canary, 0-100
    pause_seconds: int | None = None  # pause: seconds, or None for "until promoted"


@dataclass
class LoadSpec:
    """The traffic the load generator sends through the router while the canary runs."""

    path: str = "/health"
    rate_per_second: float = 40.0
    concurrency: int = 2


@dataclass
class CanaryConfig:
    steps: list[CanaryStep] = field(default_factory=list)
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)
    traffic: str = "load-generator"  # or "users": real traffic, no load generator
    load: LoadSpec = field(default_factory=LoadSpec)
    on_inconclusive: str = "rollback"  # or "pause": wait for a person to promote or abort
    judge: str = "threshold"  # or "sequential": interval is the window, count the most per step
    sequential: JudgeSpec = field(default_factory=JudgeSpec)
    # past consecutive_error_limit (Prometheus down): roll back (Argo's rule), or "pause":
    # hold the canary where it is and wait for a person; never a promotion either way
    on_error: str = "rollback"


# The demo's canary, in the spirit of the Argo Rollout it replaces (10/20/50/80), with an
# analysis after every step and short intervals (Prometheus scrapes every second here).
# 40 requests a second leave the canary 20 requests per 5 s window at weight 10, twice
# min_requests. An inconclusive analysis rolls back: nobody watches the demo, and no data
# must never pass.
DEFAULT_CANARY = CanaryConfig(
    steps=[
        CanaryStep("set_weight", weight=10),
        CanaryStep("pause", pause_seconds=5),
        CanaryStep("analysis"),
        CanaryStep("set_weight", weight=20),
        CanaryStep("analysis"),
        CanaryStep("set_weight", weight=50),
        CanaryStep("analysis"),
        CanaryStep("set_weight", weight=80),
        CanaryStep("analysis"),
    ],
    analysis=AnalysisSpec(
        metrics=[
            copy.deepcopy(BUILTIN_METRICS["request-success-rate"]),
            copy.deepcopy(BUILTIN_METRICS["request-duration-p99"]),
        ],
        interval_seconds=5,
        count=3,
        failure_limit=0,
        inconclusive_limit=1,
        consecutive_error_limit=3,
        min_requests=10,
    ),
    traffic="load-generator",
    load=LoadSpec(path="/health", rate_per_second=40.0, concurrency=2),
    on_inconclusive="rollback",
)


def _one_of(allowed: tuple[str, ...]) -> Any:
    def convert(value: object) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not allowed; use one of: {', '.join(allowed)}")
        return str(value)

    return convert


def _threshold(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} must be a finite number")
    return float(value)


def _condition(value: object) -> str:
    if value not in CONDITIONS:
        raise ValueError(f"{value!r} is not a condition; use one of: {', '.join(CONDITIONS)}")
    return str(value)


def _query(value: object) -> str:
    text = nonempty(value)
    if len(text) > MAX_QUERY_LENGTH:
        raise ValueError(f"is {len(text)} characters long; at most {MAX_QUERY_LENGTH}")
    unknown = unknown_placeholders(text)
    if unknown:
        raise ValueError(
            f"{text!r} uses unknown placeholder(s) "
            f"{', '.join('{' + name + '}' for name in unknown)}; allowed: "
            f"{', '.join('{' + name + '}' for name in PLACEHOLDERS)}"
        )
    render_query(text, **_SAMPLE_VARS)  # every placeholder known: this cannot refuse it
    return text


def _metric(item: object, where: str, problems: list[str]) -> MetricSpec | None:
    node = Reader(problems, where, item)
    before = len(problems)
    name = node.get("name", "", checked_name("metric"), required=True)
    builtin = BUILTIN_METRICS.get(name)
    if builtin is not None:
        # A built-in keeps its query and condition: only the bar can move.
        fixed = sorted({"query", "condition", "unit"} & set(node.data))
        if fixed:
            problems.append(
                f"{where}: {name!r} is a built-in metric, so {', '.join(fixed)} cannot be "
                "changed (only threshold); give a custom metric a name of its own"
            )
            node.seen.update(fixed)
        threshold = node.get("threshold", builtin.threshold, _threshold)
        node.finish()
        if len(problems) > before:
            return None
        return MetricSpec(
            name=name,
            query=builtin.query,
            condition=builtin.condition,
            threshold=threshold,
            unit=builtin.unit,
        )
    if name and "query" not in node.data:
        problems.append(
            f"{node.key('name')}: {name!r} is not a built-in metric "
            f"({', '.join(BUILTIN_METRICS)}); a custom metric needs query, "
            "condition and threshold"
        )
        node.seen.update({"condition", "threshold", "unit"})
        node.finish()
        return None
    # With a bad name its problem is already listed: check what is there, demand nothing.
    required = bool(name)
    query = node.get("query", "", _query, required=required)
    condition = node.get("condition", ">=", _condition, required=required)
    threshold = node.get("threshold", 0.0, _threshold, required=required)
    unit = node.get("unit", "", nonempty)
    node.finish()
    if len(problems) > before:
        return None
    return MetricSpec(name=name, query=query, condition=condition, threshold=threshold, unit=unit)


def _pause_seconds(value: object) -> int | None:
    """`pause: 10s` (or seconds), `pause: {duration: 10s}`, or `pause: {}` (until promoted)."""
    if value is None or value == {}:
        return None
    if isinstance(value, dict):
        if set(value) != {"duration"}:
            raise ValueError(
                f"{value!r} must be a duration, {{duration: 10s}}, or {{}} to wait for a person"
            )
        value = value["duration"]
    return duration(1, 24 * 3600)(value)


def _steps(value: object, where: str, problems: list[str]) -> list[CanaryStep]:
    if not isinstance(value, list) or not value:
        problems.append(
            f"{where}: {value!r} must be a list of steps "
            f"({', '.join(STEP_KINDS)}), with at least one analysis"
        )
        return []
    steps: list[CanaryStep] = []
    weight = 0
    analysis_listed = False  # even a wrong one: its own problem says what to fix
    for index, item in enumerate(value):
        key = f"{where}[{index}]"
        if not isinstance(item, dict) or len(item) != 1:
            problems.append(
                f"{key}: {item!r} must be one mapping with one key: {', '.join(STEP_KINDS)}"
            )
            continue
        ((kind, arg),) = item.items()
        if kind not in STEP_KINDS:
            problems.append(f"{key}: unknown step {kind!r}; allowed: {', '.join(STEP_KINDS)}")
            continue
        analysis_listed = analysis_listed or kind == "analysis"
        try:
            if kind == "set_weight":
                new_weight = whole(0, 100)(arg)
                if new_weight < weight:
                    raise ValueError(
                        f"{new_weight} is below the weight before it ({weight}); weights "
                        "must not decrease (roll back instead)"
                    )
                weight = new_weight
                steps.append(CanaryStep("set_weight", weight=new_weight))
            elif kind == "pause":
                steps.append(CanaryStep("pause", pause_seconds=_pause_seconds(arg)))
            else:
                if arg not in (None, {}):
                    raise ValueError(
                        f"{arg!r} must be {{}}: the analysis is set under canary.analysis"
                    )
                if weight == 0:
                    raise ValueError(
                        "comes before any traffic reaches the canary (weight 0): "
                        "put a set_weight above 0 before it"
                    )
                steps.append(CanaryStep("analysis"))
        except (ValueError, TypeError) as exc:
            problems.append(f"{key}.{kind}: {exc}")
    if not analysis_listed:
        problems.append(
            f"{where} must include at least one analysis step: without one, nothing "
            "checks the canary before it is promoted"
        )
    return steps


def validate_canary(
    data: object, problems: list[str], where: str = "canary"
) -> CanaryConfig | None:
    """Validate a parsed `canary:` section, appending every problem found to `problems`.

    Returns the CanaryConfig, or None when this section added a problem. Every key left
    out takes DEFAULT_CANARY's value; None (an empty section) is DEFAULT_CANARY itself.
    """
    before = len(problems)
    default = copy.deepcopy(DEFAULT_CANARY)
    top = Reader(problems, where, data)

    traffic = top.get("traffic", default.traffic, _one_of(TRAFFIC_SOURCES))

    load_node = top.sub("load")
    load = LoadSpec(
        path=load_node.get("path", default.load.path, url_path),
        rate_per_second=load_node.get("rate", default.load.rate_per_second, number(1, 1000)),
        concurrency=load_node.get("concurrency", default.load.concurrency, whole(1, 50)),
    )
    load_node.finish()

    spec = default.analysis
    analysis_node = top.sub("analysis")
    interval = analysis_node.get("interval", spec.interval_seconds, duration(2, 3600))
    count = analysis_node.get("count", spec.count, whole(1, 1000))
    failure_limit = analysis_node.get("failure_limit", spec.failure_limit, whole(0, 1000))
    inconclusive_limit = analysis_node.get(
        "inconclusive_limit", spec.inconclusive_limit, whole(0, 1000)
    )
    consecutive_error_limit = analysis_node.get(
        "consecutive_error_limit", spec.consecutive_error_limit, whole(0, 1000)
    )
    min_requests = analysis_node.get("min_requests", spec.min_requests, whole(0, 1_000_000))
    on_inconclusive = analysis_node.get(
        "on_inconclusive", default.on_inconclusive, _one_of(ON_INCONCLUSIVE)
    )
    on_error = analysis_node.get("on_error", default.on_error, _one_of(ON_INCONCLUSIVE))
    judge = analysis_node.get("judge", default.judge, _one_of(JUDGES))
    analysis_node.finish()

    sequential_node = top.sub("sequential")
    base = default.sequential
    sequential = JudgeSpec(
        alpha=sequential_node.get("alpha", base.alpha, _threshold),
        beta=sequential_node.get("beta", base.beta, _threshold),
        harmful_ratio=sequential_node.get("harmful_ratio", base.harmful_ratio, _threshold),
        max_increase=sequential_node.get("max_increase", base.max_increase, _threshold),
        min_canary_requests=sequential_node.get(
            "min_canary_requests", base.min_canary_requests, whole(1, 10_000_000)
        ),
        latency=sequential_node.get("latency", base.latency, flag),
    )
    sequential_node.finish()
    # a value the reader refused is the default here, so nothing is reported twice; each
    # problem reads "alpha=0.7 is not allowed: ...": prefix the key as elsewhere
    problems.extend(f"{sequential_node.where}.{p}" for p in validate_spec(sequential))
    if failure_limit >= count:
        problems.append(
            f"{analysis_node.key('failure_limit')}: {failure_limit} lets every one of the "
            f"{count} measurements fail; use at most count - 1 ({count - 1})"
        )

    top.seen.add("metrics")
    metrics = spec.metrics
    if "metrics" in top.data:
        raw = top.data["metrics"]
        if not isinstance(raw, list) or not raw:
            problems.append(
                f"{top.key('metrics')}: {raw!r} must list at least one metric "
                f"(built-ins: {', '.join(BUILTIN_METRICS)})"
            )
        else:
            metrics = []
            seen_names: set[str] = set()
            for index, item in enumerate(raw):
                metric = _metric(item, f"{top.key('metrics')}[{index}]", problems)
                if metric is None:
                    continue
                if metric.name in seen_names:
                    problems.append(
                        f"{top.key('metrics')}[{index}].name: {metric.name!r} is listed twice"
                    )
                    continue
                seen_names.add(metric.name)
                metrics.append(metric)

    top.seen.add("steps")
    steps = default.steps
    if "steps" in top.data:
        steps = _steps(top.data["steps"], top.key("steps"), problems)
    top.finish()

    if len(problems) > before:
        return None
    return CanaryConfig(
        steps=steps,
        analysis=AnalysisSpec(
            metrics=metrics,
            interval_seconds=interval,
            count=count,
            failure_limit=failure_limit,
            inconclusive_limit=inconclusive_limit,
            consecutive_error_limit=consecutive_error_limit,
            min_requests=min_requests,
        ),
        traffic=traffic,
        load=load,
        on_inconclusive=on_inconclusive,
        judge=judge,
        sequential=sequential,
        on_error=on_error,
    )


__all__ = [
    "DEFAULT_CANARY",
    "ON_INCONCLUSIVE",
    "STEP_KINDS",
    "TRAFFIC_SOURCES",
    "CanaryConfig",
    "CanaryStep",
    "LoadSpec",
    "validate_canary",
]
