"""`make demo` and `make demo-bad` on the local platform.

    python -m local.demo          release api-gateway to the production approval gate;
                                  after `starter.py approve`, a canary takes it to 100%
    python -m local.demo bad      release a version of api-gateway whose containers fail
                                  20% of business requests, approve it as the demo
                                  approver and follow it: the canary analysis rolls it
                                  back by itself; exits 1 with the reason once it has

Both bring the platform and a worker up first. A canary needs a stable version to
compare with, so when production serves no api-gateway yet, a baseline release goes
first and the demo approves it itself as the demo approver (it says so).

Safe to run twice: a platform part or worker that already runs is left alone, and a demo
release already waiting for approval is shown again instead of starting another.
Everything keeps running in the background until `make down`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request

from temporalio.client import Client

import starter
from brewline import search_attributes as sa
from brewline.connection import ConnectionSettings, connect
from brewline.platform import PlatformSettings
from local.platform import LocalPlatform
from workflows.release import ReleaseWorkflow

SERVICE = "api-gateway"
INITIATOR = "carol"  # the pipeline's approvers are alice and bob: carol may not approve
APPROVER = "alice"
FAULT = "FAULT_ERROR_RATE=0.2"  # the faulty version: one business request in five fails
GATE_DEADLINE = 1800.0  # seconds: test, scan, build, infra and staging on two cores
RELEASE_DEADLINE = 2400.0  # the same, plus the approval and the canary


async def waiting_release(client: Client) -> str | None:
    query = (
        f'WorkflowType="ReleaseWorkflow" AND ReleaseServices="{SERVICE}" '
        f'AND ReleaseStage="{sa.AWAITING_APPROVAL}" AND ExecutionStatus="Running"'
    )
    async for wf in client.list_workflows(query, limit=1):
        return wf.id
    return None


async def next_version(client: Client) -> str:
    """1.0.N, one more than the demo releases this platform has seen."""
    count = await client.count_workflows(
        f'WorkflowType="ReleaseWorkflow" AND ReleaseServices="{SERVICE}"'
    )
    return f"1.0.{count.count}"


def serving_version(settings: PlatformSettings, environment: str) -> str | None:
    """The version answering /health through the environment's router, or None."""
    url = f"{settings.entrypoint_url(environment)}/{SERVICE}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            version = json.loads(response.read()).get("version")
            return str(version) if version else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


async def start_release(client: Client, version: str, *extra: str) -> str | None:
    code = await starter.main(
        ["release", "--services", SERVICE, "--version", version, "--as", INITIATOR, *extra],
        client=client,
    )
    return f"release-go-coffee-{SERVICE}-{version}" if code == 0 else None


async def wait_for_gate(client: Client, release_id: str) -> bool:
    """Follow the release until it waits for approval (True) or ends (False)."""
    handle = client.get_workflow_handle(release_id)
    last = ""
    deadline = time.monotonic() + GATE_DEADLINE
    while time.monotonic() < deadline:
        status = await handle.query(ReleaseWorkflow.status)
        line = f"  {status.stage}: {status.state}"
        if line != last:
            print(line, flush=True)
            last = line
        if status.approval is not None and status.approval.status == "waiting":
            return True
        if status.state in starter.FINAL:
            print(starter.render(status))
            return False
        await asyncio.sleep(1)
    print(f"release {release_id} did not reach the approval gate within {GATE_DEADLINE:g}s")
    return False


async def approve_and_follow(client: Client, release_id: str) -> int:
    """Approve as the demo approver and follow to the end: starter.py's exit code."""
    code = await starter.main(
        ["approve", release_id, "--as", APPROVER, "--reason", "the demo approves it"],
        client=client,
    )
    if code != 0:
        return code
    return await starter.main(["status", release_id, "--watch"], client=client)


async def ensure_baseline(client: Client, settings: PlatformSettings) -> bool:
    """A stable api-gateway in production for the canary to compare with."""
    running = serving_version(settings, "production")
    if running:
        print(f"production serves {SERVICE} {running}: the canary compares with it")
        return True
    version = await next_version(client)
    print(
        f"production serves no {SERVICE} yet, and a canary needs a stable version to compare "
        f"with: releasing {version} as a baseline, approved by the demo as {APPROVER}"
    )
    release_id = await start_release(client, version)
    if release_id is None or not await wait_for_gate(client, release_id):
        return False
    return await approve_and_follow(client, release_id) == 0


async def platform_up() -> tuple[PlatformSettings, Client]:
    """The local platform and a worker running (started if need be), and a client."""
    LocalPlatform(PlatformSettings.load()).up(LocalPlatform.DEMO_COMPONENTS)
    settings = PlatformSettings.load()  # again: `up` wrote the ports it chose
    return settings, await connect(ConnectionSettings.from_env(settings.temporal_address))


async def demo(bad: bool) -> int:
    settings, client = await platform_up()

    waiting = await waiting_release(client)
    if waiting and bad:
        print(
            f"error: {waiting} waits for approval; approve or reject it first, so the faulty "
            "release is the only canary of api-gateway",
            file=sys.stderr,
        )
        return 2
    if waiting:
        print(f"a demo release is already waiting for approval: {waiting}")
        print_next_steps(settings, waiting)
        return 0
    if not await ensure_baseline(client, settings):
        return 1

    version = await next_version(client)
    extra = ["--container-env", f"{SERVICE}:{FAULT}"] if bad else []
    release_id = await start_release(client, version, *extra)
    if release_id is None:
        return 2
    what = f" with {FAULT} (a faulty version)" if bad else ""
    print(f"following {release_id}{what} through test, scan, build, infra and staging:")
    if not await wait_for_gate(client, release_id):
        return 1
    if not bad:
        print_next_steps(settings, release_id)
        return 0

    print(f"approving it as {APPROVER}; the canary's analysis should roll it back by itself")
    code = await approve_and_follow(client, release_id)
    if code == 0:
        print(f"UNEXPECTED: the faulty {release_id} was promoted; the analysis missed it")
        return 3
    status = await client.get_workflow_handle(release_id).query(ReleaseWorkflow.status)
    print(f"\nrolled back by itself: {status.failure}")
    print(f"production still serves {serving_version(settings, 'production')}")
    return 1


def print_next_steps(settings: PlatformSettings, release_id: str) -> None:
    print(
        f"""
{release_id} waits for production approval; once approved, a canary takes it
from 10% to 100% of production traffic under analysis.

  approve:  .venv/bin/python starter.py approve {release_id} --as {APPROVER}
  follow:   .venv/bin/python starter.py status {release_id} --watch
  steer:    .venv/bin/python starter.py promote|pause|resume {release_id} --as bob
  waiting:  .venv/bin/temporal workflow list --address {settings.temporal_address} \\
              --query 'ReleaseStage="{sa.AWAITING_APPROVAL}"'
  UI:       {settings.ui_url}/namespaces/default/workflows/{release_id}
  staging:  {settings.entrypoint_url("staging")}/{SERVICE}/health
  prod:     {settings.entrypoint_url("production")}/{SERVICE}/health

The platform and the worker keep running in the background; `make down` stops them."""
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__)
    parser.add_argument("mode", nargs="?", choices=("good", "bad"), default="good")
    code = asyncio.run(demo(parser.parse_args().mode == "bad"))
    sys.stdout.flush()
    os._exit(code)  # see starter.run_cli: skip interpreter teardown of the Temporal core


if __name__ == "__main__":
    main()
