"""ReleaseWorkflow and CanaryWorkflow check their own input: anyone with access to the
namespace can start them without starter.py, and a bad value must fail at once, before
any activity, never leave the workflow stuck retrying a workflow task."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from brewline.canary_config import CanaryStep
from tests.workflows.fakes import FakeWorld, new_worker, release_request
from tests.workflows.test_canary_workflow import SEED_STEPS, canary_input, config
from workflows.canary import CanaryWorkflow
from workflows.release import ReleaseWorkflow


@pytest.mark.parametrize(
    ("change", "workflow_id", "expected"),
    [
        ({"version": "1.0.0; rm -rf /"}, "release-ok", "version '1.0.0; rm -rf /' is not allowed"),
        ({"version": "--set=x"}, "release-ok", "version '--set=x' is not allowed"),
        ({"initiator": "alice "}, "release-ok", "initiator 'alice ' is not allowed"),
        ({"services": ["billing"]}, "release-ok", "service 'billing' is not in the pipeline"),
        ({"services": []}, "release-ok", "a release needs at least one service"),
        ({"environments": ["mars"]}, "release-ok", "environment 'mars' is not in the pipeline"),
        ({}, "../../etc", "release id '../../etc' is not allowed"),
    ],
)
async def test_a_bad_request_fails_at_once_and_runs_nothing(
    time_env: WorkflowEnvironment, change: dict[str, object], workflow_id: str, expected: str
) -> None:
    world = FakeWorld()
    request = dataclasses.replace(release_request(), **change)  # type: ignore[arg-type]
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        # a fresh id per case, except where the id itself is the bad value
        wid = workflow_id if workflow_id != "release-ok" else f"release-{uuid.uuid4()}"
        handle = await time_env.client.start_workflow(
            ReleaseWorkflow.run, request, id=wid, task_queue=queue
        )
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidRequest"
    assert expected in cause.message
    assert sum(world.calls.values()) == 0  # no activity ran, not even a notification


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"version": "1.4.0 --set x=y"}, "version '1.4.0 --set x=y' is not allowed"),
        ({"service": "../api-gateway"}, "service '../api-gateway' is not allowed"),
        ({"environment": "Production"}, "environment 'Production' is not allowed"),
        ({"initiator": ""}, "initiator '' is not allowed"),
        ({"release_id": "-rf"}, "release id '-rf' is not allowed"),
        ({"target": "mainframe"}, "target 'mainframe' is not allowed: local, kubernetes"),
        ({"target": "kubernetes"}, "target 'kubernetes' needs its kubernetes spec"),
        ({"steps": []}, "a canary needs at least one step"),
        ({"steps": [CanaryStep("set_weight", weight=150)]}, "step 1: weight 150 is not a"),
        ({"steps": [CanaryStep("jump")]}, "step 1: kind 'jump' is not one of"),
        ({"steps": [CanaryStep("pause", pause_seconds=-5)]}, "step 1: pause of -5 s"),
    ],
)
async def test_a_canary_started_directly_with_bad_input_fails_at_once(
    time_env: WorkflowEnvironment, change: dict[str, object], expected: str
) -> None:
    world = FakeWorld()
    steps = change.pop("steps", SEED_STEPS)
    inp = dataclasses.replace(canary_input(config(steps)), **change)  # type: ignore[arg-type]
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await time_env.client.start_workflow(
            CanaryWorkflow.run, inp, id=f"canary-{uuid.uuid4()}", task_queue=queue
        )
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidRequest"
    assert expected in cause.message
    assert sum(world.calls.values()) == 0  # nothing deployed, no weight, no notification
