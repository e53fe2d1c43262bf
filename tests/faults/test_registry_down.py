"""Fault: the image registry goes down between build_image's tag check and its push.

The real activity (go, buildah, the Debian docker-registry on a free 127.0.0.1 port,
stopped and started by PID through the local platform) runs in a worker on the
time-skipping server, called from a one-line workflow with the release's own BUILD
options (workflows/activity_options.py), so Temporal's real retry policy and backoff
apply. The registry is stopped right after the first attempt has checked the tag
(through the activity's injected RegistryClient), so that attempt's push fails; then:

- it comes back before the third attempt: the image is pushed, after backoff;
- it never comes back: the last of BUILD's attempts fails, naming the registry and
  what to do.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.images import ImageActivities, ImagePushFailed
from activities.registry import ImageInfo, RegistryClient, RegistryUnavailable
from brewline.model import BuildInput, ImageRecord
from brewline.platform import REPO_ROOT, PlatformSettings, default_home
from local.platform import LocalPlatform
from workflows import activity_options as opts

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "buildmod"
REPOSITORY = "go-coffee/hello"


@workflow.defn(name="FaultsBuildImage", sandboxed=False)
class BuildImageWorkflow:
    """build_image exactly as the release calls it: by name, with opts.BUILD."""

    @workflow.run
    async def run(self, inp: BuildInput) -> ImageRecord:
        return await opts.call("build_image", inp, ImageRecord, opts.BUILD, "build hello")


@dataclass
class Attempt:
    number: int
    started: datetime  # on the server's clock (time-skipping: skipped time included)
    error: BaseException | None = None


class Registry:
    """The platform's registry in a test home, stopped and restarted on the same port."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.platform = LocalPlatform(settings)

    def start(self) -> None:
        self.platform.up(["registry"])  # the port saved in the settings

    def stop(self) -> None:
        pid = self.platform.running_pid("registry")
        assert pid is not None, "the registry is not running"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while self.platform.running_pid("registry") is not None:
            assert time.monotonic() < deadline, f"registry (pid {pid}) did not stop"
            time.sleep(0.02)


class StopsAfterTheTagCheck(RegistryClient):
    """The activity's registry client; once the first attempt has checked the tag, the
    registry is stopped, so the push that follows finds it down."""

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry.settings.registry_address)
        self.registry = registry

    def image(self, repository: str, tag: str, **kwargs: str) -> ImageInfo | None:
        found = super().image(repository, tag, **kwargs)
        if activity.info().attempt == 1:
            self.registry.stop()
        return found


class RecordedImages(ImageActivities):
    """The real build_image, with each attempt's number, schedule and error kept, and the
    registry started again at the start of attempt `back_at` (0: never)."""

    def __init__(self, registry: Registry, back_at: int) -> None:
        super().__init__(registry.settings, registry=StopsAfterTheTagCheck(registry))
        self.platform_registry = registry
        self.back_at = back_at
        self.attempts: list[Attempt] = []

    @activity.defn(name="build_image")
    async def build_image(self, input: BuildInput) -> ImageRecord:
        info = activity.info()
        attempt = Attempt(info.attempt, info.started_time)
        self.attempts.append(attempt)
        if info.attempt == self.back_at:
            await asyncio.to_thread(self.platform_registry.start)
        try:
            return await super().build_image(input)
        except BaseException as err:
            attempt.error = err
            raise


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry of its own (the test stops it), with the shared Go build cache."""
    settings = PlatformSettings(home=str(tmp_path / "home"))
    shared_cache = Path(os.environ.get("BREWLINE_TEST_GOCACHE", default_home() / "go" / "cache"))
    shared_cache.mkdir(parents=True, exist_ok=True)
    (settings.home_path / "go").mkdir(parents=True)
    (settings.home_path / "go" / "cache").symlink_to(shared_cache, target_is_directory=True)
    platform = LocalPlatform(settings)
    try:
        platform.up(["registry"], free_ports=True)
        yield Registry(settings)
    finally:
        platform.down()


def build_input(tmp_path: Path) -> BuildInput:
    source = tmp_path / "src"
    shutil.copytree(FIXTURE, source / "buildmod")
    return BuildInput(
        release_id=f"r-{uuid.uuid4().hex[:8]}",
        service="hello",
        version=f"1.0.0-{uuid.uuid4().hex[:8]}",
        source=str(source),
        go_module="buildmod",
        package="./hello",
        containerfile="hello/Containerfile",
    )


async def run_build(
    env: WorkflowEnvironment, images: RecordedImages, inp: BuildInput
) -> ImageRecord:
    queue = f"faults-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[BuildImageWorkflow],
        activities=[images.build_image],
    ):
        return await env.client.execute_workflow(
            BuildImageWorkflow.run, inp, id=f"build-{uuid.uuid4()}", task_queue=queue
        )


def backoff(retry: int) -> timedelta:
    """BUILD's wait before retry number `retry` (1: before the second attempt)."""
    policy = opts.BUILD.retry
    assert policy.initial_interval is not None
    seconds = policy.initial_interval.total_seconds() * policy.backoff_coefficient ** (retry - 1)
    if policy.maximum_interval is not None:
        seconds = min(seconds, policy.maximum_interval.total_seconds())
    return timedelta(seconds=seconds)


