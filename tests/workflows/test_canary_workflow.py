"""CanaryWorkflow on the time-skipping server, with traffic and Prometheus faked.

Pauses and analysis intervals are durable timers, so minutes of canary pass in well
under a second; the fakes record every weight change, rollback and promotion.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from brewline import canary as c
from brewline.analysis import BUILTIN_METRICS, AnalysisSpec
from brewline.canary_config import CanaryConfig, CanaryStep, LoadSpec
from brewline.model import (
    ApprovalConfig,
    CountWindowInput,
    CountWindowResult,
    Deployment,
    KubernetesSpec,
    MetricQueryInput,
    MetricQueryResult,
)
from tests.workflows.fakes import (
    FakeWorld,
    healthy_metrics,
    healthy_window,
    new_worker,
    record_history,
)
from workflows.canary import CanaryWorkflow

STABLE = Deployment("production", "api-gateway", "1.3.0", "reg/go-coffee/api-gateway@sha256:a")
METRICS = [
    copy.deepcopy(BUILTIN_METRICS["request-success-rate"]),
    copy.deepcopy(BUILTIN_METRICS["request-duration-p99"]),
]


# what each kind of analysis asks the outside world for
MEASURE = {"threshold": "query_metric", "sequential": "count_window"}


@pytest.fixture(params=["threshold", "sequential"])
def judge_kind(request: pytest.FixtureRequest) -> str:
    """The tests whose flow does not depend on the analysis run with both kinds."""
    return str(request.param)


def config(
    steps: list[CanaryStep], traffic: str = "users", judge: str = "threshold", **analysis: Any
) -> CanaryConfig:
    """A canary config; with real users' traffic by default, since a running load
    generator activity stops the test server from skipping time. With the sequential
    judge an analysis step may take up to 12 windows (a pass must be earned)."""
    spec = AnalysisSpec(
        metrics=copy.deepcopy(METRICS),
        interval_seconds=5,
        count=3,
        failure_limit=analysis.pop("failure_limit", 1),
        inconclusive_limit=analysis.pop("inconclusive_limit", 1),
        consecutive_error_limit=analysis.pop("consecutive_error_limit", 2),
        min_requests=20,
    )
    if judge == "sequential":
        spec.count = 12
        spec.interval_seconds = 2  # some tests run in real time: short windows keep them quick
    return CanaryConfig(
        steps=steps,
        analysis=spec,
        traffic=traffic,
        load=LoadSpec("/health", 20, 2),
        on_inconclusive=analysis.pop("on_inconclusive", "rollback"),
        on_error=analysis.pop("on_error", "rollback"),
        judge=judge,
    )


SEED_STEPS = [
    CanaryStep("set_weight", weight=10),
    CanaryStep("pause", pause_seconds=120),
    CanaryStep("analysis"),
    CanaryStep("set_weight", weight=50),
    CanaryStep("analysis"),
    CanaryStep("set_weight", weight=80),
    CanaryStep("pause", pause_seconds=120),
]


def canary_input(cfg: CanaryConfig) -> c.CanaryInput:
    return c.CanaryInput(
        release_id="release-go-coffee-api-gateway-1.4.0",
        environment="production",
        target="local",
        service="api-gateway",
        version="1.4.0",
        image="reg/go-coffee/api-gateway@sha256:b",
        canary=cfg,
        # as the local demo's pipeline: unsigned controls accepted (tests/workflows/
        # test_signed_approvals.py covers the signed ones)
        approval=ApprovalConfig(approvers=["alice", "bob"], allow_unsigned=True),
        initiator="carol",
    )


async def start(
    env: WorkflowEnvironment, world: FakeWorld, cfg: CanaryConfig, queue: str
) -> WorkflowHandle[CanaryWorkflow, c.CanaryResult]:
    return await env.client.start_workflow(
        CanaryWorkflow.run, canary_input(cfg), id=f"canary-{uuid.uuid4()}", task_queue=queue
    )


async def wait_for(
    handle: WorkflowHandle[Any, Any], predicate: Callable[[c.CanaryStatus], bool]
) -> c.CanaryStatus:
    for _ in range(1200):  # up to a minute: a query does not make the test server skip time
        status = await handle.query(CanaryWorkflow.status)
        if predicate(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"canary never got there; last phase {status.phase}")


def failing_success_rate(query: str) -> MetricQueryResult:
    if "histogram_quantile" in query or "increase(" in query:
        return healthy_metrics(query)
    return MetricQueryResult(0.8, 1)  # 20% errors


def world_with(metrics: Callable[[str], MetricQueryResult] = healthy_metrics) -> FakeWorld:
    return FakeWorld(running={("production", "api-gateway"): STABLE}, metrics=metrics)


async def test_a_healthy_canary_steps_up_and_is_promoted(time_env: WorkflowEnvironment) -> None:
    world = world_with()
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, config(SEED_STEPS), queue)
        result = await handle.result()
        await record_history(handle, "canary-promoted")
        status = await handle.query(CanaryWorkflow.status)
    assert result.outcome == "promoted" and result.reason == ""
    assert world.weights == [10, 50, 80, 100]
    assert world.running[("production", "api-gateway")].version == "1.4.0"
    assert world.calls["rollback_canary"] == 0
    assert world.calls["generate_load"] == 0  # real users' traffic: no load generator
    # 2 analyses x 3 rounds x (2 metrics + the request count)
    assert world.calls["query_metric"] == 18
    assert status.phase == "promoted" and status.weight == 100
    assert {m.metric for m in status.last_measurements} == {
        "request-success-rate",
        "request-duration-p99",
    }
    assert all(m.phase == "Successful" for m in status.last_measurements)


async def test_failure_limit_rolls_back_and_names_the_metric(
    time_env: WorkflowEnvironment,
) -> None:
    world = world_with(failing_success_rate)
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, config(SEED_STEPS, failure_limit=1), queue)
        result = await handle.result()
        await record_history(handle, "canary-failure-limit-rolled-back")
        status = await handle.query(CanaryWorkflow.status)
    assert result.outcome == "rolled-back"
    assert "request-success-rate" in result.reason
    assert "0.8" in result.reason and "failure_limit 1" in result.reason
    assert world.weights == [10, 0]  # never stepped past the failing analysis
    assert world.calls["promote_canary"] == 0
    assert world.running[("production", "api-gateway")] == STABLE  # stable untouched
    assert ("production", "api-gateway") not in world.canary
    assert status.phase == "rolled-back" and status.analysis.phase == "Failed"


async def test_prometheus_down_is_error_and_rolls_back_never_promotes(
    time_env: WorkflowEnvironment,
) -> None:
    world = world_with(
        lambda q: MetricQueryResult(None, 0, error="cannot reach http://127.0.0.1:9090")
    )
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, config(SEED_STEPS), queue)
        result = await handle.result()
        await record_history(handle, "canary-prometheus-down-rolled-back")
    assert result.outcome == "rolled-back"
    assert "error" in result.reason.lower()
    assert world.calls["promote_canary"] == 0
    assert all(m.phase == "Error" for m in result.measurements)


async def test_prometheus_down_with_on_error_pause_waits_then_measures_again(
    time_env: WorkflowEnvironment,
) -> None:
    """on_error: pause holds the canary for a person instead of rolling back; it never
    promotes by itself, and resume measures from scratch once Prometheus is back."""
    down = {"now": True}

    def metrics(query: str) -> MetricQueryResult:
        if down["now"]:
            return MetricQueryResult(None, 0, error="cannot reach http://127.0.0.1:9090")
        return healthy_metrics(query)

    world = world_with(metrics)
    steps = [CanaryStep("set_weight", weight=20), CanaryStep("analysis")]
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, config(steps, on_error="pause"), queue)
        paused = await wait_for(handle, lambda s: s.phase == "paused")
        assert paused.paused_reason.startswith("analysis error:")
        assert world.calls["promote_canary"] == 0 and world.calls["rollback_canary"] == 0
        down["now"] = False
        await handle.signal(CanaryWorkflow.resume, c.CanaryControl("alice", c.RESUME))
        result = await handle.result()
        await record_history(handle, "canary-prometheus-down-paused-resumed")
    assert result.outcome == "promoted" and world.weights == [20, 100]


async def test_no_data_pauses_for_a_person_then_resume_measures_again(
    time_env: WorkflowEnvironment, judge_kind: str
) -> None:
    answers = {"no data": True}

    def metrics(query: str) -> MetricQueryResult:
        if answers["no data"]:
            return MetricQueryResult(None, 0)  # nobody called the canary
        return healthy_metrics(query)

    def windows(inp: CountWindowInput) -> CountWindowResult:
        return CountWindowResult() if answers["no data"] else healthy_window(inp)

    world = world_with(metrics)
    world.windows = windows
    steps = [CanaryStep("set_weight", weight=20), CanaryStep("analysis")]
    cfg = config(steps, on_inconclusive="pause", judge=judge_kind)
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, cfg, queue)
        paused = await wait_for(handle, lambda s: s.phase == "paused")
        assert "inconclusive" in paused.paused_reason
        assert world.calls["promote_canary"] == 0 and world.calls["rollback_canary"] == 0
        answers["no data"] = False
        await handle.signal(CanaryWorkflow.resume, c.CanaryControl("alice", c.RESUME))
        result = await handle.result()
        await record_history(handle, f"canary-inconclusive-paused-resumed-{judge_kind}")
    assert result.outcome == "promoted"
    assert world.weights == [20, 100]


async def test_manual_abort_during_a_pause_rolls_back_at_once(
    time_env: WorkflowEnvironment, judge_kind: str
) -> None:
    world = world_with()
    steps = [CanaryStep("set_weight", weight=10), CanaryStep("pause"), CanaryStep("analysis")]
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, config(steps, judge=judge_kind), queue)
        await wait_for(handle, lambda s: s.phase == "paused")
        await handle.signal(CanaryWorkflow.abort, c.CanaryControl("carol", c.ABORT, "oops"))
        result = await handle.result()
        status = await handle.query(CanaryWorkflow.status)
    assert result.outcome == "rolled-back"
    assert result.reason == "aborted by carol: oops"
    assert world.weights == [10, 0]
    assert [(r.actor, r.action, r.refused) for r in status.controls] == [("carol", "abort", "")]


async def test_full_promote_skips_every_remaining_step(
    time_env: WorkflowEnvironment, judge_kind: str
) -> None:
    world = world_with()
    steps = [CanaryStep("set_weight", weight=10), CanaryStep("pause"), *SEED_STEPS]
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, config(steps, judge=judge_kind), queue)
        await wait_for(handle, lambda s: s.phase == "paused")
        # the initiator (not an approver) may stop a canary but not promote it
        await handle.signal(CanaryWorkflow.promote, c.CanaryControl("carol", c.PROMOTE_FULL))
        await handle.signal(CanaryWorkflow.promote, c.CanaryControl("bob", c.PROMOTE_FULL))
        result = await handle.result()
        status = await handle.query(CanaryWorkflow.status)
    assert result.outcome == "promoted"
    assert world.weights == [10, 100]
    assert world.calls[MEASURE[judge_kind]] == 0
    refused = [r for r in status.controls if r.refused]
    assert len(refused) == 1 and "'carol' may not approve" in refused[0].refused


async def test_promote_skips_only_the_current_pause(
    time_env: WorkflowEnvironment, judge_kind: str
) -> None:
    world = world_with()
    steps = [
        CanaryStep("set_weight", weight=10),
        CanaryStep("pause"),
        CanaryStep("set_weight", weight=40),
        CanaryStep("pause"),
    ]
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, config(steps, judge=judge_kind), queue)
        await wait_for(handle, lambda s: s.phase == "paused" and s.step == 1)
        await handle.signal(CanaryWorkflow.promote, c.CanaryControl("alice", c.PROMOTE))
        second = await wait_for(handle, lambda s: s.phase == "paused" and s.step == 3)
        assert second.weight == 40 and world.weights == [10, 40]
        await handle.signal(CanaryWorkflow.promote, c.CanaryControl("alice", c.PROMOTE))
        result = await handle.result()
    assert result.outcome == "promoted" and world.weights == [10, 40, 100]


async def test_a_promote_sent_before_the_pause_skips_it(
    time_env: WorkflowEnvironment, judge_kind: str
) -> None:
    """A promote that arrives while the canary is not paused yet is kept, not lost: it
    skips the next pause (and only that one). Sent with the start, so it surely comes first."""
    world = world_with()
    steps = [
        CanaryStep("set_weight", weight=10),
        CanaryStep("pause"),
        CanaryStep("set_weight", weight=40),
        CanaryStep("pause"),
    ]
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await time_env.client.start_workflow(
            CanaryWorkflow.run,
            canary_input(config(steps, judge=judge_kind)),
            id=f"canary-{uuid.uuid4()}",
            task_queue=queue,
            start_signal="promote",
            start_signal_args=[c.CanaryControl("alice", c.PROMOTE)],
        )
        second = await wait_for(handle, lambda s: s.phase == "paused")
        assert second.step == 3 and world.weights == [10, 40]
        await handle.signal(CanaryWorkflow.promote, c.CanaryControl("alice", c.PROMOTE))
        result = await handle.result()
        await record_history(handle, f"canary-early-promote-{judge_kind}")
    assert result.outcome == "promoted" and world.weights == [10, 40, 100]


async def test_cancel_mid_step_rolls_back(time_env: WorkflowEnvironment, judge_kind: str) -> None:
    world = world_with()
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, config(SEED_STEPS, judge=judge_kind), queue)
        await wait_for(handle, lambda s: s.phase == "paused")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, CancelledError)
    assert world.calls["rollback_canary"] == 1 and world.calls["promote_canary"] == 0
    assert world.weights == [10, 0]


async def test_the_load_generator_runs_while_the_canary_does(
    time_env: WorkflowEnvironment, judge_kind: str
) -> None:
    # While the load activity runs the test server does not skip time: one analysis,
    # 3 rounds x 5 s of real time.
    world = world_with()
    steps = [CanaryStep("set_weight", weight=10), CanaryStep("analysis")]
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        cfg = config(steps, traffic="load-generator", judge=judge_kind)
        handle = await start(time_env, world, cfg, queue)
        result = await handle.result()
        await record_history(handle, f"canary-load-generator-{judge_kind}")
    assert result.outcome == "promoted"
    loads = [arg for name, arg in world.log if name == "generate_load"]
    assert len(loads) == 1
    assert (loads[0].environment, loads[0].path, loads[0].rate_per_second) == (
        "production",
        "/health",
        20,
    )
    assert world.load_cancelled == 1  # cancelled before the promotion, hey gone
    # on a queue of its own: a load generator holds its slot for the whole canary
    assert world.load_queues == [f"{queue}-load"]
    order = [name for name, _ in world.log]
    assert order.index("generate_load") < order.index(MEASURE[judge_kind])


async def test_a_load_generator_whose_worker_dies_at_the_end_does_not_hold_the_canary(
    local_env: WorkflowEnvironment,
) -> None:
    # Found by the chaos suite: the worker was killed while the canary ended, the load
    # chunk's attempt ended by heartbeat timeout instead of cancelled, and the canary
    # started another chunk, then waited for it for ever. On the dev server (real time):
    # one analysis of 3 x 5 s, then the chunk's 10 s heartbeat timeout.
    world = world_with()
    world.load_dies_on_cancel = True
    steps = [CanaryStep("set_weight", weight=10), CanaryStep("analysis")]
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(local_env.client, world, queue):
        handle = await start(local_env, world, config(steps, traffic="load-generator"), queue)
        try:
            # a guard against the hang, not a speed check: the canary needs about 30 s
            result = await asyncio.wait_for(handle.result(), timeout=180)
        except TimeoutError:
            await handle.terminate("test: the canary never ended")
            raise AssertionError(
                f"the canary never ended; generate_load ran {world.calls['generate_load']}x"
            ) from None
        await record_history(handle, "canary-load-worker-died-at-the-end")
    assert result.outcome == "promoted"
    assert world.calls["generate_load"] == 1  # no second chunk after the stop was asked
    assert world.calls["promote_canary"] == 1


async def test_control_update_validates_like_the_approval_gate(
    local_env: WorkflowEnvironment, judge_kind: str
) -> None:
    world = world_with()
    # real time here: one analysis of 3 rounds x 5 s
    steps = [CanaryStep("set_weight", weight=10), CanaryStep("analysis")]
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(local_env.client, world, queue):
        handle = await start(local_env, world, config(steps, judge=judge_kind), queue)
        await wait_for(handle, lambda s: s.phase == "analysing")
        for control, expected in (
            (c.CanaryControl("mallory", c.PROMOTE), "'mallory' may not approve"),
            (c.CanaryControl("carol", c.PROMOTE), "'carol' may not approve"),
            (c.CanaryControl("alice", "yolo"), "'yolo' is not one of"),
        ):
            with pytest.raises(WorkflowUpdateFailedError) as info:
                await handle.execute_update(CanaryWorkflow.control, control)
            assert expected in str(info.value.cause)
        # the initiator may stop their own canary: a pause holds it after the analysis
        record = await handle.execute_update(
            CanaryWorkflow.control, c.CanaryControl("carol", c.PAUSE, "looking at logs")
        )
        assert record.refused == "" and record.actor == "carol"
        paused = await wait_for(handle, lambda s: s.phase == "paused")
        assert paused.paused_reason == "paused by a person"
        assert world.calls["promote_canary"] == 0
        await handle.execute_update(CanaryWorkflow.control, c.CanaryControl("alice", c.RESUME))
        result = await handle.result()
        status = await handle.query(CanaryWorkflow.status)
    assert result.outcome == "promoted"
    assert [(r.actor, r.action) for r in status.controls] == [
        ("carol", "pause"),
        ("alice", "resume"),
    ]


# ---------------------------------------------------------------- judge: sequential
def judged(steps: list[CanaryStep], **analysis: Any) -> CanaryConfig:
    cfg = config(steps, **analysis)
    cfg.judge = "sequential"
    cfg.analysis.count = 12  # at most a minute of 5 s windows per analysis step
    return cfg


def faulty_window(inp: CountWindowInput) -> CountWindowResult:
    """The canary fails 5% of requests; stable 0.5% (a 10x regression)."""
    n = 100.0 * inp.interval_seconds
    return CountWindowResult(n, round(n * 0.05), n, round(n * 0.005), n * 0.01, n * 0.01, 0.1)


async def test_the_sequential_judge_promotes_a_healthy_canary_step_by_step(
    time_env: WorkflowEnvironment,
) -> None:
    world = world_with()
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, judged(SEED_STEPS), queue)
        result = await handle.result()
        status = await handle.query(CanaryWorkflow.status)
    assert result.outcome == "promoted"
    assert world.weights == [10, 50, 80, 100]
    assert world.calls["query_metric"] == 0  # the judge reads the router's counts
    windows = [arg for name, arg in world.log if name == "count_window"]
    assert windows and windows[0].canary_service == "production-api-gateway-canary@file"
    assert windows[0].stable_service == "production-api-gateway-stable@file"
    assert 2 <= len(windows) <= 2 * 12  # each of the 2 analyses decided within its 12 windows
    assert status.judge is not None and status.judge.phase == "Successful"
    assert status.judge.numbers  # the numbers it was decided on are kept for people


async def test_the_sequential_judge_rolls_back_a_regression_with_its_numbers(
    time_env: WorkflowEnvironment,
) -> None:
    world = world_with()
    world.windows = faulty_window
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, judged(SEED_STEPS), queue)
        result = await handle.result()
        await record_history(handle, "canary-sequential-rolled-back")
        status = await handle.query(CanaryWorkflow.status)
    assert result.outcome == "rolled-back"
    assert world.weights == [10, 0]
    assert world.calls["count_window"] <= 3  # 25 canary errors against 2.5 decide at once
    assert status.judge is not None and status.judge.phase == "Failed"
    assert status.judge.reason == result.reason and "error" in result.reason


async def test_no_traffic_never_passes_the_sequential_judge(time_env: WorkflowEnvironment) -> None:
    world = world_with()
    world.windows = lambda inp: CountWindowResult()  # nobody calls the service
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, judged(SEED_STEPS), queue)
        result = await handle.result()
    assert result.outcome == "rolled-back"
    assert world.calls["count_window"] == 12  # the whole step, then Inconclusive
    assert world.calls["promote_canary"] == 0


async def test_uncountable_windows_are_errors_then_roll_back(time_env: WorkflowEnvironment) -> None:
    world = world_with()
    world.windows = lambda inp: CountWindowResult(error="Prometheus at http://x is unreachable")
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start(time_env, world, judged(SEED_STEPS, consecutive_error_limit=2), queue)
        result = await handle.result()
    assert result.outcome == "rolled-back"
    assert result.reason.startswith("3 windows in a row could not be counted")
    assert "exceeds consecutive_error_limit 2" in result.reason


# ---------------------------------------------------------------- the router's metrics
CLUSTER_PROMETHEUS = "http://prometheus.monitoring.svc:9090"


def kubernetes_input(cfg: CanaryConfig, prometheus_url: str = CLUSTER_PROMETHEUS) -> c.CanaryInput:
    """The canary of api-gateway on a Kubernetes target: ingress-nginx routes it."""
    inp = canary_input(cfg)
    inp.target = "kubernetes"
    inp.kubernetes = KubernetesSpec(namespace="go-coffee", prometheus_url=prometheus_url)
    return inp


async def run_canary(
    env: WorkflowEnvironment, world: FakeWorld, inp: c.CanaryInput
) -> c.CanaryResult:
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(env.client, world, queue):
        handle = await env.client.start_workflow(
            CanaryWorkflow.run, inp, id=f"canary-{uuid.uuid4()}", task_queue=queue
        )
        return await handle.result()


def queries(world: FakeWorld) -> list[MetricQueryInput]:
    return [arg for name, arg in world.log if name == "query_metric"]


async def test_a_kubernetes_canary_reads_ingress_nginx_from_the_clusters_prometheus(
    time_env: WorkflowEnvironment,
) -> None:
    world = world_with()
    steps = [CanaryStep("set_weight", weight=10), CanaryStep("analysis")]
    result = await run_canary(time_env, world, kubernetes_input(config(steps)))
    assert result.outcome == "promoted"
    asked = queries(world)
    assert len(asked) == 3 * 3  # 3 rounds x (2 metrics + the request count)
    assert {q.prometheus_url for q in asked} == {CLUSTER_PROMETHEUS}
    canary = 'namespace="go-coffee",ingress="api-gateway",canary=~"go-coffee-api-gateway-canary-.+"'
    for q in asked:
        assert "traefik" not in q.query and "@file" not in q.query
        assert canary in q.query
    count = "sum(increase(nginx_ingress_controller_requests{" + canary + "}[5s]))"
    assert count in {q.query for q in asked}
    assert any("nginx_ingress_controller_request_duration_seconds_bucket" in q.query for q in asked)


async def test_a_local_canary_keeps_traefiks_names_and_the_workers_prometheus(
    time_env: WorkflowEnvironment,
) -> None:
    world = world_with()
    steps = [CanaryStep("set_weight", weight=10), CanaryStep("analysis")]
    result = await run_canary(time_env, world, canary_input(config(steps)))
    assert result.outcome == "promoted"
    asked = queries(world)
    assert {q.prometheus_url for q in asked} == {""}
    assert all('service="production-api-gateway-canary@file"' in q.query for q in asked)
    assert not any("nginx" in q.query for q in asked)


async def test_a_kubernetes_canary_without_a_prometheus_url_asks_the_workers(
    time_env: WorkflowEnvironment,
) -> None:
    world = world_with()
    steps = [CanaryStep("set_weight", weight=10), CanaryStep("analysis")]
    result = await run_canary(time_env, world, kubernetes_input(config(steps), prometheus_url=""))
    assert result.outcome == "promoted"
    asked = queries(world)
    assert {q.prometheus_url for q in asked} == {""}
    assert all("nginx_ingress_controller" in q.query for q in asked)


async def test_the_sequential_judge_counts_ingress_nginx_arms_on_kubernetes(
    time_env: WorkflowEnvironment,
) -> None:
    world = world_with()
    steps = [CanaryStep("set_weight", weight=10), CanaryStep("analysis")]
    result = await run_canary(time_env, world, kubernetes_input(judged(steps)))
    assert result.outcome == "promoted"
    windows = [arg for name, arg in world.log if name == "count_window"]
    assert windows
    assert {(w.router, w.namespace, w.prometheus_url) for w in windows} == {
        ("ingress-nginx", "go-coffee", CLUSTER_PROMETHEUS)
    }
    assert {(w.canary_service, w.stable_service) for w in windows} == {
        ("api-gateway-canary", "api-gateway")
    }


async def test_the_sequential_judge_counts_traefik_arms_on_the_local_platform(
    time_env: WorkflowEnvironment,
) -> None:
    world = world_with()
    steps = [CanaryStep("set_weight", weight=10), CanaryStep("analysis")]
    result = await run_canary(time_env, world, canary_input(judged(steps)))
    assert result.outcome == "promoted"
    windows = [arg for name, arg in world.log if name == "count_window"]
    assert windows
    assert {(w.router, w.namespace, w.prometheus_url) for w in windows} == {("traefik", "", "")}
