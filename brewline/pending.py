"""What a release is doing right now, from Temporal's own records: the activities its
workflow and its canaries wait for, with attempt, last heartbeat and last failure.

The first thing someone paged for a stuck release asks: `starter.py status` prints it,
and the chaos suite reports it for a release that does not finish.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client
from temporalio.service import RPCError

_STATES = {
    PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED: "scheduled",
    PendingActivityState.PENDING_ACTIVITY_STATE_STARTED: "started",
    PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED: "cancel requested",
    PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED: "paused",
    PendingActivityState.PENDING_ACTIVITY_STATE_PAUSE_REQUESTED: "pause requested",
}
MAX_TEXT = 200  # heartbeat details and failures are cut to this many characters


@dataclass
class PendingWork:
    """One activity a workflow waits for."""

    workflow_id: str
    activity: str
    state: str  # scheduled, started, cancel requested, paused, ...
    attempt: int
    maximum_attempts: int  # 0: no limit
    last_heartbeat: datetime | None
    heartbeat: str  # the last heartbeat's details, one line
    last_failure: str  # why the previous attempt ended, one line
    next_attempt: datetime | None  # when a failed attempt is retried


async def pending_work(client: Client, workflow_ids: Iterable[str]) -> list[PendingWork]:
    """The pending activities of each workflow (one that cannot be described is skipped)."""
    found: list[PendingWork] = []
    for workflow_id in workflow_ids:
        try:
            description = await client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            continue
        for info in description.raw_description.pending_activities:
            found.append(
                PendingWork(
                    workflow_id=workflow_id,
                    activity=info.activity_type.name,
                    state=_STATES.get(info.state, "unknown"),
                    attempt=info.attempt,
                    maximum_attempts=info.maximum_attempts,
                    last_heartbeat=_time(info.last_heartbeat_time),
                    heartbeat=_one_line(
                        " ".join(_payload_text(p) for p in info.heartbeat_details.payloads)
                    ),
                    last_failure=_one_line(info.last_failure.message)
                    if info.HasField("last_failure")
                    else "",
                    next_attempt=_time(info.next_attempt_schedule_time),
                )
            )
    return found


def describe_pending(work: PendingWork, now: datetime | None = None) -> str:
    """One line: `deploy_service (started, attempt 2 of 5, last heartbeat 4s ago: ...)`."""
    now = now or datetime.now(UTC)
    of = f" of {work.maximum_attempts}" if work.maximum_attempts else ""
    parts = [work.state, f"attempt {work.attempt}{of}"]
    if work.last_heartbeat is not None:
        beat = f"last heartbeat {_ago(now, work.last_heartbeat)} ago"
        parts.append(f"{beat}: {work.heartbeat}" if work.heartbeat else beat)
    if work.next_attempt is not None and work.state == "scheduled":
        parts.append(f"next attempt in {_ago(work.next_attempt, now)}")
    if work.last_failure:
        parts.append(f"last failure: {work.last_failure}")
    return f"{work.activity} ({', '.join(parts)})"


def _time(stamp: Timestamp) -> datetime | None:
    """A protobuf time stamp as a UTC datetime; None when it was never set."""
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToDatetime().replace(tzinfo=UTC)


def _ago(now: datetime, then: datetime) -> str:
    return f"{max(0, round((now - then).total_seconds()))}s"


def _payload_text(payload: Payload) -> str:
    """A heartbeat detail as text (activities here send JSON: a string or the runner's)."""
    try:
        value = json.loads(payload.data)
    except ValueError:
        return payload.data.decode(errors="replace")
    if isinstance(value, dict) and "tail" in value:  # the runner's: the command's last lines
        tail = value.get("tail") or []
        return f"{value.get('command', '')}: {tail[-1] if tail else ''}".strip()
    return value if isinstance(value, str) else json.dumps(value)


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_TEXT else flat[: MAX_TEXT - 3] + "..."
