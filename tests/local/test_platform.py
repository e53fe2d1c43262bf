"""The local platform manager with the real dev server, registry, Traefik and podman.

Free ports and a temporary home; every process started here is stopped by PID.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from brewline.platform import PlatformSettings, container_env, container_storage_args
from local.platform import COMPONENTS, DEFAULT_COMPONENTS, LocalPlatform, PlatformError
from tests.local.images import REPO_ROOT, TestImages

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str) -> tuple[int, bytes]:
    with _OPENER.open(url, timeout=5) as response:
        return response.status, response.read()


def listen_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp shows them) of sockets listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def podman(settings: PlatformSettings, *args: str) -> str:
    done = subprocess.run(
        ["podman", *container_storage_args(settings), *args],
        env=container_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_up_is_idempotent_serves_on_loopback_and_down_stops_everything(
    tmp_path: Path,
) -> None:
    settings = PlatformSettings(home=str(tmp_path / "home"))
    platform = LocalPlatform(settings)
    # A PID file naming a live process of another program (this test) must not
    # fool `up` into skipping the registry, nor `down` into killing it.
    settings.run_dir.mkdir(parents=True)
    platform.pid_file("registry").write_text(f"{os.getpid()}\n")
    pids: dict[str, int | None] = {}
    try:
        platform.up(free_ports=True)
        pids = {name: platform.running_pid(name) for name in DEFAULT_COMPONENTS}
        assert all(pids.values()), pids
        assert pids["registry"] != os.getpid()
        assert PlatformSettings.load(settings.home_path) == settings
        status = platform.status()
        for name, pid in pids.items():
            assert status[name].startswith(f"running (pid {pid}, http://127.0.0.1:"), status

        ports = [
            settings.temporal_port,
            settings.temporal_ui_port,
            settings.temporal_http_port,
            settings.temporal_metrics_port,
            settings.registry_port,
            settings.traefik_api_port,
            *settings.entrypoints.values(),
        ]
        assert len(set(ports)) == len(ports)
        for port in ports:
            assert listen_addresses(port) == {"0100007F"}, f"port {port} not on 127.0.0.1 only"

        # up again, from the CLI in another process: nothing restarts, no port moves
        cli = subprocess.run(
            [sys.executable, "-m", "local.platform", "up", "--free-ports", "--home", settings.home],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        assert settings.ui_url in cli.stdout
        assert f"{settings.entrypoint_url('staging')}/<service>" in cli.stdout
        assert {name: platform.running_pid(name) for name in DEFAULT_COMPONENTS} == pids
        assert PlatformSettings.load(settings.home_path) == settings

        # the dev server takes clients and knows the release search attributes
        client = await Client.connect(settings.temporal_address)
        attributes = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        assert {
            name: attributes.custom_attributes[name]
            for name in ("ReleaseServices", "ReleaseVersion", "ReleaseStage")
        } == {
            "ReleaseServices": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
            "ReleaseVersion": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
            "ReleaseStage": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        }
        assert get(settings.ui_url)[0] == 200

        assert get(f"http://{settings.registry_address}/v2/") == (200, b"{}")

        _, body = get(f"{settings.traefik_api_url}/api/entrypoints")
        entry_points: dict[str, Any] = {ep["name"]: ep["address"] for ep in json.loads(body)}
        assert entry_points == {
            "traefik": f"127.0.0.1:{settings.traefik_api_port}",
            **{env: f"127.0.0.1:{port}" for env, port in settings.entrypoints.items()},
        }
        metrics = get(f"{settings.traefik_api_url}/metrics")[1].decode()
        assert "traefik_config_reloads_total" in metrics

        # a running container of the local target, and one that is not brewline's
        images = TestImages(
            PlatformSettings(home=str(tmp_path / "builder")), settings.registry_address, tmp_path
        )
        image = images.broken("unready")
        managed = podman(
            settings,
            "run",
            "--detach",
            "--runtime",
            "/usr/sbin/runc",
            "--network",
            "host",
            "--tls-verify=false",
            "--env",
            "LISTEN_ADDR=127.0.0.1:0",
            "--label",
            "brewline.managed=true",
            image,
        ).strip()
        foreign = podman(settings, "create", image).strip()
        assert podman(settings, "inspect", "--format", "{{.State.Status}}", managed).strip() == (
            "running"
        )
    finally:
        platform.down()

    for name, pid in pids.items():
        assert pid is not None and is_gone(pid), f"{name} (pid {pid}) still runs"
    assert list(settings.run_dir.glob("*.pid")) == []
    assert set(platform.status().values()) == {"stopped"}
    remaining = podman(settings, "ps", "--all", "--quiet", "--no-trunc").split()
    assert remaining == [foreign]  # the managed one is gone, the other one untouched
    podman(settings, "rm", foreign)

    platform.down()  # safe twice
    cli = subprocess.run(
        [sys.executable, "-m", "local.platform", "status", "--home", settings.home],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert cli.stdout.count("stopped") == len(COMPONENTS)


def test_with_worker_starts_a_polling_worker_and_down_stops_it_first(tmp_path: Path) -> None:
    settings = PlatformSettings(home=str(tmp_path / "home"))
    platform = LocalPlatform(settings)
    worker = None
    try:
        platform.up(["temporal", "worker"], free_ports=True)
        worker = platform.running_pid("worker")
        assert worker is not None
        assert platform.status()["worker"].startswith(f"running (pid {worker}, {settings.ui_url}")
        assert f"on {settings.temporal_address}" in platform.log_file("worker").read_text()
        # a Python process that is not the worker does not pass for it
        platform.pid_file("worker").write_text(f"{os.getpid()}\n")
        assert platform.running_pid("worker") is None
        platform.pid_file("worker").write_text(f"{worker}\n")
    finally:
        platform.down()
    assert worker is not None and is_gone(worker)
    assert "worker stopped" in platform.log_file("worker").read_text()


def test_up_refuses_a_port_that_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = PlatformSettings(home=str(tmp_path / "home"), registry_port=port)
        platform = LocalPlatform(settings)
        with pytest.raises(
            PlatformError, match=f"registry: port\\(s\\) http {port} already in use"
        ):
            platform.up(["registry"])
    assert not platform.pid_file("registry").exists()
    assert platform.status()["registry"] == "stopped"


def test_up_names_unknown_components(tmp_path: Path) -> None:
    platform = LocalPlatform(PlatformSettings(home=str(tmp_path / "home")))
    with pytest.raises(ValueError, match="unknown component\\(s\\) grafana; known: temporal"):
        platform.up(["grafana"])
