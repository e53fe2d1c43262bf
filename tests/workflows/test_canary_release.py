"""ReleaseWorkflow with a canary production (pipeline.yaml's strategy: canary), faked world.

The release starts one CanaryWorkflow child per service; a promoted canary is the
production deploy, a rolled-back one fails the release with the analysis' reason while
staging keeps the new version, and an abort rolls the canary back before the release
restores what it changed.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment

from brewline import canary as c
from brewline.canary_config import CanaryStep
from brewline.model import (
    ApprovalSignal,
    NotifyInput,
    ReleaseRequest,
    ReleaseStatus,
)
from tests.workflows.fakes import (
    FakeWorld,
    new_worker,
    record_history,
    release_request,
    start_release,
    wait_for_stage,
)
from tests.workflows.test_canary_workflow import failing_success_rate, wait_for
from tests.workflows.test_release_workflow import OLD, OLD_STAGING, awaiting_approval
from workflows.canary import CanaryWorkflow
from workflows.release import ReleaseWorkflow, canary_workflow_id


def canary_started(status: ReleaseStatus) -> bool:
    return bool(status.canaries)


def users_traffic(request: ReleaseRequest, *steps: CanaryStep) -> ReleaseRequest:
    """No load generator (a running activity would stop the test server skipping time),
    and `steps` instead of pipeline.yaml's when given."""
    assert request.pipeline.canary is not None
    request.pipeline.canary.traffic = "users"
    if steps:
        request.pipeline.canary.steps = list(steps)
    return request


async def start_approved(
    client: Client, request: ReleaseRequest, queue: str
) -> WorkflowHandle[ReleaseWorkflow, Any]:
    """Start the release and approve it for production as alice once it waits."""
    handle = await start_release(client, request, queue)
    await wait_for_stage(handle, awaiting_approval)
    await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("alice", ""))
    return handle


