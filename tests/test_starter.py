"""starter.py: bad input gets one clear line and starts nothing; releases are unique."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

import starter
from brewline.platform import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["release", "--services", "api-gateway,coffee-bot", "--version", "1.0.0"],
            "unknown service 'coffee-bot'",
        ),
        (["release", "--services", "api-gateway", "--version", "1.0"], "version '1.0'"),
        (
            ["release", "--services", "api-gateway", "--version", "1.0.0;reboot"],
            "version '1.0.0;reboot' is not allowed",
        ),
        (["release", "--services", " , ", "--version", "1.0.0"], "at least one service"),
        (
            ["release", "--services", "api-gateway", "--version", "1.0.0", "--environments", "qa"],
            "unknown environment 'qa'",
        ),
        (
            ["release", "--services", "api-gateway", "--version", "1.0.0", "--source", "/"],
            "has no Go module folder",
        ),
        (["reject", "some-release", "--as", "bob"], "reject needs --reason"),
    ],
)
async def test_bad_input_gets_one_line_and_starts_nothing(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # an address where nothing listens: nothing may even try to connect before validation
    code = await starter.main(["--address", f"127.0.0.1:{free_port()}", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err
    assert err.count("\n") == 1 and err.startswith("error: ")


async def test_invalid_pipeline_lists_all_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "pipeline.yaml"
    bad.write_text(
        (REPO_ROOT / "pipeline.yaml")
        .read_text()
        .replace("fail_on: HIGH", "fail_on: X")
        .replace("parallelism: 2", "parallelism: 99")
    )
    code = await starter.main(
        ["release", "--services", "api-gateway", "--version", "1.0.0", "--pipeline", str(bad)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "(2 problems)" in err
    assert "scan.fail_on: 'X' is not a severity" in err
    assert "build.parallelism: 99" in err


async def test_unreachable_temporal_names_the_address(capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    code = await starter.main(["--address", address, "status", "release-x"])
    assert code == 2
    assert f"cannot reach Temporal at {address}" in capsys.readouterr().err


async def test_starting_the_same_release_twice_attaches(
    local_env: WorkflowEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    client: Client = local_env.client
    version = f"9.9.{uuid.uuid4().int % 100000}"
    queue = f"nobody-polls-{uuid.uuid4()}"  # the workflow just waits for a worker
    argv = [
        "release",
        "--services",
        "producer,api-gateway",
        "--version",
        version,
        "--task-queue",
        queue,
        "--as",
        "carol",
    ]
    assert await starter.main(argv, client=client) == 0
    first = capsys.readouterr().out
    argv[2] = "api-gateway,producer"
    assert await starter.main(argv, client=client) == 0
    second = capsys.readouterr().out
    rid = f"release-go-coffee-api-gateway+producer-{version}"
    assert f"started release {rid}" in first
    assert f"attached to running release {rid}" in second
    runs = [wf async for wf in client.list_workflows(f'WorkflowId="{rid}"')]
    assert len(runs) == 1 and runs[0].status == WorkflowExecutionStatus.RUNNING
    await client.get_workflow_handle(rid).terminate("test over")


async def test_decisions_on_unknown_releases(
    local_env: WorkflowEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await starter.main(
        ["approve", "release-does-not-exist", "--as", "bob"], client=local_env.client
    )
    assert code == 2
    assert "no release with id 'release-does-not-exist'" in capsys.readouterr().err
