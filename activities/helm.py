"""The Helm CLI (helm 3), the way the Kubernetes deploy target drives it.

A thin, typed wrapper over `activities/runner.run`: argv lists only, output to a log
file, heartbeats inside activities. `value_args` builds the value arguments (`--values`
files, then `--set-literal` pairs) of an upgrade, so the very same arguments can be given
to `helm template` to see what an upgrade would apply.

Failures: a chart or values problem (schema violation, a template's `fail`, unparsable
YAML) is the release's fault and raises a non-retryable `InvalidConfig`; anything else
(API server unreachable, another helm operation holding the release) raises `HelmFailed`,
which Temporal retries.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from temporalio.exceptions import ApplicationError

from activities.runner import RunResult, run
from brewline.platform import tool_path

# What helm prints when the chart or the values are wrong: retrying cannot help.
_CONFIG_ERRORS = (
    "values don't meet the specifications of the schema",
    "execution error at",
    "parse error",
    "YAML parse error",
    "unable to build kubernetes objects from",
    "chart.yaml file is missing",
    'path "',  # path "<chart>" not found
    "not found in helm chart",
)
_NOT_FOUND = "release: not found"


class HelmFailed(Exception):
    """helm exited non-zero for a reason a retry may fix (API server, locks, network)."""


@dataclass
class HelmRevision:
    """One line of `helm history -o json`."""

    revision: int
    status: str  # deployed, superseded, failed, pending-upgrade, ...
    chart: str
    app_version: str
    description: str
    updated: str


def value_args(values_files: Sequence[str | Path], set_literal: Mapping[str, str]) -> list[str]:
    """`--values F` for each file in order (later files win), then `--set-literal K=V`.

    `--set-literal` keeps a value as one string (a comma-separated broker list, a value
    with `=` or braces); `--set` would split or parse it.
    """
    args: list[str] = []
    for path in values_files:
        args += ["--values", str(path)]
    for key, value in set_literal.items():
        if not key or "=" in key:
            raise ApplicationError(
                f"helm value path {key!r} is empty or contains '=': use a dotted path "
                "such as managedServices.postgres.host",
                type="InvalidConfig",
                non_retryable=True,
            )
        args += ["--set-literal", f"{key}={value}"]
    return args


class Helm:
    """helm against one cluster (its kubeconfig file) with one log file."""

    def __init__(
        self,
        *,
        log_path: Path,
        kubeconfig: Path | None = None,
        binary: str | None = None,
        timeout: float = 900.0,
        env: Mapping[str, str] | None = None,
        openapi_validation: bool = True,
    ) -> None:
        self.log_path = log_path
        self.kubeconfig = kubeconfig
        self.binary = binary or tool_path("helm", "BREWLINE_HELM")
        self.timeout = timeout
        self.env = dict(env) if env is not None else None
        # Off only against API servers that serve no OpenAPI document (the test fake).
        self.openapi_validation = openapi_validation

    def _argv(self, *args: str) -> list[str]:
        argv = [self.binary, *args]
        if self.kubeconfig is not None:
            argv += ["--kubeconfig", str(self.kubeconfig)]
        return argv

    async def _run(self, *args: str) -> RunResult:
        return await run(
            self._argv(*args), log_path=self.log_path, env=self._environment(), timeout=self.timeout
        )

    def _environment(self) -> dict[str, str] | None:
        if self.env is None:
            return None
        return {**os.environ, **self.env}

    def _fail(self, what: str, result: RunResult) -> Exception:
        text = result.tail_text(20)
        message = f"helm {what} failed (exit {result.returncode}):\n{text}\nlog: {result.log_path}"
        if any(marker in text for marker in _CONFIG_ERRORS):
            return ApplicationError(
                message + "\nfix the chart or the values; a retry cannot help",
                type="InvalidConfig",
                non_retryable=True,
            )
        return HelmFailed(message)

    async def upgrade_install(
        self,
        release: str,
        chart: str | Path,
        *,
        namespace: str,
        values: Sequence[str],
        history_max: int = 20,
    ) -> RunResult:
        """`helm upgrade --install`: apply the chart with `values` (from `value_args`).

        No `--wait`: the caller watches the Deployment it cares about itself.
        """
        args = [
            "upgrade",
            "--install",
            release,
            str(chart),
            "--namespace",
            namespace,
            "--history-max",
            str(history_max),
            *values,
        ]
        if not self.openapi_validation:
            args.append("--disable-openapi-validation")
        result = await self._run(*args)
        if not result.ok:
            raise self._fail(f"upgrade --install {release} in {namespace}", result)
        return result

    async def rollback(self, release: str, revision: int, *, namespace: str) -> RunResult:
        """`helm rollback <release> <revision>`: a new revision with that one's manifest."""
        result = await self._run("rollback", release, str(revision), "--namespace", namespace)
        if not result.ok:
            raise self._fail(f"rollback {release} to {revision} in {namespace}", result)
        return result

    async def uninstall(self, release: str, *, namespace: str) -> RunResult:
        result = await self._run(
            "uninstall", release, "--namespace", namespace, "--ignore-not-found"
        )
        if not result.ok:
            raise self._fail(f"uninstall {release} in {namespace}", result)
        return result

    async def history(self, release: str, *, namespace: str) -> list[HelmRevision]:
        """The release's revisions, oldest first; [] when it was never installed."""
        result = await self._run(
            "history", release, "--namespace", namespace, "--max", "256", "-o", "json"
        )
        if not result.ok:
            if any(_NOT_FOUND in line for line in result.tail):
                return []
            raise self._fail(f"history {release} in {namespace}", result)
        rows = _json_output(result)
        return [
            HelmRevision(
                revision=int(row.get("revision", 0)),
                status=str(row.get("status", "")),
                chart=str(row.get("chart", "")),
                app_version=str(row.get("app_version", "")),
                description=str(row.get("description", "")),
                updated=str(row.get("updated", "")),
            )
            for row in rows or []
        ]

    async def get_values(
        self,
        release: str,
        *,
        namespace: str,
        revision: int | None = None,
        all_values: bool = False,
    ) -> dict[str, Any] | None:
        """The values a revision was installed with (user-supplied, or `--all` computed);
        None when the release does not exist."""
        args = ["get", "values", release, "--namespace", namespace, "-o", "json"]
        if revision is not None:
            args += ["--revision", str(revision)]
        if all_values:
            args.append("--all")
        result = await self._run(*args)
        if not result.ok:
            if any(_NOT_FOUND in line for line in result.tail):
                return None
            raise self._fail(f"get values {release} in {namespace}", result)
        values = _json_output(result)
        return values if isinstance(values, dict) else {}

    async def template(
        self, release: str, chart: str | Path, *, namespace: str, values: Sequence[str]
    ) -> list[dict[str, Any]]:
        """`helm template` with the same value arguments an upgrade gets: the objects."""
        result = await self._run("template", release, str(chart), "--namespace", namespace, *values)
        if not result.ok:
            raise self._fail(f"template {release}", result)
        # The runner keeps only the tail; the log has the whole manifest after the argv line.
        text = _output(result)
        return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]


def _json_output(result: RunResult) -> Any:
    """The JSON document helm printed (the last line that parses; warnings come first)."""
    body = _output(result)
    for line in reversed(body.splitlines()):
        line = line.strip()
        if line.startswith(("{", "[")) or line == "null":
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise HelmFailed(f"helm printed no JSON: {body[-500:]!r} (log: {result.log_path})")


def _output(result: RunResult) -> str:
    """What the command printed: its log after its own argv line (the log is shared)."""
    log = Path(result.log_path).read_text()
    return log.rpartition("$ " + " ".join(result.argv) + "\n")[2]
