"""Traefik routes of the local deploy target: one file-provider file per environment+service.

A route sends `<entry point of env>/<service>/...` to a weighted Traefik service
`<env>-<service>` with the `/<service>` prefix stripped (so the service sees
`/health`). The weighted service has a leaf service per track, each a load balancer
with one server URL: `<env>-<service>-stable` and, during a canary,
`<env>-<service>-canary`, weighted 100-w and w. Separate leaves keep the two tracks'
Traefik metrics apart (`traefik_service_requests_total{service="<leaf>@file"}`);
the weighted parent has no series of its own.

Files are written atomically (temp file + rename: Traefik never reads half a file)
and a change only counts once Traefik's API shows it (weights and server URLs), since
the file provider applies it a little later. The files are the record of what is
routed: nothing is kept in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from activities.runner import heartbeat

ROUTE_FILE_PREFIX = "route-"
# A route's temp file older than this was left by a writer killed before its rename.
STALE_TEMP_SECONDS = 60.0
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


# --------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------

STABLE = "stable"
CANARY = "canary"


@dataclass
class Route:
    """Requests to `<environment's entry point>/<service>` go to `server_url` (stable) and,
    during a canary, `canary_weight` percent of them to `canary_url` instead."""

    environment: str
    service: str
    server_url: str  # the stable track's server, e.g. http://127.0.0.1:41234
    canary_url: str = ""  # the canary track's server; empty when there is no canary
    canary_weight: int = 0  # percent of requests to the canary, 0-100

    def __post_init__(self) -> None:
        if not self.canary_url and self.canary_weight:
            raise ValueError(
                f"route {self.name} has canary weight {self.canary_weight} but no canary"
            )
        if isinstance(self.canary_weight, bool) or not 0 <= self.canary_weight <= 100:
            raise ValueError(
                f"route {self.name}: canary weight {self.canary_weight!r} is not 0-100"
            )

    @property
    def name(self) -> str:
        return route_name(self.environment, self.service)

    @property
    def stable_weight(self) -> int:
        return 100 - self.canary_weight

    def leaves(self) -> dict[str, tuple[str, int]]:
        """Leaf service name -> (server URL, weight), stable first."""
        leaves = {
            leaf_name(self.environment, self.service, STABLE): (self.server_url, self.stable_weight)
        }
        if self.canary_url:
            leaves[leaf_name(self.environment, self.service, CANARY)] = (
                self.canary_url,
                self.canary_weight,
            )
        return leaves

    def without_canary(self) -> Route:
        return Route(self.environment, self.service, self.server_url)

    def describe(self) -> str:
        text = f"route {self.name} -> {self.server_url} ({self.stable_weight}%)"
        if self.canary_url:
            text += f" + canary {self.canary_url} ({self.canary_weight}%)"
        return text


def route_name(environment: str, service: str) -> str:
    """Traefik name of the router, weighted service and file of one environment+service."""
    return f"{environment}-{service}"


def leaf_name(environment: str, service: str, track: str) -> str:
    """Traefik name of the leaf service of one track ("stable" or "canary").

    Prometheus sees it as `service="<leaf name>@file"`.
    """
    return f"{route_name(environment, service)}-{track}"


class RouteNotApplied(Exception):
    """Traefik did not show the expected route in time (retryable: it may be reloading)."""


def _load_balancer_url(service: Any) -> str | None:
    try:
        return str(service["loadBalancer"]["servers"][0]["url"])
    except (KeyError, IndexError, TypeError):
        return None


def _route_from_services(
    environment: str, service: str, services: Any, suffix: str = ""
) -> Route | None:
    """The route a services section describes (the file's, or Traefik's raw data when
    `suffix` is "@file"); None when it is not one this module wrote."""
    if not isinstance(services, dict):
        return None
    parent = services.get(route_name(environment, service) + suffix)
    if not isinstance(parent, dict):
        return None
    if "loadBalancer" in parent:
        # the layout before canaries: one load balancer, no weighted service
        url = _load_balancer_url(parent)
        return Route(environment, service, url) if url else None
    weighted = parent.get("weighted")
    entries = weighted.get("services") if isinstance(weighted, dict) else None
    if not isinstance(entries, list):
        return None
    urls: dict[str, str] = {}
    weights: dict[str, int] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            return None
        name = str(entry.get("name", "")).removesuffix("@file")
        for track in (STABLE, CANARY):
            if name == leaf_name(environment, service, track):
                url = _load_balancer_url(services.get(name + suffix))
                weight = entry.get("weight", 1)  # Traefik's default weight is 1
                if url is None or not isinstance(weight, int):
                    return None
                urls[track] = url
                weights[track] = weight
    if STABLE not in urls or len(entries) != len(urls):
        return None
    try:
        route = Route(
            environment,
            service,
            urls[STABLE],
            canary_url=urls.get(CANARY, ""),
            canary_weight=weights.get(CANARY, 0),
        )
    except ValueError:
        return None
    # weights that do not add up to 100 are not a split this module wrote
    return route if weights[STABLE] == route.stable_weight else None


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
        try:
            services = config["http"]["services"]
        except (KeyError, TypeError):
            return None
        return _route_from_services(environment, service, services)

    def write(self, route: Route) -> None:
        """Replace the route file atomically (Traefik skips the non-.yml temp file)."""
        name = route.name
        strip = f"{name}-strip"
        leaves = route.leaves()
        services: dict[str, object] = {
            name: {
                "weighted": {
                    "services": [
                        {"name": leaf, "weight": weight} for leaf, (_, weight) in leaves.items()
                    ]
                }
            }
        }
        for leaf, (url, _) in leaves.items():
            services[leaf] = {"loadBalancer": {"servers": [{"url": url}]}}
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
                "services": services,
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
        self._sweep_temp_files(name)

    def _sweep_temp_files(self, name: str) -> None:
        """Remove this route's temp files that a killed writer left (older than a writer
        ever takes: a live one, of a worker writing the same route now, is kept)."""
        cutoff = time.time() - STALE_TEMP_SECONDS
        for stale in self.dynamic_dir.glob(f".{name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if stale.stat().st_mtime < cutoff:
                    stale.unlink()

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
    async def applied(self, environment: str, service: str) -> Route | None:
        """The route Traefik serves for `environment`/`service`: its leaves' server URLs and
        weights; None when it has no enabled router for it on the environment's entry point.

        Read from one `/api/rawdata` answer, a consistent snapshot of Traefik's
        configuration. Raises OSError when Traefik's API does not answer.
        """
        answer = await http_get(f"{self.api_url}/api/rawdata")
        if answer.status != 200:
            raise RouteNotApplied(f"Traefik API answered {answer.status} for /api/rawdata")
        data = answer.json()
        name = route_name(environment, service)
        router = (data.get("routers") or {}).get(f"{name}@file")
        if not isinstance(router, dict):
            return None
        if router.get("status") != "enabled" or environment not in router.get("entryPoints", []):
            return None
        if str(router.get("service", "")).removesuffix("@file") != name:
            return None
        return _route_from_services(environment, service, data.get("services"), "@file")

    async def confirm(self, route: Route) -> None:
        """Wait until Traefik routes exactly as `route` says (servers and weights)."""
        await self._wait(
            route.environment,
            route.service,
            lambda applied: applied == route,
            route.describe(),
        )

    async def confirm_removed(self, environment: str, service: str) -> None:
        """Wait until Traefik has no router for environment/service."""
        await self._wait(
            environment,
            service,
            lambda applied: applied is None,
            f"removal of route {route_name(environment, service)}",
        )

    async def _wait(
        self,
        environment: str,
        service: str,
        done: Callable[[Route | None], bool],
        what: str,
    ) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        last: object = "no answer yet"
        while True:
            try:
                applied = await self.applied(environment, service)
                if done(applied):
                    return
                last = applied.describe() if applied is not None else "no router"
            except (OSError, ValueError, RouteNotApplied) as err:
                last = err
            if time.monotonic() > deadline:
                raise RouteNotApplied(
                    f"Traefik at {self.api_url} did not apply the {what} within "
                    f"{self.confirm_timeout:g}s (last seen: {last}); check that Traefik runs "
                    f"(python -m local.platform status) and watches {self.dynamic_dir}"
                )
            heartbeat(f"waiting for Traefik: {what}")
            await asyncio.sleep(self.poll_interval)
