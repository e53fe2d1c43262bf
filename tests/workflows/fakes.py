"""Activities registered under the real names, standing in for the outside world.

They keep a record of every call and a tiny model of what runs where, so tests can
assert on side effects (what was deployed, what compensation put back).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.ssh_signatures import SignatureActivities
from brewline.config import load
from brewline.model import (
    BuildInput,
    CanaryDeployInput,
    CanaryEndInput,
    CountWindowInput,
    CountWindowResult,
    DeployInput,
    Deployment,
    DeployResult,
    DescribeInput,
    DescribeResult,
    GoTestInput,
    GoTestResult,
    ImageRecord,
    LoadInput,
    LoadResult,
    MetricQueryInput,
    MetricQueryResult,
    NotifyInput,
    NotifyResult,
    ReleaseRequest,
    ReleaseStatus,
    RestoreInput,
    RestoreResult,
    ScanInput,
    ScanResult,
    SetWeightInput,
    SmokeTestInput,
    SmokeTestResult,
    TerraformApplyInput,
    TerraformApplyResult,
    TerraformPlanInput,
    TerraformPlanResult,
    TrafficState,
)
from brewline.platform import REPO_ROOT, PlatformSettings
from workflows.activity_options import LOAD_QUEUE_SUFFIX
from workflows.canary import CanaryWorkflow
from workflows.release import ReleaseWorkflow


@dataclass
class FakeWorld:
    """The outside world as the fake activities see it."""

    running: dict[tuple[str, str], Deployment] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, Any]] = field(default_factory=list)
    # name of activity -> callable(input) raising to simulate a failure (or None)
    failures: dict[str, Callable[[Any], None]] = field(default_factory=dict)
    deploy_started: asyncio.Event = field(default_factory=asyncio.Event)
    block_deploy_in: str = ""  # environment whose deploy hangs until cancelled
    # canary: what Prometheus answers for a rendered query, and the traffic split
    metrics: Callable[[str], MetricQueryResult] = field(default=lambda q: healthy_metrics(q))
    canary: dict[tuple[str, str], Deployment] = field(default_factory=dict)
    weights: list[int] = field(default_factory=list)
    load_cancelled: int = 0
    # the first load chunk's worker "dies" when the canary asks it to stop: it never
    # answers and stops heartbeating, so the attempt ends by its heartbeat timeout
    load_dies_on_cancel: bool = False
    load_queues: list[str] = field(default_factory=list)  # where generate_load ran
    # judge: sequential: what the router's counters show in each window
    windows: Callable[[CountWindowInput], CountWindowResult] = field(
        default=lambda inp: healthy_window(inp)
    )
    # infra: the plan and the outputs of each Terraform root (by terraform_dir)
    plans: dict[str, TerraformPlanResult] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    # where the REAL verify_approval activity (ssh-keygen, fast and local) keeps its logs
    home: str = field(default_factory=lambda: f"/tmp/brewline-fakes-{uuid.uuid4()}")

    def _record(self, name: str, arg: Any) -> None:
        self.calls[name] += 1
        self.log.append((name, arg))
        fail = self.failures.get(name)
        if fail:
            fail(arg)

    def activities(self) -> list[Callable[..., Any]]:
        world = self

        @activity.defn(name="run_go_tests")
        async def run_go_tests(inp: GoTestInput) -> GoTestResult:
            world._record("run_go_tests", inp)
            return GoTestResult(inp.service, 81.5, 12, "/tmp/go-test.log")

        @activity.defn(name="trivy_scan")
        async def trivy_scan(inp: ScanInput) -> ScanResult:
            world._record("trivy_scan", inp)
            return ScanResult("trivy", inp.service, {"LOW": 1}, [], "/tmp/trivy.sarif")

        @activity.defn(name="semgrep_scan")
        async def semgrep_scan(inp: ScanInput) -> ScanResult:
            world._record("semgrep_scan", inp)
            return ScanResult("semgrep", inp.service, {}, [], "/tmp/semgrep.sarif")

        @activity.defn(name="build_image")
        async def build_image(inp: BuildInput) -> ImageRecord:
            world._record("build_image", inp)
            digest = "sha256:" + f"{inp.service}-{inp.version}".encode().hex().ljust(64, "0")[:64]
            return ImageRecord(
                inp.service,
                inp.version,
                f"127.0.0.1:5000/go-coffee/{inp.service}@{digest}",
                digest,
                "sha256:src",
            )

        @activity.defn(name="terraform_plan")
        async def terraform_plan(inp: TerraformPlanInput) -> TerraformPlanResult:
            world._record("terraform_plan", inp)
            default = TerraformPlanResult("/tmp/plan.tfplan", "abc123", 1, 0, 0, [])
            return world.plans.get(inp.terraform_dir, default)

        @activity.defn(name="terraform_apply")
        async def terraform_apply(inp: TerraformApplyInput) -> TerraformApplyResult:
            world._record("terraform_apply", inp)
            outputs = world.outputs.get(inp.terraform_dir, {"registry": "127.0.0.1:5000"})
            return TerraformApplyResult(outputs, True)

        @activity.defn(name="describe_service")
        async def describe_service(inp: DescribeInput) -> DescribeResult:
            world._record("describe_service", inp)
            return DescribeResult(
                inp.environment, inp.service, world.running.get((inp.environment, inp.service))
            )

        @activity.defn(name="deploy_service")
        async def deploy_service(inp: DeployInput) -> DeployResult:
            world._record("deploy_service", inp)
            if world.block_deploy_in == inp.environment:
                world.deploy_started.set()
                while True:  # a deploy that takes forever, until cancelled
                    activity.heartbeat()
                    await asyncio.sleep(0.1)
            key = (inp.environment, inp.service)
            previous = world.running.get(key)
            deployed = Deployment(inp.environment, inp.service, inp.version, inp.image, "http://x")
            world.running[key] = deployed
            return DeployResult(deployed, previous, previous != deployed)

        @activity.defn(name="smoke_test")
        async def smoke_test(inp: SmokeTestInput) -> SmokeTestResult:
            world._record("smoke_test", inp)
            return SmokeTestResult("http://x/health", 200, inp.version, 3.0)

        @activity.defn(name="restore_service")
        async def restore_service(inp: RestoreInput) -> RestoreResult:
            world._record("restore_service", inp)
            key = (inp.environment, inp.service)
            if inp.previous is None:
                world.running.pop(key, None)
            else:
                world.running[key] = inp.previous
            return RestoreResult(inp.environment, inp.service, inp.previous)

        def traffic(environment: str, service: str) -> TrafficState:
            key = (environment, service)
            weight = world.weights[-1] if world.weights and key in world.canary else 0
            return TrafficState(
                environment, service, world.running.get(key), world.canary.get(key), weight
            )

        @activity.defn(name="deploy_canary")
        async def deploy_canary(inp: CanaryDeployInput) -> TrafficState:
            world._record("deploy_canary", inp)
            world.canary[(inp.environment, inp.service)] = Deployment(
                inp.environment, inp.service, inp.version, inp.image
            )
            return traffic(inp.environment, inp.service)

        @activity.defn(name="set_canary_weight")
        async def set_canary_weight(inp: SetWeightInput) -> TrafficState:
            world._record("set_canary_weight", inp)
            world.weights.append(inp.weight)
            return traffic(inp.environment, inp.service)

        @activity.defn(name="promote_canary")
        async def promote_canary(inp: CanaryEndInput) -> TrafficState:
            world._record("promote_canary", inp)
            key = (inp.environment, inp.service)
            world.running[key] = world.canary.pop(key)
            world.weights.append(100)
            return traffic(inp.environment, inp.service)

        @activity.defn(name="rollback_canary")
        async def rollback_canary(inp: CanaryEndInput) -> TrafficState:
            world._record("rollback_canary", inp)
            world.weights.append(0)
            world.canary.pop((inp.environment, inp.service), None)
            return traffic(inp.environment, inp.service)

        @activity.defn(name="query_metric")
        async def query_metric(inp: MetricQueryInput) -> MetricQueryResult:
            world._record("query_metric", inp)
            return world.metrics(inp.query)

        @activity.defn(name="count_window")
        async def count_window(inp: CountWindowInput) -> CountWindowResult:
            world._record("count_window", inp)
            return world.windows(inp)

        @activity.defn(name="generate_load")
        async def generate_load(inp: LoadInput) -> LoadResult:
            world._record("generate_load", inp)
            world.load_queues.append(activity.info().task_queue)
            try:
                while True:  # like hey: runs until its duration or a cancellation
                    activity.heartbeat()
                    await asyncio.sleep(0.1)
            except asyncio.CancelledError:
                world.load_cancelled += 1
                if world.load_dies_on_cancel and world.load_cancelled == 1:
                    # silent past the 10 s heartbeat timeout, then gone (its late answer
                    # is refused by the server); a worker shutting down waits this long
                    await asyncio.sleep(15)
                raise

        @activity.defn(name="notify")
        async def notify(inp: NotifyInput) -> NotifyResult:
            world._record("notify", inp)
            return NotifyResult(True, 200)

        signatures = SignatureActivities(PlatformSettings(home=world.home))
        return [
            signatures.verify_approval,
            notify,
            deploy_canary,
            set_canary_weight,
            promote_canary,
            rollback_canary,
            query_metric,
            count_window,
            generate_load,
            run_go_tests,
            trivy_scan,
            semgrep_scan,
            build_image,
            terraform_plan,
            terraform_apply,
            describe_service,
            deploy_service,
            smoke_test,
            restore_service,
        ]


def healthy_metrics(query: str) -> MetricQueryResult:
    """A canary as good as stable: plenty of requests, no errors, fast."""
    if "increase(" in query:
        return MetricQueryResult(500.0, 1)
    if "histogram_quantile" in query:
        return MetricQueryResult(0.05, 1)
    return MetricQueryResult(1.0, 1)


def healthy_window(inp: CountWindowInput) -> CountWindowResult:
    """A canary as good as stable: 500 requests a window each, errors and slow requests
    at the same low rates."""
    n = 500.0
    return CountWindowResult(n, n * 0.001, n, n * 0.001, n * 0.01, n * 0.01, 0.1)


def business_error(kind: str, message: str) -> Callable[[Any], None]:
    def fail(_: Any) -> None:
        raise ApplicationError(message, type=kind, non_retryable=True)

    return fail


def release_request(
    services: list[str] | None = None, version: str = "1.4.0", initiator: str = "carol"
) -> ReleaseRequest:
    config = load(REPO_ROOT / "pipeline.yaml")
    return ReleaseRequest(
        services=services or ["api-gateway"],
        version=version,
        source=str(REPO_ROOT),
        initiator=initiator,
        environments=[e.name for e in config.environments],
        pipeline=config,
    )


class Workers:
    """The workflow worker and the load generator's (as worker.py runs them), as one."""

    def __init__(self, *workers: Worker) -> None:
        self.workers = workers
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Workers:
        for worker in self.workers:
            await self._stack.enter_async_context(worker)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


