"""count_window and the ingress-nginx templates against a real Prometheus.

No ingress-nginx can run here (no Kubernetes), so a stdlib HTTP server in this process
serves a text exposition shaped as ingress-nginx's /metrics (its label set, and canary
requests under the stable Ingress with `canary` naming the canary upstream). The local
platform's Prometheus (free loopback ports, a temporary home, stopped by PID) scrapes it
every second through a file_sd target, as it scrapes a deployed container. The test
switches the exposition from one state to the next and checks the counted differences.
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from temporalio.testing import ActivityEnvironment

from activities.prometheus import PrometheusActivities
from activities.scrape_targets import ScrapeTargets
from brewline.analysis import (
    BUILTIN_METRICS,
    INGRESS_NGINX,
    NGINX_BUCKETS,
    NGINX_REQUESTS,
    render_metric,
)
from brewline.model import CountWindowInput, CountWindowResult, MetricQueryInput
from brewline.platform import PlatformSettings
from local.platform import LocalPlatform

DEADLINE = 30.0  # a new file_sd target is scraped within ~5 s
NAMESPACE = "go-coffee"
CANARY_UPSTREAM = f"{NAMESPACE}-api-gateway-canary-8080"  # <namespace>-<service>-<port>

# (ingress, canary label, status) -> count; the two states the exposition goes through
Requests = dict[tuple[str, str, str], int]
# (ingress, canary label, le) -> cumulative count
Buckets = dict[tuple[str, str, str], int]

BEFORE_REQUESTS: Requests = {
    ("api-gateway", CANARY_UPSTREAM, "200"): 100,
    ("api-gateway", CANARY_UPSTREAM, "503"): 5,
    ("api-gateway", "", "200"): 1000,
    ("api-gateway", "", "404"): 10,  # a client error: not an error of the service
    ("api-gateway", "", "500"): 1,
    # another Ingress with a canary of the same name prefix in another sense: not counted
    ("auth-service", f"{NAMESPACE}-auth-service-canary-8080", "500"): 50,
}
AFTER_REQUESTS: Requests = {
    ("api-gateway", CANARY_UPSTREAM, "200"): 138,  # +38
    ("api-gateway", CANARY_UPSTREAM, "503"): 7,  # +2
    ("api-gateway", "", "200"): 1300,  # +300
    ("api-gateway", "", "404"): 30,  # +20
    ("api-gateway", "", "500"): 2,  # +1
    ("auth-service", f"{NAMESPACE}-auth-service-canary-8080", "500"): 1049,
}
BEFORE_BUCKETS: Buckets = {
    ("api-gateway", CANARY_UPSTREAM, "0.1"): 90,
    ("api-gateway", CANARY_UPSTREAM, "0.5"): 100,
    ("api-gateway", CANARY_UPSTREAM, "+Inf"): 105,
    ("api-gateway", "", "0.1"): 1000,
    ("api-gateway", "", "0.5"): 1010,
    ("api-gateway", "", "+Inf"): 1011,
}
AFTER_BUCKETS: Buckets = {
    ("api-gateway", CANARY_UPSTREAM, "0.1"): 120,  # +30: 10 of the 40 slower than 0.1 s
    ("api-gateway", CANARY_UPSTREAM, "0.5"): 138,
    ("api-gateway", CANARY_UPSTREAM, "+Inf"): 145,  # +40
    ("api-gateway", "", "0.1"): 1318,  # +318 of 321: 99% of stable within 0.1 s
    ("api-gateway", "", "0.5"): 1331,
    ("api-gateway", "", "+Inf"): 1332,  # +321
}


def exposition(requests: Requests, buckets: Buckets) -> str:
    """ingress-nginx's /metrics for these counts (controller_* labels, host, path, method
    and the `service` label, which is the stable Service even for canary requests)."""
    common = (
        'controller_class="k8s.io/ingress-nginx",controller_namespace="ingress-nginx",'
        'controller_pod="ingress-nginx-controller-7d9f",host="go-coffee.example.com",'
        f'method="GET",namespace="{NAMESPACE}",path="/"'
    )
    lines = [f"# TYPE {NGINX_REQUESTS} counter"]
    for (ingress, canary, status), count in requests.items():
        lines.append(
            f'{NGINX_REQUESTS}{{{common},canary="{canary}",ingress="{ingress}",'
            f'service="{ingress}",status="{status}"}} {count}'
        )
    histogram = NGINX_BUCKETS.removesuffix("_bucket")
    lines.append(f"# TYPE {histogram} histogram")
    for (ingress, canary, le), count in buckets.items():
        lines.append(
            f'{NGINX_BUCKETS}{{{common},canary="{canary}",ingress="{ingress}",'
            f'service="{ingress}",status="200",le="{le}"}} {count}'
        )
        if le == "+Inf":
            labels = f'{common},canary="{canary}",ingress="{ingress}",service="{ingress}"'
            lines.append(f'{histogram}_count{{{labels},status="200"}} {count}')
            lines.append(f'{histogram}_sum{{{labels},status="200"}} {count * 0.05}')
    return "\n".join(lines) + "\n"


class _Exposition(BaseHTTPRequestHandler):
    server: _NginxMetrics

    def do_GET(self) -> None:
        body = self.server.text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _NginxMetrics(ThreadingHTTPServer):
    """Serves `text` at any path on 127.0.0.1, a free port."""

    def __init__(self, text: str) -> None:
        super().__init__(("127.0.0.1", 0), _Exposition)
        self.text = text


@dataclass
class Scraped:
    settings: PlatformSettings
    metrics: _NginxMetrics


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    home = tmp_path_factory.mktemp("nginx-prometheus-home")
    settings = PlatformSettings(home=str(home))
    platform = LocalPlatform(settings)
    metrics = _NginxMetrics(exposition(BEFORE_REQUESTS, BEFORE_BUCKETS))
    thread = threading.Thread(target=metrics.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        platform.up(["prometheus"], free_ports=True)
        address = f"127.0.0.1:{metrics.server_address[1]}"
        ScrapeTargets(settings).write(
            "production", "ingress-nginx", "stable", address, {"version": "1"}
        )
        yield Scraped(settings, metrics)
    finally:
        platform.down()
        metrics.shutdown()
        thread.join(timeout=10)
        metrics.server_close()


async def run_query(settings: PlatformSettings, promql: str, url: str = "") -> float | None:
    result = await ActivityEnvironment().run(
        PrometheusActivities(settings).query_metric, MetricQueryInput(promql, url)
    )
    assert result.error == "", result.error
    return result.value


async def until_value(settings: PlatformSettings, promql: str, expected: float) -> float:
    """Poll until `promql` reads `expected`; the wall-clock time it first did."""
    deadline = time.monotonic() + DEADLINE
    while (value := await run_query(settings, promql)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{promql} reads {value}, not {expected}, after {DEADLINE:g}s")
        await asyncio.sleep(0.1)
    return time.time()


async def count(settings: PlatformSettings, inp: CountWindowInput) -> CountWindowResult:
    return await ActivityEnvironment().run(PrometheusActivities(settings).count_window, inp)


def window_input(interval: int, url: str = "", **changes: str) -> CountWindowInput:
    fields = {"canary_service": "api-gateway-canary", "stable_service": "api-gateway", **changes}
    return CountWindowInput(
        fields["canary_service"],
        fields["stable_service"],
        interval,
        prometheus_url=url,
        router=INGRESS_NGINX,
        namespace=fields.get("namespace", NAMESPACE),
    )


def dead_settings(tmp_path_factory: pytest.TempPathFactory) -> PlatformSettings:
    """Settings whose own Prometheus port answers nothing."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    return PlatformSettings(home=str(tmp_path_factory.mktemp("nowhere")), prometheus_port=port)


