"""Fault: Prometheus goes away while a canary is being analysed.

A real Prometheus (the local platform's component, on a free 127.0.0.1 port, stopped
by PID) answers the measurement activities, then is frozen (SIGSTOP: it accepts
connections but answers nothing) or killed (SIGKILL). The activities must turn that
into Error results, promptly, without raising: an exception would be retried by
Temporal and only hide the outage. On the workflow side the real activities run in
the worker beside fakes for traffic (tests/workflows/fakes.py): past
`consecutive_error_limit` the canary is rolled back, with `on_inconclusive: pause` too
(an Error is not Inconclusive, as in Argo Rollouts), and never promoted.
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.prometheus import PrometheusActivities
from brewline import canary as c
from brewline.analysis import AnalysisSpec, MetricSpec
from brewline.canary_config import CanaryConfig, CanaryStep, LoadSpec
from brewline.model import (
    ApprovalConfig,
    CountWindowInput,
    CountWindowResult,
    Deployment,
    MetricQueryInput,
    MetricQueryResult,
)
from brewline.platform import PlatformSettings
from local.platform import LocalPlatform
from tests.workflows.fakes import FakeWorld
from workflows.canary import CanaryWorkflow

QUERY_TIMEOUT = 1.0  # seconds the activities wait for one answer
# a value Prometheus derives from its own scrape of the (absent) Traefik target: 1 series
PROMETHEUS_ALIVE = MetricSpec("prometheus-alive", 'count(up{job="traefik"})', ">=", 1)
STABLE = Deployment("production", "api-gateway", "1.3.0", "reg/go-coffee/api-gateway@sha256:a")
WINDOW = CountWindowInput(
    "production-api-gateway-canary@file", "production-api-gateway-stable@file", 5
)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[LocalPlatform, PlatformSettings]]:
    """A Prometheus of its own per test (the tests kill it), stopped by PID at the end."""
    settings = PlatformSettings(home=str(tmp_path / "home"))
    platform = LocalPlatform(settings)
    try:
        platform.up(["prometheus"], free_ports=True)
        yield platform, settings
    finally:
        pid = platform.running_pid("prometheus")
        if pid is not None:
            os.kill(pid, signal.SIGCONT)  # a frozen one could not handle SIGTERM
        platform.down()


def kill(platform: LocalPlatform, name: str) -> None:
    """SIGKILL the component by PID and wait (with a deadline) until it is gone."""
    pid = platform.running_pid(name)
    assert pid is not None, f"{name} is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while platform.running_pid(name) is not None:
        assert time.monotonic() < deadline, f"{name} (pid {pid}) survived SIGKILL"
        time.sleep(0.02)


async def query_metric(settings: PlatformSettings, promql: str) -> MetricQueryResult:
    acts = PrometheusActivities(settings, timeout=QUERY_TIMEOUT)
    return await ActivityEnvironment().run(acts.query_metric, MetricQueryInput(promql))


async def count_window(settings: PlatformSettings) -> CountWindowResult:
    acts = PrometheusActivities(settings, timeout=QUERY_TIMEOUT)
    return await ActivityEnvironment().run(acts.count_window, WINDOW)


async def test_measurements_of_a_frozen_then_killed_prometheus_are_errors(
    prometheus: tuple[LocalPlatform, PlatformSettings],
) -> None:
    platform, settings = prometheus
    url = settings.prometheus_url
    alive = await query_metric(settings, PROMETHEUS_ALIVE.query)
    assert (alive.value, alive.error) == (1.0, "")
    counted = await count_window(settings)
    assert counted == CountWindowResult()  # nothing routed yet: zeros, and no error

    # frozen mid-run: the kernel still accepts connections, nobody answers
    pid = platform.running_pid("prometheus")
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        frozen = await query_metric(settings, PROMETHEUS_ALIVE.query)
        frozen_window = await count_window(settings)
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert (frozen.value, frozen.samples, frozen.at) == (None, 0, None)
    assert frozen.error == f"Prometheus at {url} did not answer within {QUERY_TIMEOUT:g}s"
    assert frozen_window.error == frozen.error
    assert frozen_window.canary_requests == frozen_window.stable_requests == 0
    assert elapsed < 4 * QUERY_TIMEOUT + 2  # bounded by the timeout, not hanging

    # back again: answers again (a stall is not sticky)
    thawed = await query_metric(settings, PROMETHEUS_ALIVE.query)
    assert (thawed.value, thawed.error) == (1.0, "")

    # killed mid-run: its connections are reset, then its port refuses
    kill(platform, "prometheus")
    unreachable = {
        f"Prometheus at {url} is unreachable ({why}); is it running?"
        for why in ("Connection refused", "Connection reset by peer")
    }
    started = time.monotonic()
    dead = await query_metric(settings, PROMETHEUS_ALIVE.query)
    dead_window = await count_window(settings)
    assert time.monotonic() - started < 5
    assert (dead.value, dead.samples, dead.at) == (None, 0, None)
    assert dead.error in unreachable
    assert dead_window.error in unreachable
    assert dead_window == CountWindowResult(error=dead_window.error)  # no counts beside it


# ---------------------------------------------------------------- the canary workflow


def canary_config(judge: str, on_inconclusive: str) -> CanaryConfig:
    """One analysis step of 1 s windows that cannot end by itself for a minute, so only
    errors can end it early; no min_requests gate (nothing routes to the canary here)."""
    spec = AnalysisSpec(
        metrics=[copy.deepcopy(PROMETHEUS_ALIVE)],
        interval_seconds=1,
        count=60,
        failure_limit=0,
        inconclusive_limit=0 if judge == "threshold" else 1,
        consecutive_error_limit=2,
        min_requests=0,
    )
    return CanaryConfig(
        steps=[CanaryStep("set_weight", weight=10), CanaryStep("analysis")],
        analysis=spec,
        traffic="users",  # no load generator: it would stop the server skipping time
        load=LoadSpec("/health", 20, 2),
        on_inconclusive=on_inconclusive,
        judge=judge,
    )


def canary_worker(
    env: WorkflowEnvironment, world: FakeWorld, settings: PlatformSettings, queue: str
) -> Worker:
    """The canary workflow with the REAL measurement activities; the rest faked."""
    real = PrometheusActivities(settings, timeout=QUERY_TIMEOUT)
    measured = {"query_metric", "count_window"}
    faked = [fn for fn in world.activities() if fn.__name__ not in measured]
    return Worker(
        env.client,
        task_queue=queue,
        workflows=[CanaryWorkflow],
        activities=[*faked, real.query_metric, real.count_window],
    )


async def wait_for(
    handle: Any, predicate: Callable[[c.CanaryStatus], bool], deadline_s: float = 30
) -> c.CanaryStatus:
    """Poll the status query (which does not let the test server skip time)."""
    deadline = time.monotonic() + deadline_s
    while True:
        status: c.CanaryStatus = await handle.query(CanaryWorkflow.status)
        if predicate(status):
            return status
        assert time.monotonic() < deadline, f"canary never got there; phase {status.phase}"
        await asyncio.sleep(0.05)


def measured_once(status: c.CanaryStatus, judge: str) -> bool:
    """The canary has measured Prometheus successfully at least once."""
    if judge == "sequential":
        return status.judge is not None
    return any(m.phase == "Successful" for m in status.last_measurements)


@pytest.mark.parametrize("on_inconclusive", ["rollback", "pause"])
@pytest.mark.parametrize("judge", ["threshold", "sequential"])
async def test_prometheus_killed_during_analysis_rolls_the_canary_back(
    time_env: WorkflowEnvironment,
    prometheus: tuple[LocalPlatform, PlatformSettings],
    judge: str,
    on_inconclusive: str,
) -> None:
    platform, settings = prometheus
    world = FakeWorld(running={("production", "api-gateway"): STABLE})
    queue = f"faults-{uuid.uuid4()}"
    inp = c.CanaryInput(
        release_id="release-go-coffee-api-gateway-1.4.0",
        environment="production",
        target="local",
        service="api-gateway",
        version="1.4.0",
        image="reg/go-coffee/api-gateway@sha256:b",
        canary=canary_config(judge, on_inconclusive),
        approval=ApprovalConfig(approvers=["alice"]),
        initiator="carol",
    )
    async with canary_worker(time_env, world, settings, queue):
        handle = await time_env.client.start_workflow(
            CanaryWorkflow.run, inp, id=f"canary-{uuid.uuid4()}", task_queue=queue
        )
        running = await wait_for(handle, lambda s: measured_once(s, judge))
        assert running.phase == "analysing"
        kill(platform, "prometheus")
        result = await handle.result()
        status = await handle.query(CanaryWorkflow.status)
        history = await handle.fetch_history()

    unreachable = f"Prometheus at {settings.prometheus_url} is unreachable"
    assert result.outcome == "rolled-back"
    assert "exceeds consecutive_error_limit 2" in result.reason
    assert unreachable in result.reason
    assert world.calls["promote_canary"] == 0
    assert world.calls["rollback_canary"] == 1
    assert world.weights == [10, 0]
    assert world.running[("production", "api-gateway")] == STABLE
    assert status.phase == "rolled-back"
    if judge == "threshold":
        phases = [m.phase for m in result.measurements]
        assert "Successful" in phases  # measured before the kill
        assert phases[-3:] == ["Error"] * 3  # then one more error than the limit allows
        assert status.analysis is not None and status.analysis.phase == "Error"
    else:
        assert result.reason.startswith("3 windows in a row could not be counted")

    # every measurement ran once: an outage is a result, never a failure Temporal retries
    attempts = [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert attempts and set(attempts) == {1}
    failed = [
        event
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert failed == []
