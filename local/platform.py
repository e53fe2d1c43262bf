"""The embedded local platform on 127.0.0.1: Temporal, registry, Traefik, Prometheus, moto.

    python -m local.platform up [--home DIR] [--free-ports] [--with-worker]
                                [--components temporal registry ...]
    python -m local.platform status [--home DIR]
    python -m local.platform down [--home DIR]

`up` starts whatever is not already running and waits until each part really answers;
`down` stops exactly the processes `up` started (by PID file) and the containers the
local deploy target started. Both are safe to run twice. Everything listens on 127.0.0.1.

Layout of the home folder (`PlatformSettings.home`: `$BREWLINE_HOME`, default
`<repo>/.brewline`; `--home` picks another, e.g. one per test session):

    platform.json            ports and folders, written by `up`; the worker, the activities,
                             the CLI and the tests read it back (PlatformSettings.load)
    run/<component>.pid      PID of each process `up` started: temporal, registry, traefik,
                             prometheus, moto and, with --with-worker, worker (python worker.py)
    logs/<component>.log     stdout and stderr of that process (appended across restarts)
    logs/traefik-access.log  Traefik's access log: every request through an entry point
    logs/podman.log          podman calls `down` made to remove the deployed containers
    temporal/temporal.db     the dev server's SQLite store: workflows survive a restart
    registry/config.yml      docker-registry configuration (http.addr, storage, delete)
    registry/docker/         the registry's blobs and manifests (filesystem driver)
    traefik/traefik.yml      Traefik's static configuration: one entry point per
                             environment, the API/dashboard and /metrics entry point,
                             the file provider
    traefik/dynamic/         the file provider's folder: `route-<env>-<service>.yml`, one
                             route per environment and service, written by the local
                             deploy target (activities/traefik.py)
    prometheus/prometheus.yml
                             Prometheus's configuration: 1 s scrapes of Traefik's /metrics
                             (job traefik) and of the deployed containers (job services)
    prometheus/targets/      file_sd targets of job services: `<env>-<service>-<track>.json`,
                             one per container (activities/scrape_targets.py)
    prometheus/data/         Prometheus's TSDB
    containers/              podman and buildah state of this home only: vfs storage,
                             run root, containers.conf, events log
    artifacts/<release_id>/  per-release logs, SARIF reports, plan files, build contexts
    terraform/               Terraform working state of the local environment

A component is one subclass of `Component` plus one entry in `COMPONENTS`: it says
which executable to run, how to write its configuration, which ports it takes and
how to tell it is ready; starting, stopping, PID files and logs are shared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import yaml
from temporalio.common import SearchAttributeIndexedValueType

from activities.scrape_targets import ScrapeTargets, targets_dir
from activities.traefik import TraefikRoutes
from brewline import search_attributes
from brewline.connection import DEFAULT_TASK_QUEUE
from brewline.platform import (
    LOOPBACK,
    REPO_ROOT,
    PlatformSettings,
    container_env,
    container_storage_args,
    tool_path,
)

DEFAULT_COMPONENTS = ("temporal", "registry", "traefik", "prometheus", "moto")
WITH_WORKER = (*DEFAULT_COMPONENTS, "worker")
_START_MARK = "--- brewline start "
MANAGED_LABEL = "brewline.managed=true"
POLL_INTERVAL = 0.1  # seconds between readiness probes


class PlatformError(RuntimeError):
    """A part of the local platform could not be started or stopped."""


# --------------------------------------------------------------------------------------
# Ports and HTTP probes
# --------------------------------------------------------------------------------------


class PortPicker:
    """Hands out distinct free loopback ports.

    Every port stays bound until `close`, so two components never get the same one;
    the kernel does not hand out a port that is bound, even by a running component.
    """

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []

    def take(self) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((LOOPBACK, 0))
        self._sockets.append(sock)
        return int(sock.getsockname()[1])

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def __enter__(self) -> PortPicker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


# No proxy for loopback probes, even when the environment sets one.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """HTTP status of a GET, or None when nothing answered."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------


