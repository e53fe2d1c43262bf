"""brewline's command line: start, follow, approve, reject, list and abort releases, and
steer their canaries.

    python starter.py release --services api-gateway --version 1.4.0 [--wait]
                              [--container-env api-gateway:NAME=VALUE ...]
    python starter.py status <release-id> [--watch] [--json]
    python starter.py approve <release-id> --as <approver> [--reason TEXT] [--plan SHA256]
                                            [--key PATH]
    python starter.py reject <release-id> --as <approver> --reason TEXT [--key PATH]
    python starter.py list [--stage awaiting-approval]
    python starter.py promote <release-id> --as <approver> [--full] [--service NAME] [--key PATH]
    python starter.py pause|resume <release-id> --as <person> [--service NAME] [--reason TEXT]
    python starter.py abort <release-id> [--wait]    (a running canary rolls back at once)

Bad input gets one line naming the value and what is allowed, and starts nothing.
Decisions (approve, reject, promote) are signed with the approver's SSH key: --key, else
the first key ssh-agent offers, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa (brewline/signing.py).
Connection settings come from TEMPORAL_* variables (see brewline/connection.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from brewline import canary as c
from brewline import search_attributes as sa
from brewline import signing
from brewline.config import ConfigError, load
from brewline.connection import ConnectionSettings, TemporalUnreachable, connect
from brewline.identity import (
    InvalidName,
    release_id,
    validate_container_env,
    validate_person,
    validate_version,
)
from brewline.model import (
    ApprovalState,
    CanaryRef,
    DecisionInput,
    DecisionResult,
    ReleaseRequest,
    ReleaseStatus,
)
from brewline.pending import PendingWork, describe_pending, pending_work
from brewline.platform import REPO_ROOT, PlatformSettings
from workflows.canary import CanaryWorkflow
from workflows.release import ReleaseWorkflow

FINAL = {"succeeded", "failed", "aborted"}


class UsageError(Exception):
    """Bad input: one line for the person, nothing started."""


# ------------------------------------------------------------------------- commands
def build_request(args: argparse.Namespace) -> tuple[ReleaseRequest, str]:
    """Validate every input of `release` and build the workflow input; start nothing."""
    pipeline_path = Path(args.pipeline)
    config = load(pipeline_path)
    services = _split(args.services)
    if not services:
        raise UsageError("--services needs at least one service name")
    known = [s.name for s in config.services]
    for name in services:
        if name not in known:
            raise UsageError(
                f"unknown service {name!r}; {pipeline_path} defines: {', '.join(known)}"
            )
    try:
        version = validate_version(args.version)
    except InvalidName as exc:
        raise UsageError(str(exc)) from None
    env_names = [e.name for e in config.environments]
    wanted = _split(args.environments) if args.environments else env_names
    for name in wanted:
        if name not in env_names:
            raise UsageError(
                f"unknown environment {name!r}; {pipeline_path} defines: {', '.join(env_names)}"
            )
    if "\x00" in args.source:
        # os.path.realpath raises ValueError on it: say which value instead of a traceback
        raise UsageError(f"--source {args.source!r} is not a path (it holds a NUL byte)")
    source = Path(args.source).resolve()
    if not (source / config.go_module).is_dir():
        raise UsageError(f"source {str(source)!r} has no Go module folder {config.go_module!r}")
    signers = config.approval.allowed_signers
    if not config.approval.allow_unsigned and signers and not (source / signers).is_file():
        raise UsageError(
            f"{pipeline_path} approval.allowed_signers names {signers!r}, which is not a file "
            f"in {source}; decisions could never be verified. Create it (one line per "
            'approver: <name> namespaces="brewline-approval" <public key>)'
        )
    services = sorted(set(services))
    container_env = _container_env(args.container_env or [])
    problems = validate_container_env(services, container_env)
    if problems:
        raise UsageError("; ".join(problems))
    # The gate compares the approver with the initiator: a padded or look-alike name
    # ("alice ", a Cyrillic "a") would let alice approve a release she started.
    try:
        initiator = validate_person(
            "initiator (--as)",
            args.initiator or os.environ.get("BREWLINE_USER") or getpass.getuser(),
        )
    except InvalidName as exc:
        raise UsageError(str(exc)) from None
    request = ReleaseRequest(
        services=services,
        version=version,
        source=str(source),
        initiator=initiator,
        environments=[e for e in env_names if e in wanted],  # always in pipeline order
        pipeline=config,
        container_env=container_env,
    )
    return request, release_id(config.project, services, version)


def _container_env(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """`SERVICE:NAME=VALUE` items -> {service: {name: value}}; names checked later."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        service, colon, assignment = item.partition(":")
        name, equals, value = assignment.partition("=")
        if not (colon and equals and service.strip() and name.strip()):
            raise UsageError(
                f"--container-env {item!r} is not SERVICE:NAME=VALUE "
                "(e.g. api-gateway:FAULT_ERROR_RATE=0.2)"
            )
        out.setdefault(service.strip(), {})[name.strip()] = value
    return out


