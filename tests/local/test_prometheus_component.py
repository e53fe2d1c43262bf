"""The Prometheus component of the local platform, with the real Prometheus and Traefik.

Free ports and a temporary home; every process started here is stopped by PID.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from activities.scrape_targets import ScrapeTargets, targets_dir
from brewline.platform import PlatformSettings
from local.platform import COMPONENTS, DEFAULT_COMPONENTS, LocalPlatform
from tests.local.test_platform import listen_addresses

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
DEADLINE = 30.0  # a file_sd change is applied within ~5 s (scrape manager reload)


def get_json(url: str) -> Any:
    with _OPENER.open(url, timeout=5) as response:
        assert response.status == 200
        return json.load(response)


def instant(settings: PlatformSettings, promql: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": promql})
    answer = get_json(f"{settings.prometheus_url}/api/v1/query?{query}")
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def service_targets(settings: PlatformSettings) -> list[dict[str, Any]]:
    answer = get_json(f"{settings.prometheus_url}/api/v1/targets?state=active")
    return [t for t in answer["data"]["activeTargets"] if t["labels"]["job"] == "services"]


def wait_for(what: str, check: Any) -> Any:
    """Poll `check()` until it returns something truthy; fail after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE:g}s")
        time.sleep(0.2)


def listens_on_loopback_only(port: int) -> bool:
    return listen_addresses(port) == {"0100007F"}


def is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_prometheus_is_a_default_component_started_after_traefik() -> None:
    assert "prometheus" in DEFAULT_COMPONENTS
    order = list(COMPONENTS)
    # ready means Traefik is scraped, so Traefik starts first (and `down` stops it last)
    assert order.index("traefik") < order.index("prometheus") < order.index("worker")


def test_up_scrapes_traefik_and_file_sd_targets_come_and_go_without_a_restart(
    tmp_path: Path,
) -> None:
    settings = PlatformSettings(home=str(tmp_path / "home"))
    platform = LocalPlatform(settings)
    pid = None
    try:
        platform.up(["traefik", "prometheus"], free_ports=True)
        pid = platform.running_pid("prometheus")
        assert pid is not None
        assert platform.status()["prometheus"] == f"running (pid {pid}, {settings.prometheus_url})"
        assert listens_on_loopback_only(settings.prometheus_port)
        assert PlatformSettings.load(settings.home_path).prometheus_port == (
            settings.prometheus_port
        )

        config = yaml.safe_load((settings.prometheus_dir / "prometheus.yml").read_text())
        assert config["global"] == {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
        }
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert jobs["traefik"]["static_configs"] == [
            {"targets": [f"127.0.0.1:{settings.traefik_api_port}"]}
        ]
        assert jobs["services"]["file_sd_configs"] == [
            {"files": [str(targets_dir(settings) / "*.json")], "refresh_interval": "1s"}
        ]
        assert (settings.prometheus_dir / "data").is_dir()

        # ready means Traefik was scraped already: no waiting here
        [traefik_up] = instant(settings, 'up{job="traefik"}')
        assert traefik_up["value"][1] == "1"
        assert instant(settings, 'traefik_config_reloads_total{job="traefik"}')

        # a target file appears: Prometheus scrapes it with its labels (Traefik's /metrics
        # stands in for a container's)
        targets = ScrapeTargets(settings)
        address = f"127.0.0.1:{settings.traefik_api_port}"
        targets.write("staging", "api-gateway", "canary", address, {"version": "1.4.0"})
        [target] = wait_for(
            "the canary target scraped and up",
            lambda: [t for t in service_targets(settings) if t["health"] == "up"],
        )
        assert target["scrapeUrl"] == f"http://{address}/metrics"
        assert {
            key: target["labels"][key] for key in ("environment", "service", "track", "version")
        } == {
            "environment": "staging",
            "service": "api-gateway",
            "track": "canary",
            "version": "1.4.0",
        }
        selector = (
            'traefik_config_reloads_total{job="services",environment="staging",'
            'service="api-gateway",track="canary",version="1.4.0"}'
        )
        wait_for("the canary's series", lambda: instant(settings, selector))

        # ... and goes again
        assert targets.remove("staging", "api-gateway", "canary")
        wait_for("the canary target dropped", lambda: not service_targets(settings))
        assert platform.running_pid("prometheus") == pid  # no restart needed
    finally:
        platform.down()
    assert pid is not None and is_gone(pid)
    assert not platform.pid_file("prometheus").exists()
    assert platform.status()["prometheus"] == "stopped"


def test_without_traefik_prometheus_is_ready_after_its_first_scrape(tmp_path: Path) -> None:
    with socket.socket() as unused:  # where Traefik would be: a port nothing answers on
        unused.bind(("127.0.0.1", 0))
        traefik_port = unused.getsockname()[1]
    settings = PlatformSettings(home=str(tmp_path / "home"), traefik_api_port=traefik_port)
    platform = LocalPlatform(settings)
    pid = None
    try:
        platform.up(["prometheus"], free_ports=True)
        pid = platform.running_pid("prometheus")
        # Traefik's port answers nothing: the target was scraped and is down, not missing
        [traefik_up] = instant(settings, 'up{job="traefik"}')
        assert traefik_up["value"][1] == "0"
    finally:
        platform.down()
    assert pid is not None and is_gone(pid)
