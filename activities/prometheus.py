"""The metric-query activity: one instant PromQL query against Prometheus.

A canary analysis asks Prometheus one number at a time (an error ratio, a latency
quantile) and judges it. Only a single number is an answer; anything else must not
pass for one:

- a scalar, or a vector with exactly one sample: its value and timestamp;
- an empty vector: value None, samples 0 (no data: nothing has been scraped yet, or
  no request matched);
- NaN or +-Inf (0/0 when no request came in): value None, samples >= 1, no error;
- more than one series: value None and an error saying to aggregate the query;
- Prometheus unreachable, an HTTP error, a rejected query, a range vector or an
  answer that is not Prometheus's: value None, samples 0 and an error naming the URL.

The activity does not raise for those failures: a monitoring outage becomes an Error
measurement the workflow counts against the canary, never a success, and retrying
the activity would only hide it for longer.
"""

from __future__ import annotations

import ast
import asyncio
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from temporalio import activity
from urllib3.util.retry import Retry

from brewline.analysis import INGRESS_NGINX, NGINX_BUCKETS, NGINX_REQUESTS, ROUTERS, TRAEFIK
from brewline.model import (
    CountWindowInput,
    CountWindowResult,
    MetricQueryInput,
    MetricQueryResult,
)
from brewline.platform import PlatformSettings

DEFAULT_TIMEOUT = 10.0  # seconds for one query, connection included

# The client raises "HTTP Status Code 400 (b'{...}')" for any status but 200.
_HTTP_ERROR = re.compile(r"HTTP Status Code (\d+) \((b'.*'|b\".*\")\)", re.DOTALL)


@dataclass
class _Sample:
    value: float
    at: datetime


