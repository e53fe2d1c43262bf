"""trivy_scan with the real Trivy, offline, on small source trees.

Secret-looking values are generated into tmp_path at test time (never committed), so
a scan of this repository stays clean; tests/fixtures/trivy/clean is the committed
negative case.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import string
import time
import uuid
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.sarif import read_json
from activities.trivy import TrivyActivities
from brewline.model import ScanInput, ScanResult
from brewline.platform import REPO_ROOT, PlatformSettings
from brewline.severity import at_or_above, parse_severity

CLEAN = REPO_ROOT / "tests" / "fixtures" / "trivy" / "clean"
ROOT_CONTAINERFILE = 'FROM scratch\nCOPY app /app\nENTRYPOINT ["/app"]\n'


@pytest.fixture
def settings(tmp_path: Path) -> PlatformSettings:
    return PlatformSettings(home=str(tmp_path / "home"))


@pytest.fixture
def acts(settings: PlatformSettings) -> TrivyActivities:
    return TrivyActivities(settings)


def fake_aws_credentials() -> tuple[str, str]:
    """Values shaped like an AWS key pair (random, so never a real one)."""
    key_id = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
    return key_id, secret


def fake_private_key() -> str:
    body = base64.encodebytes(secrets.token_bytes(600)).decode()
    return f"-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\n"


@pytest.fixture
def leaky_source(tmp_path: Path) -> tuple[Path, str]:
    """A service folder with an AWS key pair, a private key and a root Containerfile."""
    src = tmp_path / "src"
    svc = src / "svc"
    svc.mkdir(parents=True)
    key_id, secret = fake_aws_credentials()
    (svc / "deploy.env").write_text(
        f"REGION=eu-west-1\nAWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\n"
    )
    (svc / "signing.pem").write_text(fake_private_key())
    (svc / "Containerfile").write_text(ROOT_CONTAINERFILE)
    return src, secret


def scan_input(source: Path, paths: list[str], fail_on: str = "HIGH") -> ScanInput:
    return ScanInput(
        release_id=f"r-{uuid.uuid4().hex[:8]}",
        service="api-gateway",
        source=str(source),
        paths=paths,
        fail_on=fail_on,
    )


async def scan(acts: TrivyActivities, input: ScanInput) -> ScanResult:
    return await ActivityEnvironment().run(acts.trivy_scan, input)


async def expect_error(acts: TrivyActivities, input: ScanInput) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await scan(acts, input)
    return caught.value


async def test_secrets_and_root_user_fail_the_gate(
    acts: TrivyActivities, settings: PlatformSettings, leaky_source: tuple[Path, str]
) -> None:
    source, secret = leaky_source
    input = scan_input(source, ["svc"])
    err = await expect_error(acts, input)

    assert err.type == "ScanGateFailed"
    assert err.non_retryable
    message = err.message
    assert "api-gateway" in message
    # worst first, with rule id, Trivy's own severity, file:line and title
    assert message.index("[CRITICAL]") < message.index("[HIGH]")
    assert "aws-access-key-id [CRITICAL] svc/deploy.env:2: AWS Access Key ID" in message
    assert "aws-secret-access-key [CRITICAL] svc/deploy.env:3" in message
    assert "private-key [HIGH] svc/signing.pem" in message
    assert "DS-0002 [HIGH] svc/Containerfile: Image user should not be 'root'" in message
    assert "DS-0026" not in message  # LOW: below the gate
    assert secret not in message  # Trivy masks matches; we never copy them anyway
    sarif_path = settings.release_dir(input.release_id) / "api-gateway" / "trivy.sarif"
    assert str(sarif_path) in message
    sarif = read_json(sarif_path)
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for run in sarif["runs"]
        for r in run["results"]
    }
    assert uris == {"svc/deploy.env", "svc/signing.pem", "svc/Containerfile"}
    assert sarif["runs"][0]["originalUriBaseIds"]["ROOTPATH"]["uri"] == source.as_uri() + "/"


async def test_findings_below_fail_on_pass_with_counts(
    acts: TrivyActivities, leaky_source: tuple[Path, str]
) -> None:
    source, _ = leaky_source
    (source / "svc" / "deploy.env").unlink()
    (source / "svc" / "signing.pem").unlink()
    result = await scan(acts, scan_input(source, ["svc"], fail_on="CRITICAL"))

    assert result.tool == "trivy"
    assert result.service == "api-gateway"
    assert result.gate_findings == []
    # exactly Trivy's severities: DS-0002 (root user) HIGH, DS-0026 (no HEALTHCHECK) LOW
    assert result.counts == {"UNKNOWN": 0, "LOW": 1, "MEDIUM": 0, "HIGH": 1, "CRITICAL": 0}
    sarif = read_json(Path(result.sarif_path))
    rule_ids = {r["ruleId"] for run in sarif["runs"] for r in run["results"]}
    assert rule_ids == {"DS-0002", "DS-0026"}


async def test_clean_tree_has_no_findings(acts: TrivyActivities, tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(CLEAN, source / "svc")
    result = await scan(acts, scan_input(source, ["svc"], fail_on="LOW"))

    assert sum(result.counts.values()) == 0
    assert Path(result.sarif_path).is_file()


async def test_several_paths_and_a_single_file(
    acts: TrivyActivities, leaky_source: tuple[Path, str]
) -> None:
    source, _ = leaky_source
    shutil.copytree(CLEAN, source / "clean")
    helm = source / "deploy" / "helm"
    helm.mkdir(parents=True)
    input = scan_input(source, ["svc/Containerfile", "clean", "deploy"], fail_on="CRITICAL")
    result = await scan(acts, input)

    # only the Containerfile of svc was named: its secrets are not in scope
    assert result.counts["CRITICAL"] == 0
    assert result.counts["HIGH"] == 1
    sarif = read_json(Path(result.sarif_path))
    assert len(sarif["runs"]) == 3
    uris = [
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for run in sarif["runs"]
        for r in run["results"]
    ]
    assert set(uris) == {"svc/Containerfile"}
    out_dir = Path(result.sarif_path).parent
    assert sorted(p.name for p in out_dir.glob("trivy-*.sarif")) == [
        "trivy-1.sarif",
        "trivy-2.sarif",
        "trivy-3.sarif",
    ]


async def test_trivyignore_at_the_source_root_is_honoured(
    acts: TrivyActivities, leaky_source: tuple[Path, str]
) -> None:
    source, _ = leaky_source
    (source / ".trivyignore").write_text(
        "# accepted: test fixtures\naws-access-key-id\naws-secret-access-key\nprivate-key\n"
        "DS-0002\n"
    )
    result = await scan(acts, scan_input(source, ["svc"]))

    assert result.counts["CRITICAL"] == 0
    assert result.counts["HIGH"] == 0
    assert result.counts["LOW"] == 1


async def test_a_file_inside_a_scanned_folder_counts_once(
    acts: TrivyActivities, leaky_source: tuple[Path, str]
) -> None:
    source, _ = leaky_source
    (source / "svc" / "deploy.env").unlink()
    (source / "svc" / "signing.pem").unlink()
    paths = ["svc", "svc/Containerfile", "svc/"]
    result = await scan(acts, scan_input(source, paths, fail_on="CRITICAL"))

    assert result.counts["HIGH"] == 1
    assert len(read_json(Path(result.sarif_path))["runs"]) == 1


@pytest.mark.parametrize(
    ("paths", "fail_on", "expected"),
    [
        (["missing"], "HIGH", "'missing' does not exist"),
        (["../outside"], "HIGH", "outside the source tree"),
        ([], "HIGH", "nothing to scan"),
        (["svc"], "SEVERE", "'SEVERE' is not one of"),
    ],
)
async def test_bad_input_is_not_retried(
    acts: TrivyActivities,
    leaky_source: tuple[Path, str],
    paths: list[str],
    fail_on: str,
    expected: str,
) -> None:
    source, _ = leaky_source
    (source.parent / "outside").mkdir()
    err = await expect_error(acts, scan_input(source, paths, fail_on=fail_on))

    assert err.type == "InvalidConfig"
    assert err.non_retryable
    assert expected in err.message


async def test_trivy_failure_is_retryable(
    settings: PlatformSettings, leaky_source: tuple[Path, str], tmp_path: Path
) -> None:
    # a "trivy" that cannot start its scan: the activity must not call it a finding
    broken = TrivyActivities(settings, trivy=str(shutil.which("false")))
    source, _ = leaky_source
    with pytest.raises(RuntimeError, match="trivy fs exited with 1"):
        await scan(broken, scan_input(source, ["svc"]))


async def test_offline_scan_is_quick(acts: TrivyActivities, tmp_path: Path) -> None:
    """No network wait hides in the run (DB, checks bundle, version check, telemetry)."""
    source = tmp_path / "src"
    shutil.copytree(CLEAN, source / "svc")
    started = time.monotonic()
    result = await scan(acts, scan_input(source, ["svc"]))

    assert time.monotonic() - started < 30
    log = (Path(result.sarif_path).parent / "trivy-1.log").read_text()
    assert "Downloading" not in log


# ---- the gate rule (brewline.severity) ------------------------------------------------------


def test_gate_rule_orders_severities() -> None:
    assert at_or_above("CRITICAL", "HIGH")
    assert at_or_above("HIGH", "high")
    assert not at_or_above("MEDIUM", "HIGH")
    assert not at_or_above("UNKNOWN", "LOW")
    assert at_or_above("UNKNOWN", "UNKNOWN")
    assert parse_severity(" medium ") == "MEDIUM"
    with pytest.raises(ValueError, match="'SEVERE' is not one of UNKNOWN, LOW, MEDIUM"):
        parse_severity("SEVERE")
    with pytest.raises(ValueError, match="None is not one of"):
        parse_severity(None)
