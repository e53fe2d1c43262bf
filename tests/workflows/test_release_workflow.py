"""ReleaseWorkflow on Temporal's test servers with the outside world faked.

Signals and timers run on the time-skipping server (a 24 h approval timeout passes
at once); the `decide` update runs on a real dev server, because time skipping stalls
while a client waits on an update.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from brewline import search_attributes as sa
from brewline.model import ApprovalSignal, DecisionInput, Deployment, ReleaseStatus
from tests.workflows.fakes import (
    FakeWorld,
    business_error,
    new_worker,
    record_history,
    release_request,
    run_until_failed,
    start_release,
    wait_for_stage,
)
from workflows.release import ReleaseWorkflow

OLD = Deployment("production", "api-gateway", "1.3.0", "reg/go-coffee/api-gateway@sha256:old", "")
OLD_STAGING = Deployment("staging", "api-gateway", "1.3.0", "reg/go-coffee/api-gateway@sha256:old")


def awaiting_approval(status: ReleaseStatus) -> bool:
    return status.approval is not None and status.approval.status == "waiting"


async def test_happy_path_deploys_staging_then_production_after_approval(
    time_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    queue = f"tq-{uuid.uuid4()}"
    request = release_request(["api-gateway", "producer"])
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, request, queue)
        status = await wait_for_stage(handle, awaiting_approval)
        assert status.approval.status == "waiting"
        assert "alice" in status.waiting_for
        assert {(d.environment, d.service) for d in status.deployments} == {
            ("staging", "api-gateway"),
            ("staging", "producer"),
        }
        assert world.calls["deploy_service"] == 2  # nothing in production before approval

        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("alice", "staging looks good"))
        result = await handle.result()
        # queries of a finished workflow replay it, so they need the worker
        final = await handle.query(ReleaseWorkflow.status)
        await record_history(handle, "release-happy-path-fakes")

    assert sorted((d.environment, d.service, d.version) for d in result.deployments) == [
        ("production", "api-gateway", "1.4.0"),
        ("production", "producer", "1.4.0"),
        ("staging", "api-gateway", "1.4.0"),
        ("staging", "producer", "1.4.0"),
    ]
    assert result.approval is not None
    assert (result.approval.status, result.approval.decided_by, result.approval.via) == (
        "approved",
        "alice",
        "signal",
    )
    assert result.approval.decided_at is not None
    # stages ran in pipeline order, each service tested, scanned (plus the shared paths) and built
    order = [name for name, _ in world.log]
    assert order.index("terraform_apply") < order.index("deploy_service")
    assert max(i for i, n in enumerate(order) if n == "run_go_tests") < order.index("trivy_scan")
    assert world.calls["run_go_tests"] == 2
    assert world.calls["trivy_scan"] == 3 and world.calls["semgrep_scan"] == 3
    assert world.calls["build_image"] == 2
    assert world.calls["smoke_test"] == 4
    assert world.calls["restore_service"] == 0

    assert final.state == "succeeded"
    assert all(stage.state == "succeeded" for stage in final.stages)
    assert all(stage.started_at and stage.ended_at for stage in final.stages)
    desc = await handle.describe()
    assert desc.typed_search_attributes.get(sa.RELEASE_STAGE) == "succeeded"
    assert desc.typed_search_attributes.get(sa.RELEASE_VERSION) == "1.4.0"
    assert desc.typed_search_attributes.get(sa.RELEASE_SERVICES) == ["api-gateway", "producer"]


async def test_failing_tests_stop_the_release_before_build(time_env: WorkflowEnvironment) -> None:
    world = FakeWorld(failures={"run_go_tests": business_error("TestsFailed", "TestMenu failed")})
    cause, status = await run_until_failed(time_env.client, world, "release-tests-failed")
    assert isinstance(cause, ApplicationError)
    assert cause.type == "ReleaseFailed"
    assert "release failed at test" in cause.message
    assert "TestsFailed: TestMenu failed" in cause.message
    assert world.calls["run_go_tests"] == 1  # business errors are not retried
    assert world.calls["build_image"] == 0 and world.calls["trivy_scan"] == 0
    assert status.state == "failed" and status.stage == "test"  # where it stopped
    assert [s.state for s in status.stages][:3] == ["failed", "pending", "pending"]
    assert status.service_states[0].stages == {"test": "failed"}


async def test_scan_gate_stops_the_release_before_build(time_env: WorkflowEnvironment) -> None:
    world = FakeWorld(
        failures={"trivy_scan": business_error("ScanGateFailed", "1 HIGH finding: DS002")}
    )
    cause, _ = await run_until_failed(time_env.client, world)
    assert "release failed at scan" in str(cause)
    assert "ScanGateFailed: 1 HIGH finding: DS002" in str(cause)
    assert world.calls["build_image"] == 0
    assert world.calls["deploy_service"] == 0


async def test_rejection_restores_what_the_release_deployed(time_env: WorkflowEnvironment) -> None:
    world = FakeWorld(running={("staging", "api-gateway"): OLD_STAGING})
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, release_request(), queue)
        await wait_for_stage(handle, awaiting_approval)
        assert world.running[("staging", "api-gateway")].version == "1.4.0"
        await handle.signal(ReleaseWorkflow.reject, ApprovalSignal("bob", "error budget spent"))
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        status = await handle.query(ReleaseWorkflow.status)
        await record_history(handle, "release-rejected")
    message = str(info.value.cause)
    assert "approval-production" in message and "rejected by bob" in message
    assert "error budget spent" in message
    assert world.running[("staging", "api-gateway")] == OLD_STAGING
    assert ("production", "api-gateway") not in world.running
    assert status.approval.status == "rejected" and status.approval.decided_by == "bob"
    assert status.stage == "approval-production" and status.waiting_for == ""
    assert status.deployments == [OLD_STAGING]


async def test_approval_timeout_counts_as_rejection(time_env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, release_request(), queue)
        await wait_for_stage(handle, awaiting_approval)
        # waiting on the result lets the test server skip the 24 h timer
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        status = await handle.query(ReleaseWorkflow.status)
    assert "approval timed-out" in str(info.value.cause)
    assert status.approval.status == "timed-out" and status.approval.via == "timeout"
    assert status.approval.decided_at - status.approval.requested_at >= timedelta(hours=24)
    assert ("staging", "api-gateway") not in world.running  # staging restored to nothing
    assert world.calls["deploy_service"] == 1


async def test_signals_from_people_who_may_not_approve_are_recorded_and_ignored(
    time_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, release_request(initiator="alice"), queue)
        await wait_for_stage(handle, awaiting_approval)
        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("mallory", "trust me"))
        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("alice", "my own release"))
        await handle.signal(ReleaseWorkflow.reject, ApprovalSignal("bob", ""))
        status = await wait_for_stage(handle, lambda s: len(s.approval.refused) == 3)
        assert status.approval.status == "waiting"
        whys = [r.why for r in status.approval.refused]
        assert "'mallory' may not approve releases" in whys[0]
        assert "separation of duties" in whys[1]
        assert "a rejection needs a reason" in whys[2]
        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("bob", "ok"))
        result = await handle.result()
    assert result.approval.decided_by == "bob"


async def test_abort_during_production_deploy_restores_both_environments(
    time_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld(
        running={("production", "api-gateway"): OLD, ("staging", "api-gateway"): OLD_STAGING},
        block_deploy_in="production",
    )
    request = release_request()
    request.pipeline.environment("production").strategy = "direct"  # a canary: test_canary_release
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, request, queue)
        await wait_for_stage(handle, awaiting_approval)
        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("alice", ""))
        await asyncio.wait_for(world.deploy_started.wait(), 30)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        status = await handle.query(ReleaseWorkflow.status)
        await record_history(handle, "release-aborted")
    assert isinstance(info.value.cause, CancelledError)
    restores = [arg for name, arg in world.log if name == "restore_service"]
    assert [(r.environment, r.previous) for r in restores] == [
        ("production", OLD),
        ("staging", OLD_STAGING),
    ]
    assert world.running == {
        ("production", "api-gateway"): OLD,
        ("staging", "api-gateway"): OLD_STAGING,
    }
    assert status.state == "aborted"
    assert "aborted at deploy-production" in status.failure
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.CANCELED


async def test_transient_failure_is_retried_and_the_release_succeeds(
    time_env: WorkflowEnvironment,
) -> None:
    attempts: list[int] = []

    def flaky(_: object) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("registry 127.0.0.1:5000 refused the connection")

    world = FakeWorld(failures={"build_image": flaky})
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, release_request(), queue)
        await wait_for_stage(handle, awaiting_approval)
        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("bob", ""))
        result = await handle.result()
        await record_history(handle, "release-transient-retry")
    assert len(attempts) == 3
    assert {d.environment for d in result.deployments} == {"staging", "production"}


# --------------------------------------------------------------- the decide update
async def test_decide_update_refuses_outsiders_and_self_approval_then_accepts(
    local_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(local_env.client, world, queue):
        handle = await start_release(local_env.client, release_request(initiator="alice"), queue)
        await wait_for_stage(handle, awaiting_approval)
        desc = await handle.describe()
        assert desc.typed_search_attributes.get(sa.RELEASE_STAGE) == sa.AWAITING_APPROVAL

        for decision, expected in (
            (DecisionInput("mallory", True), "'mallory' may not approve releases"),
            (DecisionInput("alice", True), "separation of duties"),
            (DecisionInput("bob", False, "  "), "a rejection needs a reason"),
        ):
            with pytest.raises(WorkflowUpdateFailedError) as info:
                await handle.execute_update(ReleaseWorkflow.decide, decision)
            assert expected in str(info.value.cause)
        # validator rejections never enter history, so they are not recorded as refusals
        status = await handle.query(ReleaseWorkflow.status)
        assert status.approval.status == "waiting" and status.approval.refused == []

        result = await handle.execute_update(
            ReleaseWorkflow.decide, DecisionInput("bob", True, "canary dashboards clean")
        )
        assert result.accepted and result.status == "approved"
        final = await handle.result()
        with pytest.raises(RPCError, match="already completed"):
            await handle.execute_update(ReleaseWorkflow.decide, DecisionInput("bob", True))
    assert final.approval.via == "update"
    assert final.approval.reason == "canary dashboards clean"


async def test_decide_before_the_gate_opens_is_refused(local_env: WorkflowEnvironment) -> None:
    world = FakeWorld(block_deploy_in="staging")
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(local_env.client, world, queue):
        handle = await start_release(local_env.client, release_request(), queue)
        await asyncio.wait_for(world.deploy_started.wait(), 30)
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(ReleaseWorkflow.decide, DecisionInput("bob", True))
        assert "no approval is waiting" in str(info.value.cause)
        assert "deploy-staging" in str(info.value.cause)
        await handle.terminate("test over")


async def test_both_scanners_report_before_the_gate_stops_the_release(
    time_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld(
        failures={
            "trivy_scan": business_error("ScanGateFailed", "trivy: 1 HIGH finding: DS002"),
            "semgrep_scan": business_error("ScanGateFailed", "semgrep: 2 HIGH findings"),
        }
    )
    cause, _ = await run_until_failed(time_env.client, world)
    message = str(cause)
    assert "api-gateway: ScanGateFailed: trivy: 1 HIGH finding: DS002" in message
    assert "ScanGateFailed: semgrep: 2 HIGH findings" in message
    assert world.calls["build_image"] == 0


async def test_a_failed_terraform_plan_fails_the_infra_stage_with_its_reason(
    time_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld(
        failures={"terraform_plan": business_error("InvalidConfig", "main.tf:3: bad block")}
    )
    cause, status = await run_until_failed(time_env.client, world)
    assert "release failed at infra: InvalidConfig: main.tf:3: bad block" in str(cause)
    assert status.state == "failed" and status.stage == "infra"
    # infra runs before build (its outputs say where images go): nothing was built
    assert [(s.name, s.state) for s in status.stages][:4] == [
        ("test", "succeeded"),
        ("scan", "succeeded"),
        ("infra", "failed"),
        ("build", "pending"),
    ]
    assert world.calls["terraform_plan"] == 1 and world.calls["build_image"] == 0
    assert world.calls["deploy_service"] == 0
