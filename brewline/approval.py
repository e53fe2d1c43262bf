"""Who may decide an approval gate: one rule shared by the update validator and the signals.

Pure, deterministic, safe inside the workflow sandbox.
"""

from __future__ import annotations

from brewline.model import ApprovalConfig


def refusal(
    config: ApprovalConfig, initiator: str, approver: str, approve: bool, reason: str
) -> str | None:
    """Why this decision must be refused, or None when it is allowed."""
    approver = approver.strip()
    if not approver:
        return "an approval decision needs the approver's name"
    if approver not in config.approvers:
        allowed = ", ".join(config.approvers) or "nobody (pipeline.yaml lists no approvers)"
        return f"{approver!r} may not approve releases; allowed approvers: {allowed}"
    if approver == initiator and not config.allow_self_approval:
        return (
            f"{approver!r} started this release and may not decide its approval "
            "(separation of duties; pipeline.yaml approval.allow_self_approval is false)"
        )
    if not approve and not reason.strip():
        return "a rejection needs a reason"
    return None
