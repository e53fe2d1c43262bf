"""Thin typed wrapper over the podman CLI, always on the platform's own storage.

Every call carries `container_storage_args(settings)` and `container_env(settings)`, so
podman's images and containers live in the platform's home, and goes through
`activities.runner.run` (argv list, log file, heartbeats, killed on cancel). Containers
run with runc (crun fails on this host), host networking (each service listens on its
own loopback port) and the rlimits runc needs; images come from the local registry
over plain HTTP (`--tls-verify=false`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from activities.runner import RunResult, run
from brewline.platform import PlatformSettings, container_env, container_storage_args, tool_path

RUNC = "/usr/sbin/runc"
ULIMITS = ("nofile=1024:1024", "nproc=1024:1024")
# Marks podman's own lines in a log that also holds its warnings (stderr).
_PS_MARK = "brewline-ps "
_INSPECT_MARK = "brewline-inspect "


class PodmanError(Exception):
    """A podman command failed (retryable: storage locks and registries recover)."""

    def __init__(self, command: list[str], result: RunResult) -> None:
        super().__init__(
            f"`podman {' '.join(command)}` exited with {result.returncode}; "
            f"log {result.log_path}; last output:\n{result.tail_text(10)}"
        )
        self.result = result


@dataclass
class Container:
    """One container as `podman ps` reports it."""

    id: str
    name: str
    image: str
    state: str  # created, running, exited, stopped, ...
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass
class ContainerState:
    """The part of `podman inspect` that says whether a container still runs."""

    status: str
    running: bool
    exit_code: int
    error: str = ""


class Podman:
    """podman on the platform's storage; `log_path` collects every command and its output."""

    def __init__(
        self,
        settings: PlatformSettings,
        log_path: Path,
        *,
        timeout: float = 300.0,
        runtime: str = RUNC,
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.timeout = timeout
        self.runtime = runtime
        self.executable = tool_path("podman", "BREWLINE_PODMAN")

    async def _run(self, *args: str, check: bool = True) -> RunResult:
        result = await run(
            [self.executable, *container_storage_args(self.settings), *args],
            log_path=self.log_path,
            env=container_env(self.settings),
            timeout=self.timeout,
        )
        if check and not result.ok:
            raise PodmanError(list(args), result)
        return result

    async def _lines(self, *args: str) -> list[str]:
        """All output lines of a command (the runner keeps only a tail, the log has all)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        await self._run(*args)
        with self.log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        return text.splitlines()[1:]  # the first line is the runner's "$ argv"

    async def pull(self, image: str) -> None:
        await self._run("pull", "--quiet", "--tls-verify=false", image)

    async def run(
        self,
        image: str,
        *,
        name: str,
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """Start a detached container on the host network; returns its ID."""
        argv = [
            "run",
            "--detach",
            "--name",
            name,
            "--runtime",
            self.runtime,
            "--network",
            "host",
            "--tls-verify=false",
        ]
        for limit in ULIMITS:
            argv += ["--ulimit", limit]
        for key, value in (env or {}).items():
            argv += ["--env", f"{key}={value}"]
        for key, value in (labels or {}).items():
            argv += ["--label", f"{key}={value}"]
        result = await self._run(*argv, image)
        return result.tail[-1].strip() if result.tail else ""

    async def ps(self, labels: Mapping[str, str] | None = None) -> list[Container]:
        """Containers in any state whose labels include all of `labels`."""
        argv = ["ps", "--all", "--no-trunc", "--format", _PS_MARK + "{{json .}}"]
        for key, value in (labels or {}).items():
            argv += ["--filter", f"label={key}={value}"]
        containers = []
        for line in await self._lines(*argv):
            if not line.startswith(_PS_MARK):
                continue
            data = json.loads(line[len(_PS_MARK) :])
            names = data.get("Names") or [""]
            containers.append(
                Container(
                    id=data["Id"],
                    name=names[0],
                    image=data.get("Image", ""),
                    state=data.get("State", ""),
                    labels=dict(data.get("Labels") or {}),
                )
            )
        return containers

    async def inspect(self, container: str) -> ContainerState | None:
        """State of a container, or None when there is no such container."""
        result_lines = await self._lines_or_none(
            "container", "inspect", "--format", _INSPECT_MARK + "{{json .State}}", container
        )
        if result_lines is None:
            return None
        for line in result_lines:
            if line.startswith(_INSPECT_MARK):
                data = json.loads(line[len(_INSPECT_MARK) :])
                return ContainerState(
                    status=data.get("Status", ""),
                    running=bool(data.get("Running")),
                    exit_code=int(data.get("ExitCode", 0)),
                    error=data.get("Error", ""),
                )
        return None

    async def _lines_or_none(self, *args: str) -> list[str] | None:
        try:
            return await self._lines(*args)
        except PodmanError as err:
            if "no such" in err.result.tail_text(5).lower():
                return None
            raise

    async def logs(self, container: str, tail: int = 20) -> list[str]:
        """The container's last output lines (empty when it is gone)."""
        lines = await self._lines_or_none("logs", "--tail", str(tail), container)
        return lines or []

    async def stop(self, container: str, grace: int = 5) -> None:
        """Stop (SIGTERM, SIGKILL after `grace` s); a missing container is not an error."""
        await self._run("stop", "--ignore", "--time", str(grace), container)

    async def rm(self, container: str, *, force: bool = True, grace: int = 5) -> None:
        """Remove (stopping it first when forced); a missing container is not an error."""
        argv = ["rm", "--ignore", "--time", str(grace)]
        if force:
            argv.append("--force")
        await self._run(*argv, container)
