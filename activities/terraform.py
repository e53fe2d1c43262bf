"""The infra stage: plan and apply the release's Terraform configuration.

Every terraform call gets the same environment, so nothing depends on the machine's
own Terraform setup and nothing lands in the repository tree:

- `TF_CLI_CONFIG_FILE` = `local/terraformrc` (the machine image points it at a file
  that does not exist; ours installs hashicorp providers from the filesystem mirror);
- `TF_DATA_DIR` under `settings.terraform_dir` (so `.terraform/` never appears next to
  the configuration), `TF_IN_AUTOMATION=1`, `TF_INPUT=0`;
- the backend is read from the configuration's `.tf` files: a `backend "local"` (or
  none) gets its state path at init,
  `-backend-config=path=<settings.terraform_dir>/state/<root>.tfstate` (one state per
  root, so the release's several roots never share one); any other backend
  (`backend "s3" {}` of envs/staging and envs/production, a partial configuration)
  gets `-backend-config=<config>/backend.hcl` when that file exists.

python-terraform (0.10.1) builds the command lines (its option-to-flag mapping), but
the commands run through `activities.runner.run`, not through the library's own
`Terraform.cmd`: that one copies `os.environ` with no way to add variables, blocks,
and cannot kill terraform when the activity is cancelled. The runner gives the
environment above, a log file per step, heartbeats and a process-group kill.

Variables: the input's go on the command line as `-var name=value`, so Terraform
converts each string to the declared type (a list-typed variable takes a JSON/HCL
list such as `["a", "b"]`); the platform's own (`registry`, `entrypoints`,
`aws_endpoint`: the moto server) come first from `platform.tfvars.json`, so the
input's win.

Secret variables (`TerraformPlanInput.secret_variables`, from infra.secret_variables)
arrive as references (`env:NAME`, `file:/path`, `aws-secretsmanager:<arn>`,
`aws-ssm:<name>`); the activity resolves them (activities.secrets, which registers each
value with activities.redact) and gives them to terraform as `TF_VAR_<name>` in its
environment only: never `-var` on argv, never in a file of the release, never in a log
(the runner masks registered values) or a result. The references (not the values) are
kept beside the plan file in `plan.secret-refs.json`, so apply can resolve them again:
to mask them in `terraform show -json` of the plan (which prints every variable's
value) and to re-plan when checking a stale plan. Declaring such variables
`sensitive = true` (so plan output and outputs hide them) is the configuration's job.
The saved plan file itself holds the values, as every Terraform plan file does: it is
written 0600 and must stay on the worker.

Plan and apply files live in `settings.release_dir(release_id)/terraform/<root>/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from python_terraform import IsFlagged, Terraform
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.redact import MASK, redact, register_secret
from activities.runner import RunResult, run
from activities.secrets import SecretResolver
from brewline.model import (
    ResourceChange,
    TerraformApplyInput,
    TerraformApplyResult,
    TerraformPlanInput,
    TerraformPlanResult,
)
from brewline.platform import REPO_ROOT, PlatformSettings

CLI_CONFIG = REPO_ROOT / "local" / "terraformrc"
COMMAND_TIMEOUT = 600.0
LOCK_MESSAGE = "Error acquiring the state lock"
STALE_MESSAGE = "Saved plan is stale"
BACKEND_FILE = "backend.hcl"
_BACKEND_BLOCK = re.compile(r'^\s*backend\s+"([A-Za-z0-9_-]+)"', re.MULTILINE)
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_LINE_COMMENT = re.compile(r"^\s*(#|//).*$", re.MULTILINE)


def _slug(terraform_dir: str) -> str:
    """A root's path as one file name: terraform/envs/local -> terraform-envs-local."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", terraform_dir.strip("/")).strip("-") or "root"


def state_path(settings: PlatformSettings, terraform_dir: str) -> Path:
    """Where a local-backend root keeps its state: one file per root (by its path)."""
    return settings.terraform_dir / "state" / f"{_slug(terraform_dir)}.tfstate"


class TerraformStateLocked(Exception):
    """Another terraform process holds the state lock. Retryable: it goes away by itself."""


class TerraformApplyError(Exception):
    """`terraform apply` failed for a reason other than a lock or a stale plan (retryable)."""


