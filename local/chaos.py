"""`make chaos`: releases on the real local platform while the worker is SIGKILLed.

    python -m local.chaos [--seed N] [--runs N] [--releases-per-run N] [--kills-per-run N]
                          [--source-rev REV] [--keep]

A run is a sequence of releases of api-gateway (a baseline deployed directly, a good
version through the canary, a faulty one whose canary must roll back, one rejected at
the approval gate; more cycle through those kinds). Each run goes twice, each time on a
fresh platform in a temporary home on free ports:

1. UNDISTURBED: the reference outcome and the reference side effects;
2. DISTURBED: the same releases while the script SIGKILLs the worker at seeded points
   (mid go test, mid scan, mid `terraform apply`, mid buildah, mid deploy_service, at the
   approval gate, mid canary start / set_weight / analysis / promote / rollback, mid
   restore) and restarts it after a seeded short delay, and once per run stops and
   restarts the Temporal dev server itself (same SQLite db) mid-release.

Each disturbed release is checked against its reference: the same final state (state,
stage, every stage's state, canary outcomes, deployments with their version and an
image digest the registry really holds for that version), and every side effect as
often as in the reference, counted from the platform's own records, never from the
workflow: container starts (podman's events file), manifest pushes (the registry's
log), Terraform applies (the state file's serial and resources), route versions
applied (a watcher on Traefik's dynamic folder) and accepted decisions (the workflow
history's accepted `decide` updates and decision signals: exactly one per gate).

It prints the seed and the kill plan, one line per release, and at the end exactly
`N releases, K kills, S server restarts, L lost, D duplicated` (N: disturbed releases
checked). It exits 1 on any difference and lists each one. The same seed gives the
same plan. The releases run from a snapshot of the source (the working tree, or
`--source-rev`), so edits made meanwhile do not change a run half way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from brewline.pending import describe_pending, pending_work
from brewline.platform import REPO_ROOT, PlatformSettings

SERVICE = "api-gateway"
INITIATOR = "carol"  # not an approver: the approvers are alice and bob
APPROVER = "alice"
FAULT = "FAULT_ERROR_RATE=0.2"
TASK_QUEUE = "chaos"
MIN_TOTAL_KILLS = 30  # the issue: at least 30 kill points over the default runs
DEFAULT_RUNS = 2
RELEASE_DEADLINE = 2400.0  # seconds for an undisturbed release
# A disturbed release may take its reference's time plus, per kill, a heartbeat timeout
# (60 s at most), the retry's backoff and a worker start, plus a server restart, plus
# slack for a busy machine; past that it counts as stuck (lost).
KILL_ALLOWANCE = 150.0
RESTART_ALLOWANCE = 180.0
DEADLINE_SLACK = 600.0
WORKER_READY_TIMEOUT = 120.0
POLL = 0.2  # seconds between observations of a release
READY_LINE = "worker polling"  # what worker.py logs once its pollers run
SNAPSHOT_PATHS = (
    "activities",
    "brewline",
    "workflows",
    "local",
    "examples",
    "terraform",
    "helm",
    "policy",
    "worker.py",
    "starter.py",
    "pipeline.yaml",
    "pyproject.toml",
)


# --------------------------------------------------------------------------------------
# Kill points and releases
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KillPoint:
    """Where in a release the worker can be killed.

    `position` orders the points along a release (points with equal positions can come
    in any order, such as a canary's set_weight and analysis steps); a planned point is
    missed once the release is past its position.
    """

    name: str
    category: str  # the stage family the issue asks to cover
    position: int
    what: str


KILL_POINTS: dict[str, KillPoint] = {
    p.name: p
    for p in (
        KillPoint("test", "test", 0, "while run_go_tests runs"),
        KillPoint("scan", "scan", 1, "while trivy_scan or semgrep_scan runs"),
        KillPoint("infra", "infra", 2, "while terraform_apply runs `terraform apply`"),
        KillPoint("build", "build", 3, "while build_image runs buildah"),
        KillPoint("deploy-staging", "deploy", 4, "while deploy_service runs for staging"),
        KillPoint("approval", "approval", 5, "at the approval gate; the approval is sent"),
        KillPoint("deploy-production", "deploy", 6, "while deploy_service runs for production"),
        KillPoint("canary-start", "canary-start", 6, "while deploy_canary runs"),
        KillPoint("set-weight", "canary-weight", 7, "while set_canary_weight runs"),
        KillPoint("analysis", "canary-analysis", 7, "while the canary analysis measures"),
        KillPoint("promote", "canary-end", 9, "while promote_canary runs"),
        KillPoint("rollback", "canary-end", 9, "while rollback_canary runs"),
        KillPoint("restore", "deploy", 10, "while restore_service runs (compensation)"),
    )
}
# what each run covers at least once (when its releases pass through it)
CATEGORIES = (
    "test",
    "scan",
    "infra",
    "build",
    "deploy",
    "approval",
    "canary-start",
    "canary-weight",
    "canary-analysis",
    "canary-end",  # promote or rollback
)
_COMMON = ("test", "scan", "infra", "build", "deploy-staging", "approval")


@dataclass(frozen=True)
class ReleaseSpec:
    """One release of a run and how it must end: baseline, canary, faulty or rejected."""

    version: str
    kind: str

    @property
    def release_id(self) -> str:
        return f"release-go-coffee-{SERVICE}-{self.version}"

    @property
    def approve(self) -> bool:
        return self.kind != "rejected"

    @property
    def container_env(self) -> list[str]:
        return ["--container-env", f"{SERVICE}:{FAULT}"] if self.kind == "faulty" else []

    @property
    def points(self) -> tuple[str, ...]:
        """The kill points this release passes through."""
        if self.kind == "baseline":
            return (*_COMMON, "deploy-production")
        if self.kind == "canary":
            return (*_COMMON, "canary-start", "set-weight", "analysis", "promote")
        if self.kind == "faulty":
            return (*_COMMON, "canary-start", "set-weight", "analysis", "rollback")
        return (*_COMMON, "restore")


def release_sequence(count: int) -> list[ReleaseSpec]:
    """baseline 1.0.0, then canary, faulty, rejected, canary, faulty, ... (1.0.N)."""
    kinds = ("canary", "faulty", "rejected")
    return [
        ReleaseSpec(f"1.0.{i}", "baseline" if i == 0 else kinds[(i - 1) % 3]) for i in range(count)
    ]


# --------------------------------------------------------------------------------------
# The plan: pure and seeded
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedKill:
    release: int  # index in the run's release sequence
    point: str
    jitter: float  # seconds between the point being reached and the SIGKILL
    restart_delay: float  # seconds the worker stays dead


@dataclass(frozen=True)
class PlannedServerRestart:
    release: int
    point: str
    downtime: float  # seconds between the server's exit and its restart


@dataclass(frozen=True)
class RunPlan:
    run: int
    kills: tuple[PlannedKill, ...]
    server_restart: PlannedServerRestart | None
    duplicate_approvals: tuple[int, ...]  # releases whose approval is sent twice
    concurrent_duplicates: tuple[int, ...]  # ... of those, both at once


def default_kills_per_run(runs: int, candidates: int) -> int:
    """Enough kills per run for MIN_TOTAL_KILLS over `runs`; one point is left for the
    server restart."""
    return max(1, min(candidates - 1, math.ceil(MIN_TOTAL_KILLS / max(runs, 1))))


def plan_runs(
    seed: int, runs: int, releases: Sequence[ReleaseSpec], kills_per_run: int | None = None
) -> list[RunPlan]:
    """The kill plan: the same seed, runs and releases always give the same plan.

    Each run covers every stage family its releases pass through at least once (test,
    scan, infra, build, deploy, approval, and the canary's start, set_weight, analysis and
    promote or rollback), then fills up with random points.
    """
    rng = random.Random(seed)  # noqa: S311 (a reproducible plan, not a secret)
    candidates = [(i, point) for i, spec in enumerate(releases) for point in spec.points]
    per_run = kills_per_run or default_kills_per_run(runs, len(candidates))
    per_run = max(0, min(per_run, len(candidates) - 1 if len(candidates) > 1 else 0))
    plans = []
    for run in range(runs):
        shuffled = list(candidates)
        rng.shuffle(shuffled)
        chosen: list[tuple[int, str]] = []
        for category in CATEGORIES:
            if len(chosen) >= per_run:
                break
            first = next(
                (c for c in shuffled if KILL_POINTS[c[1]].category == category and c not in chosen),
                None,
            )
            if first is not None:
                chosen.append(first)
        chosen += [c for c in shuffled if c not in chosen][: per_run - len(chosen)]
        chosen.sort(key=lambda c: (c[0], KILL_POINTS[c[1]].position, c[1]))
        kills = tuple(
            PlannedKill(i, point, round(rng.uniform(0.0, 0.5), 2), round(rng.uniform(0.5, 3.0), 2))
            for i, point in chosen
        )
        rest = [c for c in candidates if c not in chosen]
        restart = None
        if rest:
            i, point = rng.choice(rest)
            restart = PlannedServerRestart(i, point, round(rng.uniform(1.0, 5.0), 2))
        gated = [i for i in range(len(releases))]
        duplicates = tuple(sorted(i for i in gated if rng.random() < 0.5)) or (
            (rng.choice(gated),) if gated else ()
        )
        concurrent = tuple(i for i in duplicates if rng.random() < 0.5)
        plans.append(RunPlan(run + 1, kills, restart, duplicates, concurrent))
    return plans


def describe_plan(plans: Sequence[RunPlan], releases: Sequence[ReleaseSpec]) -> str:
    lines = []
    for plan in plans:
        lines.append(f"run {plan.run}:")
        for i, spec in enumerate(releases):
            kills = [k for k in plan.kills if k.release == i]
            parts = [f"kill at {k.point} (+{k.jitter}s, dead {k.restart_delay}s)" for k in kills]
            restart = plan.server_restart
            if restart is not None and restart.release == i:
                parts.append(f"Temporal restart at {restart.point} (down {restart.downtime}s)")
            if i in plan.duplicate_approvals:
                how = "at once" if i in plan.concurrent_duplicates else "after it"
                parts.append(f"duplicate decision {how}")
            lines.append(
                f"  {spec.version} {spec.kind}: " + ("; ".join(parts) if parts else "undisturbed")
            )
    total = sum(len(p.kills) for p in plans)
    lines.append(f"{total} kills planned over {len(plans)} run(s)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Where a release is (pure): what the monitor sees and which point it matches
# --------------------------------------------------------------------------------------


@dataclass
class Observation:
    """One look at a running release: its status, pending activities and processes."""

    stage: str = ""
    state: str = "running"
    approval_waiting: bool = False
    activities: frozenset[str] = frozenset()  # started activities of the release
    canary_phase: str = ""  # "" when no canary runs
    canary_activities: frozenset[str] = frozenset()
    set_weight_pending: bool = False  # a set_weight step whose weight is not applied yet
    processes: tuple[tuple[str, ...], ...] = ()  # argv of the worker's descendants

    def runs(self, program: str, *words: str) -> bool:
        """Some descendant of the worker is `program` with one of `words` in its argv."""
        for argv in self.processes:
            named = bool(argv) and os.path.basename(argv[0]) == program
            if named and (not words or any(w in argv for w in words)):
                return True
        return False

    @property
    def position(self) -> int:
        """How far the release is, on KillPoint.position's scale."""
        if self.state != "running":
            return 99
        if "restore_service" in self.activities:
            return 10
        fixed = {
            "test": 0,
            "scan": 1,
            "infra": 2,
            "build": 3,
            "deploy-staging": 4,
            "approval-production": 5,
        }
        if self.stage in fixed:
            return fixed[self.stage]
        if self.stage == "deploy-production":
            phases = {
                "starting": 6,
                "progressing": 7,
                "paused": 7,
                "analysing": 7,
                "promoting": 9,
                "rolling-back": 9,
                "promoted": 10,
                "rolled-back": 10,
            }
            return phases.get(self.canary_phase, 6)
        return 0


def matches(point: str, seen: Observation) -> bool:
    """Is the release exactly at `point` now (the activity of it running)?"""
    acts, canary = seen.activities, seen.canary_activities
    if point == "test":
        return seen.stage == "test" and "run_go_tests" in acts
    if point == "scan":
        return seen.stage == "scan" and bool({"trivy_scan", "semgrep_scan"} & acts)
    if point == "infra":
        return "terraform_apply" in acts and seen.runs("terraform", "apply")
    if point == "build":
        return "build_image" in acts and seen.runs("buildah", "bud", "push")
    if point == "deploy-staging":
        return seen.stage == "deploy-staging" and "deploy_service" in acts
    if point == "approval":
        return seen.approval_waiting
    if point == "deploy-production":
        return seen.stage == "deploy-production" and "deploy_service" in acts
    if point == "canary-start":
        return seen.canary_phase == "starting" or "deploy_canary" in canary
    if point == "set-weight":
        return seen.set_weight_pending or "set_canary_weight" in canary
    if point == "analysis":
        return seen.canary_phase == "analysing"
    if point == "promote":
        return seen.canary_phase == "promoting" or "promote_canary" in canary
    if point == "rollback":
        return seen.canary_phase == "rolling-back" or "rollback_canary" in canary
    if point == "restore":
        return "restore_service" in acts
    raise ValueError(f"unknown kill point {point!r}; known: {', '.join(KILL_POINTS)}")


# --------------------------------------------------------------------------------------
# The platform's records (pure parsers over canned text)
# --------------------------------------------------------------------------------------

_PUT_MANIFEST = re.compile(
    r'http\.request\.method=PUT .*http\.request\.uri="?/v2/(?P<repo>.+?)/manifests/(?P<tag>[^"\s]+)'
    r'"?.*http\.response\.status=(?P<status>\d+)'
)


def container_starts(event_lines: Iterable[str]) -> Counter[str]:
    """podman `start` events per "environment/service track version" (the file logger)."""
    starts: Counter[str] = Counter()
    for line in event_lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("Status") != "start":
            continue
        if event.get("Type", "container") != "container":
            continue
        labels = event.get("Attributes") or {}
        if labels.get("brewline.managed") != "true":
            continue
        key = (
            f"{labels.get('brewline.environment', '?')}/{labels.get('brewline.service', '?')} "
            f"{labels.get('brewline.track', 'stable')} {labels.get('brewline.version', '?')}"
        )
        starts[key] += 1
    return starts


def container_ports(event_lines: Iterable[str]) -> dict[str, str]:
    """Port -> "track version" of every container a start event names."""
    ports: dict[str, str] = {}
    for line in event_lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("Status") != "start":
            continue
        labels = event.get("Attributes") or {}
        port = labels.get("brewline.port")
        if port:
            ports[port] = f"{labels.get('brewline.version', '?')}"
    return ports


def manifest_pushes(log_lines: Iterable[str]) -> Counter[str]:
    """Successful manifest PUTs per "repository:tag", from docker-registry's log."""
    pushes: Counter[str] = Counter()
    for line in log_lines:
        found = _PUT_MANIFEST.search(line)
        if found and found["status"].startswith("2"):
            pushes[f"{found['repo']}:{found['tag']}"] += 1
    return pushes


@dataclass(frozen=True)
class TerraformState:
    serial: int
    resources: tuple[str, ...]
    release_version: str  # terraform_data.release's input.version, "" if none


def terraform_state(document: Mapping[str, Any] | None) -> TerraformState:
    """The parts of a state file that say what was applied."""
    if not document:
        return TerraformState(0, (), "")
    addresses = []
    version = ""
    for res in document.get("resources", []):
        if res.get("mode") == "data":
            continue
        base = ".".join(p for p in (res.get("module", ""), res["type"], res["name"]) if p)
        for inst in res.get("instances", []):
            key = inst.get("index_key")
            addresses.append(base + (f"[{json.dumps(key)}]" if key is not None else ""))
            if res["type"] == "terraform_data" and res["name"] == "release":
                value = inst.get("attributes", {}).get("input", {}).get("value", {})
                if isinstance(value, dict):
                    version = str(value.get("version", ""))
    return TerraformState(int(document.get("serial", 0)), tuple(sorted(addresses)), version)


RouteState = tuple[str, str, int]  # (stable server URL, canary server URL, canary weight)


def route_versions(
    changes: Iterable[tuple[str, RouteState | None]], ports: Mapping[str, str]
) -> dict[str, list[str]]:
    """The distinct versions of each route file in the order they appeared.

    Server URLs become the version of the container on that port (ports differ from
    one platform to the next); consecutive equal versions collapse into one.
    """

    def name(url: str) -> str:
        if not url:
            return "-"
        return ports.get(url.rpartition(":")[2], "unknown")

    out: dict[str, list[str]] = {}
    for route, state in changes:
        text = "removed" if state is None else f"{name(state[0])}|{name(state[1])}@{state[2]}"
        seq = out.setdefault(route, [])
        if not seq or seq[-1] != text:
            seq.append(text)
    return out


def decisions(events: Iterable[tuple[str, str]]) -> int:
    """Accepted decisions: `decide` updates accepted, approve/reject signals received.

    `events` are (event attribute kind, update or signal name) pairs of a history.
    """
    accepted = {
        ("workflow_execution_update_accepted_event_attributes", "decide"),
        ("workflow_execution_signaled_event_attributes", "approve"),
        ("workflow_execution_signaled_event_attributes", "reject"),
    }
    return sum(1 for pair in events if tuple(pair) in accepted)


def history_decisions(events: Iterable[Any]) -> int:
    """`decisions` over a workflow history's events (temporalio.api HistoryEvent)."""
    pairs = []
    for event in events:
        kind = event.WhichOneof("attributes") or ""
        if kind == "workflow_execution_update_accepted_event_attributes":
            name = event.workflow_execution_update_accepted_event_attributes.accepted_request
            pairs.append((kind, name.input.name))
        elif kind == "workflow_execution_signaled_event_attributes":
            pairs.append((kind, event.workflow_execution_signaled_event_attributes.signal_name))
    return decisions(pairs)


# --------------------------------------------------------------------------------------
# Records, comparison and the summary (pure)
# --------------------------------------------------------------------------------------


@dataclass
class ReleaseRecord:
    """How one release ended and what it did to the platform, from the platform's records."""

    version: str
    kind: str
    finished: bool = False
    state: str = ""
    stage: str = ""
    stages: dict[str, str] = field(default_factory=dict)
    canaries: dict[str, str] = field(default_factory=dict)
    deployments: dict[str, str] = field(default_factory=dict)
    digest_problems: list[str] = field(default_factory=list)
    containers: dict[str, int] = field(default_factory=dict)
    pushes: dict[str, int] = field(default_factory=dict)
    terraform_applies: int = 0  # state serial increments
    terraform_resources: tuple[str, ...] = ()
    terraform_version: str = ""
    routes: dict[str, list[str]] = field(default_factory=dict)
    decisions: int = 0
    kills: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    server_restarts: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # from start to end, as the script saw it


@dataclass(frozen=True)
class Difference:
    kind: str  # lost, duplicated, different
    release: str
    what: str

    def __str__(self) -> str:
        return f"{self.release}: {self.kind}: {self.what}"


def _counts(
    label: str, release: str, ref: Mapping[str, int], got: Mapping[str, int]
) -> list[Difference]:
    out = []
    for key in sorted(set(ref) | set(got)):
        want, have = ref.get(key, 0), got.get(key, 0)
        if have < want:
            out.append(Difference("lost", release, f"{label} {key}: {have}, reference {want}"))
        elif have > want:
            out.append(
                Difference("duplicated", release, f"{label} {key}: {have}, reference {want}")
            )
    return out


def compare(reference: ReleaseRecord, disturbed: ReleaseRecord) -> list[Difference]:
    """Every way the disturbed release differs from its undisturbed reference."""
    rel = f"{disturbed.version} ({disturbed.kind})"
    if not disturbed.finished:
        return [Difference("lost", rel, "the release did not finish")]
    diffs = []
    for name in ("state", "stage", "stages", "canaries", "deployments", "terraform_resources"):
        want, have = getattr(reference, name), getattr(disturbed, name)
        if want != have:
            diffs.append(Difference("different", rel, f"{name}: {have!r}, reference {want!r}"))
    if reference.terraform_version != disturbed.terraform_version:
        diffs.append(
            Difference(
                "different",
                rel,
                f"terraform_data.release version {disturbed.terraform_version!r}, "
                f"reference {reference.terraform_version!r}",
            )
        )
    diffs += [Difference("different", rel, p) for p in disturbed.digest_problems]
    diffs += _counts("container starts", rel, reference.containers, disturbed.containers)
    diffs += _counts("manifest pushes", rel, reference.pushes, disturbed.pushes)
    diffs += _counts(
        "Terraform applies (state serial increments)",
        rel,
        {"state": reference.terraform_applies},
        {"state": disturbed.terraform_applies},
    )
    diffs += _counts(
        "accepted decisions", rel, {"gate": reference.decisions}, {"gate": disturbed.decisions}
    )
    for route in sorted(set(reference.routes) | set(disturbed.routes)):
        want, have = reference.routes.get(route, []), disturbed.routes.get(route, [])
        if want == have:
            continue
        kind = "lost" if len(have) < len(want) else "duplicated" if len(have) > len(want) else ""
        diffs.append(
            Difference(
                kind or "different",
                rel,
                f"route versions of {route}: {' -> '.join(have) or 'none'}, "
                f"reference {' -> '.join(want) or 'none'}",
            )
        )
    return diffs


def disturbed_deadline(reference_seconds: float, kills: int, restarts: int) -> float:
    """Seconds a disturbed release may take before it counts as stuck."""
    return (
        reference_seconds + KILL_ALLOWANCE * kills + RESTART_ALLOWANCE * restarts + DEADLINE_SLACK
    )


def summary_line(releases: int, kills: int, restarts: int, diffs: Sequence[Difference]) -> str:
    lost = sum(d.kind == "lost" for d in diffs)
    duplicated = sum(d.kind == "duplicated" for d in diffs)
    return (
        f"{releases} releases, {kills} kills, {restarts} server restarts, "
        f"{lost} lost, {duplicated} duplicated"
    )


def release_line(run: int, ref: ReleaseRecord, got: ReleaseRecord, diffs: int) -> str:
    how = f"{got.state or 'unfinished'} at {got.stage or '?'}"
    extra = []
    if got.kills:
        extra.append(f"killed at {', '.join(got.kills)}")
    if got.missed:
        extra.append(f"missed {', '.join(got.missed)}")
    if got.server_restarts:
        extra.append("Temporal restarted")
    verdict = "OK" if not diffs else f"{diffs} DIFFERENCE(S)"
    return (
        f"run {run} {got.version} {got.kind}: {how} (reference {ref.state} at {ref.stage}); "
        + ("; ".join(extra) + "; " if extra else "")
        + verdict
    )


# --------------------------------------------------------------------------------------
# Processes (by PID, never by name)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # start time in clock ticks: tells a recycled PID apart
    argv: tuple[str, ...]


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent PID, start time) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> list[Proc]:
    """Every live descendant of `root`."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                parents.setdefault(st[0], []).append(int(entry))
    out = []
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        st = _stat(pid)
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if st is None:
            continue
        argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        out.append(Proc(pid, st[1], argv))
        todo += parents.get(pid, [])
    return out


def _same_process(proc: Proc) -> bool:
    st = _stat(proc.pid)
    return st is not None and st[1] == proc.start


def _kill(proc: Proc) -> None:
    if _same_process(proc):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------
# The platform, the worker and the watcher
# --------------------------------------------------------------------------------------


class RouteWatcher:
    """Records every distinct version of each route file in Traefik's dynamic folder.

    Files are written by rename, so a read sees a whole version; polling every 20 ms
    sees each, since the deploy target waits for Traefik to apply one before the next.
    """

    def __init__(self, dynamic_dir: Path, api_url: str) -> None:
        from activities.traefik import TraefikRoutes  # the target's own parser

        self.routes = TraefikRoutes(dynamic_dir, api_url)
        self.dynamic_dir = dynamic_dir
        self.changes: list[tuple[str, RouteState | None]] = []
        self._last: dict[str, RouteState | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="route-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            self.poll()

    def poll(self) -> None:
        seen: dict[str, RouteState | None] = {}
        with contextlib.suppress(OSError):
            for path in self.dynamic_dir.glob("route-*.yml"):
                env, _, service = path.stem.removeprefix("route-").partition("-")
                try:
                    route = self.routes.read(env, service)
                except Exception:  # noqa: S112 (replaced while read: the next poll sees it)
                    continue
                if route is not None:
                    seen[path.stem] = (route.server_url, route.canary_url, route.canary_weight)
        for name in sorted(set(seen) | set(self._last)):
            if name not in seen and name in self._last and self._last[name] is not None:
                self.changes.append((name, None))
                self._last[name] = None
            elif name in seen and self._last.get(name) != seen[name]:
                self.changes.append((name, seen[name]))
                self._last[name] = seen[name]


class ChaosPlatform:
    """One platform in its own home: components up on free ports, a worker the script
    runs itself (so it can SIGKILL it), the route watcher and the record offsets."""

    def __init__(self, home: Path, snapshot: Path, log: Any) -> None:
        from local.platform import LocalPlatform

        self.home = home
        self.snapshot = snapshot
        self.log = log
        self.settings = PlatformSettings(home=str(home))
        self.local = LocalPlatform(self.settings)
        self.worker: subprocess.Popen[bytes] | None = None
        self.orphans: list[Proc] = []
        self.watcher: RouteWatcher | None = None
        self.client: Client | None = None
        self.kills = 0
        self.server_restarts = 0
        self.worker_exits: list[str] = []

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            BREWLINE_HOME=str(self.home),
            TEMPORAL_ADDRESS=self.settings.temporal_address,
            TEMPORAL_TASK_QUEUE=TASK_QUEUE,
            PYTHONUNBUFFERED="1",
        )
        env.pop("TEMPORAL_NAMESPACE", None)
        return env

    async def up(self) -> None:
        from brewline.connection import ConnectionSettings, connect

        await asyncio.to_thread(self.local.up, free_ports=True)
        self.settings = PlatformSettings.load(self.home)
        self.watcher = RouteWatcher(
            self.settings.traefik_dynamic_dir, self.settings.traefik_api_url
        )
        self.watcher.start()
        self.client = await connect(ConnectionSettings.from_env(self.settings.temporal_address))
        await self.start_worker()

    # ---- the worker ------------------------------------------------------------------
    @property
    def worker_log(self) -> Path:
        return self.settings.logs_dir / "worker.log"

    async def start_worker(self) -> None:
        marker = f"--- chaos worker start {time.time():.3f}\n"
        with self.worker_log.open("ab") as out:
            out.write(marker.encode())
            out.flush()
            self.worker = subprocess.Popen(  # noqa: ASYNC220 (returns at once)
                [sys.executable, str(self.snapshot / "worker.py")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.snapshot,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + WORKER_READY_TIMEOUT
        while READY_LINE not in self.worker_log.read_text(errors="replace").rpartition(marker)[2]:
            if self.worker.poll() is not None:
                raise RuntimeError(
                    f"the worker exited with {self.worker.returncode} before it polled; "
                    f"see {self.worker_log}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not poll within {WORKER_READY_TIMEOUT:g}s")
            await asyncio.sleep(0.2)

    def worker_processes(self) -> list[Proc]:
        return descendants(self.worker.pid) if self.worker is not None else []

    async def revive_worker(self) -> None:
        """A worker that exited by itself is noted and started again."""
        if self.worker is not None and self.worker.poll() is not None:
            self.worker_exits.append(f"worker exited by itself with {self.worker.returncode}")
            self.orphans += self.worker_processes()
            await self.start_worker()

    def kill_orphans(self, programs: set[str] | None = None) -> None:
        """SIGKILL what killed workers left running (`programs`: only these), by PID."""
        keep = []
        for proc in self.orphans:
            name = os.path.basename(proc.argv[0]) if proc.argv else ""
            if programs is None or name in programs:
                _kill(proc)
            elif _same_process(proc):
                keep.append(proc)
        self.orphans = keep

    # ---- the Temporal server ---------------------------------------------------------
    async def restart_server(self, downtime: float) -> None:
        pid = self.local.running_pid("temporal")
        if pid is None:
            raise RuntimeError("the Temporal dev server is not running; cannot restart it")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self.local.running_pid("temporal") is not None:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.1)
        await asyncio.sleep(downtime)
        await asyncio.to_thread(self.local.up, ["temporal"])
        self.server_restarts += 1

    # ---- records -------------------------------------------------------------------
    def mark(self) -> dict[str, Any]:
        def size(path: Path) -> int:
            try:
                return path.stat().st_size
            except OSError:
                return 0

        return {
            "events": size(self.events_file),
            "registry": size(self.settings.logs_dir / "registry.log"),
            "routes": len(self.watcher.changes) if self.watcher else 0,
            "terraform": self.terraform_state(),
        }

    @property
    def events_file(self) -> Path:
        return self.settings.containers_dir / "events.log"

    def terraform_state(self) -> TerraformState:
        from activities.terraform import state_path

        path = state_path(self.settings, "terraform/envs/local")
        try:
            return terraform_state(json.loads(path.read_text()))
        except (OSError, ValueError):
            return terraform_state(None)

    async def down(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                await asyncio.to_thread(self.worker.wait, 45)
            except subprocess.TimeoutExpired:
                os.kill(self.worker.pid, signal.SIGKILL)
                await asyncio.to_thread(self.worker.wait)
        self.kill_orphans()
        await asyncio.to_thread(self.local.down)


def _read_from(path: Path, offset: int) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()
    except OSError:
        return []


# --------------------------------------------------------------------------------------
# Driving one release
# --------------------------------------------------------------------------------------


async def _starter(
    platform: ChaosPlatform,
    *args: str,
    timeout: float = 600,  # noqa: ASYNC109 (the child is killed on expiry)
) -> tuple[int, str]:
    """Run the snapshot's starter.py as a person would; (exit code, its output)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(platform.snapshot / "starter.py"),
        *args,
        cwd=platform.snapshot,
        env=platform.env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, f"starter.py {' '.join(args)} did not answer within {timeout:g}s"
    text = out.decode(errors="replace")
    platform.log.write(f"$ starter.py {' '.join(args)} -> {proc.returncode}\n{text}\n")
    platform.log.flush()
    return proc.returncode or 0, text


