"""The local deploy target: each service of each environment runs as podman containers
on their own loopback ports, reached through the environment's Traefik entry point.

Reconciling and idempotent: what runs is read from the platform every time, never
kept in memory. Container labels say which environment, service, version, image and
track (stable or canary; unlabelled means stable) a container is; the Traefik route
file says which container serves each track and with what weight, and is what
decides who is stable and who is canary.

A deploy that finds the wanted image already serving as stable changes nothing;
otherwise it starts the new container next to the old one, waits for `/ready`,
switches the stable track of the route, confirms that Traefik applied it, and only
then removes the old container. A new container that never gets ready is removed
and the old one keeps serving. A retry after an attempt that died between starting
its container and switching to it takes that container over (same name, same
labels, still running) instead of starting it a second time.

A canary (progressive delivery, as Argo Rollouts and Flagger do it) runs beside
stable as a second container and a second leaf of the route's weighted service:
`deploy_canary` starts it at weight 0, `set_canary_weight` shifts a share of
requests to it, `promote_canary` makes its image the stable one (a fresh stable
container of that image takes 100%, then the canary and the old stable go), and
`rollback_canary` takes all traffic away from it in its first route write and then
removes it. Each running container is also a Prometheus scrape target of its track
(activities/scrape_targets.py), so its own metrics can be compared too.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from dataclasses import dataclass

from temporalio.exceptions import ApplicationError

from activities.podman import Container, Podman
from activities.runner import heartbeat
from activities.scrape_targets import ScrapeTargets
from activities.traefik import CANARY, STABLE, Route, RouteNotApplied, TraefikRoutes, http_get
from brewline.model import (
    CanaryDeployInput,
    CanaryEndInput,
    DeployInput,
    Deployment,
    DeployResult,
    DescribeInput,
    DescribeResult,
    RestoreInput,
    RestoreResult,
    SetWeightInput,
    SmokeTestInput,
    SmokeTestResult,
    TrafficState,
)
from brewline.platform import LOOPBACK, PlatformSettings

LABEL_PREFIX = "brewline."
LABEL_MANAGED = "brewline.managed"
LABEL_ENVIRONMENT = "brewline.environment"
LABEL_SERVICE = "brewline.service"
LABEL_VERSION = "brewline.version"
LABEL_IMAGE = "brewline.image"
LABEL_PORT = "brewline.port"
LABEL_RELEASE = "brewline.release"
LABEL_TRACK = "brewline.track"  # "stable" or "canary"; containers without it are stable
LABEL_ENV = "brewline.env"  # the release's container environment, JSON; absent when empty

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_IMAGE = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")


class ServiceNotReady(Exception):
    """The new container did not answer /ready in time (retryable: a retry starts afresh)."""


class SmokeTestUnavailable(Exception):
    """The smoke test got no answer or a 5xx (retryable: the service may still be warming up)."""


@dataclass
class _Current:
    """What the platform says runs for one environment+service."""

    containers: list[Container]
    route: Route | None
    stable: Container | None  # the container the route's stable track points at, if it exists
    canary: Container | None  # the container the route's canary track points at, if it exists

    @property
    def canary_weight(self) -> int:
        return self.route.canary_weight if self.route is not None else 0


def _invalid(message: str, kind: str = "InvalidInput") -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def _digest(image: str) -> str:
    return image.rpartition("@")[2]


def _container_env(labels: dict[str, str]) -> dict[str, str]:
    """The release's container environment a container was started with (its label)."""
    raw = labels.get(LABEL_ENV, "")
    if not raw:
        return {}
    try:
        env = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _track(container: Container) -> str:
    """The track a container was started for; containers from before canaries are stable."""
    return CANARY if container.labels.get(LABEL_TRACK) == CANARY else STABLE


def _is(container: Container, other: Container | None) -> bool:
    return other is not None and container.id == other.id


def _runs(container: Container | None, image: str, env: dict[str, str]) -> bool:
    """`container` is up and runs `image` (by digest) with the release's `env`."""
    return (
        container is not None
        and container.running
        and _digest(container.labels.get(LABEL_IMAGE, "")) == _digest(image)
        and _container_env(container.labels) == env
    )


