"""No secret in recorded workflow histories: Trivy's secret scanner and a structural check.

Payloads in a history are base64 (`json/plain` payloads), which no scanner reads, so each
history is scanned twice: as recorded, and with every payload decoded into readable JSON
(inputs, results, heartbeat details, failure details, signals, queries). A planted
AWS-key-shaped value proves the decoding and the scan would catch one.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from activities.redact import MASK
from brewline.platform import tool_path
from brewline.secret_refs import parse_secret_ref

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
# payload fields whose name says they carry a secret
SECRET_FIELD = re.compile(r"(?i)password|passwd|secret|token|private_?key|credential")
# what such a field may hold: nothing, a reference (brewline.secret_refs) or a placeholder
PLACEHOLDERS = {"", MASK, "<sensitive>"}
# assembled here so this file does not carry a key-shaped string itself
PLANTED_KEY = "AKIA" + "Q3EGUM7Z2XKLBN4P"


def _decode_payload(payload: dict[str, Any]) -> Any:
    metadata = {k: base64.b64decode(v).decode() for k, v in payload.get("metadata", {}).items()}
    data = base64.b64decode(payload.get("data", "")).decode(errors="replace")
    if metadata.get("encoding") == "json/plain":
        return json.loads(data) if data else None
    return {"metadata": metadata, "data": data}


def decoded(node: Any) -> Any:
    """The history with every payload ({metadata, data}) replaced by its decoded value."""
    if isinstance(node, dict):
        if "metadata" in node and "encoding" in node.get("metadata", {}):
            return {"decoded_payload": _decode_payload(node)}
        return {key: decoded(value) for key, value in node.items()}
    if isinstance(node, list):
        return [decoded(item) for item in node]
    return node


def payloads(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        if "decoded_payload" in node:
            yield node["decoded_payload"]
        else:
            for value in node.values():
                yield from payloads(value)
    elif isinstance(node, list):
        for item in node:
            yield from payloads(item)


def write_scan_copies(history: Path, folder: Path) -> None:
    """`<name>.json` as recorded and `<name>.decoded.json` with payloads readable."""
    shutil.copyfile(history, folder / history.name)
    readable = decoded(json.loads(history.read_text()))
    (folder / f"{history.stem}.decoded.json").write_text(json.dumps(readable, indent=2))


def trivy_secrets(folder: Path, cache: Path) -> list[dict[str, Any]]:
    """Trivy's secret findings under `folder`: {file, rule, line, title}."""
    report = folder.parent / f"{folder.name}-trivy.json"
    argv = [
        tool_path("trivy", "BREWLINE_TRIVY"),
        "fs",
        "--scanners",
        "secret",
        "--skip-check-update",
        "--skip-db-update",
        "--offline-scan",
        "--skip-version-check",
        "--disable-telemetry",
        "--no-progress",
        "--cache-dir",
        str(cache),
        "--format",
        "json",
        "--output",
        str(report),
        str(folder),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"trivy failed:\n{done.stderr[-2000:]}"
    findings = []
    for result in json.loads(report.read_text()).get("Results") or []:
        for secret in result.get("Secrets") or []:
            findings.append(
                {
                    "file": result["Target"],
                    "rule": secret["RuleID"],
                    "line": secret.get("StartLine", 0),
                    "title": secret.get("Title", ""),
                }
            )
    return findings


@pytest.mark.parametrize("history", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_every_payload_decodes(history: Path) -> None:
    """The scans below read decoded payloads: a history whose payloads did not decode
    would pass them unread."""
    found = list(payloads(decoded(json.loads(history.read_text()))))
    assert found, f"{history.name}: no payload found to decode"
    # the workflow's own input: a release request, or a canary's input
    assert any(
        isinstance(p, dict) and ("pipeline" in p or {"canary", "release_id"} <= p.keys())
        for p in found
    )


def test_trivy_finds_no_secret_in_recorded_histories(tmp_path: Path) -> None:
    folder = tmp_path / "histories"
    folder.mkdir()
    for history in HISTORIES:
        write_scan_copies(history, folder)
    findings = trivy_secrets(folder, tmp_path / "cache")
    assert not findings, "secrets in recorded histories (tests/histories/):\n" + "\n".join(
        f"  {f['file']}:{f['line']}: {f['rule']} ({f['title']})" for f in findings
    )


def test_a_planted_secret_in_a_payload_is_found(tmp_path: Path) -> None:
    """A key-shaped value inside a (base64) payload of a history copy is flagged."""
    history = json.loads(HISTORIES[0].read_text())
    started = history["events"][0]["workflowExecutionStartedEventAttributes"]
    payload = started["input"]["payloads"][0]
    request = json.loads(base64.b64decode(payload["data"]))
    request["container_env"] = {"api-gateway": {"AWS_ACCESS_KEY_ID": PLANTED_KEY}}
    payload["data"] = base64.b64encode(json.dumps(request).encode()).decode()
    planted = tmp_path / "planted-source" / "release-planted.json"
    planted.parent.mkdir()
    planted.write_text(json.dumps(history, indent=2))
    assert PLANTED_KEY not in planted.read_text()  # only base64 in the recorded form

    folder = tmp_path / "planted"
    folder.mkdir()
    write_scan_copies(planted, folder)
    findings = trivy_secrets(folder, tmp_path / "cache")
    assert {(f["file"], f["rule"]) for f in findings} == {
        ("release-planted.decoded.json", "aws-access-key-id")
    }


def _secret_fields(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every field named like a secret, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if SECRET_FIELD.search(str(key)):
                yield where, value
            yield from _secret_fields(value, where)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _secret_fields(item, f"{path}[{index}]")


def _allowed(value: Any) -> bool:
    """Empty, a placeholder, a secret reference, or a container of only those."""
    if value is None or isinstance(value, bool | int | float):
        return not value
    if isinstance(value, str):
        if value in PLACEHOLDERS:
            return True
        try:
            parse_secret_ref(value)
        except ValueError:
            return False
        return True
    if isinstance(value, dict):
        return all(_allowed(v) for v in value.values())
    if isinstance(value, list):
        return all(_allowed(v) for v in value)
    return False


@pytest.mark.parametrize("history", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_no_secret_named_payload_field_carries_a_value(history: Path) -> None:
    bad = [
        f"{where} = {value!r}"
        for payload in payloads(decoded(json.loads(history.read_text())))
        for where, value in _secret_fields(payload)
        if not _allowed(value)
    ]
    assert not bad, f"{history.name}: secret-named payload fields with values:\n  " + "\n  ".join(
        bad
    )


def test_the_structural_check_catches_a_value() -> None:
    payload = {"pipeline": {"infra": {"secret_variables": {"db_password": "env:DB"}}}}
    assert all(_allowed(v) for _, v in _secret_fields(payload))
    payload["pipeline"]["infra"]["variables"] = {"db_password": "hunter2"}
    assert [w for w, v in _secret_fields(payload) if not _allowed(v)] == [
        "pipeline.infra.variables.db_password"
    ]
