"""The load benchmark, small: 6 releases at once on a worker bounded to 3 activities.

Runs `python -m bench.load` as `make bench-load` does (its own dev server on free ports,
the real workflows in a worker process, simulated activities) and checks what it
checked and reported: every release succeeded with the expected deployments, each side
effect happened exactly once, and the worker never ran more activities at once than its
bound, while the bound was actually reached (so the check can fail).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from brewline.platform import REPO_ROOT

BOUND = 3


def test_releases_at_once_finish_correctly_within_the_bound(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--releases",
            "6",
            "--services",
            "mix",
            "--max-activities",
            str(BOUND),
            "--seed",
            "7",
            "--timeout",
            "240",
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=360,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    checks = report["checks"]
    assert checks["problems"] == {}
    assert checks["all_succeeded"] and checks["results_as_expected"]
    assert checks["effects_exactly_once"] and checks["bound_held"]
    # the bound was reached, not merely respected by a worker that had too little to do
    assert report["peak_activities_in_flight"] == BOUND
    services = report["services_released"]
    # per service: build, staging deploy, canary deploy, 2 weights, promote; + 1 apply each
    assert checks["side_effect_records"] == services * 6 + 6
    assert report["activity_calls"]["promote_canary"] == services
    assert "SIMULATED" in run.stdout and "allow_unsigned" in run.stdout
    assert "PASS" in run.stdout
