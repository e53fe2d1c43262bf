"""`make demo`: bring the local platform and a worker up, release api-gateway, stop at the gate.

Safe to run twice: a platform part or worker that already runs is left alone, and a
demo release already waiting for approval is shown again instead of starting another.
Everything keeps running in the background until `make down`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

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


GATE_DEADLINE = 1800.0  # seconds: test, scan, build, infra and staging on two cores


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


async def demo() -> int:
    settings = PlatformSettings.load()
    LocalPlatform(settings).up(LocalPlatform.DEMO_COMPONENTS)
    settings = PlatformSettings.load()
    client = await connect(ConnectionSettings.from_env(settings.temporal_address))

    release_id = await waiting_release(client)
    if release_id:
        print(f"a demo release is already waiting for approval: {release_id}")
    else:
        version = await next_version(client)
        code = await starter.main(
            ["release", "--services", SERVICE, "--version", version, "--as", INITIATOR],
            client=client,
        )
        if code != 0:
            return code
        release_id = f"release-go-coffee-{SERVICE}-{version}"
        print("following it through test, scan, build, infra and staging:")
        if not await wait_for_gate(client, release_id):
            return 1

    print(
        f"""
{release_id} waits for production approval.

  approve:  .venv/bin/python starter.py approve {release_id} --as {APPROVER}
  status:   .venv/bin/python starter.py status {release_id} --watch
  waiting:  .venv/bin/temporal workflow list --address {settings.temporal_address} \\
              --query 'ReleaseStage="{sa.AWAITING_APPROVAL}"'
  UI:       {settings.ui_url}/namespaces/default/workflows/{release_id}
  staging:  {settings.entrypoint_url("staging")}/{SERVICE}/health
  prod:     {settings.entrypoint_url("production")}/{SERVICE}/health

The platform and the worker keep running in the background; `make down` stops them."""
    )
    return 0


def main() -> None:
    code = asyncio.run(demo())
    sys.stdout.flush()
    os._exit(code)  # see starter.run_cli: skip interpreter teardown of the Temporal core


if __name__ == "__main__":
    main()
