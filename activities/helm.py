"""The Helm CLI (helm 3), the way the Kubernetes deploy target drives it.

A thin, typed wrapper over `activities/runner.run`: argv lists only, output to a log
file, heartbeats inside activities. `value_args` builds the value arguments (`--values`
files, then `--set-literal` pairs) of an upgrade, so the very same arguments can be given
to `helm template` to see what an upgrade would apply.

Failures: a chart or values problem (schema violation, a template's `fail`, unparsable
YAML) is the release's fault and raises a non-retryable `InvalidConfig`; anything else
(API server unreachable, another helm operation holding the release) raises `HelmFailed`,
which Temporal retries.

A release left `pending-*` by a helm that died (its worker's pod or machine went, and
with it the process) refuses every later upgrade and rollback ("another operation is in
progress") for ever. An upgrade or rollback that meets one waits while the pending
revision is younger than `abandoned_after` (another helm may really be running: when it
ends, ours goes on), then takes it over as an SRE would: `helm rollback` to the last
revision that was deployed (or `helm uninstall` when a first install died), then runs
again. The takeover is logged and heartbeated with the revision and its age.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.runner import RunResult, heartbeat, run
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
_IN_PROGRESS = "another operation (install/upgrade/rollback) is in progress"
# helm's time stamps carry nanoseconds; Python's parser takes at most microseconds
_FRACTION = re.compile(r"(\.\d{6})\d+")
# a pending revision's last good one to go back to, best first
_WAS_SERVING = ("deployed", "superseded")


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
        abandoned_after: float | None = None,
        poll_seconds: float = 10.0,
    ) -> None:
        self.log_path = log_path
        self.kubeconfig = kubeconfig
        self.binary = binary or tool_path("helm", "BREWLINE_HELM")
        self.timeout = timeout
        # No helm of ours runs longer than `timeout` (the runner kills it), and helm's
        # own --wait defaults to 5 min: a revision pending for longer has nobody behind it.
        self.abandoned_after = timeout + 60.0 if abandoned_after is None else abandoned_after
        self.poll_seconds = poll_seconds
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
        return await self._change(
            f"upgrade --install {release} in {namespace}", release, namespace, args
        )

    async def rollback(self, release: str, revision: int, *, namespace: str) -> RunResult:
        """`helm rollback <release> <revision>`: a new revision with that one's manifest."""
        return await self._change(
            f"rollback {release} to {revision} in {namespace}",
            release,
            namespace,
            _rollback_args(release, revision, namespace),
        )

    async def _change(
        self, what: str, release: str, namespace: str, args: Sequence[str]
    ) -> RunResult:
        """Run a helm command that writes a revision; past a release left pending by a
        helm that died (see the module doc), once."""
        result = await self._run(*args)
        if not result.ok and _IN_PROGRESS in result.tail_text(20):
            await self._take_over_abandoned(release, namespace)
            result = await self._run(*args)
        if not result.ok:
            raise self._fail(what, result)
        return result

    async def _take_over_abandoned(self, release: str, namespace: str) -> None:
        """Wait while the release's pending revision may still have a live helm behind it;
        past `abandoned_after`, end it (rollback to the last deployed revision, or
        uninstall a first install that never finished). Returns when nothing is pending."""
        while True:
            history = await self.history(release, namespace=namespace)
            pending = history[-1] if history and history[-1].status.startswith("pending") else None
            if pending is None:
                return  # the other operation ended meanwhile: ours may go now
            age = (datetime.now(UTC) - _parse_time(pending.updated)).total_seconds()
            where = f"{release} in {namespace}: revision {pending.revision} {pending.status}"
            if age < self.abandoned_after:
                heartbeat(
                    f"{where} for {age:.0f}s; another helm may be running: waiting, taken "
                    f"over as abandoned after {self.abandoned_after:.0f}s"
                )
                await asyncio.sleep(self.poll_seconds)
                continue
            earlier = [r for r in history if r.revision < pending.revision]
            serving = [r for r in earlier if r.status in _WAS_SERVING] or earlier
            if not serving:
                _note(f"{where} for {age:.0f}s, abandoned first install: uninstalling")
                await self.uninstall(release, namespace=namespace)
                return
            back_to = serving[-1].revision
            _note(f"{where} for {age:.0f}s, abandoned: rolling back to {back_to}")
            # not self.rollback: that would meet the same pending revision and wait again
            result = await self._run(*_rollback_args(release, back_to, namespace))
            if not result.ok:
                raise self._fail(f"take over of {where}", result)
            return

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


def _rollback_args(release: str, revision: int, namespace: str) -> list[str]:
    return ["rollback", release, str(revision), "--namespace", namespace]


def _parse_time(stamp: str) -> datetime:
    """helm's RFC 3339 time stamps (nanoseconds, "Z"); unreadable ones count as now."""
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", stamp.strip()))
    except ValueError:
        return datetime.now(UTC)  # not abandoned on a guess: wait for it like a live one
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _note(message: str) -> None:
    if activity.in_activity():
        activity.logger.warning(message)
    heartbeat(message)


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