class LocalTarget:
    """Deploy target on this machine: podman containers behind Traefik (see module doc)."""

    def __init__(
        self,
        settings: PlatformSettings,
        *,
        ready_timeout: float = 60.0,
        stop_timeout: int = 5,
        confirm_timeout: float = 20.0,
        http_timeout: float = 5.0,
        scrape_targets: ScrapeTargets | None = None,
    ) -> None:
        self.settings = settings
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.confirm_timeout = confirm_timeout
        self.http_timeout = http_timeout
        self.scrape_targets = scrape_targets or ScrapeTargets(settings)

    # ---- plumbing ----------------------------------------------------------------------
    def _podman(self, release_id: str, environment: str, service: str) -> Podman:
        folder = self.settings.release_dir(release_id or "no-release") / "deploy"
        return Podman(self.settings, log_path=folder / f"{environment}-{service}.log")

    def _routes(self) -> TraefikRoutes:
        return TraefikRoutes(
            self.settings.traefik_dynamic_dir,
            self.settings.traefik_api_url,
            confirm_timeout=self.confirm_timeout,
        )

    def endpoint(self, environment: str, service: str) -> str:
        return f"{self.settings.entrypoint_url(environment)}/{service}"

    def _check(self, environment: str, service: str) -> None:
        if environment not in self.settings.entrypoints:
            known = ", ".join(sorted(self.settings.entrypoints)) or "none"
            raise _invalid(
                f"environment {environment!r} has no Traefik entry point on the local "
                f"platform (known: {known}); add it to `entrypoints` in "
                f"{self.settings.settings_file} and restart the platform",
                "InvalidConfig",
            )
        if not _NAME.fullmatch(service):
            raise _invalid(
                f"service name {service!r} is not usable in a route or container name; "
                "use lower-case letters, digits and dashes"
            )
        if service.endswith((f"-{STABLE}", f"-{CANARY}")):
            raise _invalid(
                f"service name {service!r} ends like a track of another service's route "
                f"(<service>-{STABLE}, <service>-{CANARY}) and would clash with it in "
                "Traefik; rename the service"
            )

    @staticmethod
    def _check_image(image: str) -> None:
        if not _IMAGE.fullmatch(image):
            raise _invalid(
                f"image {image!r} is not pinned by digest; deploy needs "
                "repository@sha256:<64 hex digits>, as the build stage returns it"
            )

    @staticmethod
    def _selector(environment: str, service: str) -> dict[str, str]:
        return {
            LABEL_MANAGED: "true",
            LABEL_ENVIRONMENT: environment,
            LABEL_SERVICE: service,
        }

    async def _current(self, podman: Podman, environment: str, service: str) -> _Current:
        containers = await podman.ps(self._selector(environment, service))
        route = self._routes().read(environment, service)

        def serving(url: str) -> Container | None:
            return next((c for c in containers if self._server_url(c) == url), None)

        stable = serving(route.server_url) if route is not None else None
        canary = serving(route.canary_url) if route is not None and route.canary_url else None
        return _Current(containers, route, stable, canary)

    @staticmethod
    def _port(container: Container) -> str:
        return container.labels.get(LABEL_PORT, "")

    @classmethod
    def _server_url(cls, container: Container) -> str:
        return f"http://{LOOPBACK}:{cls._port(container)}"

    def _deployment(self, container: Container) -> Deployment:
        environment = container.labels.get(LABEL_ENVIRONMENT, "")
        service = container.labels.get(LABEL_SERVICE, "")
        return Deployment(
            environment=environment,
            service=service,
            version=container.labels.get(LABEL_VERSION, ""),
            image=container.labels.get(LABEL_IMAGE, container.image),
            endpoint=self.endpoint(environment, service),
            env=_container_env(container.labels),
        )

    def _traffic(self, environment: str, service: str, current: _Current) -> TrafficState:
        stable, canary = current.stable, current.canary
        return TrafficState(
            environment=environment,
            service=service,
            stable=self._deployment(stable) if stable is not None and stable.running else None,
            canary=self._deployment(canary) if canary is not None and canary.running else None,
            canary_weight=current.canary_weight,
        )

    def _scrape(
        self, environment: str, service: str, track: str, container_labels: dict[str, str]
    ) -> None:
        """Have Prometheus scrape the container serving `track` (its own /metrics)."""
        labels = {"version": container_labels.get(LABEL_VERSION, "") or "unknown"}
        release = container_labels.get(LABEL_RELEASE, "")
        if release:
            labels["release"] = release
        address = f"{LOOPBACK}:{container_labels.get(LABEL_PORT, '')}"
        self.scrape_targets.write(environment, service, track, address, labels)

    def _unscrape(self, environment: str, service: str, track: str) -> None:
        self.scrape_targets.remove(environment, service, track)

    # ---- describe ----------------------------------------------------------------------
    async def describe(self, input: DescribeInput) -> DescribeResult:
        """What serves `service` in `environment` now: the stable track's running container."""
        self._check(input.environment, input.service)
        podman = self._podman(input.release_id, input.environment, input.service)
        current = await self._current(podman, input.environment, input.service)
        running = None
        if current.stable is not None and current.stable.running:
            running = self._deployment(current.stable)
        return DescribeResult(input.environment, input.service, running)

    async def describe_traffic(self, input: DescribeInput) -> TrafficState:
        """Stable, canary (running containers only) and the canary's share of requests."""
        self._check(input.environment, input.service)
        podman = self._podman(input.release_id, input.environment, input.service)
        current = await self._current(podman, input.environment, input.service)
        return self._traffic(input.environment, input.service, current)

    # ---- starting a container and switching the route ----------------------------------
    @staticmethod
    def _container_name(environment: str, service: str, image: str, track: str) -> str:
        digest = _digest(image).removeprefix("sha256:")[:12]
        infix = "canary-" if track == CANARY else ""
        return f"brewline-{environment}-{service}-{infix}{digest}"

    async def _start(
        self,
        podman: Podman,
        *,
        environment: str,
        service: str,
        version: str,
        image: str,
        release_id: str,
        track: str,
        fallback: str,
        env: dict[str, str],
    ) -> tuple[str, dict[str, str]]:
        """Start `image` as the container of `track`, wait until it is ready; return its
        name and labels. `fallback` says what keeps serving when it never gets ready."""
        await podman.pull(image)
        name = self._container_name(environment, service, image, track)
        wanted = {
            LABEL_MANAGED: "true",
            LABEL_ENVIRONMENT: environment,
            LABEL_SERVICE: service,
            LABEL_VERSION: version,
            LABEL_IMAGE: image,
            LABEL_RELEASE: release_id,
            LABEL_TRACK: track,
        }
        if env:
            wanted[LABEL_ENV] = json.dumps(env, sort_keys=True)
        leftover = await self._leftover(podman, name, environment, service, wanted)
        if leftover is not None:
            # An attempt of this very step started it and was interrupted (its worker
            # died) before the switch: it is what we would start, so it is used, not
            # started a second time. Only its readiness is still to be seen.
            labels = {**wanted, LABEL_PORT: leftover.labels[LABEL_PORT]}
            heartbeat(f"taking over {name}, started by an interrupted attempt")
        else:
            # a container of this name that is not running, or not this step's, is a
            # leftover of something else: start afresh rather than guess its state
            await podman.rm(name, grace=self.stop_timeout)
            port = _free_port()
            labels = {**wanted, LABEL_PORT: str(port)}
            # LISTEN_ADDR last: the platform owns the port (the release cannot set it)
            run_env = {**env, "LISTEN_ADDR": f"{LOOPBACK}:{port}"}
            await podman.run(image, name=name, env=run_env, labels=labels)
        port = int(labels[LABEL_PORT])
        try:
            await self._wait_ready(podman, name, f"http://{LOOPBACK}:{port}")
        except asyncio.CancelledError:
            await podman.rm(name, grace=self.stop_timeout)
            raise
        except ServiceNotReady as err:
            lines = await podman.logs(name, tail=15)
            await podman.rm(name, grace=self.stop_timeout)
            raise ServiceNotReady(
                f"{service} {version} in {environment}: container {name} ({image}) {err}; "
                f"removed it, {fallback}. Last log lines:\n"
                + ("\n".join(lines) or "(none)")
                + f"\npodman log: {podman.log_path}"
            ) from None
        return name, labels

    async def _leftover(
        self, podman: Podman, name: str, environment: str, service: str, wanted: dict[str, str]
    ) -> Container | None:
        """The running container `name` if its brewline labels are exactly `wanted` plus a
        port (podman also lists the image's own labels)."""
        for container in await podman.ps(self._selector(environment, service)):
            if container.name != name or not container.running:
                continue
            labels = {k: v for k, v in container.labels.items() if k.startswith(LABEL_PREFIX)}
            port = labels.pop(LABEL_PORT, "")
            if port.isdigit() and labels == wanted:
                return container
        return None

    async def _switch(
        self, podman: Podman, new_route: Route, old_route: Route | None, started: str | None
    ) -> None:
        """Write `new_route` and wait until Traefik applies it; if it does not (or the
        activity is cancelled), put `old_route` back and remove the `started` container."""
        routes = self._routes()
        routes.write(new_route)
        try:
            await routes.confirm(new_route)
        except (RouteNotApplied, asyncio.CancelledError):
            if old_route is not None:
                routes.write(old_route)
            else:
                routes.remove(new_route.environment, new_route.service)
            if started is not None:
                await podman.rm(started, grace=self.stop_timeout)
            raise

    async def _remove(self, podman: Podman, containers: list[Container]) -> None:
        for container in containers:
            await podman.rm(container.id, grace=self.stop_timeout)

    # ---- deploy ------------------------------------------------------------------------
    async def deploy(self, input: DeployInput) -> DeployResult:
        """Make `service` in `environment` run `image` as stable (see the module doc).

        A canary, if one runs, keeps its container, route track and weight.
        """
        env, service = input.environment, input.service
        self._check(env, service)
        self._check_image(input.image)
        podman = self._podman(input.release_id, env, service)
        current = await self._current(podman, env, service)
        routed = current.stable
        previous = self._deployment(routed) if routed is not None else None

        if (
            routed is not None
            and current.route is not None
            and _runs(routed, input.image, input.env)
        ):
            # The route file says so; make sure Traefik does too before claiming it.
            await self._routes().confirm(current.route)
            self._scrape(env, service, STABLE, routed.labels)
            serving = self._deployment(routed)
            return DeployResult(deployed=serving, previous=serving, changed=False)

        name, labels = await self._start(
            podman,
            environment=env,
            service=service,
            version=input.version,
            image=input.image,
            release_id=input.release_id,
            track=STABLE,
            fallback="the previous deployment keeps serving",
            env=input.env,
        )
        server_url = f"http://{LOOPBACK}:{labels[LABEL_PORT]}"
        if current.route is not None and current.canary is not None:
            new_route = Route(
                env, service, server_url, current.route.canary_url, current.route.canary_weight
            )
        else:
            new_route = Route(env, service, server_url)
        await self._switch(podman, new_route, current.route, name)
        self._scrape(env, service, STABLE, labels)
        if current.canary is None:
            self._unscrape(env, service, CANARY)
        await self._remove(
            podman,
            [c for c in current.containers if c.name != name and not _is(c, current.canary)],
        )
        deployed = Deployment(
            env, service, input.version, input.image, self.endpoint(env, service), input.env
        )
        return DeployResult(deployed=deployed, previous=previous, changed=True)

    async def _wait_ready(self, podman: Podman, name: str, server_url: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        next_state_check = 0.0
        last = "no answer yet"
        while True:
            try:
                answer = await http_get(server_url + "/ready", seconds=2.0)
                if answer.status == 200:
                    return
                last = f"/ready answered {answer.status}: {answer.body[:200]!r}"
            except OSError as err:
                last = f"/ready: {err}"
            now = time.monotonic()
            if now >= next_state_check:
                # a container that exited will never get ready: fail now, not at the deadline
                state = await podman.inspect(name)
                if state is None or not state.running:
                    how = f"exited with code {state.exit_code}" if state else "disappeared"
                    raise ServiceNotReady(f"{how} before answering /ready ({last})")
                next_state_check = now + 1.0
            if now > deadline:
                raise ServiceNotReady(
                    f"was not ready within {self.ready_timeout:g}s at {server_url} ({last})"
                )
            heartbeat(f"waiting for {name} to be ready: {last}")
            await asyncio.sleep(0.1)

    # ---- canary ------------------------------------------------------------------------
    async def deploy_canary(self, input: CanaryDeployInput) -> TrafficState:
        """Start `image` beside stable as the canary, ready and routed at weight 0.

        Idempotent: a running canary of this image is left as it is (weight included);
        a canary of another image is replaced by this one at weight 0.
        """
        env, service = input.environment, input.service
        self._check(env, service)
        self._check_image(input.image)
        podman = self._podman(input.release_id, env, service)
        current = await self._current(podman, env, service)
        route, stable, canary = current.route, current.stable, current.canary
        if route is None or stable is None or not stable.running:
            raise _invalid(
                f"{service} in {env} has no running stable deployment to start a canary "
                f"beside; deploy a first version with deploy_service, then the canary"
            )
        if canary is not None and _runs(canary, input.image, input.env):
            await self._routes().confirm(route)
            self._scrape(env, service, CANARY, canary.labels)
            return self._traffic(env, service, current)

        name, labels = await self._start(
            podman,
            environment=env,
            service=service,
            version=input.version,
            image=input.image,
            release_id=input.release_id,
            track=CANARY,
            fallback="stable keeps serving all requests",
            env=input.env,
        )
        canary_url = f"http://{LOOPBACK}:{labels[LABEL_PORT]}"
        await self._switch(
            podman, Route(env, service, route.server_url, canary_url, 0), route, name
        )
        self._scrape(env, service, CANARY, labels)
        # an earlier canary (of another image) and canaries an interrupted run left behind
        await self._remove(
            podman,
            [
                c
                for c in current.containers
                if c.name != name and not _is(c, stable) and (_is(c, canary) or _track(c) == CANARY)
            ],
        )
        return self._traffic(env, service, await self._current(podman, env, service))

    async def set_canary_weight(self, input: SetWeightInput) -> TrafficState:
        """Send `weight` percent of requests to the canary and the rest to stable."""
        weight = input.weight
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise _invalid(
                f"canary weight {weight!r} for {input.service} in {input.environment} is not "
                "a whole percent from 0 to 100"
            )
        env, service = input.environment, input.service
        self._check(env, service)
        podman = self._podman(input.release_id, env, service)
        current = await self._current(podman, env, service)
        route, canary = current.route, current.canary
        if route is None or canary is None:
            raise _invalid(
                f"{service} in {env} has no canary to send {weight}% of requests to; "
                "start one with deploy_canary first"
            )
        if weight > 0 and not canary.running:
            raise _invalid(
                f"the canary of {service} in {env} (container {canary.name}) is "
                f"{canary.state or 'not running'}; it cannot take {weight}% of requests: "
                "roll it back (rollback_canary)"
            )
        new_route = Route(env, service, route.server_url, route.canary_url, weight)
        if new_route != route:
            self._routes().write(new_route)
        await self._routes().confirm(new_route)
        current.route = new_route
        return self._traffic(env, service, current)

    async def promote_canary(self, input: CanaryEndInput) -> TrafficState:
        """Make the canary's image stable at 100% and remove the canary and the old stable.

        A stable container of the canary's image takes over (so labels and container
        names say "stable" again), unless stable already runs that image. Idempotent:
        with no canary, what an interrupted promotion left behind is removed and the
        state returned.
        """
        env, service = input.environment, input.service
        self._check(env, service)
        podman = self._podman(input.release_id, env, service)
        current = await self._current(podman, env, service)
        route, stable, canary = current.route, current.stable, current.canary
        if route is None or canary is None:
            # Not serving, so leftovers: a canary, or an old stable a cut-short promotion
            # did not remove (without a route, only canaries: nothing says what is stable).
            await self._remove(
                podman,
                [
                    c
                    for c in current.containers
                    if not _is(c, stable) and (route is not None or _track(c) == CANARY)
                ],
            )
            self._unscrape(env, service, CANARY)
            if stable is not None and stable.running:
                self._scrape(env, service, STABLE, stable.labels)
            return self._traffic(env, service, current)
        if not canary.running:
            raise _invalid(
                f"the canary of {service} in {env} (container {canary.name}) is "
                f"{canary.state or 'not running'} and cannot become stable; roll it back "
                "(rollback_canary)"
            )

        image = canary.labels.get(LABEL_IMAGE, canary.image)
        started: str | None = None
        if stable is not None and _runs(stable, image, _container_env(canary.labels)):
            new_stable_labels = stable.labels  # stable already runs the canary's image
            keep = stable.name
        else:
            started, new_stable_labels = await self._start(
                podman,
                environment=env,
                service=service,
                version=canary.labels.get(LABEL_VERSION, ""),
                image=image,
                release_id=input.release_id,
                track=STABLE,
                fallback="the canary and stable keep serving at their weights",
                env=_container_env(canary.labels),
            )
            keep = started
        stable_url = f"http://{LOOPBACK}:{new_stable_labels.get(LABEL_PORT, '')}"
        await self._switch(podman, Route(env, service, stable_url), route, started)
        self._scrape(env, service, STABLE, new_stable_labels)
        self._unscrape(env, service, CANARY)
        await self._remove(podman, [c for c in current.containers if c.name != keep])
        return self._traffic(env, service, await self._current(podman, env, service))

    async def rollback_canary(self, input: CanaryEndInput) -> TrafficState:
        """Take every request away from the canary at once, then remove it; stable is
        untouched. Idempotent: with no canary, canary leftovers go and the state returns."""
        env, service = input.environment, input.service
        self._check(env, service)
        podman = self._podman(input.release_id, env, service)
        current = await self._current(podman, env, service)
        route, stable, canary = current.route, current.stable, current.canary
        if route is not None and route.canary_url:
            # The first write already gives the canary 0%: no step down in between.
            stable_only = route.without_canary()
            self._routes().write(stable_only)
            await self._routes().confirm(stable_only)
            current.route = stable_only
        self._unscrape(env, service, CANARY)
        leaving = [
            c
            for c in current.containers
            if not _is(c, stable) and (_is(c, canary) or _track(c) == CANARY)
        ]
        await self._remove(podman, leaving)
        current.containers = [c for c in current.containers if c not in leaving]
        current.canary = None
        return self._traffic(env, service, current)

    # ---- smoke test --------------------------------------------------------------------
    async def smoke_test(self, input: SmokeTestInput) -> SmokeTestResult:
        """GET `<entry point>/<service><smoke_path>` through Traefik; expect the version."""
        self._check(input.environment, input.service)
        path = input.smoke_path if input.smoke_path.startswith("/") else "/" + input.smoke_path
        url = self.endpoint(input.environment, input.service) + path
        try:
            answer = await http_get(url, seconds=self.http_timeout)
        except OSError as err:
            raise SmokeTestUnavailable(
                f"smoke test GET {url} got no answer ({err}); is Traefik running "
                "(python -m local.platform status)?"
            ) from None
        body = answer.body[:300].decode(errors="replace")
        if answer.status >= 500:
            raise SmokeTestUnavailable(f"smoke test GET {url} answered {answer.status}: {body}")
        if answer.status != 200:
            raise _invalid(
                f"smoke test GET {url} answered {answer.status}, expected 200: {body}; "
                f"the route for {input.service} in {input.environment} is missing or wrong",
                "SmokeTestFailed",
            )
        try:
            seen = answer.json().get("version", "")
        except (ValueError, AttributeError):
            raise _invalid(
                f"smoke test GET {url} answered 200 without a JSON object with a version: {body}",
                "SmokeTestFailed",
            ) from None
        if seen != input.version:
            raise _invalid(
                f"smoke test GET {url} answered version {seen!r}, expected {input.version!r}: "
                f"Traefik routes {input.service} in {input.environment} to another deployment",
                "SmokeTestFailed",
            )
        return SmokeTestResult(
            url=url, status_code=answer.status, version_seen=seen, latency_ms=answer.latency_ms
        )

    # ---- restore -----------------------------------------------------------------------
    async def restore(self, input: RestoreInput) -> RestoreResult:
        """Put `previous` back as stable, or remove the route and containers when it is None."""
        env, service = input.environment, input.service
        self._check(env, service)
        previous = input.previous
        if previous is not None:
            if (previous.environment, previous.service) != (env, service):
                raise _invalid(
                    f"restore of {service} in {env} was given a deployment of "
                    f"{previous.service} in {previous.environment}"
                )
            result = await self.deploy(
                DeployInput(
                    release_id=input.release_id,
                    environment=env,
                    target=input.target,
                    service=service,
                    version=previous.version,
                    image=previous.image,
                    env=previous.env,
                )
            )
            return RestoreResult(env, service, running=result.deployed)

        routes = self._routes()
        routes.remove(env, service)
        await routes.confirm_removed(env, service)
        for track in (STABLE, CANARY):
            self._unscrape(env, service, track)
        podman = self._podman(input.release_id, env, service)
        await self._remove(podman, await podman.ps(self._selector(env, service)))
        return RestoreResult(env, service, running=None)
