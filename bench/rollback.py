"""`make bench-rollback`: how fast a faulty canary is taken out, and how many requests it got.

On the local platform (as `make demo-bad` runs it): a version of api-gateway whose
containers fail 20% of business requests is released with pipeline.yaml's canary
settings and approved; the canary's analysis rolls it back by itself. Then:

- time to stable: from the canary's first request to its last one, read from Traefik's
  request counter for the canary service in Prometheus (1 s scrapes, 1 s steps: +-1 s).
  Beside it, an upper bound from the server's event times in the canary workflow's
  history: the start of the first `set_canary_weight` activity (the earliest moment the
  canary can get a request) to the completion of `rollback_canary` (Traefik confirmed
  100% on stable and the canary container is gone).
- requests the faulty version served: the growth of that Traefik counter (counter resets
  handled as Prometheus' increase() does: Traefik drops a removed service's series, so a
  canary of the same service starts again from 0), cross-checked with the container's
  own counter (which misses up to its last second: the last scrape before removal).

Target (issue #3): under 30 s and under 200 requests with a 1 s scrape and a 5 s analysis
interval. Flagger's defaults (60 s interval, threshold 5) cannot act before 5 minutes.
`--judge sequential` runs the same with the sequential judge (brewline/judge.py) instead
of pipeline.yaml's threshold rules. Writes bench/out/rollback-<judge>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from brewline.canary_config import CanaryConfig
from brewline.config import load
from brewline.platform import REPO_ROOT, PlatformSettings
from local import demo
from workflows.release import ReleaseWorkflow

OUT = REPO_ROOT / "bench" / "out"
TARGET_SECONDS = 30.0
TARGET_REQUESTS = 200


@dataclass
class Run:
    release_id: str
    canary_workflow_id: str
    reason: str
    seconds_to_stable: float  # first to last request the router sent the canary
    seconds_upper_bound: float  # first set_canary_weight start to rollback_canary done
    requests_to_faulty: float  # Traefik's count for the canary service
    requests_seen_by_container: float  # the faulty container's own counter (cross-check)


def settings_used(canary: CanaryConfig, scrape_seconds: float) -> dict[str, object]:
    spec = canary.analysis
    return {
        "scrape_interval_seconds": scrape_seconds,
        "analysis_interval_seconds": spec.interval_seconds,
        "count": spec.count,
        "failure_limit": spec.failure_limit,
        "min_requests": spec.min_requests,
        "metrics": [f"{m.name} {m.condition} {m.threshold:g}" for m in spec.metrics],
        "steps": [
            s.kind + (f" {s.weight}" if s.kind == "set_weight" else "")
            for s in canary.steps
            if s.kind != "pause" or s.pause_seconds
        ],
        "load_rate_per_second": canary.load.rate_per_second,
        "fault": demo.FAULT,
        "judge": canary.judge,
        **({"sequential": asdict(canary.sequential)} if canary.judge == "sequential" else {}),
    }


async def activity_times(client: Client, workflow_id: str) -> dict[str, list[datetime]]:
    """Activity type -> [started, ...] and '<type>:completed' -> [completed, ...]."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled: dict[int, str] = {}
    times: dict[str, list[datetime]] = {}
    for event in history.events:
        when = event.event_time.ToDatetime()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            name = scheduled[event.activity_task_started_event_attributes.scheduled_event_id]
            times.setdefault(name, []).append(when)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            name = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            times.setdefault(f"{name}:completed", []).append(when)
    return times


def promql_range(
    settings: PlatformSettings, query: str, start: float, end: float
) -> list[tuple[float, float]]:
    """(timestamp, value) samples of a one-series query, 1 s apart."""
    params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1s"}
    url = f"{settings.prometheus_url}/api/v1/query_range?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback only)
        result = json.loads(response.read())["data"]["result"]
    return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []


@dataclass
class Growth:
    total: float  # how much the counter grew, resets counted as Prometheus' increase()
    first: float | None  # timestamp of the first sample that grew
    last: float | None  # timestamp of the last sample that grew


def growth(settings: PlatformSettings, query: str, start: float, end: float) -> Growth:
    """How a counter grew from just before `start` to a little after `end`."""
    before = promql_range(settings, query, start - 30, start - 1)
    previous = before[-1][1] if before else 0.0
    found = Growth(0.0, None, None)
    for at, value in promql_range(settings, query, start, end + 10):
        step = value - previous if value >= previous else value  # a drop is a reset
        if step > 0:
            found.total += step
            found.first = at if found.first is None else found.first
            found.last = at
        previous = value
    return found


