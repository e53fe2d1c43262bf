"""Canary analysis as pure functions: metric templates, measurements and the verdict.

Modelled on Argo Rollouts' AnalysisTemplate/AnalysisRun. A metric is a PromQL template
with a success condition; every `interval` the workflow renders it (`render_metric`),
asks Prometheus, turns the answer into a `Measurement` (`classify`) and asks `decide`
whether the analysis is still Running or has ended Successful, Failed, Inconclusive or
Error. No I/O here: the workflow sandbox imports this module and replays it.

The router decides what the queries read. On the local platform (target `local`) it is
Traefik, with one leaf service per track; on Kubernetes (target `kubernetes`) it is
ingress-nginx with the chart's stable Ingress and its `<service>-canary` canary Ingress.
`query_vars(..., router=...)` names the arms in that router's terms and the built-in
metrics have a template per router (`builtin_query`).

One rule matters more than the rest (Flagger #1581): no data never passes. A query
that answers nothing, NaN or +-Inf is Inconclusive, an unreachable Prometheus is an
Error, and only measurements with data count towards `count`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from brewline.identity import InvalidName, validate_name, validate_version

# --------------------------------------------------------------------------------------
# What travels through Temporal
# --------------------------------------------------------------------------------------

SUCCESSFUL = "Successful"
FAILED = "Failed"
INCONCLUSIVE = "Inconclusive"
ERROR = "Error"
RUNNING = "Running"
MEASUREMENT_PHASES = (SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR)

CONDITIONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass
class MetricSpec:
    """One metric: a PromQL template whose value must satisfy `<value> <condition> <threshold>`.

    The template may use the placeholders in PLACEHOLDERS, e.g. `{canary}` for the canary's
    Traefik leaf service and `{interval}` for the rate window; see `render_query`.
    """

    name: str
    query: str
    condition: str  # one of CONDITIONS
    threshold: float
    unit: str = ""


@dataclass
class AnalysisSpec:
    """How to judge a canary (Argo's AnalysisTemplate fields, the same meaning).

    Every `interval_seconds` each metric is measured, until each has `count` measurements
    with data. A metric fails when more than `failure_limit` measurements fail, is
    inconclusive when more than `inconclusive_limit` have no data, and errs when more than
    `consecutive_error_limit` queries in a row could not be made. A measurement taken while
    fewer than `min_requests` requests reached the canary in the window is inconclusive.
    """

    metrics: list[MetricSpec] = field(default_factory=list)
    interval_seconds: int = 5
    count: int = 6
    failure_limit: int = 0
    inconclusive_limit: int = 1
    consecutive_error_limit: int = 3
    min_requests: int = 20


@dataclass
class Measurement:
    """One judged value of one metric; `phase` is one of MEASUREMENT_PHASES."""

    metric: str
    phase: str
    value: float | None = None  # None: no usable number (no data, NaN, Inf, error)
    threshold: float = 0.0
    condition: str = ""
    at: datetime | None = None
    message: str = ""


@dataclass
class MetricSummary:
    """Where one metric stands: its phase and the tallies `decide` judged it by."""

    name: str
    phase: str  # Running, Successful, Failed, Inconclusive or Error
    count: int = 0  # measurements with data (Successful + Failed): what `count` counts
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0  # the longest run of errors so far
    last_value: float | None = None
    message: str = ""


@dataclass
class AnalysisOutcome:
    """The verdict on all measurements so far; `reason` names metric, values and limit."""

    phase: str  # Running, Successful, Failed, Inconclusive or Error
    reason: str
    metrics: list[MetricSummary] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.phase != RUNNING


# --------------------------------------------------------------------------------------
# Query templates
# --------------------------------------------------------------------------------------

PLACEHOLDERS = ("service", "environment", "version", "interval", "stable", "canary", "namespace")
# `{name}` with an identifier inside. PromQL's own braces never look like this: a label
# matcher always has an operator (`{service="..."}`) and `by (le)` uses parentheses.
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
PROMQL_DURATION = re.compile(r"(?:[1-9][0-9]{0,5}(?:ms|[smhdwy]))+")
# A Traefik service name such as `production-api-gateway-canary@file`, or a Kubernetes
# Service name such as `api-gateway-canary` (the same shape without the provider).
LEAF_SERVICE = re.compile(r"[a-z0-9]([a-z0-9-]{0,118}[a-z0-9])?(@[a-z0-9-]{1,40})?")
# A Kubernetes namespace: a DNS label.
NAMESPACE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
TRACKS = ("stable", "canary")

# The routers whose metrics the analysis reads, chosen by the environment's target.
TRAEFIK = "traefik"  # target local: the local platform's Traefik
INGRESS_NGINX = "ingress-nginx"  # target kubernetes: the cluster's ingress-nginx controller
ROUTERS = (TRAEFIK, INGRESS_NGINX)
ROUTER_OF_TARGET = {"local": TRAEFIK, "kubernetes": INGRESS_NGINX}


def template_placeholders(template: str) -> list[str]:
    """The placeholder names a template uses, in order of first use."""
    names: list[str] = []
    for match in PLACEHOLDER.finditer(template):
        if match.group(1) not in names:
            names.append(match.group(1))
    return names


def unknown_placeholders(template: str) -> list[str]:
    """The placeholders of `template` that `render_query` would refuse."""
    return [name for name in template_placeholders(template) if name not in PLACEHOLDERS]


def _checked_value(name: str, value: object) -> str:
    """The value if it is safe to put inside a PromQL string or range; ValueError if not."""
    if not isinstance(value, str):
        raise ValueError(f"query variable {name}={value!r} must be a string")
    try:
        if name in ("service", "environment"):
            return validate_name(name, value)
        if name == "version":
            return validate_version(value)
    except InvalidName as exc:
        raise ValueError(str(exc)) from None
    if name == "interval":
        if not PROMQL_DURATION.fullmatch(value):
            raise ValueError(
                f"query variable interval={value!r} is not a PromQL duration (use e.g. 5s, 1m)"
            )
        return value
    if name in ("stable", "canary"):
        if not LEAF_SERVICE.fullmatch(value):
            raise ValueError(
                f"query variable {name}={value!r} is not a router service name: a Traefik "
                "service such as production-api-gateway-canary@file or a Kubernetes "
                "Service such as api-gateway-canary"
            )
        return value
    if name == "namespace":
        if not NAMESPACE.fullmatch(value):
            raise ValueError(
                f"query variable namespace={value!r} is not a Kubernetes namespace "
                "(a DNS label: lower-case letters, digits and '-', at most 63)"
            )
        return value
    raise ValueError(f"unknown query variable {name!r}; allowed: {', '.join(PLACEHOLDERS)}")


def render_query(template: str, **variables: str) -> str:
    """Fill the `{placeholder}`s of a PromQL template with validated values.

    Only the names in PLACEHOLDERS exist, every value is checked against its rule (names,
    versions, durations, router service names, namespaces: never arbitrary text, so a
    value cannot change the query's meaning), and every placeholder the template uses
    must be given.
    Raises ValueError naming the placeholder or value otherwise.
    """
    unknown = unknown_placeholders(template)
    if unknown:
        raise ValueError(
            f"query uses unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
            f"allowed: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
        )
    values = {name: _checked_value(name, value) for name, value in variables.items()}
    missing = [name for name in template_placeholders(template) if name not in values]
    if missing:
        raise ValueError(
            f"query uses {', '.join('{' + m + '}' for m in missing)} but no value was given"
        )
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def leaf_service(environment: str, service: str, track: str) -> str:
    """Traefik's name (file provider) of the stable or canary leaf of a weighted route."""
    if track not in TRACKS:
        raise ValueError(f"track {track!r} is not one of {', '.join(TRACKS)}")
    return f"{environment}-{service}-{track}@file"


def canary_service_name(service: str) -> str:
    """The Kubernetes Service (and Ingress) of the canary track, as helm/go-coffee names it."""
    return f"{service}-canary"


def router_of(target: str) -> str:
    """The router whose metrics describe a canary on `target` (local or kubernetes)."""
    try:
        return ROUTER_OF_TARGET[target]
    except KeyError:
        raise ValueError(
            f"target {target!r} has no router for canary metrics; known: "
            f"{', '.join(ROUTER_OF_TARGET)}"
        ) from None


def query_vars(
    environment: str,
    service: str,
    version: str,
    interval_seconds: int,
    *,
    router: str = TRAEFIK,
    namespace: str = "",
) -> dict[str, str]:
    """The values of every placeholder for one canary of `service` in `environment`.

    Every router gives every placeholder, so a query renders whatever the target:

    - traefik (local platform): `{stable}` and `{canary}` are the Traefik leaf services
      (`<env>-<service>-<track>@file`, the `service` label of `traefik_service_*`);
      `{namespace}` is the environment, the nearest thing the local platform has.
    - ingress-nginx (Kubernetes): `{stable}` is the stable Service and Ingress (the chart
      names both `<service>`), `{canary}` the canary Service and Ingress
      (`<service>-canary`), `{namespace}` the Kubernetes namespace. ingress-nginx counts a
      canary request under the *stable* Ingress (`ingress="{stable}"`) with the `canary`
      label set to the canary upstream `<namespace>-<canary service>-<port>`; stable
      requests have `canary=""` (see `nginx_arm`).
    """
    names = {
        "service": service,
        "environment": environment,
        "version": version,
        "interval": f"{interval_seconds}s",
    }
    if router == TRAEFIK:
        return names | {
            "stable": leaf_service(environment, service, "stable"),
            "canary": leaf_service(environment, service, "canary"),
            "namespace": environment,
        }
    if router == INGRESS_NGINX:
        if not namespace:
            raise ValueError(
                f"ingress-nginx metrics of {service} in {environment} need the Kubernetes "
                "namespace; set environments.<env>.kubernetes.namespace"
            )
        return names | {
            "stable": service,
            "canary": canary_service_name(service),
            "namespace": namespace,
        }
    raise ValueError(f"router {router!r} is not one of {', '.join(ROUTERS)}")


def render_metric(
    metric: MetricSpec,
    *,
    environment: str,
    service: str,
    version: str,
    interval_seconds: int,
    router: str = TRAEFIK,
    namespace: str = "",
) -> str:
    """The PromQL to send for `metric` during the canary of `service` in `environment`.

    A built-in metric reads the router's own series (`builtin_query`); a custom one is
    its query as written, with the router's names in its placeholders.
    """
    query = metric.query
    if router != TRAEFIK and metric.name in BUILTIN_METRICS:
        # pipeline.yaml cannot change a built-in's query, only its threshold, so the name
        # says which template it is (the carried text is Traefik's)
        query = builtin_query(metric.name, router)
    variables = query_vars(
        environment, service, version, interval_seconds, router=router, namespace=namespace
    )
    return render_query(query, **variables)


# --------------------------------------------------------------------------------------
# Built-in metrics: Traefik's per-leaf-service series (BUILTIN_METRICS, the local
# platform) and ingress-nginx's per-Ingress series (NGINX_QUERIES, Kubernetes)
# --------------------------------------------------------------------------------------


def _requests(leaf: str, selector: str = "") -> str:
    return (
        f'sum(rate(traefik_service_requests_total{{service="{{{leaf}}}"{selector}}}[{{interval}}]))'
    )


def _success_ratio(leaf: str) -> str:
    # With no 5xx the 5xx-free series is all there is; with ONLY 5xx it is absent, and
    # `or 0 * total` turns that into 0 instead of "no data" (a canary answering nothing
    # but 500s must fail, not be inconclusive). No traffic at all: every side is empty or
    # 0/0 = NaN, which is no data.
    ok = _requests(leaf, ',code!~"5.."')
    total = _requests(leaf)
    return f"(({ok} or 0 * {total}) / {total})"


def _p99(leaf: str) -> str:
    return (
        "histogram_quantile(0.99, sum by (le) (rate("
        f'traefik_service_request_duration_seconds_bucket{{service="{{{leaf}}}"}}'
        "[{interval}])))"
    )


# Requests that reached the canary in the window: the `min_requests` gate of classify.
REQUEST_COUNT_QUERY = (
    'sum(increase(traefik_service_requests_total{service="{canary}"}[{interval}]))'
)

BUILTIN_METRICS: dict[str, MetricSpec] = {
    metric.name: metric
    for metric in (
        MetricSpec(
            name="request-success-rate",
            query=_success_ratio("canary"),
            condition=">=",
            threshold=0.99,
            unit="ratio of non-5xx answers",
        ),
        MetricSpec(
            name="request-duration-p99",
            query=_p99("canary"),
            condition="<=",
            threshold=0.5,
            unit="seconds",
        ),
        MetricSpec(
            name="success-rate-vs-stable",
            query=f"{_success_ratio('canary')} - {_success_ratio('stable')}",
            condition=">=",
            threshold=-0.01,
            unit="canary success ratio minus stable's",
        ),
        MetricSpec(
            name="p99-vs-stable",
            query=f"{_p99('canary')} / {_p99('stable')}",
            condition="<=",
            threshold=1.5,
            unit="canary p99 latency over stable's",
        ),
    )
}

# ingress-nginx (controller/pkg/metric/collectors/socket.go) labels
# `nginx_ingress_controller_requests` and `..._request_duration_seconds_bucket` with
# status, method, path, namespace, ingress, service and canary (plus host and the
# controller_* labels). A canary Ingress gets no location of its own: its backend is an
# alternative upstream of the stable Ingress's location, so canary requests are counted
# under the STABLE Ingress name (ingress-nginx#4026), and `canary` is
# $proxy_alternative_upstream_name (rootfs/etc/nginx/lua/monitor.lua, added by
# ingress-nginx#7696): "" for stable, the canary upstream `<namespace>-<service>-<port>`
# for the canary. The `service` label stays the stable Service even for canary requests,
# so it must not be used to tell the arms apart. Controllers without the `canary` label
# (before #7696) leave the canary arm with no data: Inconclusive, never a pass.
NGINX_REQUESTS = "nginx_ingress_controller_requests"
NGINX_BUCKETS = "nginx_ingress_controller_request_duration_seconds_bucket"


def nginx_arm(track: str) -> str:
    """The label matchers (a template) of one arm's series in ingress-nginx's metrics."""
    if track == "stable":
        return 'namespace="{namespace}",ingress="{stable}",canary=""'
    if track == "canary":
        # the upstream's port is not known here; the prefix is unique within the Ingress
        return 'namespace="{namespace}",ingress="{stable}",canary=~"{namespace}-{canary}-.+"'
    raise ValueError(f"track {track!r} is not one of {', '.join(TRACKS)}")


def _nginx_requests(track: str, selector: str = "") -> str:
    return f"sum(rate({NGINX_REQUESTS}{{{nginx_arm(track)}{selector}}}[{{interval}}]))"


def _nginx_success_ratio(track: str) -> str:
    # the same `or 0 * total` as Traefik's: only 5xx must read 0, not "no data"
    ok = _nginx_requests(track, ',status!~"5.."')
    total = _nginx_requests(track)
    return f"(({ok} or 0 * {total}) / {total})"


def _nginx_p99(track: str) -> str:
    return (
        "histogram_quantile(0.99, sum by (le) (rate("
        f"{NGINX_BUCKETS}{{{nginx_arm(track)}}}[{{interval}}])))"
    )


NGINX_QUERIES: dict[str, str] = {
    "request-success-rate": _nginx_success_ratio("canary"),
    "request-duration-p99": _nginx_p99("canary"),
    "success-rate-vs-stable": (
        f"{_nginx_success_ratio('canary')} - {_nginx_success_ratio('stable')}"
    ),
    "p99-vs-stable": f"{_nginx_p99('canary')} / {_nginx_p99('stable')}",
}

NGINX_REQUEST_COUNT_QUERY = (
    f"sum(increase({NGINX_REQUESTS}{{{nginx_arm('canary')}}}[{{interval}}]))"
)


def builtin_query(name: str, router: str = TRAEFIK) -> str:
    """The template of built-in metric `name` for `router`."""
    if name not in BUILTIN_METRICS:
        raise ValueError(
            f"{name!r} is not a built-in metric; built-ins: {', '.join(BUILTIN_METRICS)}"
        )
    if router == TRAEFIK:
        return BUILTIN_METRICS[name].query
    if router == INGRESS_NGINX:
        return NGINX_QUERIES[name]
    raise ValueError(f"router {router!r} is not one of {', '.join(ROUTERS)}")


def request_count_query(router: str = TRAEFIK) -> str:
    """The template counting requests that reached the canary in the window (min_requests)."""
    if router == TRAEFIK:
        return REQUEST_COUNT_QUERY
    if router == INGRESS_NGINX:
        return NGINX_REQUEST_COUNT_QUERY
    raise ValueError(f"router {router!r} is not one of {', '.join(ROUTERS)}")


# --------------------------------------------------------------------------------------
# Judging
# --------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:.4g}"


def classify(
    spec: MetricSpec,
    value: float | None,
    error: str = "",
    at: datetime | None = None,
    *,
    requests: float | None = None,
    min_requests: int = 0,
) -> Measurement:
    """Judge one answer of Prometheus for `spec`.

    `error` (the query could not be made) -> Error; with `min_requests` > 0, fewer than
    that many `requests` to the canary in the window (None counts as 0) -> Inconclusive;
    None, NaN or +-Inf -> Inconclusive (no data); else Successful when
    `value <condition> threshold` holds, Failed when it does not.
    """
    check = CONDITIONS.get(spec.condition)
    if check is None:
        raise ValueError(
            f"metric {spec.name!r}: condition {spec.condition!r} is not one of "
            f"{', '.join(CONDITIONS)}"
        )

    def measurement(phase: str, number: float | None, message: str) -> Measurement:
        return Measurement(
            metric=spec.name,
            phase=phase,
            value=number,
            threshold=spec.threshold,
            condition=spec.condition,
            at=at,
            message=message,
        )

    if error:
        return measurement(ERROR, None, error)
    usable = value if value is not None and math.isfinite(value) else None
    if min_requests > 0:
        seen = requests if requests is not None and math.isfinite(requests) else 0.0
        if seen < min_requests:
            return measurement(
                INCONCLUSIVE,
                usable,
                f"only {seen:.0f} requests reached the canary in the window; "
                f"at least {min_requests} needed (min_requests): send more traffic "
                "or lengthen the interval",
            )
    if usable is None:
        what = "no series" if value is None else f"{value}"
        return measurement(INCONCLUSIVE, None, f"no data (query answered {what})")
    if check(usable, spec.threshold):
        return measurement(
            SUCCESSFUL, usable, f"{_fmt(usable)} {spec.condition} {_fmt(spec.threshold)}"
        )
    return measurement(
        FAILED, usable, f"{_fmt(usable)} is not {spec.condition} {_fmt(spec.threshold)}"
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _listing(items: list[str], keep: int = 5) -> str:
    shown = items[-keep:]
    prefix = "..., " if len(items) > keep else ""
    return prefix + ", ".join(shown)


def _assess(
    metric: MetricSpec, spec: AnalysisSpec, measurements: list[Measurement]
) -> MetricSummary:
    """Argo's assessMetricStatus for one metric, except that only measurements with data
    count towards `count`, so no data can never add up to Successful."""
    summary = MetricSummary(name=metric.name, phase=RUNNING)
    run = 0
    failed_values: list[str] = []
    inconclusive_notes: list[str] = []
    last_error = ""
    for m in measurements:
        if m.phase == ERROR:
            summary.errors += 1
            run += 1
            summary.consecutive_errors = max(summary.consecutive_errors, run)
            last_error = m.message
            continue
        run = 0  # any answer ends an error run (Argo resets on every non-error phase)
        if m.phase == SUCCESSFUL:
            summary.successful += 1
        elif m.phase == FAILED:
            summary.failed += 1
            failed_values.append(_fmt(m.value))
        elif m.phase == INCONCLUSIVE:
            summary.inconclusive += 1
            inconclusive_notes.append(m.message or "no data")
        else:
            raise ValueError(
                f"measurement of {m.metric!r} has phase {m.phase!r}; "
                f"allowed: {', '.join(MEASUREMENT_PHASES)}"
            )
        if m.value is not None:
            summary.last_value = m.value
    summary.count = summary.successful + summary.failed
    condition = f"condition {metric.condition} {_fmt(metric.threshold)}"

    if summary.failed > spec.failure_limit:
        summary.phase = FAILED
        summary.message = (
            f"{metric.name}: {_plural(summary.failed, 'failed measurement')} "
            f"({_listing(failed_values)}; {condition}) exceeds failure_limit {spec.failure_limit}"
        )
    elif summary.inconclusive > spec.inconclusive_limit:
        summary.phase = INCONCLUSIVE
        summary.message = (
            f"{metric.name}: {_plural(summary.inconclusive, 'inconclusive measurement')} "
            f"({_listing(inconclusive_notes, keep=2)}) exceeds inconclusive_limit "
            f"{spec.inconclusive_limit}"
        )
    elif summary.consecutive_errors > spec.consecutive_error_limit:
        summary.phase = ERROR
        summary.message = (
            f"{metric.name}: {summary.consecutive_errors} consecutive errors "
            f"(last: {last_error}) exceeds consecutive_error_limit "
            f"{spec.consecutive_error_limit}"
        )
    elif summary.count >= spec.count:
        summary.phase = SUCCESSFUL
        tolerated = f", {summary.failed} failed within failure_limit" if summary.failed else ""
        summary.message = (
            f"{metric.name}: {summary.count} measurements with data, last "
            f"{_fmt(summary.last_value)} ({condition}{tolerated})"
        )
    else:
        extra = [
            _plural(n, word)
            for n, word in (
                (summary.failed, "failed"),
                (summary.inconclusive, "inconclusive"),
                (summary.errors, "error"),
            )
            if n
        ]
        summary.message = (
            f"{metric.name}: {summary.count} of {spec.count} measurements with data"
            + (f" ({', '.join(extra)})" if extra else "")
        )
    return summary


# Across metrics the worst phase wins, in Argo's order.
_WORST_FIRST = (FAILED, ERROR, INCONCLUSIVE)


def decide(spec: AnalysisSpec, measurements: list[Measurement]) -> AnalysisOutcome:
    """The analysis verdict from all measurements so far (oldest first).

    Per metric, as Argo: Failed when failed > failure_limit, else Inconclusive when
    inconclusive > inconclusive_limit, else Error when a run of errors is longer than
    consecutive_error_limit, else Successful once `count` measurements have data, else
    Running. The analysis is the worst metric (Failed, then Error, then Inconclusive) the
    moment one ends badly, Successful when every metric is, otherwise Running.
    """
    if not spec.metrics:
        return AnalysisOutcome(
            phase=ERROR,
            reason="the analysis has no metrics, so nothing could show the canary is "
            "healthy; list at least one under canary.metrics",
        )
    names = [metric.name for metric in spec.metrics]
    strangers = sorted({m.metric for m in measurements} - set(names))
    if strangers:
        raise ValueError(
            f"measurements of {', '.join(strangers)} are not metrics of this analysis "
            f"({', '.join(names)})"
        )
    summaries = [
        _assess(metric, spec, [m for m in measurements if m.metric == metric.name])
        for metric in spec.metrics
    ]
    for phase in _WORST_FIRST:
        bad = [s for s in summaries if s.phase == phase]
        if bad:
            return AnalysisOutcome(phase, "; ".join(s.message for s in bad), summaries)
    if all(s.phase == SUCCESSFUL for s in summaries):
        return AnalysisOutcome(SUCCESSFUL, "; ".join(s.message for s in summaries), summaries)
    return AnalysisOutcome(RUNNING, "; ".join(s.message for s in summaries), summaries)
