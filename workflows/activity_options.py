"""Timeouts and retry policies for every activity the workflows call, in one place.

Activities are called by name so the workflow never imports their implementations
(which do I/O); tests register mocks under the same names. Business errors listed in
`non_retryable_error_types` fail at once; everything else is retried with backoff.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

T = TypeVar("T")


@dataclass(frozen=True)
class ActivityOptions:
    start_to_close: timedelta
    heartbeat: timedelta | None
    retry: RetryPolicy
    # Deploy-like activities must stop before compensation starts, or the two would race.
    cancellation: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL
    schedule_to_close: timedelta | None = field(default=None)
    # "" = the workflow's task queue; else a suffix: the activity runs on "<queue><suffix>"
    queue_suffix: str = ""


def _retry(attempts: int, *non_retryable: str, initial: float = 2.0) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=initial),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=attempts,
        non_retryable_error_types=list(non_retryable),
    )


# Business error types raised by activities (ApplicationError.type).
TESTS_FAILED = "TestsFailed"
COVERAGE_BELOW_GATE = "CoverageBelowGate"
SCAN_GATE_FAILED = "ScanGateFailed"
INVALID_CONFIG = "InvalidConfig"
BUILD_FAILED = "BuildFailed"
IMAGE_TAG_CONFLICT = "ImageTagConflict"
PLAN_MISMATCH = "PlanMismatch"
PLAN_STALE = "PlanStale"
SMOKE_TEST_FAILED = "SmokeTestFailed"


def test_options(timeout_seconds: int) -> ActivityOptions:
    return ActivityOptions(
        start_to_close=timedelta(seconds=timeout_seconds + 60),
        heartbeat=timedelta(seconds=60),
        retry=_retry(3, TESTS_FAILED, COVERAGE_BELOW_GATE, INVALID_CONFIG),
    )


SCAN = ActivityOptions(
    start_to_close=timedelta(minutes=15),
    heartbeat=timedelta(seconds=60),
    retry=_retry(3, SCAN_GATE_FAILED, INVALID_CONFIG),
)
BUILD = ActivityOptions(
    start_to_close=timedelta(minutes=20),
    heartbeat=timedelta(seconds=60),
    retry=_retry(5, BUILD_FAILED, IMAGE_TAG_CONFLICT, INVALID_CONFIG),
)
TERRAFORM = ActivityOptions(
    start_to_close=timedelta(minutes=30),
    heartbeat=timedelta(seconds=60),
    retry=_retry(5, INVALID_CONFIG, PLAN_MISMATCH, PLAN_STALE, initial=5.0),
    cancellation=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)
DEPLOY = ActivityOptions(
    start_to_close=timedelta(minutes=10),
    heartbeat=timedelta(seconds=30),
    retry=_retry(5, INVALID_CONFIG),
    cancellation=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)
SMOKE = ActivityOptions(
    start_to_close=timedelta(minutes=2),
    heartbeat=None,
    retry=_retry(5, SMOKE_TEST_FAILED, INVALID_CONFIG, initial=1.0),
)
# Compensation must not give up easily: it is what leaves production as it was.
RESTORE = ActivityOptions(
    start_to_close=timedelta(minutes=10),
    heartbeat=timedelta(seconds=30),
    retry=_retry(20, INVALID_CONFIG),
    cancellation=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)


def for_rollout(options: ActivityOptions, rollout_timeout_seconds: int | None) -> ActivityOptions:
    """`options` long enough for a Kubernetes rollout (None: the local target's own).

    A Kubernetes deploy waits up to the spec's rollout timeout for readiness, and a
    promotion waits twice (stable, then the canary's removal), plus helm's own time.
    """
    if rollout_timeout_seconds is None:
        return options
    needed = timedelta(seconds=2 * rollout_timeout_seconds + 300)
    return dataclasses.replace(options, start_to_close=max(options.start_to_close, needed))


# Prometheus outages come back as a result with `error` (an Error measurement), not as a
# failure; only a worker that cannot run the query at all is retried, briefly.
METRIC_QUERY = ActivityOptions(
    start_to_close=timedelta(seconds=20),
    heartbeat=None,
    retry=_retry(2, INVALID_CONFIG, initial=1.0),
)
# The load generator runs in chunks of at most 10 minutes and is cancelled when the canary
# ends; the canary waits for hey to be gone. A cancellation reaches the activity with its
# next heartbeat, which the SDK throttles to 0.8 x the timeout: 10 s keeps that short.
LOAD = ActivityOptions(
    start_to_close=timedelta(minutes=12),
    heartbeat=timedelta(seconds=10),
    retry=_retry(3, INVALID_CONFIG),
    cancellation=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)
# A load generator holds its activity slot for as long as its canary runs: on the
# workflow's own queue, a few canaries at once took every slot of a bounded worker and
# their own weight changes and measurements waited behind them. They run on their own
# queue, polled by a worker of their own (worker.py).
LOAD_QUEUE_SUFFIX = "-load"
LOAD_OWN_QUEUE = dataclasses.replace(LOAD, queue_suffix=LOAD_QUEUE_SUFFIX)


async def call(
    activity: str,
    arg: Any,
    result_type: type[T],
    options: ActivityOptions,
    summary: str,
) -> T:
    """Run an activity by name with its options; `summary` is what the UI shows for it."""
    queue = workflow.info().task_queue + options.queue_suffix if options.queue_suffix else None
    return await workflow.execute_activity(
        activity,
        arg,
        result_type=result_type,
        task_queue=queue,
        start_to_close_timeout=options.start_to_close,
        heartbeat_timeout=options.heartbeat,
        retry_policy=options.retry,
        cancellation_type=options.cancellation,
        summary=summary,
    )


# A notification is a courtesy: the activity reports a failed delivery instead of raising,
# and a worker that cannot even run it is retried briefly, then given up on.
NOTIFY = ActivityOptions(
    start_to_close=timedelta(seconds=15),
    heartbeat=None,
    retry=_retry(3, INVALID_CONFIG, initial=1.0),
)
