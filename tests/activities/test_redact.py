"""Redaction: each secret shape, registered values, the runner's logs and heartbeats, SARIF.

The runner test runs a real subprocess that prints secrets; the SARIF test runs the real
Trivy over planted secrets and reads the artifact the scan activity leaves.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.redact import (
    MASK,
    LineRedactor,
    forget_registered_secrets,
    redact,
    register_secret,
)
from activities.runner import run
from activities.sarif import read_json, redact_sarif
from activities.semgrep import SemgrepActivities
from activities.trivy import TrivyActivities
from brewline.model import ScanInput
from brewline.platform import REPO_ROOT, PlatformSettings

# Secret-shaped test values, assembled so this file itself does not look like a leak.
AWS_KEY_ID = "AKIA" + "Q3EGUM7Z2XKLBN4P"
AWS_TEMP_KEY_ID = "ASIA" + "Q3EGUM7Z2XKLBN4P"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzQ8k2Lp9Qa"
GITHUB_TOKEN = "ghp_" + "4Dq8sV2nZr7Lx0Kp3Yw9Tb6Hj1Mc5Fa2Ge8N"
SLACK_TOKEN = "xoxb-" + "123456789012-abcdefghijkl"
JWT = (
    "eyJhbGciOiJIUzI1NiJ9."
    + "eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
EKS_TOKEN = "k8s-aws-v1." + "aHR0cHM6Ly9zdHMudXMtZWFzdC0xLmFtYXpvbmF3cy5jb20v"
KEY_BLOCK = (
    "-----BEGIN RSA "
    + "PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt\n"
    "0gBoiQzfCmM6zIq7kG\n-----END RSA " + "PRIVATE KEY-----"
)


@pytest.fixture(autouse=True)
def _no_registered_values() -> Iterator[None]:
    forget_registered_secrets()
    yield
    forget_registered_secrets()


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (f"AWS_ACCESS_KEY_ID={AWS_KEY_ID} ok", AWS_KEY_ID, "AWS_ACCESS_KEY_ID="),
        (f"temporary key {AWS_TEMP_KEY_ID}.", AWS_TEMP_KEY_ID, "temporary key"),
        (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "aws_secret_access_key = "),
        (f"export AWS_SECRET_ACCESS_KEY='{AWS_SECRET}'", AWS_SECRET, "AWS_SECRET_ACCESS_KEY="),
        (f"key:\n{KEY_BLOCK}\nafter", "MIIEowIBAAKCAQEAu1SU1", "after"),
        (f"Authorization: Bearer {EKS_TOKEN}", EKS_TOKEN, "Authorization: Bearer"),
        (f"token {EKS_TOKEN} for cluster", EKS_TOKEN, "for cluster"),
        ("Authorization: Basic QVdTOnNlY3JldHBhc3N3b3Jk", "QVdTOnNlY3JldHBhc3N3b3Jk", "Basic"),
        ("curl -H 'bearer 0123456789abcdefXYZ' x", "0123456789abcdefXYZ", "curl -H"),
        (f"id_token={JWT}&x=1", JWT, "&x=1"),
        (f"jwt {JWT}", JWT, "jwt "),
        ("pushing to https://AWS:s3cr3t-pa55@registry.example/x", "s3cr3t-pa55", "@registry"),
        ("postgres://app:hunter2hunter2@db:5432/coffee", "hunter2hunter2", "postgres://app:"),
        ("login password=hunter2&user=bob", "hunter2", "&user=bob"),
        ("--db-password hunter2-not-this one; db_password: 'open sesame'", "open sesame", "db_"),
        ('config {"api_token": "tok-12345", "replicas": 3}', "tok-12345", '"replicas": 3'),
        ("{'client_secret': 'abc-def-ghi'}", "abc-def-ghi", "client_secret"),
        ("TOKEN: tok_live_abcdef", "tok_live_abcdef", "TOKEN: "),
        (f"GITHUB_TOKEN {GITHUB_TOKEN} set", GITHUB_TOKEN, " set"),
        (f"slack {SLACK_TOKEN}", SLACK_TOKEN, "slack"),
        (
            "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXX",
            "XXXXXXXXXXXXXXXX",
            "hooks",
        ),
    ],
)
def test_each_secret_shape_is_masked(text: str, secret: str, kept: str) -> None:
    masked = redact(text)
    assert secret not in masked
    assert MASK in masked
    assert kept in masked


@pytest.mark.parametrize(
    "text",
    [
        "Error acquiring the state lock",
        "trivy fs --scanners secret,misconfig --skip-check-update",
        "Plan: 3 to add, 0 to change, 0 to destroy.",
        "  + password = (sensitive value)",
        "the secret variable was resolved",
        "basic authentication is not used",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_json_stays_parsable_and_only_string_secrets_are_masked() -> None:
    document = json.dumps(
        {
            "variables": {"db_password": {"value": "x"}},
            "password": 'say "hi"',
            "token_ttl": 300,
            "secret": {"nested": True},
        }
    )
    parsed = json.loads(redact(document))
    assert parsed["password"] == MASK
    assert parsed["token_ttl"] == 300
    assert parsed["secret"] == {"nested": True}


def test_registered_values_are_masked_raw_and_json_escaped() -> None:
    value = 'pa"ss\\word-42'
    register_secret(value)
    assert redact(f"value {value} here") == f"value {MASK} here"
    document = json.dumps({"variables": {"db": {"value": value}}})
    assert value not in redact(document) and json.dumps(value) not in redact(document)
    assert json.loads(redact(document))["variables"]["db"]["value"] == MASK


def test_too_short_values_are_not_registered() -> None:
    register_secret("abc")
    assert redact("abc abc") == "abc abc"


def test_line_redactor_masks_a_key_block_across_lines() -> None:
    redactor = LineRedactor()
    lines = ["before\n", *[line + "\n" for line in KEY_BLOCK.splitlines()], "after\n"]
    out = "".join(redactor.line(line) for line in lines)
    assert "MIIEow" not in out and "0gBoiQ" not in out
    assert out.startswith("before\n") and out.endswith("after\n")
    assert "END RSA PRIVATE KEY-----" in out


PRINTER = """
import pathlib, sys, time
print("starting")
print("AWS_ACCESS_KEY_ID=" + sys.argv[1])
print("db password is " + sys.argv[2], flush=True)
# wait for the test to see a heartbeat (bounded: the runner's timeout ends it anyway)
deadline = time.monotonic() + 30
while not pathlib.Path(sys.argv[3]).exists() and time.monotonic() < deadline:
    time.sleep(0.01)
