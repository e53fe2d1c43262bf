"""terraform/ as a whole, offline: fmt, validate of every environment, Trivy's misconfig gate.

Validation runs on a copy of terraform/ (envs use ../../modules) with the project's
terraformrc, so providers come from the filesystem mirror and nothing is written into
the repository; `init -backend=false` needs no S3 bucket and no moto.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from activities.terraform import CLI_CONFIG
from brewline.platform import REPO_ROOT, tool_path

TERRAFORM = REPO_ROOT / "terraform"
ENVS = sorted(p.name for p in (TERRAFORM / "envs").iterdir() if p.is_dir())
# the outputs the release reads from a cloud environment (build and deploy)
RELEASE_OUTPUTS = {
    "cluster_name",
    "region",
    "registry",
    "image_repositories",
    "rds_endpoint",
    "redis_endpoint",
    "kafka_bootstrap_brokers",
}
_OUTPUT = re.compile(r'^output\s+"([^"]+)"', re.MULTILINE)


def terraform(*args: str, cwd: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        TF_CLI_CONFIG_FILE=str(CLI_CONFIG),
        TF_DATA_DIR=str(data_dir),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
    )
    return subprocess.run(
        ["terraform", f"-chdir={cwd}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def outputs_of(env: str) -> set[str]:
    return {
        name
        for path in (TERRAFORM / "envs" / env).glob("*.tf")
        for name in _OUTPUT.findall(path.read_text())
    }


def test_every_environment_is_there() -> None:
    assert ENVS == ["local", "production", "staging"]


def test_fmt_is_clean() -> None:
    done = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{done.stdout}"


@pytest.mark.parametrize("env", ENVS)
def test_validate_offline(env: str, tmp_path: Path) -> None:
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy)
    root = copy / "envs" / env
    init = terraform("init", "-backend=false", "-no-color", cwd=root, data_dir=tmp_path / "d")
    assert init.returncode == 0, init.stdout + init.stderr
    # the committed lock file pins the mirror's provider: init must not have to change it
    lock = root / ".terraform.lock.hcl"
    assert lock.read_text() == (TERRAFORM / "envs" / env / ".terraform.lock.hcl").read_text()
    validate = terraform("validate", "-json", "-no-color", cwd=root, data_dir=tmp_path / "d")
    report = json.loads(validate.stdout)
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    assert report["error_count"] == 0


@pytest.mark.parametrize("env", ["staging", "production"])
def test_cloud_environments_give_the_release_its_outputs(env: str) -> None:
    assert outputs_of(env) >= RELEASE_OUTPUTS
    versions = (TERRAFORM / "envs" / env / "versions.tf").read_text()
    assert re.search(r'backend\s+"s3"\s+\{\}', versions), "partial S3 backend expected"
    example = (TERRAFORM / "envs" / env / "backend.hcl.example").read_text()
    for key in ("bucket", "key", "region", "dynamodb_table"):
        assert re.search(rf"^{key}\s*=", example, re.MULTILINE), key


def test_local_environment_keeps_its_contract() -> None:
    outputs = outputs_of("local")
    assert {"registry", "image_repository", "release_version", "environments"} <= outputs
    assert {"ecr_repositories", "artifacts_bucket", "lock_table", "vpc_id"} <= outputs
    # the local build pushes to the local registry, never to moto's metadata-only ECR
    assert "image_repositories" not in outputs


def test_trivy_finds_no_high_or_critical_misconfiguration(tmp_path: Path) -> None:
    """The release's scan gate scans terraform/ with these flags.

    envs/production's .tf files are links to envs/staging's (one configuration, two sets
    of values), and Trivy skips links: scan a copy with the links resolved, so
    production is checked with its own terraform.tfvars, as Terraform sees it."""
    tree = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, tree, symlinks=False)
    report = tmp_path / "trivy.json"
    done = subprocess.run(
        [
            tool_path("trivy", "BREWLINE_TRIVY"),
            "fs",
            "--scanners",
            "misconfig",
            "--skip-check-update",
            "--severity",
            "HIGH,CRITICAL",
            "--format",
            "json",
            "--output",
            str(report),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(tree),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(report.read_text()).get("Results", [])
    scanned = {r["Target"] for r in results}
    assert {"envs/staging", "envs/production", "envs/local"} <= scanned, scanned
    findings = [
        f"{r['Target']}: {m['Severity']} {m['ID']} {m['Title']}"
        for r in results
        for m in r.get("Misconfigurations") or []
    ]
    assert findings == []