class Component(ABC):
    """One long-running process of the platform.

    To add a component (Prometheus, say), subclass this and add one entry to
    `COMPONENTS`; `LocalPlatform` does the starting, waiting, PID files and stopping.
    """

    name: ClassVar[str]
    stop_grace: ClassVar[float] = 5.0  # seconds from SIGTERM to SIGKILL
    ready_timeout: ClassVar[float] = 30.0

    @abstractmethod
    def executable(self) -> str:
        """Path of the program; also how a PID file's process is recognised."""

    @abstractmethod
    def ports(self, settings: PlatformSettings) -> dict[str, int]:
        """What each port it listens on is for, e.g. {"grpc": 7233}."""

    @abstractmethod
    def use_free_ports(self, settings: PlatformSettings, picker: PortPicker) -> None:
        """Replace its ports in `settings` with free ones."""

    @abstractmethod
    def command(self, settings: PlatformSettings) -> list[str]:
        """Write the configuration files it needs and return its argv."""

    @abstractmethod
    def is_ready(self, settings: PlatformSettings) -> bool:
        """One quick probe: does it really serve?"""

    @abstractmethod
    def url(self, settings: PlatformSettings) -> str:
        """Where a person or a client reaches it."""

    def environment(self, settings: PlatformSettings) -> dict[str, str]:
        """Environment of the process: this one's, unless a component needs more."""
        return dict(os.environ)

    def owns(self, pid: int) -> bool:
        """Is `pid` a live process of this component (and not a recycled PID)?"""
        return _runs_executable(pid, self.executable())


_SEARCH_ATTRIBUTE_TYPES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


class TemporalDevServer(Component):
    """`temporal server start-dev` with SQLite persistence and the release search attributes."""

    name = "temporal"
    stop_grace = 10.0  # it takes ~3 s to exit on SIGTERM

    def executable(self) -> str:
        return tool_path("temporal", "BREWLINE_TEMPORAL")

    def ports(self, settings: PlatformSettings) -> dict[str, int]:
        return {
            "grpc": settings.temporal_port,
            "ui": settings.temporal_ui_port,
            "http": settings.temporal_http_port,
            "metrics": settings.temporal_metrics_port,
        }

    def use_free_ports(self, settings: PlatformSettings, picker: PortPicker) -> None:
        settings.temporal_port = picker.take()
        settings.temporal_ui_port = picker.take()
        settings.temporal_http_port = picker.take()
        settings.temporal_metrics_port = picker.take()

    def command(self, settings: PlatformSettings) -> list[str]:
        settings.temporal_db.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            self.executable(),
            "server",
            "start-dev",
            "--ip",
            LOOPBACK,
            "--port",
            str(settings.temporal_port),
            "--ui-port",
            str(settings.temporal_ui_port),
            "--http-port",
            str(settings.temporal_http_port),
            "--metrics-port",
            str(settings.temporal_metrics_port),
            "--db-filename",
            str(settings.temporal_db),
            # WAL with synchronous=NORMAL survives a crash of the server process (the chaos
            # we care about here) and cuts each persisted transition from ~25 ms to ~8 ms;
            # only a power loss could drop the last transactions.
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--ui-disable-news-fetch",
            "--log-level",
            "warn",
        ]
        for key in search_attributes.ALL:
            kind = _SEARCH_ATTRIBUTE_TYPES[key.indexed_value_type]
            argv += ["--search-attribute", f"{key.name}={kind}"]
        return argv

    def is_ready(self, settings: PlatformSettings) -> bool:
        try:
            probe = subprocess.run(
                [
                    self.executable(),
                    "operator",
                    "cluster",
                    "health",
                    "--address",
                    settings.temporal_address,
                ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return probe.returncode == 0

    def url(self, settings: PlatformSettings) -> str:
        return settings.ui_url


class ImageRegistry(Component):
    """Debian's docker-registry (distribution 2.8) with filesystem storage in the home."""

    name = "registry"

    def executable(self) -> str:
        return tool_path("docker-registry", "BREWLINE_REGISTRY")

    def ports(self, settings: PlatformSettings) -> dict[str, int]:
        return {"http": settings.registry_port}

    def use_free_ports(self, settings: PlatformSettings, picker: PortPicker) -> None:
        settings.registry_port = picker.take()

    def command(self, settings: PlatformSettings) -> list[str]:
        settings.registry_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text"},
            "storage": {
                "filesystem": {"rootdirectory": str(settings.registry_dir)},
                # so old images can be deleted to reclaim space
                "delete": {"enabled": True},
            },
            "http": {"addr": settings.registry_address},
        }
        path = settings.registry_dir / "config.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return [self.executable(), "serve", str(path)]

    def is_ready(self, settings: PlatformSettings) -> bool:
        return http_status(self.url(settings) + "/v2/") == 200

    def url(self, settings: PlatformSettings) -> str:
        return f"http://{settings.registry_address}"


class Traefik(Component):
    """Traefik with one entry point per environment, routes from the file provider."""

    name = "traefik"
    # Prometheus histogram buckets in seconds: fine enough to tell 5 ms from 50 ms.
    buckets: ClassVar[list[float]] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]

    def executable(self) -> str:
        return tool_path("traefik", "BREWLINE_TRAEFIK")

    def ports(self, settings: PlatformSettings) -> dict[str, int]:
        ports = {"api": settings.traefik_api_port}
        ports.update(settings.entrypoints)
        return ports

    def use_free_ports(self, settings: PlatformSettings, picker: PortPicker) -> None:
        settings.traefik_api_port = picker.take()
        settings.entrypoints = {env: picker.take() for env in settings.entrypoints}

    def static_config(self, settings: PlatformSettings) -> dict[str, object]:
        entry_points: dict[str, object] = {
            env: {"address": f"{LOOPBACK}:{port}"} for env, port in settings.entrypoints.items()
        }
        entry_points["traefik"] = {"address": f"{LOOPBACK}:{settings.traefik_api_port}"}
        return {
            "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
            "entryPoints": entry_points,
            "api": {"insecure": True, "dashboard": True},
            "providers": {
                # a renamed route file is live in ~50 ms instead of ~1 s
                "providersThrottleDuration": "100ms",
                "file": {"directory": str(settings.traefik_dynamic_dir), "watch": True},
            },
            "metrics": {
                "prometheus": {
                    "entryPoint": "traefik",
                    "addServicesLabels": True,
                    "addEntryPointsLabels": True,
                    "buckets": self.buckets,
                }
            },
            "log": {"level": "INFO", "noColor": True},
            "accessLog": {"filePath": str(settings.logs_dir / "traefik-access.log")},
        }

    def command(self, settings: PlatformSettings) -> list[str]:
        settings.traefik_dynamic_dir.mkdir(parents=True, exist_ok=True)
        path = settings.traefik_dir / "traefik.yml"
        path.write_text(yaml.safe_dump(self.static_config(settings), sort_keys=False))
        return [self.executable(), f"--configFile={path}"]

    def is_ready(self, settings: PlatformSettings) -> bool:
        # /api/rawdata answers 404 until the first configuration is loaded
        return http_status(settings.traefik_api_url + "/api/rawdata") == 200

    def url(self, settings: PlatformSettings) -> str:
        return settings.traefik_api_url + "/dashboard/"


