"""Test images: a Go Coffee service, and a broken double of one, built and pushed to a registry.

Built the way the pipeline builds (static Go binary, `FROM scratch`, buildah with the
vfs driver and chroot isolation), but in a container storage of their own, so a
deploy really has to pull them from the registry.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from brewline.platform import PlatformSettings, container_env, container_storage_args, tool_path

REPO_ROOT = Path(__file__).resolve().parents[2]
GO_MODULE = REPO_ROOT / "examples" / "go-coffee"
BROKEN_SERVICE = Path(__file__).parent / "testdata" / "brokenservice"
# The example services are written by another helper at the same time as these tests.
EXAMPLE_WAIT_SECONDS = 25 * 60


def _run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed with {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def wait_for_example(service: str, timeout: float = EXAMPLE_WAIT_SECONDS) -> Path:
    """The service's folder, once its main.go and Containerfile exist (polled, with a deadline)."""
    folder = GO_MODULE / service
    needed = [GO_MODULE / "go.mod", folder / "main.go", folder / "Containerfile"]
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in needed):
        if time.monotonic() > deadline:
            missing = ", ".join(str(p) for p in needed if not p.exists())
            raise TimeoutError(f"example service {service} not there after {timeout:g}s: {missing}")
        time.sleep(5)
    return folder


def go_build(module: Path, package: str, output: Path, ldflags: str) -> Path:
    """A static binary, as the pipeline builds it (offline: stdlib only)."""
    env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOPROXY="off")
    _run(
        [
            tool_path("go", "BREWLINE_GO"),
            "build",
            "-trimpath",
            "-ldflags",
            f"-s -w {ldflags}",
            "-o",
            str(output),
            package,
        ],
        cwd=module,
        env=env,
    )
    return output


@dataclass
class TestImages:
    """Builds images in `builder`'s container storage and pushes them to `registry`."""

    __test__ = False  # not a test class, despite the name

    builder: PlatformSettings
    registry: str  # host:port of the registry
    workdir: Path

    def _build_and_push(self, repository: str, tag: str, context: Path, containerfile: Path) -> str:
        buildah = [tool_path("buildah", "BREWLINE_BUILDAH"), *container_storage_args(self.builder)]
        env = container_env(self.builder)
        ref = f"{self.registry}/{repository}:{tag}"
        _run(
            [
                *buildah,
                "bud",
                "--isolation",
                "chroot",
                "-t",
                ref,
                "-f",
                str(containerfile),
                str(context),
            ],
            env=env,
        )
        digest_file = self.workdir / f"{repository.replace('/', '_')}-{tag}.digest"
        _run(
            [*buildah, "push", "--tls-verify=false", "--digestfile", str(digest_file), ref], env=env
        )
        return f"{self.registry}/{repository}@{digest_file.read_text().strip()}"

    def service(self, service: str, version: str) -> str:
        """`repository@sha256:...` of the example service built at `version`."""
        folder = wait_for_example(service)
        context = self.workdir / f"{service}-{version}"
        context.mkdir(parents=True, exist_ok=True)
        go_build(GO_MODULE, f"./{service}", context / service, f"-X main.version={version}")
        return self._build_and_push(f"test/{service}", version, context, folder / "Containerfile")

    def broken(self, mode: str) -> str:
        """An image that never gets ready: mode "unready" answers /ready 503, "exit" exits."""
        context = self.workdir / f"broken-{mode}"
        context.mkdir(parents=True, exist_ok=True)
        go_build(BROKEN_SERVICE, ".", context / "brokenservice", f"-X main.mode={mode}")
        containerfile = self.workdir / f"broken-{mode}.Containerfile"
        containerfile.write_text(
            'FROM scratch\nCOPY brokenservice /brokenservice\nENTRYPOINT ["/brokenservice"]\n'
        )
        return self._build_and_push("test/brokenservice", mode, context, containerfile)
