"""ReleaseWorkflow checks its own input: anyone with access to the namespace can start it
without starter.py, and a bad value must fail the release at once, before any activity,
never leave it stuck retrying a workflow task."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tests.workflows.fakes import FakeWorld, new_worker, release_request
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
