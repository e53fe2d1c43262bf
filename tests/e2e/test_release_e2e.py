"""End to end on the real local platform, driven the way a person drives it.

The Temporal dev server, the registry, Traefik and Prometheus run on free loopback ports
in a temporary home; the worker, every starter.py call and the demo are separate
processes. The tests run in order, each release building on the one before:

1. api-gateway 1.0.0 goes through real go test, Trivy, semgrep, go build + buildah,
   Terraform, podman containers behind Traefik, a refused self-approval and a real
   approval. Production served nothing before, so it is deployed directly.
2. `python -m local.demo` (`make demo`) releases 1.0.1 to the gate; once approved, a
   canary with real load and real Prometheus measurements takes it to 100%.
3. `python -m local.demo bad` (`make demo-bad`) releases 1.0.2 with 20% of business
   requests failing; its canary rolls it back by itself, production keeps 1.0.1 and the
   release fails naming the metric.

Set BREWLINE_RECORD_HISTORY=1 to (re)write tests/histories/release-e2e-happy-path.json
from this run; the replay test checks every history there against the workflow code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from brewline.platform import REPO_ROOT, PlatformSettings, tool_path
from local.platform import LocalPlatform

pytestmark = pytest.mark.e2e
HISTORIES = REPO_ROOT / "tests" / "histories"
VERSION = "1.0.0"
RELEASE_ID = f"release-go-coffee-api-gateway-{VERSION}"


@pytest.fixture(scope="module")
def task_queue() -> str:
    return f"e2e-{uuid.uuid4()}"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformSettings]:
    settings = PlatformSettings(home=str(tmp_path_factory.mktemp("e2e")))
    local = LocalPlatform(settings)
    local.up(free_ports=True)
    try:
        yield settings
    finally:
        local.down()


def environment(settings: PlatformSettings, task_queue: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        BREWLINE_HOME=settings.home,
        TEMPORAL_ADDRESS=settings.temporal_address,
        TEMPORAL_TASK_QUEUE=task_queue,
        PYTHONUNBUFFERED="1",
    )
    return env


def starter(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "starter.py"), *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def awaiting_approval(env: dict[str, str], settings: PlatformSettings) -> list[str]:
    """Release ids the real temporal CLI finds at the approval gate."""
    out = subprocess.run(
        [
            tool_path("temporal", "BREWLINE_TEMPORAL"),
            "workflow",
            "list",
            "--address",
            settings.temporal_address,
            "--query",
            'ReleaseStage="awaiting-approval"',
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    rows = json.loads(out or "[]")
    return [row["execution"]["workflowId"] for row in rows]


def get_json(url: str) -> dict[str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
        data: dict[str, str] = json.loads(response.read())
        return data


def test_release_reaches_production_through_a_real_approval(
    platform: PlatformSettings, tmp_path: Path, task_queue: str
) -> None:
    env = environment(platform, task_queue)
    worker_log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "worker.py")],
        env=env,
        cwd=REPO_ROOT,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        started = starter(
            env, "release", "--services", "api-gateway", "--version", VERSION, "--as", "alice"
        )
        assert started.returncode == 0, started.stderr
        assert f"started release {RELEASE_ID}" in started.stdout
        assert f"python starter.py approve {RELEASE_ID} --as <approver>" in started.stdout

        # test, scan, build, terraform and staging take a few minutes on two cores
        deadline = time.monotonic() + 900
        while RELEASE_ID not in awaiting_approval(env, platform):
            status = starter(env, "status", RELEASE_ID)
            assert "[failed]" not in status.stdout and "state     failed" not in status.stdout, (
                status.stdout + (tmp_path / "worker.log").read_text()[-3000:]
            )
            assert time.monotonic() < deadline, status.stdout
            time.sleep(2)

        staging = get_json(platform.entrypoint_url("staging") + "/api-gateway/health")
        assert staging["version"] == VERSION and staging["service"] == "api-gateway"

        again = starter(
            env, "release", "--services", "api-gateway", "--version", VERSION, "--as", "alice"
        )
        assert f"attached to running release {RELEASE_ID}" in again.stdout

        outsider = starter(env, "approve", RELEASE_ID, "--as", "mallory")
        assert outsider.returncode == 2
        assert "'mallory' may not approve releases" in outsider.stderr

        self_approval = starter(env, "approve", RELEASE_ID, "--as", "alice")
        assert self_approval.returncode == 2
        assert "separation of duties" in self_approval.stderr

        approved = starter(env, "approve", RELEASE_ID, "--as", "bob", "--reason", "e2e")
        assert approved.returncode == 0, approved.stderr
        assert "approved by bob" in approved.stdout

        followed = starter(env, "status", RELEASE_ID, "--watch", timeout=600)
        assert followed.returncode == 0, followed.stdout + followed.stderr
        assert f"release {RELEASE_ID} succeeded" in followed.stdout

        production = get_json(platform.entrypoint_url("production") + "/api-gateway/health")
        assert production["version"] == VERSION

        final = starter(env, "status", RELEASE_ID, "--json")
        status = json.loads(final.stdout)
        assert status["state"] == "succeeded"
        assert status["approval"]["decided_by"] == "bob"
        assert [s["state"] for s in status["stages"]] == ["succeeded"] * 7
        assert {(d["environment"], d["version"]) for d in status["deployments"]} == {
            ("staging", VERSION),
            ("production", VERSION),
        }
        if os.environ.get("BREWLINE_RECORD_HISTORY"):
            record_history(env, platform)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        worker_log.close()


def record_history(env: dict[str, str], settings: PlatformSettings) -> None:
    HISTORIES.mkdir(exist_ok=True)
    subprocess.run(
        [
            tool_path("temporal", "BREWLINE_TEMPORAL"),
            "workflow",
            "show",
            "--address",
            settings.temporal_address,
            "--workflow-id",
            RELEASE_ID,
            "--output",
            "json",
        ],
        env=env,
        check=True,
        stdout=(HISTORIES / "release-e2e-happy-path.json").open("w"),
        timeout=30,
    )


def demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`make demo` / `make demo-bad` against this test's platform (BREWLINE_HOME)."""
    return subprocess.run(
        [sys.executable, "-m", "local.demo", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )


def promql(settings: PlatformSettings, query: str) -> float:
    url = f"{settings.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
        result = json.loads(response.read())["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def traefik_leaves(settings: PlatformSettings, environment_name: str) -> dict[str, int]:
    url = f"{settings.traefik_api_url}/api/http/services/{environment_name}-api-gateway@file"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
        weighted = json.loads(response.read())["weighted"]["services"]
    return {leaf["name"]: leaf["weight"] for leaf in weighted}


def test_make_demo_takes_a_good_version_through_a_canary_to_100_percent(
    platform: PlatformSettings, task_queue: str
) -> None:
    env = environment(platform, task_queue)
    release_id = "release-go-coffee-api-gateway-1.0.1"
    shown = demo(env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "production serves api-gateway 1.0.0: the canary compares with it" in shown.stdout
    assert f"{release_id} waits for production approval" in shown.stdout
    assert release_id in awaiting_approval(env, platform)

    approved = starter(env, "approve", release_id, "--as", "bob")
    assert approved.returncode == 0, approved.stderr
    followed = starter(env, "status", release_id, "--watch", timeout=900)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    # the watch shows the canary step by step, ending promoted
    for weight in (10, 20, 50, 80):
        assert f"weight {weight}%" in followed.stdout, followed.stdout
    assert "canary production/api-gateway: promoted" in followed.stdout

    status = json.loads(starter(env, "status", release_id, "--json").stdout)
    [canary] = status["canary_status"]
    assert (canary["phase"], canary["weight"]) == ("promoted", 100)
    assert {m["metric"]: m["phase"] for m in canary["last_measurements"]} == {
        "request-success-rate": "Successful",
        "request-duration-p99": "Successful",
    }
    assert get_json(platform.entrypoint_url("production") + "/api-gateway/health")["version"] == (
        "1.0.1"
    )
    assert traefik_leaves(platform, "production") == {"production-api-gateway-stable": 100}
    # real requests reached the canary through the router, as Prometheus recorded them
    served = promql(
        platform,
        "max_over_time(sum(traefik_service_requests_total{service="
        '"production-api-gateway-canary@file"})[1h:1s])',
    )
    assert served > 100


def test_make_demo_bad_is_rolled_back_by_its_canary_and_names_the_metric(
    platform: PlatformSettings, task_queue: str
) -> None:
    env = environment(platform, task_queue)
    shown = demo(env, "bad")
    assert shown.returncode == 1, shown.stdout + shown.stderr
    out = shown.stdout
    assert "release-go-coffee-api-gateway-1.0.2 with FAULT_ERROR_RATE=0.2" in out
    assert "rolled back by itself: release failed at deploy-production: api-gateway: " in out
    assert "canary rolled back: request-success-rate: 1 failed measurement (" in out
    assert "condition >= 0.99) exceeds failure_limit 0" in out
    assert "production still serves 1.0.1" in out
    # traffic is back on stable, the canary is gone; staging keeps the version it had
    assert traefik_leaves(platform, "production") == {"production-api-gateway-stable": 100}
    assert get_json(platform.entrypoint_url("production") + "/api-gateway/health")["version"] == (
        "1.0.1"
    )
    assert get_json(platform.entrypoint_url("staging") + "/api-gateway/health")["version"] == (
        "1.0.2"
    )
    status = json.loads(
        starter(env, "status", "release-go-coffee-api-gateway-1.0.2", "--json").stdout
    )
    assert status["state"] == "failed"
    [canary] = status["canary_status"]
    assert canary["phase"] == "rolled-back" and canary["weight"] == 0