async def one_run(client: Client, settings: PlatformSettings, pipeline: Path) -> Run:
    if not await demo.ensure_baseline(client, settings):
        raise SystemExit("the baseline release did not reach production; see above")
    version = await demo.next_version(client)
    release_id = await demo.start_release(
        client,
        version,
        "--container-env",
        f"{demo.SERVICE}:{demo.FAULT}",
        "--pipeline",
        str(pipeline),
    )
    if release_id is None or not await demo.wait_for_gate(client, release_id):
        raise SystemExit(f"{release_id or version} did not reach the approval gate")
    code = await demo.approve_and_follow(client, release_id)
    status = await client.get_workflow_handle(release_id).query(ReleaseWorkflow.status)
    if code == 0 or not status.canaries:
        raise SystemExit(f"{release_id} was not rolled back by a canary: {status.failure}")
    canary_id = status.canaries[0].workflow_id
    times = await activity_times(client, canary_id)
    start = times["set_canary_weight"][0].timestamp()
    end = times["rollback_canary:completed"][-1].timestamp()
    env, service = "production", demo.SERVICE
    router = growth(
        settings,
        f'sum(traefik_service_requests_total{{service="{env}-{service}-canary@file"}})',
        start,
        end,
    )
    container = growth(
        settings,
        f'sum(http_requests_total{{environment="{env}",track="canary",version="{version}"}})',
        start,
        end,
    )
    if router.first is None or router.last is None:
        raise SystemExit(f"Prometheus saw no request reach the canary of {release_id}")
    # a sample that grew covers the second before it: the first request came up to 1 s earlier
    seconds = router.last - router.first + 1.0
    return Run(
        release_id, canary_id, status.failure, seconds, end - start, router.total, container.total
    )


def pipeline_for(judge: str) -> Path:
    """pipeline.yaml as it is, or a copy whose canary uses the sequential judge (with up
    to 2 minutes of 5 s windows per step: it stops as soon as the evidence is enough)."""
    path = REPO_ROOT / "pipeline.yaml"
    if judge == "threshold":
        return path
    data = yaml.safe_load(path.read_text())
    data["canary"]["analysis"].update(judge="sequential", count=24)
    OUT.mkdir(parents=True, exist_ok=True)
    copy = OUT / "pipeline-sequential.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy


async def bench(runs: int, judge: str) -> int:
    settings, client = await demo.platform_up()
    waiting = await demo.waiting_release(client)
    if waiting:
        print(f"error: {waiting} waits for approval; approve or reject it first", file=sys.stderr)
        return 2
    pipeline = pipeline_for(judge)
    canary = load(pipeline).canary
    assert canary is not None, "pipeline.yaml's production uses strategy: canary"
    results = []
    for n in range(runs):
        print(f"run {n + 1}/{runs}", flush=True)
        results.append(await one_run(client, settings, pipeline))
    seconds = [r.seconds_to_stable for r in results]
    requests = [r.requests_to_faulty for r in results]
    report = {
        "judge": judge,
        "settings": settings_used(canary, 1.0),
        "runs": [asdict(r) for r in results],
        "median_seconds_to_stable": statistics.median(seconds),
        "median_requests_to_faulty": statistics.median(requests),
        "targets": {"seconds": TARGET_SECONDS, "requests": TARGET_REQUESTS},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"rollback-{judge}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("\nsettings: " + json.dumps(report["settings"]))
    header = f"{'run':<4} {'to stable (s)':>14} {'(upper bound)':>14} {'requests (router)':>18}"
    print(header + f" {'(container)':>12}  release")
    for i, r in enumerate(results, 1):
        print(
            f"{i:<4} {r.seconds_to_stable:>14.1f} {r.seconds_upper_bound:>14.1f} "
            f"{r.requests_to_faulty:>18.0f} {r.requests_seen_by_container:>12.0f}  {r.release_id}"
        )
    ok = max(seconds) < TARGET_SECONDS and max(requests) < TARGET_REQUESTS
    print(
        f"median {statistics.median(seconds):.1f} s to 100% stable (target < {TARGET_SECONDS:g}), "
        f"{statistics.median(requests):.0f} requests served by the faulty version "
        f"(target < {TARGET_REQUESTS}): {'met' if ok else 'MISSED'}"
    )
    print(f"reason: {results[-1].reason}")
    print(f"written: {out}")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rollback", description=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="faulty releases to measure")
    parser.add_argument(
        "--judge",
        choices=("threshold", "sequential"),
        default="threshold",
        help="the analysis: pipeline.yaml's (threshold) or the sequential judge",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: need at least 1")
    code = asyncio.run(bench(args.runs, args.judge))
    sys.stdout.flush()
    os._exit(code)  # see starter.run_cli


if __name__ == "__main__":
    main()