print("done")
"""


async def test_runner_masks_log_tail_and_heartbeats(tmp_path: Path) -> None:
    """A subprocess prints a key id and a registered value: neither reaches the log file,
    the result's tail or the activity's heartbeat details."""
    registered = "s3cret-db-value-1234"
    register_secret(registered)
    seen = tmp_path / "heartbeat-seen"
    heartbeats: list[Any] = []

    def on_heartbeat(*details: Any) -> None:
        heartbeats.extend(details)
        if any(MASK in line for d in details for line in d.get("tail", [])):
            seen.touch()

    env = ActivityEnvironment()
    env.on_heartbeat = on_heartbeat
    log_path = tmp_path / "step.log"

    async def step() -> Any:
        return await run(
            [sys.executable, "-c", PRINTER, AWS_KEY_ID, registered, str(seen)],
            log_path=log_path,
            heartbeat_every=0.02,
            timeout=60,
        )

    result = await env.run(step)
    assert result.ok
    log = log_path.read_text()
    for secret in (AWS_KEY_ID, registered):
        assert secret not in log
        assert secret not in "\n".join(result.tail)
        assert secret not in json.dumps(heartbeats)
    assert f"AWS_ACCESS_KEY_ID={MASK}" in log and f"db password is {MASK}" in log
    assert f"db password is {MASK}" in result.tail
    assert seen.exists(), "no heartbeat carried the masked line"


def test_redact_sarif_keeps_rule_file_and_line_of_secret_findings() -> None:
    document: dict[str, Any] = {
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "Semgrep",
                        "rules": [
                            {"id": "go-hardcoded-credential", "shortDescription": {"text": "c"}},
                            {"id": "go-exec-shell", "shortDescription": {"text": "shell"}},
                        ],
                    }
                },
                "results": [
                    {
                        "ruleId": "go-hardcoded-credential",
                        "message": {"text": f"found {AWS_SECRET}"},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": "svc/main.go"},
                                    "region": {
                                        "startLine": 7,
                                        "snippet": {"text": 'key := "opaque-value-7"'},
                                    },
                                }
                            }
                        ],
                    },
                    {
                        "ruleId": "go-exec-shell",
                        "message": {"text": f"sh -c with token={GITHUB_TOKEN}"},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": "svc/run.go"},
                                    "region": {"startLine": 3, "snippet": {"text": "exec(x)"}},
                                }
                            }
                        ],
                    },
                ],
            }
        ]
    }
    out = json.dumps(redact_sarif(document))
    assert AWS_SECRET not in out and "opaque-value-7" not in out and GITHUB_TOKEN not in out
    secret, other = document["runs"][0]["results"]
    location = secret["locations"][0]["physicalLocation"]
    assert secret["ruleId"] == "go-hardcoded-credential"
    assert location["artifactLocation"]["uri"] == "svc/main.go"
    assert location["region"] == {"startLine": 7}
    assert other["locations"][0]["physicalLocation"]["region"]["snippet"]["text"] == "exec(x)"


async def test_trivy_sarif_artifact_keeps_no_matched_text(tmp_path: Path) -> None:
    """The real Trivy finds planted secrets; its SARIF artifact names rule, file and line
    of each, and holds neither the secret nor the (masked) match."""
    source = tmp_path / "src"
    (source / "svc").mkdir(parents=True)
    (source / "svc" / "app.env").write_text(
        f"AWS_ACCESS_KEY_ID={AWS_KEY_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"
    )
    settings = PlatformSettings(home=str(tmp_path / "home"))
    acts = TrivyActivities(settings)
    scan = ScanInput(
        release_id="r-redact", service="svc", source=str(source), paths=["svc"], fail_on="HIGH"
    )
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(acts.trivy_scan, scan)
    assert failed.value.type == "ScanGateFailed"
    sarif_path = settings.release_dir("r-redact") / "svc" / "trivy.sarif"
    text = sarif_path.read_text()
    assert AWS_KEY_ID not in text and AWS_SECRET not in text
    assert "Match:" not in text and "AWS_ACCESS_KEY_ID=" not in text
    results = read_json(sarif_path)["runs"][0]["results"]
    where = sorted(
        (
            r["ruleId"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in results
    )
    assert where == [
        ("aws-access-key-id", "svc/app.env", 1),
        ("aws-secret-access-key", "svc/app.env", 2),
    ]
    # and every other file the scan leaves (Trivy's own report, each path's SARIF, logs)
    left = sorted(p.name for p in sarif_path.parent.iterdir())
    assert left == ["trivy-1.json", "trivy-1.log", "trivy-1.sarif", "trivy.sarif"]
    for artifact in sarif_path.parent.iterdir():
        text = artifact.read_text()
        assert AWS_KEY_ID not in text and AWS_SECRET not in text, artifact.name
        assert "AWS_ACCESS_KEY_ID=" not in text and "Match" not in text, artifact.name
    report = read_json(sarif_path.with_name("trivy-1.json"))
    secrets = report["Results"][0]["Secrets"]
    assert [(s["RuleID"], s["StartLine"]) for s in secrets] == [
        ("aws-access-key-id", 1),
        ("aws-secret-access-key", 2),
    ]


async def test_semgrep_artifacts_keep_no_matched_credential(tmp_path: Path) -> None:
    """The real semgrep with the project's rules finds a credential written into Go
    source; neither its report, its SARIF, its log nor the gate's message holds it."""
    password = "Sup3r" + "SecretPassw0rd!"
    source = tmp_path / "src"
    (source / "svc").mkdir(parents=True)
    (source / "svc" / "main.go").write_text(
        'package main\n\nimport "fmt"\n\nfunc main() {\n'
        f'\tdbPassword := "{password}"\n\tfmt.Println(len(dbPassword))\n}}\n'
    )
    shutil.copytree(REPO_ROOT / "policy", source / "policy")
    settings = PlatformSettings(home=str(tmp_path / "home"))
    scan = ScanInput(
        release_id="r-redact",
        service="svc",
        source=str(source),
        paths=["svc"],
        fail_on="HIGH",
        semgrep_rules="policy/semgrep/go.yml",
    )
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(SemgrepActivities(settings).semgrep_scan, scan)
    assert failed.value.type == "ScanGateFailed"
    assert "go-hardcoded-credential [HIGH] svc/main.go:6" in failed.value.message
    assert password not in failed.value.message
    out_dir = settings.release_dir("r-redact") / "svc"
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "semgrep.json",
        "semgrep.log",
        "semgrep.sarif",
    ]
    for artifact in out_dir.iterdir():
        assert password not in artifact.read_text(), artifact.name
    [finding] = read_json(out_dir / "semgrep.json")["results"]
    assert (finding["check_id"], finding["path"], finding["start"]["line"]) == (
        "go-hardcoded-credential",
        "svc/main.go",
        6,
    )
    assert "lines" not in finding["extra"] and "metavars" not in finding["extra"]