async def _quietly(coro: Any, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
    """The awaitable's value, or None when Temporal or the worker did not answer."""
    try:
        return await asyncio.wait_for(coro, timeout)
    except (RPCError, TimeoutError, OSError, RuntimeError) as exc:
        del exc
        return None
    except Exception:  # a query failing while a workflow replays: look again
        return None


def _started(description: Any) -> frozenset[str]:
    if description is None:
        return frozenset()
    return frozenset(
        a.activity_type.name
        for a in description.raw_description.pending_activities
        if a.state == 2  # PENDING_ACTIVITY_STATE_STARTED
    )


class ReleaseDriver:
    """Starts one release, follows it, kills where planned, decides at the gate."""

    def __init__(
        self,
        platform: ChaosPlatform,
        spec: ReleaseSpec,
        kills: Sequence[PlannedKill],
        restart: PlannedServerRestart | None,
        duplicate: bool,
        concurrent: bool,
        weights: Sequence[int | None],
        deadline: float = RELEASE_DEADLINE,
    ) -> None:
        self.p = platform
        self.spec = spec
        self.pending = list(kills)
        self.restart = restart
        self.duplicate = duplicate
        self.concurrent = concurrent
        self.weights = weights  # the canary's steps: the weight of each set_weight step
        self.deadline = deadline
        self.record = ReleaseRecord(spec.version, spec.kind)
        self.decision: asyncio.Task[None] | None = None

    async def run(self) -> ReleaseRecord:
        mark = self.p.mark()
        args = ["release", "--services", SERVICE, "--version", self.spec.version]
        args += ["--as", INITIATOR, *self.spec.container_env]
        for _ in range(30):
            code, out = await _starter(self.p, *args, timeout=120)
            if code == 0:
                break
            await asyncio.sleep(2)
        else:
            raise RuntimeError(f"could not start {self.spec.release_id}:\n{out}")
        began = time.monotonic()
        deadline = began + self.deadline
        while time.monotonic() < deadline:
            await self.p.revive_worker()
            seen = await self.observe()
            if seen is None:
                await asyncio.sleep(POLL)
                continue
            if seen.state != "running":
                break
            await self.act(seen)
            await asyncio.sleep(POLL)
        else:
            self.record.notes.append(
                f"STUCK: did not finish within {self.deadline:.0f}s; {await self.where()}"
            )
        self.record.seconds = time.monotonic() - began
        if self.decision is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.decision, 600)
        self.record.missed += [k.point for k in self.pending]
        if self.restart is not None:
            self.record.notes.append(f"server restart at {self.restart.point} missed")
        await self.finish(mark)
        self.p.kill_orphans({"hey"})  # a killed worker's load generator would run on
        return self.record

    async def observe(self) -> Observation | None:
        assert self.p.client is not None
        handle = self.p.client.get_workflow_handle(self.spec.release_id)
        desc = await _quietly(handle.describe())
        if desc is None:
            return None
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return Observation(state="closed")
        status = await _quietly(handle.query("status"))
        if not isinstance(status, dict):
            return None
        seen = Observation(
            stage=str(status.get("stage", "")),
            approval_waiting=(status.get("approval") or {}).get("status") == "waiting",
            activities=_started(desc),
            processes=tuple(p.argv for p in self.p.worker_processes()),
        )
        canary = next(
            (c for c in status.get("canaries") or [] if c.get("outcome") == "running"), None
        )
        if canary is not None:
            child = self.p.client.get_workflow_handle(canary["workflow_id"])
            child_desc = await _quietly(child.describe())
            child_status = await _quietly(child.query("status"))
            seen.canary_activities = _started(child_desc)
            if isinstance(child_status, dict):
                seen.canary_phase = str(child_status.get("phase", ""))
                step = int(child_status.get("step", 0))
                want = self.weights[step] if step < len(self.weights) else None
                seen.set_weight_pending = (
                    child_status.get("step_kind") == "set_weight"
                    and want is not None
                    and child_status.get("weight") != want
                )
        return seen

    async def where(self) -> str:
        """Where a stuck release hangs: stage, canary phase, pending activities."""
        assert self.p.client is not None
        parts = []
        ids = [self.spec.release_id]
        handle = self.p.client.get_workflow_handle(self.spec.release_id)
        status = await _quietly(handle.query("status"), timeout=30)
        if isinstance(status, dict):
            parts.append(f"stage {status.get('stage')}, state {status.get('state')}")
            ids += [c["workflow_id"] for c in status.get("canaries") or []]
        for workflow_id in ids[1:]:
            phase = await _quietly(
                self.p.client.get_workflow_handle(workflow_id).query("status"), timeout=30
            )
            if isinstance(phase, dict):
                parts.append(f"{workflow_id} phase {phase.get('phase')}")
        running = await _quietly(pending_work(self.p.client, ids), timeout=60) or []
        parts += [f"{w.workflow_id} waits for {describe_pending(w)}" for w in running]
        return "; ".join(parts) or "no answer from Temporal"

    async def act(self, seen: Observation) -> None:
        position = seen.position
        for kill in list(self.pending):
            if position > KILL_POINTS[kill.point].position:
                self.pending.remove(kill)
                self.record.missed.append(kill.point)
        if self.restart is not None and (
            matches(self.restart.point, seen) or position > KILL_POINTS[self.restart.point].position
        ):
            restart, self.restart = self.restart, None
            if position <= KILL_POINTS[restart.point].position:
                print(f"    stopping Temporal at {restart.point}", flush=True)
                await self.p.restart_server(restart.downtime)
                self.record.server_restarts += 1
            else:
                self.record.notes.append(f"server restart at {restart.point} missed")
            return
        for kill in self.pending:
            if matches(kill.point, seen):
                self.pending.remove(kill)
                await asyncio.sleep(kill.jitter)
                print(f"    SIGKILL worker at {kill.point}", flush=True)
                if kill.point == "approval":
                    # the decision goes out while no worker runs: it must not be lost
                    await self._kill_then(kill.restart_delay, decide=True)
                else:
                    await self._kill_then(kill.restart_delay, decide=False)
                self.record.kills.append(kill.point)
                return
        gate_kill_planned = any(k.point == "approval" for k in self.pending)
        if seen.approval_waiting and self.decision is None and not gate_kill_planned:
            self.decision = asyncio.create_task(self.decide())

    async def _kill_then(self, restart_delay: float, *, decide: bool) -> None:
        assert self.p.worker is not None
        self.p.orphans += self.p.worker_processes()
        os.kill(self.p.worker.pid, signal.SIGKILL)
        await asyncio.to_thread(self.p.worker.wait)
        self.p.kills += 1
        if decide and self.decision is None:
            self.decision = asyncio.create_task(self.decide())
        await asyncio.sleep(restart_delay)
        await self.p.start_worker()

    async def decide(self) -> None:
        """The approver's decision, retried until the workflow has it; maybe twice."""
        verb = "approve" if self.spec.approve else "reject"
        args = [verb, self.spec.release_id, "--as", APPROVER, "--reason", "chaos suite"]
        if self.duplicate and self.concurrent:
            results = await asyncio.gather(self._send(args), self._send(args))
            self.record.notes.append(f"two {verb}s at once: exit codes {list(results)}")
            return
        await self._send(args)
        if self.duplicate:
            code = await self._send(args, retry=False)
            self.record.notes.append(f"duplicate {verb} after it: exit code {code}")

    async def _send(self, args: list[str], retry: bool = True) -> int:
        deadline = time.monotonic() + 900
        while True:
            code, out = await _starter(self.p, *args)
            if code == 0 or not retry or "decision refused" in out:
                return code
            if time.monotonic() > deadline:
                self.record.notes.append(f"decision never got through: {out.strip()[-300:]}")
                return code
            await asyncio.sleep(2)

    async def finish(self, mark: dict[str, Any]) -> None:
        from activities.registry import RegistryClient

        assert self.p.client is not None
        handle = self.p.client.get_workflow_handle(self.spec.release_id)
        status = None
        for _ in range(60):
            await self.p.revive_worker()
            desc = await _quietly(handle.describe())
            closed = desc is not None and desc.status != WorkflowExecutionStatus.RUNNING
            if closed or self.record.seconds >= self.deadline:
                # a stuck release is shown where it hangs (state running, not finished)
                status = await _quietly(handle.query("status"), timeout=30)
                if isinstance(status, dict):
                    break
            await asyncio.sleep(2)
        rec = self.record
        if isinstance(status, dict):
            rec.finished = status.get("state") in ("succeeded", "failed", "aborted")
            rec.state = str(status.get("state"))
            rec.stage = str(status.get("stage"))
            rec.stages = {s["name"]: s["state"] for s in status.get("stages", [])}
            rec.canaries = {
                f"{c['environment']}/{c['service']}": c["outcome"]
                for c in status.get("canaries", [])
            }
            registry = RegistryClient(self.p.settings.registry_address)
            for d in status.get("deployments", []):
                key = f"{d['environment']}/{d['service']}"
                env = ",".join(f"{k}={v}" for k, v in sorted((d.get("env") or {}).items()))
                rec.deployments[key] = f"{d['version']} {env}".strip()
                digest = str(d.get("image", "")).rpartition("@")[2]
                held = await asyncio.to_thread(
                    registry.manifest, f"go-coffee/{d['service']}", d["version"]
                )
                if held is None or held.digest != digest:
                    rec.digest_problems.append(
                        f"{key} runs {digest or 'no digest'} but the registry holds "
                        f"{held.digest if held else 'nothing'} for {d['service']}:{d['version']}"
                    )
        history = await _quietly(handle.fetch_history(), timeout=60)
        if history is not None:
            rec.decisions = history_decisions(history.events)
        events = _read_from(self.p.events_file, mark["events"])
        all_events = _read_from(self.p.events_file, 0)
        rec.containers = dict(container_starts(events))
        rec.pushes = dict(
            manifest_pushes(_read_from(self.p.settings.logs_dir / "registry.log", mark["registry"]))
        )
        before: TerraformState = mark["terraform"]
        after = self.p.terraform_state()
        rec.terraform_applies = after.serial - before.serial
        rec.terraform_resources = after.resources
        rec.terraform_version = after.release_version
        changes = self.p.watcher.changes[mark["routes"] :] if self.p.watcher else []
        rec.routes = route_versions(changes, container_ports(all_events))
        rec.notes += self.p.worker_exits
        self.p.worker_exits.clear()


