"""What a person reads when an activity or a child workflow failed: its innermost message."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError


def failure_reason(exc: BaseException) -> str:
    """The innermost message of an activity or child workflow failure, e.g.
    'TestsFailed: ...'. An exception with a `reason` (StageFailed) gives that."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str):
        return reason
    cause: BaseException | None = exc
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type}: {cause.message}" if cause.type else cause.message
    return str(cause)
