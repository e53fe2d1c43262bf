"""Signed decisions, as both workflows check them: statement first, then the signature.

A decision that must be signed is checked in two steps, each giving a reason a person
can act on: what the statement says must be exactly what the workflow waits for
(brewline.signing.mismatch, deterministic, against workflow time), then the signature
must verify as the approver's key (the `verify_approval` activity, which runs
ssh-keygen). With `approval.allow_unsigned` (local demo only) a decision without a
signature passes; one with a signature is still checked, so a bad one is refused.

Both workflows guard this with the patch `signed-approvals`, asked once at the start of
a run: releases and canaries started before it keep deciding as they did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from brewline.model import ApprovalConfig, VerifyApprovalInput, VerifyApprovalResult
    from brewline.signing import mismatch
    from workflows import activity_options as opts
    from workflows.failures import failure_reason

SIGNED_APPROVALS = "signed-approvals"  # patch id
UNSIGNED = "unsigned (allowed)"
# ssh-keygen answers in milliseconds; retried briefly in case the worker itself failed
VERIFY = opts.ActivityOptions(
    start_to_close=timedelta(seconds=30),
    heartbeat=None,
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_attempts=3,
        non_retryable_error_types=[opts.INVALID_CONFIG],
    ),
)


@dataclass
class Expected:
    """The decision the workflow waits for: what a signed statement must name."""

    release_id: str
    stage: str
    version: str
    decision: str
    approver: str
    plan_sha256: str = ""


@dataclass
class Checked:
    """The outcome: `refused` is why not ("" when it may be applied); `signed` says how."""

    refused: str = ""
    signed: str = ""


async def check(
    approval: ApprovalConfig,
    source: str,
    expected: Expected,
    statement: str,
    signature: str,
    required: bool = True,
) -> Checked:
    """Check a decision's statement and signature; `required` False: unsigned is fine."""
    if not signature.strip() and not statement.strip():
        if approval.allow_unsigned or not required:
            return Checked(signed=UNSIGNED)
        return Checked(
            refused=(
                f"this pipeline requires signed decisions and {expected.decision} of "
                f"{expected.stage} by {expected.approver!r} is not signed: sign it with the "
                "approver's SSH key (starter.py does, with --key or ssh-agent's key)"
            )
        )
    why = mismatch(
        statement,
        release_id=expected.release_id,
        stage=expected.stage,
        version=expected.version,
        decision=expected.decision,
        approver=expected.approver,
        now=workflow.now(),
        plan_sha256=expected.plan_sha256,
    )
    if why:
        return Checked(refused=why)
    try:
        result = await opts.call(
            "verify_approval",
            VerifyApprovalInput(
                release_id=expected.release_id,
                source=source,
                allowed_signers=approval.allowed_signers,
                principal=expected.approver,
                statement=statement,
                signature=signature,
            ),
            VerifyApprovalResult,
            VERIFY,
            summary=f"verify {expected.approver}'s signature on {expected.stage}",
        )
    except ActivityError as exc:
        return Checked(refused=f"the signature could not be verified: {failure_reason(exc)}")
    if not result.verified:
        return Checked(refused=result.reason)
    return Checked(signed=f"signed by {result.key}")