# --------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------


def snapshot_source(dest: Path, rev: str | None) -> str:
    """Copy the code and configuration releases run from; return what was copied."""
    dest.mkdir(parents=True)
    if rev:
        archive = dest.with_suffix(".tar")
        subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", "-o", str(archive), rev],
            check=True,
            timeout=120,
        )
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
        archive.unlink()
        return f"git {rev}"
    ignore = shutil.ignore_patterns("__pycache__", ".terraform", "*.tfstate*", ".mypy_cache")
    for name in SNAPSHOT_PATHS:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore, symlinks=True)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return f"working tree of {REPO_ROOT}"


def canary_weights(snapshot: Path) -> list[int | None]:
    """The weight of each canary step (None for steps that are not set_weight)."""
    from brewline.config import load

    config = load(snapshot / "pipeline.yaml")
    if config.canary is None:
        return []
    return [s.weight if s.kind == "set_weight" else None for s in config.canary.steps]


async def one_pass(
    home: Path,
    snapshot: Path,
    releases: Sequence[ReleaseSpec],
    plan: RunPlan | None,
    log: Any,
    label: str,
    references: Sequence[ReleaseRecord] = (),
) -> tuple[list[ReleaseRecord], ChaosPlatform]:
    # Go's build cache is shared by the passes, as a CI runner keeps it: a cold -race
    # build of the standard library takes minutes on two busy cores, and `go test
    # -count=1` never reuses a test result, so every release still runs its tests.
    (home / "go").parent.mkdir(parents=True, exist_ok=True)
    (snapshot.parent / "go").mkdir(exist_ok=True)
    (home / "go").symlink_to(snapshot.parent / "go", target_is_directory=True)
    platform = ChaosPlatform(home, snapshot, log)
    weights = canary_weights(snapshot)
    records = []
    try:
        await platform.up()
        for i, spec in enumerate(releases):
            kills = [k for k in plan.kills if k.release == i] if plan else []
            restart = (
                plan.server_restart
                if plan and plan.server_restart and plan.server_restart.release == i
                else None
            )
            dup = bool(plan and i in plan.duplicate_approvals)
            concurrent = bool(plan and i in plan.concurrent_duplicates)
            print(f"  [{label}] {spec.release_id} ({spec.kind})", flush=True)
            deadline = RELEASE_DEADLINE
            if i < len(references):
                deadline = disturbed_deadline(
                    references[i].seconds, len(kills), 1 if restart else 0
                )
            driver = ReleaseDriver(
                platform, spec, kills, restart, dup, concurrent, weights, deadline
            )
            record = await driver.run()
            print(
                f"  [{label}] {spec.version}: {record.state or 'unfinished'} at {record.stage} "
                f"in {record.seconds:.0f}s",
                flush=True,
            )
            records.append(record)
    finally:
        await platform.down()
    return records, platform


