"""starter.py: bad input gets one clear line and starts nothing; releases are unique."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from pathlib import Path

import pytest
import yaml
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

import starter
from brewline import canary as c
from brewline.judge import Verdict
from brewline.model import ApprovalState, Deployment, ReleaseStatus, TerraformPlanResult
from brewline.pending import pending_work
from brewline.platform import REPO_ROOT
from tests.signers import make_signer, write_allowed_signers
from tests.workflows.fakes import FakeWorld, new_worker, wait_for_stage
from tests.workflows.test_release_workflow import awaiting_approval


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
        (
            [
                "release",
                "--services",
                "api-gateway",
                "--version",
                "1.0.0",
                "--container-env",
                "FAULT_ERROR_RATE=0.2",
            ],
            "--container-env 'FAULT_ERROR_RATE=0.2' is not SERVICE:NAME=VALUE",
        ),
        (
            [
                "release",
                "--services",
                "api-gateway",
                "--version",
                "1.0.0",
                "--container-env",
                "producer:FAULT_ERROR_RATE=0.2",
                "--container-env",
                "api-gateway:LISTEN_ADDR=0.0.0.0:80",
            ],
            "container env for 'producer': not a service of this release (api-gateway); "
            "container env 'LISTEN_ADDR' for api-gateway: set by the platform",
        ),
        (
            ["approve", "release-x", "--as", "alice", "--plan", "abc"],
            "--plan 'abc' is not a sha256 (64 hex digits)",
        ),
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


async def test_people_steer_a_running_canary_from_the_command_line(
    local_env: WorkflowEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client: Client = local_env.client
    pipeline = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text())
    pipeline["canary"]["steps"] = [{"set_weight": 10}, {"pause": {}}, {"analysis": {}}]
    pipeline["canary"]["analysis"].update(interval="2s", count=1)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    world = FakeWorld(
        running={
            ("production", "api-gateway"): Deployment("production", "api-gateway", "1.0.0", "i@1"),
            ("staging", "api-gateway"): Deployment("staging", "api-gateway", "1.0.0", "i@1"),
        }
    )
    queue = f"tq-{uuid.uuid4()}"
    version = f"8.8.{uuid.uuid4().int % 100000}"
    rid = f"release-go-coffee-api-gateway-{version}"
    common = ["--as", "carol"]
    async with new_worker(client, world, queue):
        argv = ["release", "--services", "api-gateway", "--version", version, *common]
        argv += ["--pipeline", str(path), "--task-queue", queue]
        assert await starter.main(argv, client=client) == 0
        # before the canary runs there is nothing to steer
        assert await starter.main(["promote", rid, "--as", "bob"], client=client) == 2
        assert f"release {rid} has no canary running" in capsys.readouterr().err
        handle = client.get_workflow_handle(rid)
        await wait_for_stage(handle, awaiting_approval)
        assert await starter.main(["approve", rid, "--as", "alice"], client=client) == 0
        await wait_for_stage(handle, lambda st: bool(st.canaries))
        assert await starter.main(["pause", rid, *common, "--reason", "lunch"], client=client) == 0
        assert await starter.main(["promote", rid, "--as", "mallory"], client=client) == 2
        assert "promote of api-gateway refused: 'mallory' may not approve releases" in (
            capsys.readouterr().err
        )
        assert await starter.main(["resume", rid, "--as", "bob"], client=client) == 0
        assert await starter.main(["promote", rid, "--as", "bob", "--full"], client=client) == 0
        await handle.result()
        capsys.readouterr()
        assert await starter.main(["status", rid], client=client) == 0
        shown = capsys.readouterr().out
    assert "canary production/api-gateway: promoted" in shown
    assert f"workflow {rid}-canary-production-api-gateway" in shown
    assert "pause by carol at" in shown and "(lunch)" in shown
    assert "promote-full by bob at" in shown
    assert world.running[("production", "api-gateway")].version == version


def test_a_canary_judged_sequentially_shows_the_verdict_and_its_numbers() -> None:
    judged = c.CanaryStatus(
        release_id="r",
        environment="production",
        service="api-gateway",
        version="1.0.2",
        phase="rolled-back",
        step=2,
        steps=9,
        step_kind="analysis",
        weight=0,
        paused_reason="",
        analysis=None,
        last_measurements=[],
        controls=[],
        reason="errors: canary 50/1000 vs stable 5/1000",
        judge=Verdict("Failed", "errors: canary 50/1000 vs stable 5/1000", {"e_value": 412.5}),
    )
    lines = starter.render_canary(judged)
    assert lines[0] == "canary production/api-gateway: rolled-back, step 3/9 (analysis), weight 0%"
    assert "  judge Failed: errors: canary 50/1000 vs stable 5/1000" in lines
    assert "  judged on e_value=412.5" in lines


def test_a_plan_review_shows_the_plan_its_changes_and_how_to_approve_it() -> None:
    sha = "ab" * 32
    plan = TerraformPlanResult("/p/plan.tfplan", sha, 0, 1, 1, [])
    review = ApprovalState(
        environment="terraform plan",
        status="waiting",
        plan_sha256=sha,
        plan_changes=['terraform/envs/local: delete aws_ecr_repository.this["consumer"]'],
    )
    status = ReleaseStatus(
        release_id="release-go-coffee-producer-1.0.3",
        version="1.0.3",
        services=["producer"],
        initiator="carol",
        stage="infra",
        state="running",
        waiting_for="a review of the Terraform plan",
        stages=[],
        service_states=[],
        approval=review,
        deployments=[],
        plans={"terraform/envs/local": plan},
        approvals=[review, ApprovalState(environment="production")],
    )
    lines = starter.render(status).splitlines()
    assert (
        f"plan      terraform/envs/local: 0 to add, 1 to change, 1 to destroy (sha256 {sha})"
        in lines
    )
    assert "approval  terraform plan: waiting" in lines
    assert '    terraform/envs/local: delete aws_ecr_repository.this["consumer"]' in lines
    assert (
        "  approve it: python starter.py approve release-go-coffee-producer-1.0.3 "
        f"--as <approver> --plan {sha}"
    ) in lines
    assert "approval  production: pending" in lines


async def test_approve_signs_with_key_and_without_a_key_says_where_it_looked(
    local_env: WorkflowEnvironment,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client: Client = local_env.client
    source = tmp_path / "source"
    (source / "examples" / "go-coffee").mkdir(parents=True)  # the Go module folder
    alice = make_signer(tmp_path / "keys", "alice")
    write_allowed_signers(source, alice)
    pipeline = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text())
    pipeline["approval"]["allow_unsigned"] = False
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.ssh keys there
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    world = FakeWorld()
    queue = f"tq-{uuid.uuid4()}"
    version = f"7.7.{uuid.uuid4().int % 100000}"
    rid = f"release-go-coffee-api-gateway-{version}"
    async with new_worker(client, world, queue):
        argv = ["release", "--services", "api-gateway", "--version", version, "--as", "carol"]
        argv += ["--pipeline", str(path), "--task-queue", queue, "--source", str(source)]
        assert await starter.main(argv, client=client) == 0
        handle = client.get_workflow_handle(rid)
        await wait_for_stage(handle, awaiting_approval)
        capsys.readouterr()

        assert await starter.main(["approve", rid, "--as", "alice"], client=client) == 2
        err = capsys.readouterr().err
        assert "no SSH key to sign the decision with; tried ssh-agent (SSH_AUTH_SOCK" in err
        assert f"{tmp_path}/home/.ssh/id_ed25519, {tmp_path}/home/.ssh/id_ecdsa" in err

        argv = ["approve", rid, "--as", "alice", "--key", str(alice.key)]
        assert await starter.main(argv, client=client) == 0
        assert f"{rid}: approved by alice (signed)" in capsys.readouterr().out
        await handle.result()
        assert await starter.main(["status", rid], client=client) == 0
        shown = capsys.readouterr().out
    assert "[signed by alice, ED25519 key SHA256:" in shown
    assert "UNSIGNED APPROVALS ALLOWED" not in shown


def test_a_demo_status_says_unsigned_approvals_are_allowed() -> None:
    status = ReleaseStatus(
        "r", "1.0.0", ["api-gateway"], "carol", "test", "running", "", [], [], None, []
    )
    assert "UNSIGNED APPROVALS ALLOWED" not in starter.render(status)
    status.unsigned_allowed = True
    assert starter.render(status).startswith(
        "WARNING   UNSIGNED APPROVALS ALLOWED (local demo only)"
    )


async def test_status_shows_what_a_stuck_release_waits_for(
    local_env: WorkflowEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first thing someone paged for a stuck release wants: which activity, which
    attempt, why the last one failed, and when the next one starts."""
    client: Client = local_env.client

    def cache_locked(_: object) -> None:
        raise RuntimeError("go: module cache /root/go/pkg/mod is locked\nby another build")

    world = FakeWorld(failures={"run_go_tests": cache_locked})
    queue = f"tq-{uuid.uuid4()}"
    version = f"6.6.{uuid.uuid4().int % 100000}"
    rid = f"release-go-coffee-api-gateway-{version}"
    async with new_worker(client, world, queue):
        argv = ["release", "--services", "api-gateway", "--version", version, "--as", "carol"]
        assert await starter.main([*argv, "--task-queue", queue], client=client) == 0
        for _ in range(600):  # the second attempt is scheduled after 2 s of backoff
            running = await pending_work(client, [rid])
            if running and running[0].attempt >= 2 and running[0].last_failure:
                break
            await asyncio.sleep(0.05)
        capsys.readouterr()
        assert await starter.main(["status", rid], client=client) == 0
        shown = capsys.readouterr().out
        assert await starter.main(["status", rid, "--json"], client=client) == 0
        data = json.loads(capsys.readouterr().out)
        await client.get_workflow_handle(rid).terminate("test over")
    [line] = [line for line in shown.splitlines() if line.startswith("running")]
    assert line.startswith("running   run_go_tests (")
    assert re.search(r"attempt [2-9] of \d+", line), line
    # the failure on one line, as the activity raised it
    assert "last failure: go: module cache /root/go/pkg/mod is locked by another build" in line
    [pending] = data["pending_activities"]
    assert pending["workflow_id"] == rid and pending["activity"] == "run_go_tests"
    assert pending["attempt"] >= 2 and pending["maximum_attempts"] > 0
