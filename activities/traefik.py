"""Traefik routes of the local deploy target: one file-provider file per environment+service.

A route sends `<entry point of env>/<service>/...` to one server URL, with the
`/<service>` prefix stripped so the service sees `/health`. Files are written
atomically (temp file + rename: Traefik never reads half a file) and a change only
counts once Traefik's API shows it, since the file provider applies it a little later.
The files are the record of what is routed: nothing is kept in memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from temporalio import activity

ROUTE_FILE_PREFIX = "route-"
HEADER = "# Written by brewline's local deploy target (activities/traefik.py); do not edit.\n"


# --------------------------------------------------------------------------------------
# A small HTTP client (stdlib, no proxy) for Traefik's API and the routes it serves
# --------------------------------------------------------------------------------------


@dataclass
class HttpAnswer:
    status: int
    body: bytes
    latency_ms: float

    def json(self) -> Any:
        return json.loads(self.body)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, seconds: float) -> HttpAnswer:
    started = time.perf_counter()
    try:
        with _OPENER.open(url, timeout=seconds) as response:
            body = response.read()
            status = int(response.status)
    except urllib.error.HTTPError as err:
        body = err.read()
        status = int(err.code)
    return HttpAnswer(status, body, (time.perf_counter() - started) * 1000)


async def http_get(url: str, seconds: float = 5.0) -> HttpAnswer:
    """GET `url` giving up after `seconds`; any HTTP status is an answer, OSError when
    nothing answered."""
    return await asyncio.to_thread(_get, url, seconds)


def _heartbeat(details: str) -> None:
    if activity.in_activity():
        activity.heartbeat(details)


# --------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------


@dataclass
class Route:
    """Requests to `<environment's entry point>/<service>` go to `server_url`."""

    environment: str
    service: str
    server_url: str  # e.g. http://127.0.0.1:41234

    @property
    def name(self) -> str:
        return route_name(self.environment, self.service)


def route_name(environment: str, service: str) -> str:
    """Traefik name of the router, service and file of one environment+service."""
    return f"{environment}-{service}"


class RouteNotApplied(Exception):
    """Traefik did not show the expected route in time (retryable: it may be reloading)."""


class TraefikRoutes:
    """Reads, writes and removes route files and checks Traefik applied them."""

    def __init__(
        self,
        dynamic_dir: Path,
        api_url: str,
        *,
        confirm_timeout: float = 20.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.dynamic_dir = dynamic_dir
        self.api_url = api_url.rstrip("/")
        self.confirm_timeout = confirm_timeout
        self.poll_interval = poll_interval

    def path(self, environment: str, service: str) -> Path:
        return self.dynamic_dir / f"{ROUTE_FILE_PREFIX}{route_name(environment, service)}.yml"

    # ---- files -------------------------------------------------------------------------
    def read(self, environment: str, service: str) -> Route | None:
        """The route the file says, or None when there is no (usable) file."""
        path = self.path(environment, service)
        try:
            config = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            return None
        name = route_name(environment, service)
        try:
            url = config["http"]["services"][name]["loadBalancer"]["servers"][0]["url"]
        except (KeyError, IndexError, TypeError):
            return None
        return Route(environment, service, str(url))

    def write(self, route: Route) -> None:
        """Replace the route file atomically (Traefik skips the non-.yml temp file)."""
        name = route.name
        strip = f"{name}-strip"
        config = {
            "http": {
                "routers": {
                    name: {
                        "entryPoints": [route.environment],
                        "rule": f"PathPrefix(`/{route.service}`)",
                        "middlewares": [strip],
                        "service": name,
                    }
                },
                "middlewares": {strip: {"stripPrefix": {"prefixes": [f"/{route.service}"]}}},
                "services": {name: {"loadBalancer": {"servers": [{"url": route.server_url}]}}},
            }
        }
        self.dynamic_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dynamic_dir, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(HEADER + yaml.safe_dump(config, sort_keys=False))
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path(route.environment, route.service))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self, environment: str, service: str) -> bool:
        """Delete the route file; False when there was none."""
        try:
            self.path(environment, service).unlink()
        except FileNotFoundError:
            return False
        return True

    def remove_all(self) -> list[Path]:
        """Delete every route file this module wrote (what `down` does)."""
        if not self.dynamic_dir.is_dir():
            return []
        removed = []
        for path in sorted(self.dynamic_dir.glob(f"{ROUTE_FILE_PREFIX}*.yml")):
            path.unlink(missing_ok=True)
            removed.append(path)
        return removed

    # ---- what Traefik applied ----------------------------------------------------------
    async def applied_servers(self, environment: str, service: str) -> list[str] | None:
        """Server URLs Traefik routes `environment`/`service` to; None when it has no router.

        Raises OSError when Traefik's API does not answer.
        """
        name = route_name(environment, service)
        router = await http_get(f"{self.api_url}/api/http/routers/{name}@file")
        if router.status == 404:
            return None
        if router.status != 200:
            raise RouteNotApplied(f"Traefik API answered {router.status} for router {name}")
        info = router.json()
        if info.get("status") != "enabled" or environment not in info.get("entryPoints", []):
            return None
        svc = await http_get(f"{self.api_url}/api/http/services/{name}@file")
        if svc.status != 200:
            return None
        servers = svc.json().get("loadBalancer", {}).get("servers", [])
        return [str(server.get("url", "")) for server in servers]

    async def confirm(self, route: Route) -> None:
        """Wait until Traefik routes exactly to `route.server_url`."""
        await self._wait(
            route.environment,
            route.service,
            lambda servers: servers == [route.server_url],
            f"route {route.name} -> {route.server_url}",
        )

    async def confirm_removed(self, environment: str, service: str) -> None:
        """Wait until Traefik has no router for environment/service."""
        await self._wait(
            environment,
            service,
            lambda servers: servers is None,
            f"removal of route {route_name(environment, service)}",
        )

    async def _wait(
        self,
        environment: str,
        service: str,
        done: Callable[[list[str] | None], bool],
        what: str,
    ) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        last: object = "no answer yet"
        while True:
            try:
                servers = await self.applied_servers(environment, service)
                if done(servers):
                    return
                last = f"servers {servers}" if servers is not None else "no router"
            except (OSError, ValueError, RouteNotApplied) as err:
                last = err
            if time.monotonic() > deadline:
                raise RouteNotApplied(
                    f"Traefik at {self.api_url} did not apply the {what} within "
                    f"{self.confirm_timeout:g}s (last seen: {last}); check that Traefik runs "
                    f"(python -m local.platform status) and watches {self.dynamic_dir}"
                )
            _heartbeat(f"waiting for Traefik: {what}")
            await asyncio.sleep(self.poll_interval)