def assert_backed_off(attempts: list[Attempt]) -> None:
    """Each attempt started at least BUILD's backoff after the one before (and not much
    later: the earlier attempt's own run is all that may come on top)."""
    for before, after in itertools.pairwise(attempts):
        gap = after.started - before.started
        wait = backoff(before.number)
        assert wait <= gap < wait + timedelta(seconds=120), (before.number, gap, wait)


def assert_push_failed_clearly(attempt: Attempt, settings: PlatformSettings) -> None:
    err = attempt.error
    assert isinstance(err, ImagePushFailed), repr(err)
    text = str(err)
    assert f"to the registry {settings.registry_address}" in text
    assert "is it up (`python -m local.platform up`)?" in text
    assert "The activity retries" in text
    assert "buildah.log" in text


async def test_a_registry_that_comes_back_gets_the_image_after_backoff(
    time_env: WorkflowEnvironment, registry: Registry, tmp_path: Path
) -> None:
    settings = registry.settings
    inp = build_input(tmp_path)
    images = RecordedImages(registry, back_at=3)

    record = await run_build(time_env, images, inp)

    assert [a.number for a in images.attempts] == [1, 2, 3]
    assert_push_failed_clearly(images.attempts[0], settings)
    # attempt 2 found the registry still down at the tag check: also retryable
    second = images.attempts[1].error
    assert isinstance(second, RegistryUnavailable), repr(second)
    assert settings.registry_address in str(second)
    assert images.attempts[2].error is None
    assert_backed_off(images.attempts)

    assert not record.skipped
    assert record.image == f"{settings.registry_address}/{REPOSITORY}@{record.digest}"
    pushed = RegistryClient(settings.registry_address).manifest(REPOSITORY, inp.version)
    assert pushed is not None and pushed.digest == record.digest


async def test_a_registry_that_never_comes_back_fails_the_build_naming_it(
    time_env: WorkflowEnvironment, registry: Registry, tmp_path: Path
) -> None:
    settings = registry.settings
    images = RecordedImages(registry, back_at=0)

    with pytest.raises(WorkflowFailureError) as failure:
        await run_build(time_env, images, build_input(tmp_path))

    attempts = opts.BUILD.retry.maximum_attempts
    assert [a.number for a in images.attempts] == list(range(1, attempts + 1))
    assert_push_failed_clearly(images.attempts[0], settings)
    assert all(isinstance(a.error, RegistryUnavailable) for a in images.attempts[1:])
    assert_backed_off(images.attempts)

    cause = failure.value.cause
    assert isinstance(cause, ActivityError)
    assert cause.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    last = cause.cause
    assert isinstance(last, ApplicationError)
    assert last.type == "RegistryUnavailable" and not last.non_retryable
    assert f"registry {settings.registry_address} is not answering" in last.message
    assert "start it with `python -m local.platform up`" in last.message
    assert registry.platform.running_pid("registry") is None  # it really stayed down