async def cmd_release(args: argparse.Namespace, client: Client | None) -> int:
    request, workflow_id = build_request(args)
    client = client or await _connect(args)
    running = await _is_running(client, workflow_id)
    try:
        handle = await _start(client, args, request, workflow_id)
    except WorkflowAlreadyStartedError:
        raise UsageError(
            f"release {workflow_id} already succeeded and versions are immutable; "
            "release a new version"
        ) from None
    print(f"{'attached to running' if running else 'started'} release {workflow_id}")
    _print_next_steps(workflow_id)
    if args.wait:
        return await _follow(client, handle, args.interval)
    return 0


async def _is_running(client: Client, workflow_id: str) -> bool:
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return desc.status == WorkflowExecutionStatus.RUNNING


async def _start(
    client: Client, args: argparse.Namespace, request: ReleaseRequest, workflow_id: str
) -> WorkflowHandle[Any, Any]:
    services, version, initiator = request.services, request.version, request.initiator
    return await client.start_workflow(
        ReleaseWorkflow.run,
        request,
        id=workflow_id,
        task_queue=args.task_queue or ConnectionSettings.from_env().task_queue,
        # Starting the same release again attaches to the running one; a release that
        # succeeded is never run again, a failed one may be retried.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.RELEASE_SERVICES, services),
                SearchAttributePair(sa.RELEASE_VERSION, version),
                SearchAttributePair(sa.RELEASE_STAGE, "queued"),
            ]
        ),
        static_summary=f"Release {', '.join(services)} {version} by {initiator}",
        static_details=(
            f"Services: {', '.join(services)}\nVersion: {version}\n"
            f"Environments: {' -> '.join(request.environments)}\nInitiator: {initiator}\n"
            f"Source: {request.source}"
        ),
    )


async def cmd_status(args: argparse.Namespace, client: Client | None) -> int:
    client = client or await _connect(args)
    handle = client.get_workflow_handle(args.release_id)
    if not args.watch:
        status = await _status(handle)
        canaries = await _canary_statuses(client, status)
        # what runs right now: the first question about a release that seems stuck
        running = await pending_work(
            client, [status.release_id, *(ref.workflow_id for ref in status.canaries)]
        )
        if args.json:
            data = dataclasses.asdict(status)
            data["canary_status"] = [dataclasses.asdict(cs) for cs in canaries]
            data["pending_activities"] = [dataclasses.asdict(p) for p in running]
            print(json.dumps(data, default=_json_default, indent=2))
        else:
            print(render(status, canaries, running))
        return 0
    return await _follow(client, handle, args.interval, show_all=True)


def _plan_sha256(value: str | None) -> str:
    if not value:
        return ""
    text = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise UsageError(
            f"--plan {value!r} is not a sha256 (64 hex digits): copy it from `starter.py status`"
        )
    return text


