"""Fault: the Terraform state lock is held by another process when the release applies.

The real terraform (offline configuration of tests/activities/testdata, local backend)
applies a reviewed plan while another process holds the local backend's lock: an fcntl
lock on the state file, as a running terraform takes it. terraform_apply runs in a
worker on the time-skipping server, called with the release's own TERRAFORM options
(workflows/activity_options.py), so Temporal's real retry policy applies:

- the holder lets go after the first attempt: the second attempt applies the plan;
- the holder never lets go: every attempt fails with TerraformStateLocked, and the
  last failure names the state and says not to force-unlock.

Each time: the state file is untouched while the lock is held, and no terraform
command ever ran `force-unlock` or `-lock=false` (the runner logs every argv).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.terraform import TerraformActivities, TerraformStateLocked, state_path
from brewline.model import (
    TerraformApplyInput,
    TerraformApplyResult,
    TerraformPlanInput,
    TerraformPlanResult,
)
from brewline.platform import REPO_ROOT, PlatformSettings
from workflows import activity_options as opts

CONFIG = REPO_ROOT / "tests" / "activities" / "testdata" / "terraform-offline"
TF_DIR = "infra/offline"

# Another process holding the state lock: fcntl, like terraform's local backend, until
# its stdin is closed.
HOLDER = """
import fcntl, sys
with open(sys.argv[1], "r+") as state:
    fcntl.lockf(state, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("locked", flush=True)
    sys.stdin.read()
"""


@workflow.defn(name="FaultsTerraformApply", sandboxed=False)
class ApplyWorkflow:
    """terraform_apply exactly as the release calls it: by name, with opts.TERRAFORM."""

    @workflow.run
    async def run(self, inp: TerraformApplyInput) -> TerraformApplyResult:
        return await opts.call(
            "terraform_apply", inp, TerraformApplyResult, opts.TERRAFORM, "apply infra"
        )


class LockHolder:
    """A process of its own holding the lock of `state`, released by ending it (by PID)."""

    def __init__(self, state: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(state)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "locked":
            self.release()
            raise RuntimeError(f"the lock holder did not take the lock: {line!r}")

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # it reads to EOF, then exits and the lock goes
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Attempt:
    number: int
    started: datetime  # on the server's clock
    state_after: bytes = b""  # the state file when the attempt ended
    error: BaseException | None = None


class RecordedTerraform(TerraformActivities):
    """The real terraform_apply, each attempt recorded; after attempt `release_after`
    (0: never) the lock holder lets go."""

    def __init__(self, settings: PlatformSettings, holder: LockHolder, release_after: int) -> None:
        super().__init__(settings)
        self.holder = holder
        self.release_after = release_after
        self.attempts: list[Attempt] = []

    @activity.defn(name="terraform_apply")
    async def terraform_apply(self, input: TerraformApplyInput) -> TerraformApplyResult:
        info = activity.info()
        attempt = Attempt(info.attempt, info.started_time)
        self.attempts.append(attempt)
        try:
            return await super().terraform_apply(input)
        except BaseException as err:
            attempt.error = err
            raise
        finally:
            attempt.state_after = state_path(self.settings, TF_DIR).read_bytes()
            if info.attempt == self.release_after:
                await asyncio.to_thread(self.holder.release)


@dataclass
class Planned:
    settings: PlatformSettings
    apply: TerraformApplyInput
    state_before: bytes


@pytest.fixture
async def planned(tmp_path: Path) -> Planned:
    """Version 1.0.0 applied, and a reviewed plan of 1.1.0 waiting to be applied."""
    source = tmp_path / "src"
    shutil.copytree(CONFIG, source / TF_DIR)
    settings = PlatformSettings(home=str(tmp_path / "home"), registry_port=5999)
    acts = TerraformActivities(settings)

    async def plan(version: str) -> TerraformPlanResult:
        return await ActivityEnvironment().run(
            acts.terraform_plan,
            TerraformPlanInput(
                release_id=f"r-{version}",
                source=str(source),
                terraform_dir=TF_DIR,
                variables={
                    "release_version": version,
                    "services": "api-gateway,producer",
                    "environments": "staging,production",
                },
            ),
        )

    def to_apply(release_id: str, plan: TerraformPlanResult) -> TerraformApplyInput:
        return TerraformApplyInput(
            release_id, str(source), TF_DIR, plan.plan_file, plan.plan_sha256
        )

    first = await plan("1.0.0")
    await ActivityEnvironment().run(acts.terraform_apply, to_apply("r-1.0.0", first))
    bumped = await plan("1.1.0")
    return Planned(settings, to_apply("r-1.1.0", bumped), state_path(settings, TF_DIR).read_bytes())


async def run_apply(
    env: WorkflowEnvironment, acts: RecordedTerraform, inp: TerraformApplyInput
) -> TerraformApplyResult:
    queue = f"faults-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[ApplyWorkflow],
        activities=[acts.terraform_apply],
    ):
        return await env.client.execute_workflow(
            ApplyWorkflow.run, inp, id=f"apply-{uuid.uuid4()}", task_queue=queue
        )


def backoff(retry: int) -> timedelta:
    """TERRAFORM's wait before retry number `retry` (1: before the second attempt)."""
    policy = opts.TERRAFORM.retry
    assert policy.initial_interval is not None and policy.maximum_interval is not None
    seconds = policy.initial_interval.total_seconds() * policy.backoff_coefficient ** (retry - 1)
    return timedelta(seconds=min(seconds, policy.maximum_interval.total_seconds()))


def assert_waited_between_attempts(attempts: list[Attempt]) -> None:
    for before, after in itertools.pairwise(attempts):
        gap = after.started - before.started
        wait = backoff(before.number)
        assert wait <= gap < wait + timedelta(seconds=120), (before.number, gap, wait)


def assert_locked_clearly(attempt: Attempt, settings: PlatformSettings) -> None:
    err = attempt.error
    assert isinstance(err, TerraformStateLocked), repr(err)
    text = str(err)
    assert f"the state ({state_path(settings, TF_DIR)}) is locked by another terraform" in text
    assert "this activity retries until it is free" in text
    assert "Do not force-unlock" in text
    assert "Error acquiring the state lock" in text


def commands(settings: PlatformSettings) -> list[str]:
    """Every command line the runner logged in this home."""
    return [
        line
        for log in settings.home_path.rglob("*.log")
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("$ ")
    ]


def assert_never_forced(settings: PlatformSettings, applies: int) -> None:
    argvs = commands(settings)
    assert not [a for a in argvs if "force-unlock" in a or "-lock=false" in a]
    (apply_log,) = settings.release_dir("r-1.1.0").rglob("apply.log")
    runs = [line for line in apply_log.read_text().splitlines() if line.startswith("$ ")]
    assert len(runs) == applies and all(" apply " in line for line in runs)


async def test_a_lock_released_after_the_first_attempt_lets_the_second_apply(
    time_env: WorkflowEnvironment, planned: Planned
) -> None:
    settings = planned.settings
    holder = LockHolder(state_path(settings, TF_DIR))
    try:
        acts = RecordedTerraform(settings, holder, release_after=1)
        result = await run_apply(time_env, acts, planned.apply)
    finally:
        holder.release()

    assert [a.number for a in acts.attempts] == [1, 2]
    assert_locked_clearly(acts.attempts[0], settings)
    assert acts.attempts[0].state_after == planned.state_before  # untouched while locked
    assert acts.attempts[1].error is None
    assert_waited_between_attempts(acts.attempts)

    assert result.applied and result.outputs["release_version"] == "1.1.0"
    state = json.loads(state_path(settings, TF_DIR).read_text())
    assert state["serial"] > json.loads(planned.state_before)["serial"]
    assert_never_forced(settings, applies=2)


async def test_a_lock_never_released_fails_after_every_attempt_without_forcing_it(
    time_env: WorkflowEnvironment, planned: Planned
) -> None:
    settings = planned.settings
    holder = LockHolder(state_path(settings, TF_DIR))
    try:
        acts = RecordedTerraform(settings, holder, release_after=0)
        with pytest.raises(WorkflowFailureError) as failure:
            await run_apply(time_env, acts, planned.apply)
        assert holder.process.poll() is None  # the holder was never disturbed
    finally:
        holder.release()

    maximum = opts.TERRAFORM.retry.maximum_attempts
    assert [a.number for a in acts.attempts] == list(range(1, maximum + 1))
    for attempt in acts.attempts:
        assert_locked_clearly(attempt, settings)
        assert attempt.state_after == planned.state_before
    assert_waited_between_attempts(acts.attempts)

    cause = failure.value.cause
    assert isinstance(cause, ActivityError)
    assert cause.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    last = cause.cause
    assert isinstance(last, ApplicationError)
    assert last.type == "TerraformStateLocked" and not last.non_retryable
    assert str(state_path(settings, TF_DIR)) in last.message
    assert "Do not force-unlock" in last.message
    assert state_path(settings, TF_DIR).read_bytes() == planned.state_before
    assert_never_forced(settings, applies=maximum)
