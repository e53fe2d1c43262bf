"""The scan stage's semgrep activity: the repo's own Go rules, offline.

One semgrep run over all paths writes a JSON report (read here) and a SARIF file (kept
for people and code-scanning UIs). Semgrep runs in the source tree, so reported paths
are relative to it and the tree's `.semgrepignore` applies; without one, semgrep's
default ignores apply, which skip `*_test.go`, `test/`, `tests/` and `vendor/`.

Severity mapping (semgrep has three levels, brewline five):
    ERROR -> HIGH, WARNING -> MEDIUM, INFO -> LOW
Semgrep's newer level names (LOW, MEDIUM, HIGH, CRITICAL) map to themselves, and a
rule's `metadata.severity` (LOW, MEDIUM, HIGH or CRITICAL) overrides either: that is
how a rule reaches CRITICAL. Anything else (INVENTORY, EXPERIMENT) counts as UNKNOWN.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.redact import redact
from activities.runner import run
from activities.sarif import (
    check_fail_on,
    gated_result,
    names_a_secret,
    read_json,
    redact_report_file,
    resolve_scan_paths,
)
from brewline.model import ScanFinding, ScanInput, ScanResult
from brewline.platform import PlatformSettings, tool_path
from brewline.severity import SEVERITIES

# semgrep starts in ~3 s and scans the example services in a few more; the rest of the
# budget is for a loaded worker. Its per-rule-per-file limit stays at semgrep's default.
RUN_TIMEOUT = 600.0

SEMGREP_LEVELS = {"ERROR": "HIGH", "WARNING": "MEDIUM", "INFO": "LOW"}

# semgrep's exit codes for a bad rules file: invalid pattern, unparsable YAML,
# missing config, unknown language. Retrying cannot fix those.
RULES_EXIT_CODES = {4, 5, 7, 8}


def semgrep_severity(level: object, metadata: object = None) -> str:
    """brewline severity of one semgrep result (see the module docstring)."""
    if isinstance(metadata, dict):
        override = str(metadata.get("severity") or "").upper()
        if override in SEVERITIES and override != "UNKNOWN":
            return override
    text = str(level or "").upper()
    if text in SEMGREP_LEVELS:
        return SEMGREP_LEVELS[text]
    return text if text in SEVERITIES else "UNKNOWN"


class SemgrepActivities:
    """semgrep from the venv unless a path is given; its state lives under settings.home."""

    def __init__(self, settings: PlatformSettings, semgrep: str | None = None) -> None:
        self.settings = settings
        self.semgrep = semgrep or tool_path("semgrep", "BREWLINE_SEMGREP")

    @property
    def state_dir(self) -> Path:
        return self.settings.home_path / "semgrep"

    @activity.defn(name="semgrep_scan")
    async def semgrep_scan(self, input: ScanInput) -> ScanResult:
        """Run `input.semgrep_rules` over `input.paths`; ScanGateFailed at or above fail_on."""
        fail_on = check_fail_on(input.fail_on)
        source, targets = resolve_scan_paths(input.source, input.paths)
        rules = self._rules_file(source, input.semgrep_rules)
        out_dir = self.settings.release_dir(input.release_id) / input.service
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path = out_dir / "semgrep.json"
        sarif_path = out_dir / "semgrep.sarif"
        log_path = out_dir / "semgrep.log"
        for stale in (json_path, sarif_path):
            stale.unlink(missing_ok=True)  # a retry must not read the last attempt's report
        argv = [
            self.semgrep,
            "scan",
            "--config",
            str(rules),
            "--metrics=off",
            "--disable-version-check",  # the check hangs ~100 s without network
            "--no-rewrite-rule-ids",  # report "go-exec-shell", not "policy.semgrep.go-exec-shell"
            "--json",
            "--output",
            str(json_path),
            f"--sarif-output={sarif_path}",
            *[rel for rel, _ in targets],
        ]
        result = await run(
            argv, log_path=log_path, cwd=source, env=self._env(), timeout=RUN_TIMEOUT
        )
        report = read_json(json_path) if json_path.exists() else None
        self._check_run(result.returncode, report, rules, log_path, result.tail_text())
        assert report is not None
        findings = findings_from_report(report)
        redact_report_file(json_path, drop_secret_matches)
        return gated_result(
            tool="semgrep",
            service=input.service,
            findings=findings,
            fail_on=fail_on,
            sarif_path=sarif_path,
        )

    def _rules_file(self, source: Path, rules: str) -> Path:
        if not rules:
            raise ApplicationError(
                "semgrep_rules is empty; set scan.semgrep_rules in pipeline.yaml "
                "(for example policy/semgrep/go.yml)",
                type="InvalidConfig",
                non_retryable=True,
            )
        path = (source / rules).resolve()
        if not path.is_file():
            raise ApplicationError(
                f"semgrep rules file {rules!r} not found at {path}; "
                "fix scan.semgrep_rules in pipeline.yaml (relative to the source tree)",
                type="InvalidConfig",
                non_retryable=True,
            )
        return path

    def _check_run(
        self,
        returncode: int,
        report: dict[str, Any] | None,
        rules: Path,
        log_path: Path,
        tail: str,
    ) -> None:
        errors = (report or {}).get("errors") or []
        fatal = [e for e in errors if e.get("level") == "error"]
        for error in errors:
            if error.get("level") != "error":
                # e.g. a target file semgrep could only partly parse: worth seeing, not fatal
                activity.logger.warning("semgrep: %s", _error_text(error))
        rule_errors = [e for e in fatal if _is_rules_error(e)]
        if returncode in RULES_EXIT_CODES or rule_errors:
            details = "; ".join(_error_text(e) for e in (rule_errors or fatal)) or tail
            raise ApplicationError(
                f"semgrep rejected the rules file {rules}: {details}\n"
                f"Fix the rules (try `semgrep scan --validate --config {rules}`); log: {log_path}",
                type="InvalidConfig",
                non_retryable=True,
            )
        if returncode != 0 or report is None or fatal:
            details = "; ".join(_error_text(e) for e in fatal) or tail
            raise RuntimeError(f"semgrep exited with {returncode}; log: {log_path}\n{details}")

    def _env(self) -> dict[str, str]:
        # Keep semgrep's settings, logs and caches out of the worker's home, and drop
        # SEMGREP_* variables (an app token would make it try to reach semgrep.dev).
        home = self.state_dir
        for folder in (home / "config", home / "cache"):
            folder.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEMGREP_")}
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_CACHE_HOME=str(home / "cache"),
            SEMGREP_ENABLE_VERSION_CHECK="0",
            SEMGREP_SEND_METRICS="off",
            SEMGREP_LOG_FILE=str(home / "semgrep.log"),
        )
        return env


def _is_secret_finding(result: dict[str, Any]) -> bool:
    metadata = (result.get("extra") or {}).get("metadata") or {}
    kinds = [metadata.get(key) for key in ("category", "subcategory", "cwe")]
    flat = [item for kind in kinds for item in (kind if isinstance(kind, list) else [kind])]
    return names_a_secret(result.get("check_id"), *flat)


def drop_secret_matches(report: dict[str, Any]) -> None:
    """Remove what semgrep's secret findings matched (the source lines and the bound
    metavariables): rule, message, file and line stay."""
    for result in report.get("results") or []:
        if _is_secret_finding(result):
            extra = result.get("extra") or {}
            extra.pop("lines", None)
            extra.pop("metavars", None)


def findings_from_report(report: dict[str, Any]) -> list[ScanFinding]:
    """Findings of one semgrep JSON report (paths relative to where semgrep ran)."""
    findings: list[ScanFinding] = []
    for result in report.get("results") or []:
        extra = result.get("extra") or {}
        message = " ".join(str(extra.get("message", "")).split())
        findings.append(
            ScanFinding(
                tool="semgrep",
                rule_id=str(result.get("check_id", "")),
                severity=semgrep_severity(extra.get("severity"), extra.get("metadata")),
                path=str(result.get("path", "")),
                line=int((result.get("start") or {}).get("line") or 0),
                # the message may quote what matched (a metavariable): masked like a log
                title=_shorten(redact(message)),
            )
        )
    return findings


def _shorten(title: str) -> str:
    return title if len(title) <= 160 else title[:157] + "..."


def _is_rules_error(error: dict[str, Any]) -> bool:
    kind = str(error.get("type", ""))
    return "rule" in kind.lower() or "config" in str(error.get("message", "")).lower()


def _error_text(error: dict[str, Any]) -> str:
    kind = error.get("type")
    if isinstance(kind, list):  # e.g. ["PartialParsing", [locations]]
        kind = kind[0] if kind else ""
    where = f" in {error['path']}" if error.get("path") else ""
    message = " ".join(str(error.get("message", "")).split())
    return f"{kind}{where}: {message[:300]}"