async def cmd_decide(args: argparse.Namespace, client: Client | None, approve: bool) -> int:
    reason = args.reason or ""
    if not approve and not reason.strip():
        raise UsageError("reject needs --reason: say why, so the initiator can act on it")
    plan_sha256 = _plan_sha256(getattr(args, "plan", None))
    client = client or await _connect(args)
    handle = client.get_workflow_handle(args.release_id)
    status = await _status(handle)
    statement, signature = "", ""
    waiting = _waiting_approval(status)
    if waiting is not None:  # with nothing waiting, the workflow says so itself
        stage = (
            signing.PLAN_REVIEW_STAGE
            if waiting.plan_sha256
            else signing.approval_stage(waiting.environment)
        )
        statement, signature = sign_decision(
            args.key,
            status,
            signing.statement(
                status.release_id,
                stage,
                status.version,
                "approve" if approve else "reject",
                args.approver,
                datetime.now(UTC),
                plan_sha256=(plan_sha256 if approve else "") or waiting.plan_sha256,
            ),
        )
    try:
        # by name: the handler is async, which the SDK's method overloads type as a coroutine
        result = await handle.execute_update(
            "decide",
            DecisionInput(
                approver=args.approver,
                approve=approve,
                reason=reason,
                plan_sha256=plan_sha256,
                statement=statement,
                signature=signature,
            ),
            result_type=DecisionResult,
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = getattr(cause, "message", None) or str(cause)
        raise UsageError(f"decision refused: {message}") from None
    except RPCError as exc:
        raise UsageError(_rpc_message(exc, args.release_id)) from None
    how = " (signed)" if signature else " (UNSIGNED)"
    print(f"{args.release_id}: {result.status} by {args.approver}{how}")
    return 0


def _waiting_approval(status: ReleaseStatus) -> ApprovalState | None:
    gates = status.approvals or ([status.approval] if status.approval else [])
    return next((a for a in gates if a.status == "waiting"), None)


# ------------------------------------------------------------------------- signing
DEFAULT_KEYS = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")


@dataclasses.dataclass
class SigningKey:
    """What `ssh-keygen -Y sign -f` gets: a private key file, or the public key of a key
    ssh-agent holds (ssh-keygen then asks the agent to sign)."""

    path: Path
    description: str
    agent_public_key: str = ""  # set for an agent key: written next to the statement
    explicit: bool = False  # given with --key


def find_key(explicit: str | None) -> tuple[SigningKey | None, list[str]]:
    """The key to sign with, and every place tried (for the error when there is none)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise UsageError(f"--key {explicit!r} is not a file: name an SSH key file")
        return SigningKey(path, str(path), explicit=True), [str(path)]
    tried: list[str] = []
    if os.environ.get("SSH_AUTH_SOCK"):
        ssh_add = shutil.which("ssh-add") or "ssh-add"
        try:
            listed = subprocess.run(
                [ssh_add, "-L"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"ssh-agent (ssh-add -L failed: {exc})")
        else:
            keys = [
                line
                for line in listed.stdout.splitlines()
                if line.startswith(("ssh-", "ecdsa-", "sk-"))
            ]
            if listed.returncode == 0 and keys:
                comment = " ".join(keys[0].split()[2:]) or keys[0].split()[0]
                return SigningKey(Path("agent.pub"), f"ssh-agent key {comment}", keys[0]), []
            tried.append("ssh-agent (it offers no key)")
    else:
        tried.append("ssh-agent (SSH_AUTH_SOCK is not set)")
    for candidate in DEFAULT_KEYS:
        path = Path(candidate).expanduser()
        if path.is_file():
            return SigningKey(path, str(path)), tried
        tried.append(str(path))
    return None, tried


def ssh_sign(key: SigningKey, text: str) -> str:
    """The armored signature of `text` by `key` (ssh-keygen -Y sign -n brewline-approval)."""
    ssh_keygen = shutil.which("ssh-keygen") or "ssh-keygen"
    with tempfile.TemporaryDirectory(prefix="brewline-sign-") as folder:
        message = Path(folder) / "statement"
        message.write_text(text)
        key_path = key.path
        if key.agent_public_key:
            key_path = Path(folder) / "agent.pub"
            key_path.write_text(key.agent_public_key + "\n")
        argv = [ssh_keygen, "-Y", "sign", "-f", str(key_path), "-n", signing.NAMESPACE]
        try:
            done = subprocess.run(
                [*argv, str(message)], capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UsageError(f"cannot sign with {key.description}: {exc}") from None
        signature = message.with_name("statement.sig")
        if done.returncode != 0 or not signature.is_file():
            said = (done.stderr or done.stdout).strip().splitlines()
            raise UsageError(
                f"ssh-keygen could not sign with {key.description}: "
                + (said[-1] if said else f"exit code {done.returncode}")
            )
        return signature.read_text()


def _verifies_locally(status: ReleaseStatus, principal: str, text: str, signature: str) -> bool:
    """Whether the worker's allowed-signers file (when this machine can read it) lists the
    key for `principal`; True when it cannot tell (the workflow decides)."""
    path = Path(status.allowed_signers) if status.allowed_signers else None
    if path is None or not path.is_file():
        return True
    ssh_keygen = shutil.which("ssh-keygen") or "ssh-keygen"
    with tempfile.TemporaryDirectory(prefix="brewline-check-") as folder:
        sig = Path(folder) / "statement.sig"
        sig.write_text(signature)
        done = subprocess.run(
            [
                *(ssh_keygen, "-Y", "verify", "-f", str(path), "-I", principal),
                *("-n", signing.NAMESPACE, "-s", str(sig)),
            ],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    return done.returncode == 0


def sign_decision(
    key_arg: str | None, status: ReleaseStatus, statement: signing.Statement
) -> tuple[str, str]:
    """(statement text, signature) for a decision, or ("", "") to send it unsigned, which
    only a pipeline with approval.allow_unsigned (local demo) accepts: then it warns."""
    key, tried = find_key(key_arg)
    text = statement.to_text()
    if key is None:
        if status.unsigned_allowed:
            print(
                f"warning: no SSH key found ({', '.join(tried)}); sending the decision "
                f"UNSIGNED: {signing.UNSIGNED_NOTICE}",
                file=sys.stderr,
            )
            return "", ""
        raise UsageError(
            f"no SSH key to sign the decision with; tried {', '.join(tried)}. Pass --key "
            "PATH (a key listed for you in the pipeline's allowed-signers file), or add "
            "one to ssh-agent"
        )
    signature = ssh_sign(key, text)
    if (
        status.unsigned_allowed
        and not key.explicit
        and not _verifies_locally(status, statement.approver, text, signature)
    ):
        # a demo user's everyday key is not in the demo's allowed signers: a signed
        # decision would be checked and refused, an unsigned one is allowed here
        print(
            f"warning: {key.description} is not listed for {statement.approver!r} in "
            f"{status.allowed_signers}; sending the decision UNSIGNED: "
            f"{signing.UNSIGNED_NOTICE}",
            file=sys.stderr,
        )
        return "", ""
    return text, signature


async def cmd_list(args: argparse.Namespace, client: Client | None) -> int:
    client = client or await _connect(args)
    query = 'WorkflowType="ReleaseWorkflow"'
    if args.stage:
        query += f' AND ReleaseStage="{_quote(args.stage)}"'
    if args.service:
        query += f' AND ReleaseServices="{_quote(args.service)}"'
    rows = []
    async for wf in client.list_workflows(query, limit=args.limit):
        attrs = wf.typed_search_attributes
        rows.append(
            (
                wf.id,
                attrs.get(sa.RELEASE_STAGE) or "",
                wf.status.name.lower() if wf.status else "",
                wf.start_time.strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
    if not rows:
        print("no releases found" + (f" at stage {args.stage}" if args.stage else ""))
        return 0
    width = max(len(r[0]) for r in rows)
    print(f"{'RELEASE':<{width}}  {'STAGE':<18}  {'STATUS':<10}  STARTED (UTC)")
    for rid, stage, state, started in rows:
        print(f"{rid:<{width}}  {stage:<18}  {state:<10}  {started}")
    return 0


async def cmd_canary(args: argparse.Namespace, client: Client | None) -> int:
    """promote [--full], pause, resume: the `control` update of the release's canaries."""
    action = c.PROMOTE_FULL if args.command == "promote" and args.full else args.command
    actor = args.actor or os.environ.get("BREWLINE_USER") or getpass.getuser()
    client = client or await _connect(args)
    status = await _status(client.get_workflow_handle(args.release_id))
    running = [
        ref
        for ref in status.canaries
        if ref.outcome == "running" and args.service in (None, ref.service)
    ]
    if not running:
        which = f" for service {args.service!r}" if args.service else ""
        raise UsageError(
            f"release {args.release_id} has no canary running{which} "
            f"(it is {status.state} at stage {status.stage}); nothing to {action}"
        )
    for ref in running:
        statement, signature = "", ""
        if action in c.SIGNED_ACTIONS:  # pause and resume only stop or let the analysis go on
            statement, signature = sign_decision(
                args.key,
                status,
                signing.statement(
                    status.release_id,
                    signing.canary_stage(ref.environment, ref.service),
                    status.version,
                    action,
                    actor,
                    datetime.now(UTC),
                ),
            )
        try:
            record = await client.get_workflow_handle(ref.workflow_id).execute_update(
                "control",
                c.CanaryControl(actor, action, args.reason or "", statement, signature),
                result_type=c.ControlRecord,
            )
        except WorkflowUpdateFailedError as exc:
            message = getattr(exc.cause, "message", None) or str(exc.cause)
            raise UsageError(f"{action} of {ref.service} refused: {message}") from None
        except RPCError as exc:
            raise UsageError(_rpc_message(exc, ref.workflow_id)) from None
        if record.refused:
            raise UsageError(f"{action} of {ref.service} refused: {record.refused}")
        print(
            f"{ref.workflow_id}: {record.action} by {record.actor} at {_ts(record.at)}"
            + (f" ({record.signed})" if record.signed else "")
        )
    return 0


async def cmd_abort(args: argparse.Namespace, client: Client | None) -> int:
    client = client or await _connect(args)
    handle = client.get_workflow_handle(args.release_id)
    try:
        await handle.cancel()
    except RPCError as exc:
        raise UsageError(_rpc_message(exc, args.release_id)) from None
    print(
        f"abort requested for {args.release_id}: a running canary rolls back at once, then "
        "the release restores what it deployed"
    )
    if args.wait:
        await _follow(client, handle, args.interval)
    return 0


# ------------------------------------------------------------------------- following
async def _status(handle: WorkflowHandle[Any, Any]) -> ReleaseStatus:
    try:
        return await handle.query(ReleaseWorkflow.status)
    except RPCError as exc:
        raise UsageError(_rpc_message(exc, handle.id)) from None


async def _canary_statuses(client: Client, status: ReleaseStatus) -> list[c.CanaryStatus]:
    """The live status of each canary the release started (skipped when it cannot answer)."""
    found = []
    for ref in status.canaries:
        try:
            found.append(
                await client.get_workflow_handle(ref.workflow_id).query(CanaryWorkflow.status)
            )
        except RPCError:
            continue  # not started yet, or gone: the release's own record still shows it
    return found


async def _follow(
    client: Client, handle: WorkflowHandle[Any, Any], interval: float, show_all: bool = False
) -> int:
    """Print each stage (and canary step) change until the release ends; 0 only on success."""
    last = ""
    while True:
        status = await _status(handle)
        canaries = await _canary_statuses(client, status)
        line = _one_line(status) + "".join(_canary_line(cs) for cs in canaries)
        if line != last:
            print(render(status, canaries) if show_all else line, flush=True)
            last = line
        if status.state in FINAL:
            break
        desc = await handle.describe()
        if desc.status not in (WorkflowExecutionStatus.RUNNING, None):
            break
        await asyncio.sleep(interval)
    try:
        await handle.result()
    except WorkflowFailureError as exc:
        cause = exc.cause
        print(f"release {handle.id} {status.state}: {getattr(cause, 'message', cause)}")
        return 1
    print(f"release {handle.id} succeeded")
    return 0


def _one_line(status: ReleaseStatus) -> str:
    text = f"[{status.state}] stage {status.stage}"
    if status.waiting_for:
        text += f": waiting for {status.waiting_for}"
    if status.failure:
        text += f": {status.failure}"
    return text


def _canary_line(cs: c.CanaryStatus) -> str:
    step = f"step {min(cs.step + 1, cs.steps)}/{cs.steps} ({cs.step_kind or 'done'})"
    text = f"\n  canary {cs.environment}/{cs.service}: {cs.phase}, {step}, weight {cs.weight}%"
    if cs.paused_reason:
        text += f", paused: {cs.paused_reason}"
    return text


def render_canary(cs: c.CanaryStatus, ref: CanaryRef | None = None) -> list[str]:
    """Step, weight, the newest measurement per metric and who steered it."""
    out = [_canary_line(cs).strip()]
    if ref is not None:
        out.append(f"  workflow {ref.workflow_id}")
    for m in cs.last_measurements:
        value = "no data" if m.value is None else f"{m.value:.4g}"
        note = f"  {m.message}" if m.message and m.phase != "Successful" else ""
        out.append(f"  {m.metric:<24} {m.phase:<12} {value} ({m.condition} {m.threshold:g}){note}")
    if cs.analysis is not None and cs.analysis.phase != "Running":
        out.append(f"  analysis {cs.analysis.phase}: {cs.analysis.reason}")
    if cs.judge is not None:
        out.append(f"  judge {cs.judge.phase}: {cs.judge.reason}")
        numbers = ", ".join(f"{k}={v:.4g}" for k, v in sorted(cs.judge.numbers.items()))
        if numbers:
            out.append(f"  judged on {numbers}")
    for control in cs.controls:
        refused = f" REFUSED: {control.refused}" if control.refused else ""
        refused += f" [{control.signed}]" if control.signed else ""
        why = f" ({control.reason})" if control.reason else ""
        out.append(f"  {control.action} by {control.actor} at {_ts(control.at)}{why}{refused}")
    if cs.reason:
        out.append(f"  reason: {cs.reason}")
    return out


def render(
    status: ReleaseStatus,
    canaries: Sequence[c.CanaryStatus] = (),
    running: Sequence[PendingWork] = (),
) -> str:
    """The status as a person reads it in a terminal."""
    out = [
        f"release   {status.release_id}",
        f"version   {status.version}   services {', '.join(status.services)}"
        f"   initiator {status.initiator}",
        f"state     {status.state} at stage {status.stage}",
    ]
    if status.unsigned_allowed:
        out.insert(0, f"WARNING   {signing.UNSIGNED_NOTICE}: pipeline approval.allow_unsigned")
    if status.waiting_for:
        out.append(f"waiting   {status.waiting_for}")
    if status.failure:
        out.append(f"failure   {status.failure}")
    out.append("stages")
    for stage in status.stages:
        took = ""
        if stage.started_at and stage.ended_at:
            took = f" {(stage.ended_at - stage.started_at).total_seconds():.1f}s"
        detail = f"  {stage.detail}" if stage.detail else ""
        out.append(f"  {stage.name:<20} {stage.state:<12}{took}{detail}")
    out.append("services")
    for svc in status.service_states:
        states = " ".join(f"{k}={v}" for k, v in svc.stages.items())
        cover = f" coverage={svc.coverage_percent:.1f}%" if svc.coverage_percent is not None else ""
        out.append(f"  {svc.name:<20} {states}{cover}")
    for root, plan in status.plans.items():
        out.append(
            f"plan      {root}: {plan.add} to add, {plan.change} to change, "
            f"{plan.destroy} to destroy (sha256 {plan.plan_sha256})"
        )
    for a in status.approvals or ([status.approval] if status.approval else []):
        line = f"approval  {a.environment}: {a.status}"
        if a.decided_by:
            line += f" by {a.decided_by} at {_ts(a.decided_at)} ({a.via})"
            if a.signed:
                line += f" [{a.signed}]"
        elif a.deadline and a.status == "waiting":
            line += f" until {_ts(a.deadline)}"
        if a.reason:
            line += f": {a.reason}"
        out.append(line)
        if a.plan_sha256:
            out.append(f"  reviews the plan with sha256 {a.plan_sha256}; it will:")
            out += [f"    {change}" for change in a.plan_changes]
            if a.status == "waiting":
                out.append(
                    f"  approve it: python starter.py approve {status.release_id} "
                    f"--as <approver> --plan {a.plan_sha256}"
                )
        for refused in a.refused:
            out.append(f"  refused {refused.approver} at {_ts(refused.at)}: {refused.why}")
    live = {(cs.environment, cs.service): cs for cs in canaries}
    for ref in status.canaries:
        cs = live.get((ref.environment, ref.service))
        if cs is not None:
            out += render_canary(cs, ref)
        else:
            out.append(f"canary {ref.environment}/{ref.service}: {ref.outcome} {ref.reason}")
    for dep in status.deployments:
        out.append(f"deployed  {dep.environment}/{dep.service} {dep.version} {dep.endpoint}")
    for work in running:
        whose = "" if work.workflow_id == status.release_id else f"{work.workflow_id}: "
        out.append(f"running   {whose}{describe_pending(work)}")
    return "\n".join(out)


# ------------------------------------------------------------------------- plumbing
def _print_next_steps(workflow_id: str) -> None:
    ui = PlatformSettings.load().ui_url
    print(f"  status:  python starter.py status {workflow_id}")
    print(f"  approve: python starter.py approve {workflow_id} --as <approver>")
    print(f"  UI:      {ui}/namespaces/default/workflows/{workflow_id}")


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _ts(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {value!r}")


def _rpc_message(exc: RPCError, workflow_id: str) -> str:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return f"no release with id {workflow_id!r}; `python starter.py list` shows the releases"
    return f"Temporal refused the request for {workflow_id!r}: {exc.message}"


async def _connect(args: argparse.Namespace) -> Client:
    return await connect(ConnectionSettings.from_env(args.address))


KEY_HELP = (
    "SSH key to sign the decision with (default: ssh-agent's first key, else "
    "~/.ssh/id_ed25519, id_ecdsa, id_rsa)"
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="starter.py", description="Start, follow and decide brewline releases."
    )
    top.add_argument("--address", help="Temporal host:port (default: TEMPORAL_ADDRESS or local)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rel = sub.add_parser("release", help="start (or attach to) a release")
    rel.add_argument("--services", required=True, help="comma-separated service names")
    rel.add_argument("--version", required=True, help="semver (1.4.0) or a 7-40 hex commit")
    rel.add_argument(
        "--as", dest="initiator", help="who starts it (default: $BREWLINE_USER or login)"
    )
    rel.add_argument("--pipeline", default=str(REPO_ROOT / "pipeline.yaml"))
    rel.add_argument("--source", default=str(REPO_ROOT), help="source tree to release from")
    rel.add_argument("--environments", help="comma-separated subset (default: all, in order)")
    rel.add_argument("--task-queue", help="default: TEMPORAL_TASK_QUEUE or brewline-releases")
    rel.add_argument("--wait", action="store_true", help="follow it; exit 0 only on success")
    rel.add_argument(
        "--container-env",
        action="append",
        metavar="SERVICE:NAME=VALUE",
        help="environment of the new version's containers (repeatable; not for secrets)",
    )
    rel.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)

    st = sub.add_parser("status", help="show a release's stages, approval and deployments")
    st.add_argument("release_id")
    st.add_argument("--watch", action="store_true", help="keep printing until it ends")
    st.add_argument("--json", action="store_true")
    st.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)

    for name, helptext in (("approve", "approve the waiting gate"), ("reject", "reject it")):
        dec = sub.add_parser(name, help=helptext)
        dec.add_argument("release_id")
        dec.add_argument("--as", dest="approver", required=True, help="your approver name")
        dec.add_argument("--reason", help="why (required to reject)")
        dec.add_argument("--key", help=KEY_HELP)
        if name == "approve":
            dec.add_argument(
                "--plan",
                metavar="SHA256",
                help="a Terraform plan review: the sha256 of the plan you read (from status)",
            )

    ls = sub.add_parser("list", help="list releases")
    ls.add_argument("--stage", help='e.g. "awaiting-approval"')
    ls.add_argument("--service")
    ls.add_argument("--limit", type=int, default=20)

    for name, helptext in (
        ("promote", "skip the canary's current pause (--full: every remaining step)"),
        ("pause", "hold the canary at its current step"),
        ("resume", "go on after a pause, or measure again after an inconclusive analysis"),
    ):
        ctl = sub.add_parser(name, help=helptext)
        ctl.add_argument("release_id")
        ctl.add_argument("--as", dest="actor", help="who (default: $BREWLINE_USER or login)")
        ctl.add_argument("--service", help="only this service's canary (default: all running)")
        ctl.add_argument("--reason", help="recorded with the action")
        if name == "promote":
            ctl.add_argument("--full", action="store_true", help="skip every remaining step")
            ctl.add_argument("--key", help=KEY_HELP)

    ab = sub.add_parser("abort", help="stop a release and restore what it deployed")
    ab.add_argument("release_id")
    ab.add_argument("--wait", action="store_true")
    ab.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    return top


async def main(argv: Sequence[str] | None = None, client: Client | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "release":
            return await cmd_release(args, client)
        if args.command == "status":
            return await cmd_status(args, client)
        if args.command in ("approve", "reject"):
            return await cmd_decide(args, client, approve=args.command == "approve")
        if args.command == "list":
            return await cmd_list(args, client)
        if args.command == "abort":
            return await cmd_abort(args, client)
        if args.command in ("promote", "pause", "resume"):
            return await cmd_canary(args, client)
    except (UsageError, TemporalUnreachable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")


def run_cli() -> NoReturn:
    code = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave without interpreter teardown: the Temporal core can abort at exit (sdk-python#300).
    os._exit(code)


if __name__ == "__main__":
    run_cli()
