"""Replay every checked-in history against today's workflow code.

A workflow change that would make running releases take a different path fails here.
Such a change must keep old histories replaying: guard it with
`if workflow.patched("<change-id>"):` (and later `workflow.deprecate_patch`), then
record a new history beside the old ones (BREWLINE_RECORD_HISTORY=1 make test).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.canary import CanaryWorkflow
from workflows.release import ReleaseWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
WORKFLOWS = [ReleaseWorkflow, CanaryWorkflow]


def test_there_are_histories_for_the_happy_and_failure_paths() -> None:
    names = {path.stem for path in HISTORIES}
    assert "release-e2e-happy-path" in names
    assert {"release-rejected", "release-aborted", "release-tests-failed"} <= names
    assert {"release-canary-promoted", "release-canary-rolled-back"} <= names
    # the canary workflow on its own: promoted, and each way it stops or waits
    assert {
        "canary-promoted",
        "canary-failure-limit-rolled-back",
        "canary-prometheus-down-rolled-back",
        "canary-prometheus-down-paused-resumed",
        "canary-inconclusive-paused-resumed-threshold",
        "canary-sequential-rolled-back",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    id_file = path.with_suffix(".workflow-id")  # recorded beside it since child workflows
    workflow_id = id_file.read_text().strip() if id_file.exists() else path.stem
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(
        history, raise_on_replay_failure=False
    )
    if result.replay_failure is not None:
        pytest.fail(
            f"{path.name} no longer replays: {result.replay_failure}\n"
            "The workflow code changed in a way that breaks releases already running. "
            "Guard the change with workflow.patched(...) so old histories keep their path, "
            "then record a new history (see tests/test_replay.py).",
            pytrace=False,
        )