class Prometheus(Component):
    """Prometheus scraping Traefik's /metrics and the deployed containers every second.

    Job `traefik` scrapes the "traefik" entry point (API and /metrics); job `services`
    scrapes whatever `activities/scrape_targets.py` lists in `prometheus/targets/`,
    re-read every second, so containers come and go without a restart.
    """

    name = "prometheus"
    stop_grace = 10.0  # it closes its TSDB head on SIGTERM
    interval: ClassVar[str] = "1s"  # scrape and rule evaluation

    def executable(self) -> str:
        return tool_path("prometheus", "BREWLINE_PROMETHEUS")

    def ports(self, settings: PlatformSettings) -> dict[str, int]:
        return {"http": settings.prometheus_port}

    def use_free_ports(self, settings: PlatformSettings, picker: PortPicker) -> None:
        settings.prometheus_port = picker.take()

    def config(self, settings: PlatformSettings) -> dict[str, object]:
        return {
            "global": {
                "scrape_interval": self.interval,
                # the default timeout (10 s) is longer than the interval, which is invalid
                "scrape_timeout": self.interval,
                "evaluation_interval": self.interval,
            },
            "scrape_configs": [
                {
                    "job_name": "traefik",
                    "static_configs": [{"targets": [f"{LOOPBACK}:{settings.traefik_api_port}"]}],
                },
                {
                    "job_name": "services",
                    "file_sd_configs": [
                        {
                            "files": [str(targets_dir(settings) / "*.json")],
                            "refresh_interval": self.interval,
                        }
                    ],
                },
            ],
        }

    def command(self, settings: PlatformSettings) -> list[str]:
        targets_dir(settings).mkdir(parents=True, exist_ok=True)
        path = settings.prometheus_dir / "prometheus.yml"
        path.write_text(yaml.safe_dump(self.config(settings), sort_keys=False))
        return [
            self.executable(),
            f"--config.file={path}",
            f"--storage.tsdb.path={settings.prometheus_dir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{settings.prometheus_port}",
            "--web.enable-lifecycle",  # POST /-/reload re-reads prometheus.yml
        ]

    def is_ready(self, settings: PlatformSettings) -> bool:
        # /-/ready answers at once, but the first scrape lands seconds later: wait for it,
        # so whoever queries next finds data. Traefik's target must be up when Traefik
        # runs; when it is not part of this platform, one scrape (up 0) is enough.
        if http_status(settings.prometheus_url + "/-/ready") != 200:
            return False
        traefik_up = self._instant_value(settings, 'up{job="traefik"}')
        if traefik_up is None:
            return False
        return traefik_up == 1 or http_status(settings.traefik_api_url + "/api/rawdata") is None

    def _instant_value(self, settings: PlatformSettings, query: str) -> float | None:
        """Value of a one-series instant query; None when there is no sample (yet)."""
        url = f"{settings.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        try:
            with _OPENER.open(url, timeout=2.0) as response:
                result = json.load(response)["data"]["result"]
        except (OSError, ValueError, KeyError):
            return None
        if len(result) != 1:
            return None
        return float(result[0]["value"][1])

    def url(self, settings: PlatformSettings) -> str:
        return settings.prometheus_url


