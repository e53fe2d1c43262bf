"""Signed approvals on the time-skipping server, with the REAL verify_approval activity
(ssh-keygen on keys made here): a correct signature is applied; an unsigned, foreign,
replayed or expired one is refused with its reason and recorded, the gate still waiting."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from brewline import canary as c
from brewline.canary_config import CanaryStep
from brewline.model import ApprovalSignal, DecisionInput, Deployment, ReleaseRequest
from brewline.signing import PLAN_REVIEW_STAGE
from tests.signers import ALLOWED_SIGNERS, Signer, make_signer, signed, write_allowed_signers
from tests.workflows.fakes import (
    FakeWorld,
    new_worker,
    record_history,
    release_request,
    start_release,
    wait_for_stage,
)
from tests.workflows.test_canary_workflow import canary_input, config, wait_for
from tests.workflows.test_infra_stage import (
    DESTROYING,
    LOCAL_ROOT,
    REVIEWED,
    production_gate,
    reviewing,
)
from tests.workflows.test_release_workflow import awaiting_approval
from workflows.canary import CanaryWorkflow
from workflows.release import ReleaseWorkflow

STAGE = "approval-production"


@dataclasses.dataclass
class Keys:
    source: Path
    alice: Signer
    bob: Signer
    mallory: Signer  # a key nobody listed


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    source = tmp_path / "source"
    alice = make_signer(tmp_path / "keys", "alice")
    bob = make_signer(tmp_path / "keys", "bob")
    write_allowed_signers(source, alice, bob)
    return Keys(source, alice, bob, make_signer(tmp_path / "keys", "mallory"))


def signed_request(keys: Keys) -> ReleaseRequest:
    request = release_request()
    request.source = str(keys.source)
    request.pipeline.approval = dataclasses.replace(
        request.pipeline.approval, allowed_signers=ALLOWED_SIGNERS, allow_unsigned=False
    )
    return request


async def test_a_signed_approval_is_applied_and_bad_ones_are_refused_with_their_reason(
    time_env: WorkflowEnvironment, keys: Keys
) -> None:
    world = FakeWorld()
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, signed_request(keys), queue)
        await wait_for_stage(handle, awaiting_approval)
        rid, now = handle.id, await time_env.get_current_time()

        def approve(signer: Signer, *args: object, **kwargs: object) -> ApprovalSignal:
            text, sig = signed(signer, *args, **kwargs)  # type: ignore[arg-type]
            return ApprovalSignal("alice", "looks good", statement=text, signature=sig)

        attempts = [
            (ApprovalSignal("alice", "unsigned"), "requires signed decisions"),
            (
                approve(keys.mallory, rid, STAGE, "1.4.0", "approve", now, approver="alice"),
                "does not verify as a key of 'alice'",
            ),
            (
                approve(keys.bob, rid, STAGE, "1.4.0", "approve", now, approver="alice"),
                "does not verify as a key of 'alice'",
            ),
            (
                approve(
                    keys.alice,
                    "release-go-coffee-api-gateway-1.3.0",
                    STAGE,
                    "1.3.0",
                    "approve",
                    now,
                ),
                "for release 'release-go-coffee-api-gateway-1.3.0'",
            ),
            (
                approve(keys.alice, rid, "approval-staging", "1.4.0", "approve", now),
                "for stage 'approval-staging', not 'approval-production'",
            ),
            (
                approve(keys.alice, rid, STAGE, "1.4.0", "reject", now),
                "for decision 'reject', not 'approve'",
            ),
            (
                approve(
                    keys.alice, rid, STAGE, "1.4.0", "approve", now, issued_ago=timedelta(hours=1)
                ),
                "expired at",
            ),
        ]
        for count, (signal, reason) in enumerate(attempts, start=1):
            await handle.signal(ReleaseWorkflow.approve, signal)
            status = await wait_for_stage(
                handle,
                lambda s, n=count: len(s.approval.refused) == n,  # type: ignore[misc]
            )
            assert reason in status.approval.refused[-1].why, status.approval.refused[-1].why
            assert status.approval.status == "waiting"  # the gate still waits
        assert world.calls["deploy_service"] == 1  # staging only: nothing in production yet

        await handle.signal(
            ReleaseWorkflow.approve, approve(keys.alice, rid, STAGE, "1.4.0", "approve", now)
        )
        result = await handle.result()
        await record_history(handle, "release-signed-approval-refusals")
    assert result.approval is not None
    assert (result.approval.status, result.approval.decided_by) == ("approved", "alice")
    assert result.approval.signed.startswith("signed by alice, ED25519 key SHA256:")
    assert [r.approver for r in result.approval.refused] == ["alice"] * len(attempts)


async def test_the_decide_update_refuses_a_bad_signature_and_records_it(
    local_env: WorkflowEnvironment, keys: Keys
) -> None:
    world = FakeWorld()
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(local_env.client, world, queue):
        handle = await start_release(local_env.client, signed_request(keys), queue)
        await wait_for_stage(handle, awaiting_approval)
        now = await local_env.get_current_time()
        text, sig = signed(keys.mallory, handle.id, STAGE, "1.4.0", "approve", now, approver="bob")
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(
                ReleaseWorkflow.decide, DecisionInput("bob", True, "", "", text, sig)
            )
        assert "does not verify as a key of 'bob'" in str(info.value.cause)
        status = await handle.query(ReleaseWorkflow.status)
        assert status.approval is not None and status.approval.status == "waiting"
        assert "does not verify" in status.approval.refused[-1].why
        text, sig = signed(keys.bob, handle.id, STAGE, "1.4.0", "approve", now)
        result = await handle.execute_update(
            ReleaseWorkflow.decide, DecisionInput("bob", True, "ok", "", text, sig)
        )
        assert result.status == "approved"  # type: ignore[attr-defined]
        await handle.result()


async def test_a_plan_review_must_be_signed_over_the_plan_sha256(
    time_env: WorkflowEnvironment, keys: Keys
) -> None:
    world = FakeWorld(plans={LOCAL_ROOT: DESTROYING})
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, signed_request(keys), queue)
        await wait_for_stage(handle, reviewing)
        rid, now = handle.id, await time_env.get_current_time()
        # signed, naming the plan in the decision but not in the signed statement
        text, sig = signed(keys.bob, rid, PLAN_REVIEW_STAGE, "1.4.0", "approve", now)
        await handle.signal(
            ReleaseWorkflow.approve, ApprovalSignal("bob", "ok", REVIEWED, text, sig)
        )
        status = await wait_for_stage(handle, lambda s: len(s.approvals[0].refused) == 1)
        assert (
            "for Terraform plan (sha256) '-', not '" + REVIEWED
            in status.approvals[0].refused[0].why
        )
        assert reviewing(status) and world.calls["terraform_apply"] == 0

        text, sig = signed(
            keys.bob, rid, PLAN_REVIEW_STAGE, "1.4.0", "approve", now, plan_sha256=REVIEWED
        )
        await handle.signal(
            ReleaseWorkflow.approve, ApprovalSignal("bob", "ok", REVIEWED, text, sig)
        )
        status = await wait_for_stage(handle, production_gate)
        assert status.approvals[0].status == "approved"
        assert status.approvals[0].signed.startswith("signed by bob")
        text, sig = signed(keys.alice, rid, STAGE, "1.4.0", "approve", now)
        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("alice", "", "", text, sig))
        await handle.result()
        await record_history(handle, "release-signed-plan-review")
    assert world.calls["terraform_apply"] == 1


async def test_a_canary_promote_must_be_signed_a_pause_need_not(
    time_env: WorkflowEnvironment, keys: Keys
) -> None:
    world = FakeWorld(
        running={("production", "api-gateway"): Deployment("production", "api-gateway", "1", "i@1")}
    )
    inp = canary_input(config([CanaryStep("set_weight", weight=10), CanaryStep("pause")]))
    inp.source = str(keys.source)
    inp.approval = dataclasses.replace(
        inp.approval, allowed_signers=ALLOWED_SIGNERS, allow_unsigned=False
    )
    stage = "canary-production-api-gateway"
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await time_env.client.start_workflow(
            CanaryWorkflow.run, inp, id=f"canary-{uuid.uuid4()}", task_queue=queue
        )

        async def controls(n: int) -> list[c.ControlRecord]:
            return list((await wait_for(handle, lambda s: len(s.controls) == n)).controls)

        await wait_for(handle, lambda s: s.phase == "paused")
        now = await time_env.get_current_time()
        await handle.signal(CanaryWorkflow.pause, c.CanaryControl("carol", c.PAUSE, "lunch"))
        await handle.signal(CanaryWorkflow.resume, c.CanaryControl("bob", c.RESUME))
        await handle.signal(CanaryWorkflow.promote, c.CanaryControl("bob", c.PROMOTE))
        records = await controls(3)
        assert [(r.action, r.refused == "") for r in records] == [
            ("pause", True),
            ("resume", True),
            ("promote", False),
        ]
        assert "requires signed decisions" in records[2].refused
        # signed for the pause of another service's canary: a replay, refused
        text, sig = signed(
            keys.bob, inp.release_id, "canary-production-producer", "1.4.0", "promote", now
        )
        await handle.signal(
            CanaryWorkflow.promote, c.CanaryControl("bob", c.PROMOTE, "", text, sig)
        )
        records = await controls(4)
        assert "for stage 'canary-production-producer'" in records[3].refused
        text, sig = signed(keys.bob, inp.release_id, stage, "1.4.0", "promote", now)
        await handle.signal(
            CanaryWorkflow.promote, c.CanaryControl("bob", c.PROMOTE, "", text, sig)
        )
        result = await handle.result()
        final = await handle.query(CanaryWorkflow.status)
    assert result.outcome == "promoted"
    assert final.controls[4].refused == "" and final.controls[4].signed.startswith("signed by bob")