async def chaos(args: argparse.Namespace) -> int:
    releases = release_sequence(args.releases_per_run)
    plans = plan_runs(args.seed, args.runs, releases, args.kills_per_run)
    print(f"chaos seed {args.seed}: {args.runs} run(s) of {len(releases)} release(s)")
    print(describe_plan(plans, releases), flush=True)
    work = Path(tempfile.mkdtemp(prefix="brewline-chaos-"))
    print(f"working in {work}")
    snapshot = work / "source"
    print(f"releasing from a snapshot of the {snapshot_source(snapshot, args.source_rev)}")
    diffs: list[Difference] = []
    listed: list[str] = []
    kills = restarts = checked = 0
    began = time.monotonic()
    with (work / "chaos.log").open("w") as log:
        for plan in plans:
            print(f"run {plan.run}: undisturbed reference", flush=True)
            reference, _ = await one_pass(
                work / f"run{plan.run}-reference", snapshot, releases, None, log, "reference"
            )
            print(f"run {plan.run}: disturbed", flush=True)
            disturbed, platform = await one_pass(
                work / f"run{plan.run}-disturbed",
                snapshot,
                releases,
                plan,
                log,
                "disturbed",
                reference,
            )
            kills += platform.kills
            restarts += platform.server_restarts
            for ref, got in zip(reference, disturbed, strict=True):
                # every record in the log: the evidence behind each line and difference
                for label, rec in (("reference", ref), ("disturbed", got)):
                    log.write(f"record run {plan.run} {label} {json.dumps(asdict(rec))}\n")
                log.flush()
                found = compare(ref, got)
                checked += 1
                print(release_line(plan.run, ref, got, len(found)), flush=True)
                for note in got.notes:
                    print(f"    note: {note}")
                for diff in found:
                    print(f"    {diff}")
                    listed.append(f"run {plan.run} {diff}")
                diffs += found
    print(f"took {time.monotonic() - began:.0f}s; seed {args.seed}")
    if diffs:
        print(f"{len(diffs)} difference(s):")
        for line in listed:
            print(f"  {line}")
        print(f"the platforms' homes are kept in {work} for the evidence")
    elif not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(summary_line(checked, kills, restarts, diffs), flush=True)
    return 1 if diffs else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m local.chaos",
        description="Kill the worker and restart Temporal during real releases; compare "
        "every outcome and side effect with an undisturbed run.",
    )
    p.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    p.add_argument("--releases-per-run", type=int, default=4)
    p.add_argument(
        "--kills-per-run",
        type=int,
        default=None,
        help=f"default: enough for {MIN_TOTAL_KILLS} kills over the runs",
    )
    p.add_argument("--source-rev", help="release from this git revision instead of the tree")
    p.add_argument("--keep", action="store_true", help="keep the temporary homes")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1_000_000)
    if args.runs < 1 or args.releases_per_run < 1:
        parser().error("--runs and --releases-per-run must be at least 1")
    code = asyncio.run(chaos(args))
    sys.stdout.flush()
    os._exit(code)  # skip interpreter teardown of the Temporal core (sdk-python#300)


if __name__ == "__main__":
    main()