async def current_details(handle: WorkflowHandle[Any, Any]) -> str:
    """What the Temporal UI shows as the workflow's current details."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return str(metadata.current_details)


def both_running() -> FakeWorld:
    return FakeWorld(
        running={("production", "api-gateway"): OLD, ("staging", "api-gateway"): OLD_STAGING}
    )


async def test_a_promoted_canary_is_the_production_deploy(time_env: WorkflowEnvironment) -> None:
    world = both_running()
    request = release_request()
    request.container_env = {"api-gateway": {"FEATURE_X": "on"}}
    request.pipeline.notify.webhook = "http://127.0.0.1:9/hook"
    assert request.pipeline.canary is not None
    # the load generator runs (in real time): short analyses keep the test quick
    request.pipeline.canary.analysis.interval_seconds = 2
    request.pipeline.canary.analysis.count = 1
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_approved(time_env.client, request, queue)
        result = await handle.result()
        status = await handle.query(ReleaseWorkflow.status)
        child_id = canary_workflow_id(handle.id, "production", "api-gateway")
        canary = await time_env.client.get_workflow_handle(child_id).query(CanaryWorkflow.status)
        release_details = await current_details(handle)
        canary_details = await current_details(time_env.client.get_workflow_handle(child_id))
        await record_history(handle, "release-canary-promoted")

    # the UI shows the canary from the release, and its steps in its own details
    assert f"- canary production/api-gateway ({child_id}): promoted" in release_details
    assert "**promoted** api-gateway 1.4.0 in production: step 9/9 (done), canary weight 100%" in (
        canary_details
    )
    assert "- request-success-rate: Successful (1 >= 0.99)" in canary_details
    [ref] = status.canaries
    assert (ref.environment, ref.service, ref.workflow_id, ref.outcome) == (
        "production",
        "api-gateway",
        child_id,
        "promoted",
    )
    assert canary.phase == "promoted" and canary.weight == 100
    production = world.running[("production", "api-gateway")]
    assert (production.version, result.deployments[-1].version) == ("1.4.0", "1.4.0")
    # staging took all traffic at once; production went through the canary
    deploys = [arg for name, arg in world.log if name == "deploy_service"]
    assert [(d.environment, d.env) for d in deploys] == [("staging", {"FEATURE_X": "on"})]
    [started] = [arg for name, arg in world.log if name == "deploy_canary"]
    assert started.env == {"FEATURE_X": "on"}
    assert world.weights == [10, 20, 50, 80, 100]
    # the load generator calls the service's business endpoint from pipeline.yaml
    loads = [arg for name, arg in world.log if name == "generate_load"]
    assert loads and all(load.path == "/api/v1/menu" for load in loads)
    smoke = [arg.environment for name, arg in world.log if name == "smoke_test"]
    assert smoke == ["staging", "production"]  # production smoke-tested after promotion
    events = [arg.event for name, arg in world.log if name == "notify"]
    assert events[:2] == ["started", "awaiting-approval"]
    assert events.count("canary-step") == 9
    assert events[-2:] == ["promoted", "succeeded"]
    notes: list[NotifyInput] = [arg for name, arg in world.log if name == "notify"]
    assert all(n.webhook_url == "http://127.0.0.1:9/hook" for n in notes)
    assert "api-gateway 1.4.0 in production: step 1/9 done: canary at 10%" in [
        n.text for n in notes
    ]


async def test_a_rolled_back_canary_fails_the_release_and_staging_keeps_its_version(
    time_env: WorkflowEnvironment,
) -> None:
    world = both_running()
    world.metrics = failing_success_rate
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_approved(time_env.client, users_traffic(release_request()), queue)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        status = await handle.query(ReleaseWorkflow.status)
        await record_history(handle, "release-canary-rolled-back")

    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ReleaseFailed"
    # the reason names the metric, the values measured and the limit crossed
    assert "release failed at deploy-production: api-gateway: canary rolled back: " in str(cause)
    assert "request-success-rate: 1 failed measurement (0.8; condition >= 0.99)" in str(cause)
    assert "exceeds failure_limit 0" in str(cause)
    assert status.state == "failed" and status.stage == "deploy-production"
    [ref] = status.canaries
    assert ref.outcome == "rolled-back" and "request-success-rate" in ref.reason
    # production: the canary was taken out, stable untouched; staging keeps the new version
    assert world.weights == [10, 0]
    assert world.running[("production", "api-gateway")] == OLD
    assert world.running[("staging", "api-gateway")].version == "1.4.0"
    assert world.canary == {}
    assert world.calls["restore_service"] == 0
    assert "compensated" not in {s.state for s in status.stages}


async def test_abort_during_the_canary_rolls_it_back_then_restores_both_environments(
    time_env: WorkflowEnvironment,
) -> None:
    world = both_running()
    # a pause for a person: the canary waits there until the release is aborted
    request = users_traffic(
        release_request(), CanaryStep("set_weight", weight=10), CanaryStep("pause")
    )
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_approved(time_env.client, request, queue)
        status = await wait_for_stage(handle, canary_started)
        child = time_env.client.get_workflow_handle(status.canaries[0].workflow_id)
        for _ in range(600):
            canary = await child.query(CanaryWorkflow.status)
            if canary.phase == "paused":
                break
        assert canary.phase == "paused" and canary.weight == 10
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        final = await handle.query(ReleaseWorkflow.status)
        canary = await child.query(CanaryWorkflow.status)
        child_desc = await child.describe()

    assert isinstance(info.value.cause, CancelledError)
    assert canary.phase == "rolled-back" and canary.reason == "the release was aborted"
    assert child_desc.status == WorkflowExecutionStatus.CANCELED
    order = [name for name, _ in world.log]
    # the canary is gone before the release restores anything
    assert order.index("rollback_canary") < order.index("restore_service")
    restores = [(a.environment, a.previous) for name, a in world.log if name == "restore_service"]
    assert restores == [("production", OLD), ("staging", OLD_STAGING)]
    assert final.state == "aborted" and final.canaries[0].outcome == "aborted"


async def test_a_first_production_deploy_has_no_stable_to_compare_so_goes_direct(
    time_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_approved(time_env.client, release_request(), queue)
        await handle.result()
        status = await handle.query(ReleaseWorkflow.status)
    assert status.canaries == []
    assert world.calls["deploy_canary"] == 0
    assert [a.environment for n, a in world.log if n == "deploy_service"] == [
        "staging",
        "production",
    ]
    assert world.calls["notify"] == 0  # no webhook in pipeline.yaml: no notification activity


async def test_a_failing_webhook_never_fails_the_release(time_env: WorkflowEnvironment) -> None:
    def worker_cannot_send(_: object) -> None:
        raise RuntimeError("no route to the webhook")

    world = FakeWorld(failures={"notify": worker_cannot_send})
    request = release_request()
    request.pipeline.notify.webhook = "http://127.0.0.1:9/hook"
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_approved(time_env.client, request, queue)
        result = await handle.result()
    assert result.deployments
    assert world.calls["notify"] == 3 * 3  # started, awaiting-approval, succeeded; 3 tries each


async def test_people_steer_the_canary_through_its_control_update(
    local_env: WorkflowEnvironment,
) -> None:
    """The canary child answers `control` like the approval gate: outsiders are refused."""
    world = both_running()
    request = users_traffic(
        release_request(),
        CanaryStep("set_weight", weight=10),
        CanaryStep("pause"),
        CanaryStep("set_weight", weight=50),
        CanaryStep("analysis"),
    )
    assert request.pipeline.canary is not None
    request.pipeline.canary.analysis.interval_seconds = 2
    request.pipeline.canary.analysis.count = 1
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(local_env.client, world, queue):
        handle = await start_approved(local_env.client, request, queue)
        status = await wait_for_stage(handle, canary_started)
        child = local_env.client.get_workflow_handle(status.canaries[0].workflow_id)
        # promote skips the pause it is waiting in: wait until it waits there
        await wait_for(child, lambda st: st.phase == "paused")
        outsider = c.CanaryControl("mallory", c.PROMOTE)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await child.execute_update(CanaryWorkflow.control, outsider)
        assert "'mallory' may not approve releases" in str(refused.value.cause)
        record = await child.execute_update(
            CanaryWorkflow.control, c.CanaryControl("bob", c.PROMOTE, "looks fine")
        )
        assert (record.actor, record.action, record.refused) == ("bob", c.PROMOTE, "")
        await handle.result()
        canary = await child.query(CanaryWorkflow.status)
    assert canary.phase == "promoted"
    assert [(r.actor, r.action) for r in canary.controls] == [("bob", "promote")]
    assert world.weights == [10, 50, 100]