class PrometheusActivities:
    """Activities reading Prometheus: the worker's own at `settings.prometheus_url`, or the
    one an input names (a Kubernetes environment's `prometheus_url`, which scrapes its
    ingress-nginx)."""

    def __init__(self, settings: PlatformSettings, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.default_url = settings.prometheus_url
        self.timeout = timeout

    @activity.defn(name="query_metric")
    async def query_metric(self, input: MetricQueryInput) -> MetricQueryResult:
        """Run one instant query; failures come back in `error`, never as an exception."""
        url = (input.prometheus_url or self.default_url).rstrip("/")
        if not input.query.strip():
            return MetricQueryResult(value=None, samples=0, error="the PromQL query is empty")
        try:
            result = await self._ask(url, input.query)
        except _Unanswered as err:
            return _failed(str(err))
        return _interpret(url, input.query, result)

    @activity.defn(name="count_window")
    async def count_window(self, input: CountWindowInput) -> CountWindowResult:
        """Requests, 5xx answers and slow requests of canary and stable in the last
        `interval_seconds`, from the router's counters (`input.router`: Traefik's per leaf
        service, or ingress-nginx's per Ingress and `canary` upstream). "Slow" means
        slower than the histogram bucket edge where stable's `quantile` falls (over the
        lookback), so both arms are counted at the same edge. Failures come back in
        `error`, never raised."""
        url = (input.prometheus_url or self.default_url).rstrip("/")
        try:
            router = _router_series(input)
        except ValueError as err:
            return CountWindowResult(error=str(err))
        window = f"{input.interval_seconds}s"

        async def exact_increase(selector: str, metric: str) -> float:
            """The exact counter difference over the window: the sum now minus the sum
            `window` ago (increase() would extrapolate to the window's edges)."""
            now, before = await asyncio.gather(
                self._ask(url, f"sum({metric}{{{selector}}})"),
                self._ask(url, f"sum({metric}{{{selector}}} offset {window})"),
            )
            value, earlier = _single(now), _single(before)
            # a counter that was not there before started in the window; one that went
            # down was reset (the router restarted, or dropped and re-created the service)
            return value - earlier if value >= earlier else value

        async def by_arm(extra: str = "", metric: str = router.requests) -> tuple[float, float]:
            """(canary, stable) increases of `metric` with the arm's matchers and `extra`."""
            canary, stable = await asyncio.gather(
                exact_increase(router.canary + extra, metric),
                exact_increase(router.stable + extra, metric),
            )
            return canary, stable

        try:
            requests = await by_arm()
            errors = await by_arm(f',{router.status}=~"5.."')
            lookback = f"{max(input.edge_lookback_seconds, input.interval_seconds)}s"
            distribution = _by(
                await self._ask(
                    url, f"sum by (le) (increase({router.buckets}{{{router.stable}}}[{lookback}]))"
                ),
                "le",
            )
            edge = _edge(distribution, input.quantile)
            slow = (0.0, 0.0)
            if edge:
                total = await by_arm(',le="+Inf"', router.buckets)
                fast = await by_arm(f',le="{edge}"', router.buckets)
                slow = (max(total[0] - fast[0], 0.0), max(total[1] - fast[1], 0.0))
        except _Unanswered as err:
            return CountWindowResult(error=str(err))

        return CountWindowResult(
            canary_requests=requests[0],
            canary_errors=errors[0],
            stable_requests=requests[1],
            stable_errors=errors[1],
            canary_slow=slow[0],
            stable_slow=slow[1],
            latency_bound_seconds=float(edge) if edge else 0.0,
        )

    async def _ask(self, url: str, query: str) -> Any:
        """The `data.result` of one instant query; _Unanswered names what went wrong."""
        try:
            return await asyncio.to_thread(self._custom_query, url, query)
        except requests.JSONDecodeError as err:
            raise _Unanswered(f"{url} did not answer like Prometheus's query API ({err})") from None
        except requests.ConnectionError as err:
            if _timed_out(err):
                raise _Unanswered(
                    f"Prometheus at {url} did not answer within {self.timeout:g}s"
                ) from None
            raise _Unanswered(
                f"Prometheus at {url} is unreachable ({_reason(err)}); is it running?"
            ) from None
        except requests.Timeout:
            raise _Unanswered(
                f"Prometheus at {url} did not answer within {self.timeout:g}s"
            ) from None
        except requests.RequestException as err:
            raise _Unanswered(f"query to Prometheus at {url} failed: {err}") from None
        except PrometheusApiClientException as err:
            raise _Unanswered(_http_error(url, query, str(err))) from None
        except (ValueError, KeyError, TypeError) as err:
            # 200 with something else than Prometheus's JSON: a wrong URL
            raise _Unanswered(
                f"{url} did not answer like Prometheus's query API ({err!r})"
            ) from None

    def _custom_query(self, url: str, query: str) -> Any:
        session = requests.Session()
        loopback = urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
        # the worker's own Prometheus is on loopback: never through a proxy the environment
        # may name; a cluster's Prometheus (kubernetes.prometheus_url) may need that proxy,
        # and an https one has its certificate checked
        session.trust_env = not loopback
        session.verify = not loopback
        # One quick retry of a refused connection (a restart in progress), none of reads
        # or statuses: a slow or failing Prometheus is an error measurement, not a wait.
        retry = Retry(total=1, connect=1, read=0, status=0, other=0, backoff_factor=0.2)
        with PrometheusConnect(
            url=url, disable_ssl=loopback, session=session, retry=retry, timeout=self.timeout
        ) as prometheus:
            return prometheus.custom_query(query)


class _Unanswered(Exception):
    """Prometheus could not be asked, or answered with something else than a result."""


# a Traefik file-provider service name, as the local target writes them
_ROUTER_SERVICE = re.compile(r"[a-z0-9][a-z0-9-]*@file")
# a Kubernetes Service, Ingress or namespace name (DNS label)
_KUBERNETES_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@dataclass
class _RouterSeries:
    """One router's series for count_window: metric names, the status label and the
    label matchers of each arm (validated names only: nothing a regex reads specially)."""

    requests: str
    buckets: str
    status: str
    canary: str
    stable: str


def _router_series(input: CountWindowInput) -> _RouterSeries:
    """The series of `input.router`; ValueError naming the bad value otherwise."""
    if input.router == TRAEFIK:
        for name in (input.canary_service, input.stable_service):
            if not _ROUTER_SERVICE.fullmatch(name):
                raise ValueError(f"router service {name!r} is not a service name")
        return _RouterSeries(
            requests="traefik_service_requests_total",
            buckets="traefik_service_request_duration_seconds_bucket",
            status="code",
            canary=f'service="{input.canary_service}"',
            stable=f'service="{input.stable_service}"',
        )
    if input.router == INGRESS_NGINX:
        for what, name in (
            ("canary service", input.canary_service),
            ("stable service", input.stable_service),
            ("namespace", input.namespace),
        ):
            if not _KUBERNETES_NAME.fullmatch(name):
                raise ValueError(
                    f"ingress-nginx {what} {name!r} is not a Kubernetes name (lower-case "
                    "letters, digits and '-', at most 63)"
                )
        # brewline.analysis.nginx_arm: canary requests are counted under the stable
        # Ingress, told apart by the `canary` label (the canary upstream's name)
        ingress = f'namespace="{input.namespace}",ingress="{input.stable_service}"'
        return _RouterSeries(
            requests=NGINX_REQUESTS,
            buckets=NGINX_BUCKETS,
            status="status",
            canary=f'{ingress},canary=~"{input.namespace}-{input.canary_service}-.+"',
            stable=f'{ingress},canary=""',
        )
    raise ValueError(f"router {input.router!r} is not one of {', '.join(ROUTERS)}")


def _single(result: Any) -> float:
    """The value of an aggregated instant vector: 0 when empty (nothing counted), NaN -> 0."""
    values = _by(result)
    if len(values) > 1:
        raise _Unanswered(f"expected one series, got {len(values)}")
    return next(iter(values.values()), 0.0)


def _by(result: Any, *labels: str) -> dict[Any, float]:
    """A vector result keyed by one label's value (or a tuple of several); NaN -> 0."""
    out: dict[Any, float] = {}
    if not isinstance(result, list):
        raise _Unanswered(f"expected a vector, got {result!r}")
    for series in result:
        metric, (_, text) = series.get("metric", {}), series["value"]
        key = tuple(metric.get(label, "") for label in labels)
        value = float(text)
        out[key[0] if len(labels) == 1 else key] = value if math.isfinite(value) else 0.0
    return out


def _edge(distribution: dict[str, float], quantile: float) -> str:
    """The `le` of the first bucket holding `quantile` of the samples ("" without any).

    Buckets are cumulative; +Inf is the total. When the quantile falls in +Inf only, the
    largest finite edge is used: everything slower than it is "slow"."""
    total = distribution.get("+Inf", 0.0)
    finite = sorted((float(le), le) for le in distribution if le != "+Inf")
    if total <= 0 or not finite:
        return ""
    for _, le in finite:
        if distribution[le] >= quantile * total:
            return le
    return finite[-1][1]


def _failed(error: str) -> MetricQueryResult:
    return MetricQueryResult(value=None, samples=0, error=error)


def _interpret(url: str, query: str, result: Any) -> MetricQueryResult:
    """Turn the `data.result` of an instant query into one value (see the module doc)."""
    if not isinstance(result, list):
        return _failed(f"{url} answered {query!r} with {result!r}, not a query result")
    # A scalar (or string) result is [<unix time>, "<value>"]; a vector is a list of
    # {"metric": ..., "value": [...]}, a matrix one of {"metric": ..., "values": [...]}.
    if len(result) == 2 and not isinstance(result[0], dict):
        try:
            sample = _sample(result)
        except ValueError:
            return _failed(f"query {query!r} returned the string {result[1]!r}, not a number")
        return _result(sample, samples=1)
    if not result:
        return MetricQueryResult(value=None, samples=0)
    if "value" not in result[0]:
        return _failed(
            f"query {query!r} returned a range vector; ask for one value, e.g. wrap it in "
            "rate(...) or last_over_time(...)"
        )
    if len(result) > 1:
        return MetricQueryResult(
            value=None,
            samples=len(result),
            error=f"query returned {len(result)} series; aggregate it (e.g. sum by ())",
        )
    return _result(_sample(result[0]["value"]), samples=1)


def _sample(pair: list[Any]) -> _Sample:
    timestamp, text = pair
    # Prometheus writes values as strings, NaN and infinities as "NaN", "+Inf", "-Inf"
    return _Sample(value=float(text), at=datetime.fromtimestamp(float(timestamp), UTC))


def _result(sample: _Sample, samples: int) -> MetricQueryResult:
    if not math.isfinite(sample.value):
        # NaN is 0/0: no requests in the window. That is no data, not a measurement.
        return MetricQueryResult(value=None, samples=samples, at=sample.at)
    return MetricQueryResult(value=sample.value, samples=samples, at=sample.at)


def _http_error(url: str, query: str, message: str) -> str:
    """A readable error from the client's exception text, with Prometheus's own reason."""
    match = _HTTP_ERROR.fullmatch(message)
    if not match:
        return f"Prometheus at {url} failed the query {query!r}: {message}"
    status = int(match.group(1))
    reason = ""
    try:
        body = ast.literal_eval(match.group(2))
        reason = str(json.loads(body).get("error", ""))
    except (ValueError, SyntaxError, AttributeError):
        pass
    if not reason:
        return f"{url}/api/v1/query answered HTTP {status} to {query!r}; is {url} Prometheus?"
    if status in (400, 422):
        return f"Prometheus at {url} rejected the query {query!r} (HTTP {status}): {reason}"
    return f"Prometheus at {url} failed the query {query!r} (HTTP {status}): {reason}"


def _timed_out(err: requests.ConnectionError) -> bool:
    """A connect or read timeout: requests reports a read timeout under a retry policy as
    a ConnectionError wrapping urllib3's MaxRetryError(ReadTimeoutError)."""
    if isinstance(err, requests.Timeout):
        return True
    cause = err.args[0] if err.args else None
    reason = getattr(cause, "reason", cause)
    # urllib3 makes a refused connection (NewConnectionError) a subclass of its timeout
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def _reason(err: requests.ConnectionError) -> str:
    """The innermost cause of a connection error: 'Connection refused', not a pool dump."""
    text = str(err)
    for marker in (
        "Connection refused",
        "Connection reset by peer",  # a Prometheus killed while it held the connection
        "Name or service not known",
        "timed out",
    ):
        if marker in text:
            return marker
    return text