@dataclass
class _Workspace:
    """Where one configuration directory runs: its folder, data dir and release folder.

    `backend` is the type of its `backend` block ("local" when it has none) and `state`
    says where its state is, for error messages.
    """

    config_dir: Path
    data_dir: Path
    release_dir: Path
    backend: str
    state: str


class TerraformActivities:
    """`terraform_plan` and `terraform_apply` of one configuration, on its own backend.

    Apply is idempotent for a retried activity. Before applying, a marker
    `<terraform_dir>/applied/<plan_sha256>.started` is written; after success,
    `<plan_sha256>.done`. A retry finds `.done` and returns the current outputs without
    running terraform apply again. If the worker died after terraform wrote the state
    but before `.done` existed, the retry's apply says "Saved plan is stale"; when
    `.started` was left by such an earlier attempt, a fresh plan with the saved plan's
    own variables is made and, if it shows no changes (the state is exactly what the
    reviewed plan produces), the apply counts as done. Otherwise the plan is really
    stale (someone else changed the state, or the first attempt stopped half way):
    `PlanStale`, plan again and review.

    Errors: a held state lock is a retryable `TerraformStateLocked` (never
    force-unlocked); configuration and variable errors are `InvalidConfig`; a changed
    plan file is `PlanMismatch`; a missing one `PlanMissing` (all non-retryable).
    """

    def __init__(
        self,
        settings: PlatformSettings,
        terraform: str = "terraform",
        secrets: SecretResolver | None = None,
    ) -> None:
        self.settings = settings
        self.terraform = terraform
        self.secrets = secrets or SecretResolver()

    # ---- activities ------------------------------------------------------------------
    @activity.defn(name="terraform_plan")
    async def terraform_plan(self, input: TerraformPlanInput) -> TerraformPlanResult:
        """Init, plan to `<release_dir>/terraform/<root>/plan.tfplan`, and summarise it."""
        ws = self._workspace(input.release_id, input.source, input.terraform_dir)
        both = sorted(set(input.variables) & set(input.secret_variables))
        if both:
            raise ApplicationError(
                f"variable(s) {', '.join(both)} are in both infra.variables and "
                "infra.secret_variables; keep a secret only in secret_variables",
                type="InvalidConfig",
                non_retryable=True,
            )
        secret_values = await self.secrets.resolve_all(input.secret_variables)
        await self._init(ws)
        platform_vars = ws.release_dir / "platform.tfvars.json"
        platform = {
            name: value
            for name, value in self._platform_variables().items()
            if name not in secret_values  # a var file would beat TF_VAR_<name>
        }
        platform_vars.write_text(json.dumps(platform, indent=2) + "\n")
        plan_file = ws.release_dir / "plan.tfplan"
        plan_file.unlink(missing_ok=True)
        _write_secret_refs(plan_file, input.secret_variables)
        # the plan file holds every variable's value, the secret ones included
        plan_file.touch(mode=0o600)
        plan_file.chmod(0o600)
        result = await self._terraform(
            ws,
            "plan",
            log_name="plan.log",
            extra_env=_tf_vars(secret_values),
            # later assignments win: the input's variables override the platform's
            var_file=str(platform_vars),
            var=[f"{name}={value}" for name, value in sorted(input.variables.items())],
            out=str(plan_file),
            detailed_exitcode=IsFlagged,
            compact_warnings=IsFlagged,
        )
        # -detailed-exitcode: 0 no changes, 2 changes, 1 error
        if result.returncode not in (0, 2):
            self._raise_for(result, ws, what=f"terraform plan of {ws.config_dir}")
        plan = await self._show_plan(ws, plan_file, set(secret_values))
        changes = [
            ResourceChange(address=rc["address"], actions=list(rc["change"]["actions"]))
            for rc in plan.get("resource_changes", [])
        ]
        # like terraform's own summary: a replace counts once as add and once as destroy
        return TerraformPlanResult(
            plan_file=str(plan_file),
            plan_sha256=_sha256_file(plan_file),
            add=sum(c.actions.count("create") for c in changes),
            change=sum(c.actions.count("update") for c in changes),
            destroy=sum(c.actions.count("delete") for c in changes),
            resource_changes=changes,
        )

    @activity.defn(name="terraform_apply")
    async def terraform_apply(self, input: TerraformApplyInput) -> TerraformApplyResult:
        """Apply exactly the reviewed plan file, then return the outputs as strings."""
        ws = self._workspace(input.release_id, input.source, input.terraform_dir)
        plan_file = Path(input.plan_file)
        actual = _reviewed_plan_sha256(plan_file, input.plan_sha256)
        markers = self.settings.terraform_dir / "applied"
        started = markers / f"{actual}.started"
        done = markers / f"{actual}.done"
        await self._init(ws)
        if done.exists():
            # a previous attempt applied this very plan; do not apply twice
            applied = bool(json.loads(done.read_text()).get("applied", True))
            return TerraformApplyResult(outputs=await self._outputs(ws), applied=applied)

        # resolved again (and so registered for redaction) in this worker process: the
        # plan may have been made by another one
        secret_values = await self.secrets.resolve_all(_read_secret_refs(plan_file))
        plan = await self._show_plan(ws, plan_file, set(secret_values))
        if not plan.get("applyable", True):
            # nothing to change: applying would only risk a spurious "stale" error
            _write_marker(done, input, applied=False)
            return TerraformApplyResult(outputs=await self._outputs(ws), applied=False)

        earlier_attempt = started.exists()
        _write_marker(started, input, applied=False)
        result = await self._terraform(
            ws, "apply", str(plan_file), log_name="apply.log", compact_warnings=IsFlagged
        )
        if not result.ok:
            text = "\n".join(result.tail)
            if LOCK_MESSAGE in text:
                self._raise_for(result, ws, what=f"terraform apply of {plan_file}")
            if STALE_MESSAGE not in text:
                raise TerraformApplyError(
                    f"terraform apply of {plan_file} failed (log {result.log_path}):\n"
                    + _error_lines(result)
                )
            if not (earlier_attempt and await self._state_matches_plan(ws, plan, secret_values)):
                raise ApplicationError(
                    f"plan {plan_file} is stale: the state ({ws.state}) changed "
                    "after it was made; plan again and review the new plan",
                    type="PlanStale",
                    non_retryable=True,
                )
            # our earlier attempt applied it and died before recording that
            activity.logger.info("plan %s was already applied by an earlier attempt", plan_file)
        _write_marker(done, input, applied=True)
        return TerraformApplyResult(outputs=await self._outputs(ws), applied=True)

    # ---- steps -------------------------------------------------------------------------
    def _workspace(self, release_id: str, source: str, terraform_dir: str) -> _Workspace:
        config_dir = (Path(source) / terraform_dir).resolve()
        if not (config_dir.is_dir() and any(config_dir.glob("*.tf"))):
            raise ApplicationError(
                f"no Terraform configuration (*.tf) in {config_dir}; check infra.terraform_dir "
                f"({terraform_dir!r}) in pipeline.yaml",
                type="InvalidConfig",
                non_retryable=True,
            )
        # one data dir per configuration folder, outside the repository
        key = hashlib.sha256(str(config_dir).encode()).hexdigest()[:16]
        # one folder per root: a release plans several, and each plan file must stay the
        # one its review and apply name
        release_dir = self.settings.release_dir(release_id) / "terraform" / _slug(terraform_dir)
        release_dir.mkdir(parents=True, exist_ok=True)
        data_dir = self.settings.terraform_dir / "data" / key
        data_dir.mkdir(parents=True, exist_ok=True)
        backend = _backend_type(config_dir)
        if backend == "local":
            state = str(state_path(self.settings, terraform_dir))
        else:
            state = f'backend "{backend}" configured by {config_dir / BACKEND_FILE}'
        return _Workspace(
            config_dir=config_dir,
            data_dir=data_dir,
            release_dir=release_dir,
            backend=backend,
            state=state,
        )

    def _env(self, ws: _Workspace) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            TF_CLI_CONFIG_FILE=str(CLI_CONFIG),
            TF_DATA_DIR=str(ws.data_dir),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
        )
        return env

    def _platform_variables(self) -> dict[str, Any]:
        """Facts about the platform the configuration may declare variables for.

        They go in a file, where a value for an undeclared variable is only a warning
        (with `-var` it is an error), so any configuration can be used.
        """
        return {
            "registry": self.settings.registry_address,
            "entrypoints": {
                env: self.settings.entrypoint_url(env) for env in sorted(self.settings.entrypoints)
            },
            "aws_endpoint": self.settings.moto_url,
        }

    async def _terraform(
        self,
        ws: _Workspace,
        command: str,
        *args: str,
        log_name: str,
        extra_env: dict[str, str] | None = None,
        **options: Any,
    ) -> RunResult:
        """Run one terraform subcommand in the configuration folder (never raises on rc).

        `extra_env` adds to the environment (the secret variables' TF_VAR_<name>).
        """
        tf = Terraform(working_dir=str(ws.config_dir), terraform_bin_path=self.terraform)
        argv = tf.generate_cmd_string(command, *args, no_color=IsFlagged, input=False, **options)
        return await run(
            argv,
            log_path=ws.release_dir / log_name,
            cwd=ws.config_dir,
            env=self._env(ws) | (extra_env or {}),
            timeout=COMMAND_TIMEOUT,
        )

    async def _terraform_json(
        self, ws: _Workspace, command: str, *args: str, log_name: str
    ) -> dict[str, Any]:
        """Run a terraform command that prints one JSON document and parse it."""
        log_path = ws.release_dir / log_name
        log_path.unlink(missing_ok=True)  # the runner appends; the log must hold one run
        tf = Terraform(working_dir=str(ws.config_dir), terraform_bin_path=self.terraform)
        argv = tf.generate_cmd_string(command, *args, no_color=IsFlagged, json=IsFlagged)
        result = await run(
            argv, log_path=log_path, cwd=ws.config_dir, env=self._env(ws), timeout=COMMAND_TIMEOUT
        )
        if not result.ok:
            self._raise_for(result, ws, what=f"terraform {command}")
        return _json_document(log_path.read_text(), log_path)

    async def _init(self, ws: _Workspace) -> None:
        # -reconfigure: the state path may differ from the last init (another home)
        backend_config: dict[str, str] | str | None
        if ws.backend == "local":
            Path(ws.state).parent.mkdir(parents=True, exist_ok=True)
            backend_config = {"path": ws.state}
        elif (ws.config_dir / BACKEND_FILE).is_file():
            # a partial configuration (bucket, key, region, lock table) kept beside the .tf
            backend_config = str(ws.config_dir / BACKEND_FILE)
        else:
            backend_config = None  # the backend block is complete, or init says what lacks
        result = await self._terraform(
            ws,
            "init",
            log_name="init.log",
            reconfigure=IsFlagged,
            backend_config=backend_config,
        )
        if not result.ok:
            self._raise_for(result, ws, what=f"terraform init of {ws.config_dir}")

    async def _show_plan(
        self, ws: _Workspace, plan_file: Path, secret_names: set[str]
    ) -> dict[str, Any]:
        """`terraform show -json` of the plan, which prints every variable's value.

        The secret ones were registered when resolved and so are masked in the log; one
        that differs from today's (rotated since the plan was made) is registered now and
        the log redacted again.
        """
        plan = await self._terraform_json(ws, "show", str(plan_file), log_name="show-plan.log")
        planned = plan.get("variables") or {}
        stale = [
            value
            for name in secret_names
            if isinstance(value := (planned.get(name) or {}).get("value"), str) and value != MASK
        ]
        if stale:
            for value in stale:
                register_secret(value)
            log_path = ws.release_dir / "show-plan.log"
            log_path.write_text(redact(log_path.read_text(errors="replace")))
        return plan

    async def _outputs(self, ws: _Workspace) -> dict[str, str]:
        raw = await self._terraform_json(ws, "output", log_name="output.log")
        outputs: dict[str, str] = {}
        for name, out in raw.items():
            value = out.get("value")
            if out.get("sensitive"):
                outputs[name] = "<sensitive>"  # never copy secrets into workflow history
            elif isinstance(value, str):
                outputs[name] = value
            else:
                outputs[name] = json.dumps(value, sort_keys=True)
        return outputs

    async def _state_matches_plan(
        self, ws: _Workspace, plan: dict[str, Any], secret_values: dict[str, str]
    ) -> bool:
        """True when a fresh plan with the saved plan's variables has nothing to do.

        The secret variables go in the environment again (their values in `plan` are
        masked), never into the var file.
        """
        variables = {
            name: v.get("value")
            for name, v in plan.get("variables", {}).items()
            if name not in secret_values
        }
        var_file = ws.release_dir / "verify.tfvars.json"
        var_file.write_text(json.dumps(variables, indent=2, sort_keys=True) + "\n")
        result = await self._terraform(
            ws,
            "plan",
            log_name="verify-plan.log",
            extra_env=_tf_vars(secret_values),
            var_file=str(var_file),
            detailed_exitcode=IsFlagged,
        )
        if result.returncode not in (0, 2):
            self._raise_for(result, ws, what="terraform plan (checking a stale plan)")
        return result.returncode == 0

    def _raise_for(self, result: RunResult, ws: _Workspace, *, what: str) -> NoReturn:
        """Turn a failed terraform run into a retryable lock error or InvalidConfig.

        Every backend reports a held lock (the local backend's fcntl lock, the S3
        backend's DynamoDB item or lock file) as "Error acquiring the state lock".
        """
        text = "\n".join(result.tail)
        if LOCK_MESSAGE in text:
            raise TerraformStateLocked(
                f"{what}: the state ({ws.state}) is locked by another terraform "
                f"process; this activity retries until it is free. Do not force-unlock while "
                f"that process runs (log {result.log_path}):\n{_error_lines(result)}"
            )
        raise ApplicationError(
            f"{what} failed; fix the configuration or the variables (log {result.log_path}):\n"
            + _error_lines(result),
            type="InvalidConfig",
            non_retryable=True,
        )


