"""What the scan activities share: input checks, counting, the gate and SARIF files.

Each scanner module (trivy, semgrep) turns its tool's report into `ScanFinding`s with
severities from brewline.severity; everything after that is the same for all scanners.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.redact import redact
from brewline.model import ScanFinding, ScanResult
from brewline.severity import SEVERITIES, at_or_above, parse_severity, rank

# How many findings a gate failure message lists; the SARIF file holds all of them.
MESSAGE_FINDINGS = 10


def check_fail_on(fail_on: str) -> str:
    """The gate threshold, normalised; bad input is a non-retryable InvalidConfig."""
    try:
        return parse_severity(fail_on)
    except ValueError as err:
        raise ApplicationError(
            f"fail_on: {err}; fix scan.fail_on in pipeline.yaml",
            type="InvalidConfig",
            non_retryable=True,
        ) from None


def resolve_scan_paths(source: str, paths: Iterable[str]) -> tuple[Path, list[tuple[str, Path]]]:
    """Check that every path is inside `source` and exists.

    Returns the resolved source and a (relative, absolute) pair per path.

    A missing path is a configuration mistake (pipeline.yaml or the service layout), not
    something a retry fixes, so it is a non-retryable InvalidConfig.
    """
    root = Path(source).resolve()
    if not root.is_dir():
        raise ApplicationError(
            f"source {source!r} is not a directory on this worker; "
            "pass the absolute path of the checked-out source tree",
            type="InvalidConfig",
            non_retryable=True,
        )
    resolved: list[tuple[str, Path]] = []
    for rel in paths:
        full = (root / rel).resolve()
        if not full.is_relative_to(root):
            raise ApplicationError(
                f"scan path {rel!r} is outside the source tree {root}; "
                "use a path relative to the source",
                type="InvalidConfig",
                non_retryable=True,
            )
        if not full.exists():
            raise ApplicationError(
                f"scan path {rel!r} does not exist under {root}; "
                "fix the service's package or scan.shared_paths in pipeline.yaml",
                type="InvalidConfig",
                non_retryable=True,
            )
        resolved.append((full.relative_to(root).as_posix() or ".", full))
    resolved = _outermost(resolved)
    if not resolved:
        raise ApplicationError(
            "nothing to scan: ScanInput.paths is empty; list at least one path",
            type="InvalidConfig",
            non_retryable=True,
        )
    return root, resolved


def _outermost(paths: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """Drop repeats and paths inside another listed folder: their findings would count twice.

    (The release workflow lists a service's folder and its Containerfile in that folder.)
    """
    kept: list[tuple[str, Path]] = []
    for rel, full in paths:
        inside_another = any(
            other != full and full.is_relative_to(other) and other.is_dir() for _, other in paths
        )
        if not inside_another and all(full != seen for _, seen in kept):
            kept.append((rel, full))
    return kept


def count_by_severity(findings: Iterable[ScanFinding]) -> dict[str, int]:
    """Number of findings per severity, with every severity present (zeros included)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        counts[finding.severity] += 1
    return counts


def worst_first(findings: Iterable[ScanFinding]) -> list[ScanFinding]:
    """Most severe first, then by file and line, so messages and results are stable."""
    return sorted(findings, key=lambda f: (-rank(f.severity), f.path, f.line, f.rule_id))


def gate_findings(findings: Iterable[ScanFinding], fail_on: str) -> list[ScanFinding]:
    """The findings that fail a gate set at `fail_on`, worst first."""
    return worst_first(f for f in findings if at_or_above(f.severity, fail_on))


def describe(finding: ScanFinding) -> str:
    where = f"{finding.path}:{finding.line}" if finding.line > 0 else finding.path
    return f"{finding.rule_id} [{finding.severity}] {where}: {finding.title}"


def raise_if_gate_failed(
    *,
    tool: str,
    service: str,
    findings: list[ScanFinding],
    fail_on: str,
    sarif_path: Path,
) -> None:
    """Raise a non-retryable ScanGateFailed listing the top findings at or above `fail_on`."""
    failing = gate_findings(findings, fail_on)
    if not failing:
        return
    counts = count_by_severity(failing)
    summary = ", ".join(f"{counts[s]} {s}" for s in reversed(SEVERITIES) if counts[s])
    lines = [describe(f) for f in failing[:MESSAGE_FINDINGS]]
    if len(failing) > MESSAGE_FINDINGS:
        lines.append(f"... and {len(failing) - MESSAGE_FINDINGS} more")
    raise ApplicationError(
        f"{tool} gate failed for {service}: {len(failing)} finding(s) at or above "
        f"{fail_on} ({summary}):\n  "
        + "\n  ".join(lines)
        + f"\nAll findings: {sarif_path}. Fix them, or raise scan.fail_on only with a reason.",
        type="ScanGateFailed",
        non_retryable=True,
    )


def gated_result(
    *,
    tool: str,
    service: str,
    findings: list[ScanFinding],
    fail_on: str,
    sarif_path: Path,
) -> ScanResult:
    """The scan's result when it passes the gate; ScanGateFailed when it does not.

    The SARIF file at `sarif_path` is redacted in place first (`redact_sarif_file`), so
    the artifact never holds a matched secret, whether the gate passes or not.
    """
    redact_sarif_file(sarif_path)
    raise_if_gate_failed(
        tool=tool, service=service, findings=findings, fail_on=fail_on, sarif_path=sarif_path
    )
    return ScanResult(
        tool=tool,
        service=service,
        counts=count_by_severity(findings),
        gate_findings=[],
        sarif_path=str(sarif_path),
    )


# ---- SARIF files -------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, document: Any) -> None:
    """Write atomically, so a retried or cancelled activity never leaves half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def rebase_sarif_run(run: dict[str, Any], source: Path, prefix: str) -> dict[str, Any]:
    """Make the run's result locations relative to `source`.

    Trivy writes locations relative to the path it scanned (and its ROOTPATH base is
    wrong after `trivy convert`), so `prefix` (that path's folder, relative to the
    source) is put in front of every URI and ROOTPATH points at the source tree.
    """
    for result in run.get("results", []):
        for location in result.get("locations", []):
            artifact = location.get("physicalLocation", {}).get("artifactLocation")
            if artifact and "uri" in artifact:
                artifact["uri"] = join_rel(prefix, artifact["uri"])
                artifact["uriBaseId"] = "ROOTPATH"
    run["originalUriBaseIds"] = {"ROOTPATH": {"uri": source.as_uri().rstrip("/") + "/"}}
    return run


def merge_sarif(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One SARIF log holding the runs of several (SARIF allows any number of runs)."""
    merged: dict[str, Any] = {
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [],
    }
    for document in documents:
        merged["runs"].extend(document.get("runs", []))
    return merged


def join_rel(prefix: str, name: str) -> str:
    """`prefix/name` as a POSIX path relative to the source ("." prefix adds nothing)."""
    if prefix in ("", "."):
        return name
    return f"{prefix.rstrip('/')}/{name}"


# ---- redaction ---------------------------------------------------------------------------

# A rule whose id or tags say it finds credentials: Trivy's secret scanner tags all of
# its rules "secret"; semgrep rules name it in their id or metadata.
_SECRET_RULE = re.compile(
    r"(?i)secret|credential|password|passwd|token|private[-_ ]?key|api[-_]?key"
)
REDACTED_FINDING_MESSAGE = (
    "{title}: the matched text is not kept (secret finding); see the file and line"
)


def names_a_secret(*names: object) -> bool:
    """Whether any of a rule's id, name, tags or categories says it finds secrets."""
    return any(_SECRET_RULE.search(str(name)) for name in names if name)


def is_secret_rule(rule: dict[str, Any]) -> bool:
    """Whether a SARIF rule (reportingDescriptor) finds secrets."""
    tags = (rule.get("properties") or {}).get("tags") or []
    return names_a_secret(rule.get("id"), rule.get("name"), *tags)


def redact_sarif(document: dict[str, Any]) -> dict[str, Any]:
    """Mask secrets in a SARIF log (changed in place and returned).

    Results of secret rules keep their rule id, file and line, but their message says only
    what was found and every snippet is dropped: the matched text, even when the scanner
    masked it, is not kept. Rules of secret findings lose the example match Trivy puts in
    their description and help. Every other message and snippet goes through `redact`.
    """
    for run in document.get("runs", []):
        rules = (run.get("tool") or {}).get("driver", {}).get("rules") or []
        secret_rules = {str(rule.get("id", "")) for rule in rules if is_secret_rule(rule)}
        for rule in rules:
            if str(rule.get("id", "")) in secret_rules:
                title = _text(rule.get("shortDescription")) or str(rule.get("id", ""))
                rule["fullDescription"] = {"text": title}
                rule["help"] = {"text": title, "markdown": title}
        for result in run.get("results", []):
            rule_id = str(result.get("ruleId", ""))
            if rule_id in secret_rules or _SECRET_RULE.search(rule_id):
                title = _rule_title(rules, rule_id)
                result["message"] = {"text": REDACTED_FINDING_MESSAGE.format(title=title)}
                for region in _regions(result):
                    region.pop("snippet", None)
            else:
                _redact_text_of(result.get("message"))
                for region in _regions(result):
                    _redact_text_of(region.get("snippet"))
            for location in result.get("locations", []):
                _redact_text_of(location.get("message"))
    return document


def redact_sarif_file(path: Path) -> None:
    """Redact the SARIF file at `path` in place (`redact_sarif`); no file, nothing to do."""
    if path.is_file():
        write_json(path, redact_sarif(read_json(path)))


def _text(message: object) -> str:
    return str(message.get("text", "")) if isinstance(message, dict) else ""


def _rule_title(rules: list[dict[str, Any]], rule_id: str) -> str:
    for rule in rules:
        if str(rule.get("id", "")) == rule_id:
            return _text(rule.get("shortDescription")) or rule_id
    return rule_id


def _regions(result: dict[str, Any]) -> list[dict[str, Any]]:
    regions = []
    for location in result.get("locations", []):
        physical = location.get("physicalLocation") or {}
        for key in ("region", "contextRegion"):
            if isinstance(physical.get(key), dict):
                regions.append(physical[key])
    return regions


def _redact_text_of(node: object) -> None:
    if isinstance(node, dict):
        for key in ("text", "markdown"):
            if isinstance(node.get(key), str):
                node[key] = redact(node[key])


def redact_strings(value: Any) -> Any:
    """Every string of a JSON value through `redact`; the structure is kept."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_strings(item) for item in value]
    if isinstance(value, dict):
        return {key: redact_strings(item) for key, item in value.items()}
    return value


def redact_report_file(path: Path, drop_secret_matches: Callable[[Any], None]) -> None:
    """Redact a scanner's own JSON report in place, once its findings have been read:
    `drop_secret_matches` removes the matched text of its secret findings (rule, file and
    line stay), then every other string goes through `redact`. No file, nothing to do."""
    if path.is_file():
        report = read_json(path)
        drop_secret_matches(report)
        write_json(path, redact_strings(report))