async def test_count_window_reads_both_arms_of_ingress_nginx_from_the_inputs_prometheus(
    scraped: Scraped, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings, url = scraped.settings, scraped.settings.prometheus_url
    stable_sum = f'sum({NGINX_REQUESTS}{{ingress="api-gateway",canary=""}})'
    seen_before = await until_value(settings, stable_sum, 1011)
    # the window must start after the first state was scraped and before the second one
    # was served: let the clock pass 2 s (a time span, not a readiness wait)
    while time.time() < seen_before + 2:
        await asyncio.sleep(0.1)
    switched = time.time()
    scraped.metrics.text = exposition(AFTER_REQUESTS, AFTER_BUCKETS)
    await until_value(settings, stable_sum, 1332)
    interval = math.floor(time.time() - seen_before)  # now - interval in [seen, seen + 1 s)
    assert time.time() - interval < switched - 0.5

    # the worker's own Prometheus answers nothing here: the input's URL must be used
    counts = await count(dead_settings(tmp_path_factory), window_input(interval, url))
    assert counts == CountWindowResult(
        canary_requests=40,  # the canary upstream's requests under the stable Ingress
        canary_errors=2,
        stable_requests=321,  # canary="" only; auth-service's canary is not counted
        stable_errors=1,  # 404s are not errors
        canary_slow=10,
        stable_slow=3,
        latency_bound_seconds=0.1,  # the bucket holding 99% of stable's answers
    )

    # the built-in templates on the same series (rate over a window holding both states)
    def rendered(name: str) -> str:
        return render_metric(
            BUILTIN_METRICS[name],
            environment="production",
            service="api-gateway",
            version="1.0.0",
            interval_seconds=120,
            router=INGRESS_NGINX,
            namespace=NAMESPACE,
        )

    success = await run_query(settings, rendered("request-success-rate"), url)
    assert success == pytest.approx(38 / 40)
    versus = await run_query(settings, rendered("success-rate-vs-stable"), url)
    assert versus == pytest.approx(38 / 40 - 320 / 321)
    p99 = await run_query(settings, rendered("request-duration-p99"), url)
    assert p99 is not None and 0.1 < p99 <= 0.5  # 25% of the canary's answers above 0.1 s
    ratio = await run_query(settings, rendered("p99-vs-stable"), url)
    assert ratio is not None and ratio > 1


async def test_count_window_on_an_unreachable_cluster_prometheus_is_an_error(
    scraped: Scraped, tmp_path_factory: pytest.TempPathFactory
) -> None:
    nowhere = dead_settings(tmp_path_factory).prometheus_url
    counts = await count(scraped.settings, window_input(5, nowhere))
    assert (
        counts.error
        == f"Prometheus at {nowhere} is unreachable (Connection refused); is it running?"
    )
    assert counts.canary_requests == 0 and counts.stable_requests == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"namespace": 'go-coffee",ingress=~".*'},
            "ingress-nginx namespace 'go-coffee\",ingress=~\".*' is not a Kubernetes name",
        ),
        ({"namespace": ""}, "ingress-nginx namespace '' is not a Kubernetes name"),
        (
            {"canary_service": "api-gateway-canary@file"},
            "ingress-nginx canary service 'api-gateway-canary@file' is not a Kubernetes name",
        ),
        ({"stable_service": ".*"}, "ingress-nginx stable service '.*' is not a Kubernetes name"),
    ],
)
async def test_count_window_refuses_names_that_could_change_the_query(
    scraped: Scraped, changes: dict[str, str], message: str
) -> None:
    counts = await count(scraped.settings, window_input(5, **changes))
    assert counts.error.startswith(message), counts.error


async def test_count_window_refuses_an_unknown_router(scraped: Scraped) -> None:
    inp = window_input(5)
    inp.router = "envoy"
    counts = await count(scraped.settings, inp)
    assert counts.error == "router 'envoy' is not one of traefik, ingress-nginx"