def new_worker(client: Client, world: FakeWorld, task_queue: str) -> Workers:
    activities = world.activities()
    return Workers(
        Worker(
            client,
            task_queue=task_queue,
            workflows=[ReleaseWorkflow, CanaryWorkflow],
            activities=activities,
        ),
        Worker(client, task_queue=task_queue + LOAD_QUEUE_SUFFIX, activities=activities),
    )


async def start_release(
    client: Client, request: ReleaseRequest, task_queue: str
) -> WorkflowHandle[ReleaseWorkflow, Any]:
    return await client.start_workflow(
        ReleaseWorkflow.run,
        request,
        id=f"release-test-{uuid.uuid4()}",
        task_queue=task_queue,
    )


async def run_until_failed(
    client: Client, world: FakeWorld, record_as: str = ""
) -> tuple[BaseException, ReleaseStatus]:
    """Run a release of api-gateway that must fail; its failure cause and final status."""
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(client, world, queue):
        handle = await start_release(client, release_request(), queue)
        try:
            await handle.result()
        except WorkflowFailureError as failure:
            cause: BaseException = failure.cause
        else:
            raise AssertionError("the release succeeded; it was expected to fail")
        status = await handle.query(ReleaseWorkflow.status)
        if record_as:
            await record_history(handle, record_as)
    return cause, status


async def record_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """With BREWLINE_RECORD_HISTORY set, keep this run's history for the replay test."""
    if not os.environ.get("BREWLINE_RECORD_HISTORY"):
        return
    history = await handle.fetch_history()
    folder = REPO_ROOT / "tests" / "histories"
    (folder / f"{name}.json").write_text(history.to_json())
    # the id is part of what replays: child workflow ids are derived from it
    (folder / f"{name}.workflow-id").write_text(handle.id + "\n")


async def wait_for_stage(
    handle: WorkflowHandle[Any, Any], predicate: Callable[[Any], bool], timeout: float = 30
) -> Any:
    """Poll the status query until predicate(status) holds (never a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status = await handle.query(ReleaseWorkflow.status)
        if predicate(status):
            return status
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting; last status stage={status.stage}")
        await asyncio.sleep(0.05)