class MotoServer(Component):
    """moto's AWS API server, the AWS account of `terraform/envs/local`.

    ECR (metadata only: images stay in the registry component), S3, DynamoDB, EC2,
    IAM, KMS, STS. Its state is in memory: a restart empties it, and the next plan of
    envs/local creates the missing resources again.
    """

    name = "moto"

    def executable(self) -> str:
        return tool_path("moto_server", "BREWLINE_MOTO_SERVER")

    def ports(self, settings: PlatformSettings) -> dict[str, int]:
        return {"http": settings.moto_port}

    def use_free_ports(self, settings: PlatformSettings, picker: PortPicker) -> None:
        settings.moto_port = picker.take()

    def command(self, settings: PlatformSettings) -> list[str]:
        return [self.executable(), "-H", LOOPBACK, "-p", str(settings.moto_port)]

    def owns(self, pid: int) -> bool:
        # moto_server is a Python script: the process's executable is the interpreter,
        # and the script's path is in its argv
        if not _is_running(pid):
            return False
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        script = os.path.realpath(self.executable()).encode()
        return any(os.path.realpath(arg) == script for arg in argv[:2] if arg)

    def is_ready(self, settings: PlatformSettings) -> bool:
        return http_status(self.url(settings) + "/moto-api/") == 200

    def url(self, settings: PlatformSettings) -> str:
        return settings.moto_url


class ReleaseWorker(Component):
    """`python worker.py`: the Temporal worker for this home's platform (`up --with-worker`)."""

    name = "worker"
    stop_grace = 40.0  # it lets running activities finish for up to 30 s
    ready_timeout = 60.0
    ready_line = "worker polling"  # what worker.py logs once its pollers run

    def executable(self) -> str:
        return sys.executable

    def ports(self, settings: PlatformSettings) -> dict[str, int]:
        return {}

    def use_free_ports(self, settings: PlatformSettings, picker: PortPicker) -> None:
        pass

    def command(self, settings: PlatformSettings) -> list[str]:
        return [self.executable(), str(REPO_ROOT / "worker.py")]

    def environment(self, settings: PlatformSettings) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            BREWLINE_HOME=settings.home,
            TEMPORAL_ADDRESS=settings.temporal_address,
            PYTHONUNBUFFERED="1",
        )
        return env

    def owns(self, pid: int) -> bool:
        # any Python would match the executable: the script tells the worker apart
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return super().owns(pid) and str(REPO_ROOT / "worker.py").encode() in argv

    def is_ready(self, settings: PlatformSettings) -> bool:
        log = settings.logs_dir / f"{self.name}.log"
        try:
            text = log.read_text(errors="replace")
        except OSError:
            return False
        # only what the latest start wrote: after the last marker `_start` writes
        return self.ready_line in text.rpartition(_START_MARK)[2]

    def url(self, settings: PlatformSettings) -> str:
        queue = os.environ.get("TEMPORAL_TASK_QUEUE", DEFAULT_TASK_QUEUE)
        return f"{settings.ui_url}/namespaces/default/task-queues/{queue}"


COMPONENTS: dict[str, Component] = {
    component.name: component
    for component in (
        TemporalDevServer(),
        ImageRegistry(),
        Traefik(),
        Prometheus(),
        MotoServer(),
        ReleaseWorker(),
    )
}


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------

