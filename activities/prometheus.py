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

import requests
import urllib3
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from temporalio import activity
from urllib3.util.retry import Retry

from brewline.model import MetricQueryInput, MetricQueryResult
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
    one a query names."""

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
            result = await asyncio.to_thread(self._custom_query, url, input.query)
        except requests.JSONDecodeError as err:
            return _failed(f"{url} did not answer like Prometheus's query API ({err})")
        except requests.ConnectionError as err:
            if _timed_out(err):
                return _failed(f"Prometheus at {url} did not answer within {self.timeout:g}s")
            return _failed(f"Prometheus at {url} is unreachable ({_reason(err)}); is it running?")
        except requests.Timeout:
            return _failed(f"Prometheus at {url} did not answer within {self.timeout:g}s")
        except requests.RequestException as err:
            return _failed(f"query to Prometheus at {url} failed: {err}")
        except PrometheusApiClientException as err:
            return _failed(_http_error(url, input.query, str(err)))
        except (ValueError, KeyError, TypeError) as err:
            # 200 with something else than Prometheus's JSON: a wrong URL
            return _failed(f"{url} did not answer like Prometheus's query API ({err!r})")
        return _interpret(url, input.query, result)

    def _custom_query(self, url: str, query: str) -> Any:
        session = requests.Session()
        # loopback Prometheus: never through a proxy the environment may name
        session.trust_env = False
        session.verify = False
        # One quick retry of a refused connection (a restart in progress), none of reads
        # or statuses: a slow or failing Prometheus is an error measurement, not a wait.
        retry = Retry(total=1, connect=1, read=0, status=0, other=0, backoff_factor=0.2)
        with PrometheusConnect(
            url=url, disable_ssl=True, session=session, retry=retry, timeout=self.timeout
        ) as prometheus:
            return prometheus.custom_query(query)


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
    for marker in ("Connection refused", "Name or service not known", "timed out"):
        if marker in text:
            return marker
    return text
