"""Release events to the pipeline's webhook, from any workflow; never a reason to fail.

No webhook configured means no activity at all, so a pipeline without `notify:` has no
notification events in its history.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from brewline.model import NotifyInput, NotifyResult
    from workflows import activity_options as opts


async def notify(
    webhook: str, release_id: str, event: str, text: str, **fields: str
) -> NotifyResult | None:
    """Send one event; None when no webhook is set. A failure is logged, never raised."""
    if not webhook:
        return None
    try:
        result = await opts.call(
            "notify",
            NotifyInput(release_id, event, text, webhook, dict(fields)),
            NotifyResult,
            opts.NOTIFY,
            f"notify {event}",
        )
    except ActivityError as exc:
        if is_cancelled_exception(exc):
            raise
        workflow.logger.warning("notification %s not sent: %s", event, exc)
        return None
    if not result.delivered:
        workflow.logger.warning("notification %s not delivered: %s", event, result.error)
    return result
