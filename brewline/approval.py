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
    # Compared as one person: a release started as "alice " or "Alice" (a client that
    # skips starter.py's check) is still alice's own release.
    same_person = approver.casefold() == initiator.strip().casefold()
    if same_person and not config.allow_self_approval:
        return (
            f"{approver!r} started this release and may not decide its approval "
            "(separation of duties; pipeline.yaml approval.allow_self_approval is false)"
        )
    if not approve and not reason.strip():
        return "a rejection needs a reason"
    return None