# ---- helpers ---------------------------------------------------------------------------
def _backend_type(config_dir: Path) -> str:
    """Type of the configuration's `backend` block ("local", "s3", ...); "local" if none."""
    found: set[str] = set()
    for path in sorted(config_dir.glob("*.tf")):
        text = _BLOCK_COMMENT.sub("", path.read_text(errors="replace"))
        found.update(_BACKEND_BLOCK.findall(_LINE_COMMENT.sub("", text)))
    if len(found) > 1:
        raise ApplicationError(
            f"{config_dir} declares several backends ({', '.join(sorted(found))}); "
            "keep exactly one backend block",
            type="InvalidConfig",
            non_retryable=True,
        )
    return found.pop() if found else "local"


def _tf_vars(values: dict[str, str]) -> dict[str, str]:
    return {f"TF_VAR_{name}": value for name, value in values.items()}


def _secret_refs_path(plan_file: Path) -> Path:
    return plan_file.with_name(plan_file.stem + ".secret-refs.json")


def _write_secret_refs(plan_file: Path, references: dict[str, str]) -> None:
    """Keep the plan's secret references (never values) beside it, for apply."""
    path = _secret_refs_path(plan_file)
    path.write_text(json.dumps(references, indent=2, sort_keys=True) + "\n")


def _read_secret_refs(plan_file: Path) -> dict[str, str]:
    path = _secret_refs_path(plan_file)
    if not path.is_file():
        return {}  # a plan made before secret variables existed
    refs = json.loads(path.read_text())
    return {str(name): str(ref) for name, ref in refs.items()}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _reviewed_plan_sha256(plan_file: Path, reviewed: str) -> str:
    """The plan file's sha256, which must be the one that was reviewed."""
    if not plan_file.is_file():
        raise ApplicationError(
            f"plan file {plan_file} does not exist on this worker; run terraform_plan "
            "again and review the new plan",
            type="PlanMissing",
            non_retryable=True,
        )
    actual = _sha256_file(plan_file)
    if actual != reviewed:
        raise ApplicationError(
            f"plan file {plan_file} has sha256 {actual}, not the reviewed "
            f"{reviewed}; it was changed after review: plan again and review it",
            type="PlanMismatch",
            non_retryable=True,
        )
    return actual


def _json_document(text: str, log_path: Path) -> dict[str, Any]:
    """The JSON document in a runner log (after its `$ argv` line; stderr may surround it)."""
    offset = 0
    for line in text.splitlines(keepends=True):
        if line.startswith("{"):
            value, _ = json.JSONDecoder().raw_decode(text[offset:])
            if isinstance(value, dict):
                return value
        offset += len(line)
    raise ValueError(f"no JSON document in terraform output; see {log_path}")


def _error_lines(result: RunResult, limit: int = 25) -> str:
    """Terraform's error block(s): from the first `Error:` line of the output tail."""
    lines = result.tail
    for index, line in enumerate(lines):
        if line.lstrip("│ ").startswith("Error:"):
            return "\n".join(lines[index : index + limit]).strip()
    return result.tail_text()


def _write_marker(path: Path, input: TerraformApplyInput, *, applied: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "release_id": input.release_id,
                "plan_file": input.plan_file,
                "plan_sha256": input.plan_sha256,
                "applied": applied,
                "at": datetime.now(UTC).isoformat(),
            },
            sort_keys=True,
        )
    )
    tmp.replace(path)
