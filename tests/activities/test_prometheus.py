"""query_metric and ScrapeTargets with a real Prometheus scraping real processes.

Prometheus and Traefik run on free loopback ports in a temporary home (started and
stopped by PID through the local platform); a small stdlib server
(tests/fixtures/metrics_server.py) exposes fixed metrics and is registered as the
canary of a service through ScrapeTargets, exactly as the local target registers a
container.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.prometheus import PrometheusActivities
from activities.scrape_targets import ScrapeTargets, targets_dir
from brewline.model import MetricQueryInput, MetricQueryResult
from brewline.platform import PlatformSettings
from local.platform import LocalPlatform

FIXTURE_SERVER = Path(__file__).resolve().parents[1] / "fixtures" / "metrics_server.py"
FIXTURE_VALUE = 42.5
# the labels ScrapeTargets gives the fixture's series, as a PromQL selector
CANARY = 'job="services",environment="staging",service="fixture",track="canary",version="1.2.3"'
# Prometheus applies a new file_sd target within ~5 s (its scrape manager reloads
# targets every 5 s), then scrapes every second.
DEADLINE = 30.0


@dataclass
class Observed:
    settings: PlatformSettings
    fixture_address: str


def start_metrics_server(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start the fixture server; its port once it listens (it writes a port file)."""
    port_file = folder / "metrics-server.port"
    server = subprocess.Popen(
        [sys.executable, str(FIXTURE_SERVER), "--port-file", str(port_file)],
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not port_file.exists():
        if server.poll() is not None:
            raise RuntimeError(f"metrics server exited with {server.returncode}")
        if time.monotonic() > deadline:
            stop_process(server)
            raise RuntimeError("metrics server wrote no port file within 15 s")
        time.sleep(0.02)
    return server, int(port_file.read_text())


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    home = tmp_path_factory.mktemp("prometheus-home")
    settings = PlatformSettings(home=str(home))
    platform = LocalPlatform(settings)
    server = None
    try:
        platform.up(["traefik", "prometheus"], free_ports=True)
        server, port = start_metrics_server(home)
        address = f"127.0.0.1:{port}"
        ScrapeTargets(settings).write("staging", "fixture", "canary", address, {"version": "1.2.3"})
        yield Observed(settings, address)
    finally:
        if server is not None:
            stop_process(server)
        platform.down()


async def query(
    settings: PlatformSettings, promql: str, url: str = "", timeout: float = 10.0
) -> MetricQueryResult:
    """Run the activity as a worker would (in an activity context)."""
    activities = PrometheusActivities(settings, timeout=timeout)
    return await ActivityEnvironment().run(
        activities.query_metric, MetricQueryInput(query=promql, prometheus_url=url)
    )


async def query_until(
    settings: PlatformSettings, promql: str, done: Callable[[MetricQueryResult], bool]
) -> MetricQueryResult:
    """Query until `done` holds for the result (a new target takes seconds to appear)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = await query(settings, promql)
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{promql!r} still gives {result} after {DEADLINE:g}s")
        await asyncio.sleep(0.2)


def has_value(result: MetricQueryResult) -> bool:
    return result.value is not None


# --------------------------------------------------------------------------------------
# query_metric
# --------------------------------------------------------------------------------------


async def test_one_series_of_a_scraped_process_gives_its_value_and_time(
    observed: Observed,
) -> None:
    result = await query_until(observed.settings, f"fixture_temperature{{{CANARY}}}", has_value)
    assert result.value == FIXTURE_VALUE
    assert result.samples == 1
    assert result.error == ""
    assert result.at is not None
    assert abs(datetime.now(UTC) - result.at) < timedelta(seconds=30)

    # a live counter: a later scrape shows a higher value
    counter = f"fixture_orders_total{{{CANARY}}}"
    first = await query_until(observed.settings, counter, has_value)
    assert first.value is not None
    later = await query_until(
        observed.settings, counter, lambda r: (r.value or 0) > (first.value or 0)
    )
    assert later.at is not None and first.at is not None and later.at >= first.at


async def test_traefik_metrics_are_there_as_soon_as_up_returns(observed: Observed) -> None:
    # no polling: LocalPlatform.up waits for the first scrape of Traefik
    assert (await query(observed.settings, 'up{job="traefik"}')).value == 1.0
    reloads = await query(observed.settings, 'sum(traefik_config_reloads_total{job="traefik"})')
    assert reloads.error == ""
    assert reloads.value is not None and reloads.value >= 1


async def test_a_scalar_gives_its_value(observed: Observed) -> None:
    result = await query(observed.settings, "1 + 1.5")
    assert (result.value, result.samples, result.error) == (2.5, 1, "")
    assert result.at is not None


async def test_an_empty_vector_is_no_data(observed: Observed) -> None:
    result = await query(observed.settings, 'fixture_temperature{service="no-such-service"}')
    assert result == MetricQueryResult(value=None, samples=0, at=None, error="")


@pytest.mark.parametrize("promql", ["0/0", "1/0", "-1/0", "vector(0) / vector(0)"])
async def test_nan_and_infinity_are_no_data_not_an_error(observed: Observed, promql: str) -> None:
    result = await query(observed.settings, promql)
    assert (result.value, result.samples, result.error) == (None, 1, "")
    assert result.at is not None


async def test_more_than_one_series_is_an_error_asking_to_aggregate(observed: Observed) -> None:
    two = await query_until(
        observed.settings, f"fixture_queue_depth{{{CANARY}}}", lambda r: r.samples == 2
    )
    assert two.value is None
    assert two.error == "query returned 2 series; aggregate it (e.g. sum by ())"
    summed = await query(observed.settings, f"sum by () (fixture_queue_depth{{{CANARY}}})")
    assert (summed.value, summed.samples, summed.error) == (3.0, 1, "")


async def test_bad_promql_is_an_error_naming_the_url(observed: Observed) -> None:
    result = await query(observed.settings, "sum(rate(fixture_orders_total[1m])")
    assert (result.value, result.samples) == (None, 0)
    assert observed.settings.prometheus_url in result.error
    assert "rejected the query" in result.error
    assert "parse error" in result.error


async def test_a_range_vector_is_an_error(observed: Observed) -> None:
    result = await query(observed.settings, 'up{job="traefik"}[5s]')
    assert (result.value, result.samples) == (None, 0)
    assert "range vector" in result.error


async def test_an_empty_query_is_an_error(observed: Observed) -> None:
    result = await query(observed.settings, "  ")
    assert (result.value, result.samples, result.error) == (None, 0, "the PromQL query is empty")


async def test_the_query_may_name_another_prometheus(observed: Observed, tmp_path: Path) -> None:
    # settings whose Prometheus port answers nothing: the input's URL wins
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = PlatformSettings(home=str(tmp_path), prometheus_port=unused.getsockname()[1])
    result = await query(nowhere, "1", url=observed.settings.prometheus_url + "/")
    assert (result.value, result.error) == (1.0, "")


async def test_an_http_error_from_something_else_is_an_error(observed: Observed) -> None:
    traefik = observed.settings.traefik_api_url
    result = await query(observed.settings, "up", url=traefik)
    assert (result.value, result.samples) == (None, 0)
    assert f"{traefik}/api/v1/query answered HTTP 404" in result.error


async def test_a_prometheus_that_does_not_answer_is_an_error_after_the_timeout(
    observed: Observed,
) -> None:
    # a socket that accepts connections (the kernel does) but never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = await query(observed.settings, "1", url=url, timeout=0.5)
        elapsed = time.monotonic() - started
    assert (result.value, result.samples) == (None, 0)
    assert result.error == f"Prometheus at {url} did not answer within 0.5s"
    assert elapsed < 5


async def test_a_stopped_prometheus_is_an_error_naming_the_url(tmp_path: Path) -> None:
    settings = PlatformSettings(home=str(tmp_path / "home"))
    platform = LocalPlatform(settings)
    try:
        platform.up(["prometheus"], free_ports=True)
        pid = platform.running_pid("prometheus")
        assert pid is not None
        assert (await query(settings, "1")).value == 1.0
    finally:
        platform.down()
    assert platform.running_pid("prometheus") is None

    result = await query(settings, "1")
    assert (result.value, result.samples, result.at) == (None, 0, None)
    assert result.error == (
        f"Prometheus at {settings.prometheus_url} is unreachable (Connection refused); "
        "is it running?"
    )


# --------------------------------------------------------------------------------------
# ScrapeTargets (files only; tests/local/test_prometheus_component.py has Prometheus
# picking them up and dropping them)
# --------------------------------------------------------------------------------------


def test_write_makes_one_file_sd_file_per_track_and_remove_deletes_it(tmp_path: Path) -> None:
    settings = PlatformSettings(home=str(tmp_path))
    targets = ScrapeTargets(settings)
    path = targets.write(
        "production", "api-gateway", "canary", "127.0.0.1:41001", {"version": "1.4.0"}
    )
    assert path == targets_dir(settings) / "production-api-gateway-canary.json"
    assert path.parent == settings.prometheus_dir / "targets"
    assert json.loads(path.read_text()) == [
        {
            "targets": ["127.0.0.1:41001"],
            "labels": {
                "environment": "production",
                "service": "api-gateway",
                "track": "canary",
                "version": "1.4.0",
            },
        }
    ]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644

    # the stable track is its own file; writing again replaces, leaving no temp file
    targets.write("production", "api-gateway", "stable", "127.0.0.1:41000", {"version": "1.3.0"})
    targets.write(
        "production",
        "api-gateway",
        "canary",
        "127.0.0.1:41002",
        {"version": "1.4.1", "commit": "abc123"},
    )
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "production-api-gateway-canary.json",
        "production-api-gateway-stable.json",
    ]
    assert targets.read("production", "api-gateway", "canary") == {
        "targets": ["127.0.0.1:41002"],
        "labels": {
            "commit": "abc123",
            "environment": "production",
            "service": "api-gateway",
            "track": "canary",
            "version": "1.4.1",
        },
    }

    assert targets.remove("production", "api-gateway", "canary") is True
    assert targets.remove("production", "api-gateway", "canary") is False
    assert targets.read("production", "api-gateway", "canary") is None
    assert [p.name for p in path.parent.iterdir()] == ["production-api-gateway-stable.json"]

    targets.write("staging", "producer", "stable", "127.0.0.1:41003", {"version": "1.0.0"})
    assert [p.name for p in targets.remove_all()] == [
        "production-api-gateway-stable.json",
        "staging-producer-stable.json",
    ]
    assert list(path.parent.iterdir()) == []
    assert ScrapeTargets(PlatformSettings(home=str(tmp_path / "never"))).remove_all() == []


@pytest.mark.parametrize(
    ("environment", "track", "address", "labels", "message"),
    [
        ("staging", "blue", "127.0.0.1:1", {"version": "1"}, "track 'blue' is not one of"),
        ("../etc", "canary", "127.0.0.1:1", {"version": "1"}, "environment '../etc' cannot"),
        ("staging", "canary", "http://127.0.0.1:1", {"version": "1"}, "is not host:port"),
        ("staging", "canary", "127.0.0.1", {"version": "1"}, "is not host:port"),
        ("staging", "canary", "127.0.0.1:1", {}, "lack version"),
        ("staging", "canary", "127.0.0.1:1", {"version": "1", "track": "x"}, "'track' is set"),
        ("staging", "canary", "127.0.0.1:1", {"version": "1", "bad-name": "x"}, "label name"),
        ("staging", "canary", "127.0.0.1:1", {"version": "1", "__address__": "x"}, "label name"),
    ],
)
def test_write_refuses_what_would_mislabel_or_misplace_a_target(
    tmp_path: Path,
    environment: str,
    track: str,
    address: str,
    labels: dict[str, str],
    message: str,
) -> None:
    targets = ScrapeTargets(PlatformSettings(home=str(tmp_path)))
    with pytest.raises(ValueError, match=re.escape(message)):
        targets.write(environment, "api-gateway", track, address, labels)
    assert not targets.directory.exists() or list(targets.directory.iterdir()) == []