# Popen objects of the processes this Python process started: polling them reaps the
# zombie a stopped child leaves behind (a CLI run exits and init reaps them instead).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _thread_states(pid: int) -> list[str]:
    """State letter of each thread of the process; empty when it is gone."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    states = []
    for tid in threads:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            # the state letter follows the command name, which is in parentheses
            states.append(stat.rsplit(")", 1)[1].split()[0])
    return states


def _is_running(pid: int) -> bool:
    """Some thread of the process is still alive.

    Not just the main thread: a Go server's main thread can be a zombie while other
    threads still finish blocking I/O (seen under load with the dev server's SQLite),
    and until the last one exits the process keeps its ports and cannot be reaped.
    """
    _reap(pid)
    return any(state not in ("Z", "X") for state in _thread_states(pid))


def _runs_executable(pid: int, executable: str) -> bool:
    """The process is alive and runs `executable` (not a recycled PID)."""
    if not _is_running(pid):
        return False
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return os.path.realpath(exe.removesuffix(" (deleted)")) == os.path.realpath(executable)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    _reap(pid)  # every thread has exited now, so a child of ours can be reaped
    return True


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class LocalPlatform:
    """Starts, stops and reports the platform's processes in one home folder."""

    # what `make demo` runs: the platform and a worker
    DEMO_COMPONENTS: ClassVar[tuple[str, ...]] = WITH_WORKER

    def __init__(
        self, settings: PlatformSettings, components: Mapping[str, Component] | None = None
    ) -> None:
        self.settings = settings
        self.components = dict(COMPONENTS if components is None else components)

    def pid_file(self, name: str) -> Path:
        return self.settings.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.settings.logs_dir / f"{name}.log"

    def running_pid(self, name: str) -> int | None:
        """PID of the component's process if its PID file names a live process of it."""
        try:
            pid = int(self.pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self.components[name].owns(pid) else None

    # ---- up ----------------------------------------------------------------------------
    def up(
        self, components: Sequence[str] = DEFAULT_COMPONENTS, *, free_ports: bool = False
    ) -> None:
        """Start the named components that are not running yet and wait until they serve.

        With `free_ports`, components that are not running get free ports instead of
        the ones in the settings (running ones keep theirs).
        """
        names = self._check_names(components)
        for folder in (self.settings.run_dir, self.settings.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        to_start = [name for name in names if self.running_pid(name) is None]
        if free_ports:
            with PortPicker() as picker:
                for name in to_start:
                    self.components[name].use_free_ports(self.settings, picker)
        # saved before starting so `status` and `down` see the ports even if a start fails
        self.settings.save()
        for name in to_start:
            self._start(name)

    def _check_names(self, components: Sequence[str]) -> list[str]:
        if isinstance(components, str):
            components = [components]
        unknown = [name for name in components if name not in self.components]
        if unknown:
            raise ValueError(
                f"unknown component(s) {', '.join(unknown)}; known: {', '.join(self.components)}"
            )
        # in the platform's order: what others depend on starts first
        return [name for name in self.components if name in components]

    def _start(self, name: str) -> None:
        component = self.components[name]
        busy = [
            f"{purpose} {port}"
            for purpose, port in component.ports(self.settings).items()
            if not port_is_free(port)
        ]
        if busy:
            raise PlatformError(
                f"cannot start {name}: port(s) {', '.join(busy)} already in use on {LOOPBACK}; "
                f"stop what holds them or run `python -m local.platform up --free-ports`"
            )
        argv = component.command(self.settings)
        log = self.log_file(name)
        with log.open("ab") as out:
            out.write(f"{_START_MARK}{datetime.now(UTC).isoformat()} {' '.join(argv)}\n".encode())
            out.flush()
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.settings.home_path,
                env=component.environment(self.settings),
                start_new_session=True,  # outlives the CLI and gets no terminal signals
            )
        _CHILDREN[process.pid] = process
        tmp = self.pid_file(name).with_suffix(".tmp")
        tmp.write_text(f"{process.pid}\n")
        tmp.replace(self.pid_file(name))

        deadline = time.monotonic() + component.ready_timeout
        while not component.is_ready(self.settings):
            if process.poll() is not None:
                self.pid_file(name).unlink(missing_ok=True)
                raise PlatformError(
                    f"{name} exited with code {process.returncode} before it was ready; "
                    f"see {log}:\n{_log_tail(log)}"
                )
            if time.monotonic() > deadline:
                self._stop(name)
                raise PlatformError(
                    f"{name} did not become ready within {component.ready_timeout:g}s "
                    f"({component.url(self.settings)}); stopped it; see {log}:\n{_log_tail(log)}"
                )
            time.sleep(POLL_INTERVAL)

    # ---- down --------------------------------------------------------------------------
    def down(self) -> None:
        """Remove the deployed containers, their routes and scrape targets, then stop all."""
        self._remove_containers()
        TraefikRoutes(self.settings.traefik_dynamic_dir, self.settings.traefik_api_url).remove_all()
        ScrapeTargets(self.settings).remove_all()
        for name in reversed(list(self.components)):
            self._stop(name)

    def _stop(self, name: str) -> None:
        pid = self.running_pid(name)
        if pid is not None:
            grace = self.components[name].stop_grace
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, grace):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                if not _wait_gone(pid, 5.0):
                    raise PlatformError(f"{name} (pid {pid}) survived SIGKILL; check `ps {pid}`")
        self.pid_file(name).unlink(missing_ok=True)

    def _remove_containers(self) -> None:
        """Stop and remove the containers the local deploy target started in this home."""
        if not (self.settings.containers_dir / "storage").exists():
            return  # podman never ran here; don't create its storage just to find nothing
        podman = [tool_path("podman", "BREWLINE_PODMAN"), *container_storage_args(self.settings)]
        env = container_env(self.settings)
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        with (self.settings.logs_dir / "podman.log").open("ab") as log:
            listing = subprocess.run(
                [*podman, "ps", "-a", "-q", "--filter", f"label={MANAGED_LABEL}"],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=120,
                check=False,
            )
            log.write(listing.stderr)
            if listing.returncode != 0:
                raise PlatformError(
                    f"podman ps failed ({listing.returncode}): {listing.stderr.decode().strip()}"
                )
            ids = listing.stdout.decode().split()
            if not ids:
                return
            removal = subprocess.run(
                [*podman, "rm", "--force", "--time", "3", *ids],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        if removal.returncode != 0:
            raise PlatformError(
                f"podman rm of {len(ids)} container(s) failed ({removal.returncode}); "
                f"see {self.settings.logs_dir / 'podman.log'}"
            )

    # ---- status ------------------------------------------------------------------------
    def status(self) -> dict[str, str]:
        """For each component: "running (pid N, URL)" or "stopped"."""
        report = {}
        for name, component in self.components.items():
            pid = self.running_pid(name)
            report[name] = (
                f"running (pid {pid}, {component.url(self.settings)})" if pid else "stopped"
            )
        return report


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _addresses(settings: PlatformSettings) -> list[str]:
    lines = [
        f"  Temporal UI      {settings.ui_url}",
        f"  Temporal         {settings.temporal_address}",
        f"  registry         {settings.registry_address}",
        f"  Traefik          {settings.traefik_api_url}/dashboard/",
        f"  moto (AWS API)   {settings.moto_url}",
    ]
    lines += [
        f"  {env:<16} {settings.entrypoint_url(env)}/<service>"
        for env in sorted(settings.entrypoints)
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.platform", description="Run brewline's embedded local platform."
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--home", type=Path, help="state folder (default: $BREWLINE_HOME)")
    parser.add_argument(
        "--free-ports", action="store_true", help="up: pick free ports instead of the defaults"
    )
    parser.add_argument(
        "--with-worker",
        action="store_true",
        help="up: also start a worker (python worker.py) for this home",
    )
    parser.add_argument(
        "--components",
        nargs="+",
        choices=list(COMPONENTS),
        default=list(DEFAULT_COMPONENTS),
        help="up: which components to start (default: all)",
    )
    args = parser.parse_args(argv)
    settings = PlatformSettings.load(args.home)
    platform = LocalPlatform(settings)
    try:
        if args.command == "up":
            wanted = list(args.components) + (["worker"] if args.with_worker else [])
            platform.up(wanted, free_ports=args.free_ports)
            print(f"brewline local platform in {settings.home}")
            print("\n".join(_addresses(settings)))
            if "worker" in wanted:
                print(f"  worker           {platform.status()['worker']}")
            if args.home:
                print(f"  (export BREWLINE_HOME={settings.home} for the worker and the CLI)")
        elif args.command == "down":
            platform.down()
            print(f"brewline local platform in {settings.home} stopped")
        else:
            print(f"brewline local platform in {settings.home}")
            for name, state in platform.status().items():
                print(f"  {name:<10} {state}")
    except PlatformError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
