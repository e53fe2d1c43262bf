"""The local deploy target: each service of each environment is one podman container
on its own loopback port, reached through the environment's Traefik entry point.

Reconciling and idempotent: what runs is read from the platform every time, never
kept in memory. Container labels say which environment, service, version and image a
container is; the Traefik route file says which container serves. A deploy that finds
the wanted image already serving changes nothing; otherwise it starts the new
container next to the old one, waits for `/ready`, switches the route, confirms that
Traefik applied it, and only then removes the old container. A new container that
never gets ready is removed and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from dataclasses import dataclass

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.podman import Container, Podman
from activities.traefik import Route, RouteNotApplied, TraefikRoutes, http_get
from brewline.model import (
    DeployInput,
    Deployment,
    DeployResult,
    DescribeInput,
    DescribeResult,
    RestoreInput,
    RestoreResult,
    SmokeTestInput,
    SmokeTestResult,
)
from brewline.platform import LOOPBACK, PlatformSettings

LABEL_MANAGED = "brewline.managed"
LABEL_ENVIRONMENT = "brewline.environment"
LABEL_SERVICE = "brewline.service"
LABEL_VERSION = "brewline.version"
LABEL_IMAGE = "brewline.image"
LABEL_PORT = "brewline.port"
LABEL_RELEASE = "brewline.release"

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
    routed: Container | None  # the container the route points at, if it still exists


def _invalid(message: str, kind: str = "InvalidInput") -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def _digest(image: str) -> str:
    return image.rpartition("@")[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _heartbeat(details: str) -> None:
    if activity.in_activity():
        activity.heartbeat(details)


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
    ) -> None:
        self.settings = settings
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.confirm_timeout = confirm_timeout
        self.http_timeout = http_timeout

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
        if not _NAME.match(service):
            raise _invalid(
                f"service name {service!r} is not usable in a route or container name; "
                "use lower-case letters, digits and dashes"
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
        routed = None
        if route is not None:
            routed = next((c for c in containers if self._server_url(c) == route.server_url), None)
        return _Current(containers, route, routed)

    @staticmethod
    def _server_url(container: Container) -> str:
        return f"http://{LOOPBACK}:{container.labels.get(LABEL_PORT, '')}"

    def _deployment(self, container: Container) -> Deployment:
        environment = container.labels.get(LABEL_ENVIRONMENT, "")
        service = container.labels.get(LABEL_SERVICE, "")
        return Deployment(
            environment=environment,
            service=service,
            version=container.labels.get(LABEL_VERSION, ""),
            image=container.labels.get(LABEL_IMAGE, container.image),
            endpoint=self.endpoint(environment, service),
        )

    # ---- describe ----------------------------------------------------------------------
    async def describe(self, input: DescribeInput) -> DescribeResult:
        """What serves `service` in `environment` now: the routed, running container."""
        self._check(input.environment, input.service)
        podman = self._podman(input.release_id, input.environment, input.service)
        current = await self._current(podman, input.environment, input.service)
        running = None
        if current.routed is not None and current.routed.running:
            running = self._deployment(current.routed)
        return DescribeResult(input.environment, input.service, running)

    # ---- deploy ------------------------------------------------------------------------
    async def deploy(self, input: DeployInput) -> DeployResult:
        """Make `service` in `environment` run `image` (see the module doc for the steps)."""
        env, service = input.environment, input.service
        self._check(env, service)
        if not _IMAGE.match(input.image):
            raise _invalid(
                f"image {input.image!r} is not pinned by digest; deploy needs "
                "repository@sha256:<64 hex digits>, as the build stage returns it"
            )
        podman = self._podman(input.release_id, env, service)
        routes = self._routes()
        current = await self._current(podman, env, service)
        routed = current.routed
        previous = self._deployment(routed) if routed is not None else None

        if (
            routed is not None
            and routed.running
            and current.route is not None
            and _digest(routed.labels.get(LABEL_IMAGE, "")) == _digest(input.image)
        ):
            # The route file says so; make sure Traefik does too before claiming it.
            await routes.confirm(current.route)
            serving = self._deployment(routed)
            return DeployResult(deployed=serving, previous=serving, changed=False)

        await podman.pull(input.image)
        name = f"brewline-{env}-{service}-{_digest(input.image).removeprefix('sha256:')[:12]}"
        # a container of this very image that is not serving is a leftover of an
        # interrupted deploy: start afresh rather than guess its state
        await podman.rm(name, grace=self.stop_timeout)
        port = _free_port()
        server_url = f"http://{LOOPBACK}:{port}"
        await podman.run(
            input.image,
            name=name,
            env={"LISTEN_ADDR": f"{LOOPBACK}:{port}"},
            labels={
                LABEL_MANAGED: "true",
                LABEL_ENVIRONMENT: env,
                LABEL_SERVICE: service,
                LABEL_VERSION: input.version,
                LABEL_IMAGE: input.image,
                LABEL_PORT: str(port),
                LABEL_RELEASE: input.release_id,
            },
        )
        try:
            await self._wait_ready(podman, name, server_url)
        except asyncio.CancelledError:
            await podman.rm(name, grace=self.stop_timeout)
            raise
        except ServiceNotReady as err:
            lines = await podman.logs(name, tail=15)
            await podman.rm(name, grace=self.stop_timeout)
            raise ServiceNotReady(
                f"{service} {input.version} in {env}: container {name} ({input.image}) {err}; "
                f"removed it, the previous deployment keeps serving. Last log lines:\n"
                + ("\n".join(lines) or "(none)")
                + f"\npodman log: {podman.log_path}"
            ) from None

        new_route = Route(env, service, server_url)
        routes.write(new_route)
        try:
            await routes.confirm(new_route)
        except (RouteNotApplied, asyncio.CancelledError):
            # put the old route back so what served before keeps serving
            if current.route is not None:
                routes.write(current.route)
            else:
                routes.remove(env, service)
            await podman.rm(name, grace=self.stop_timeout)
            raise

        for old in current.containers:
            if old.name != name:
                await podman.rm(old.id, grace=self.stop_timeout)
        deployed = Deployment(env, service, input.version, input.image, self.endpoint(env, service))
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
            _heartbeat(f"waiting for {name} to be ready: {last}")
            await asyncio.sleep(0.1)

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
        """Put `previous` back, or remove the route and containers when it is None."""
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
                )
            )
            return RestoreResult(env, service, running=result.deployed)

        routes = self._routes()
        routes.remove(env, service)
        await routes.confirm_removed(env, service)
        podman = self._podman(input.release_id, env, service)
        for container in await podman.ps(self._selector(env, service)):
            await podman.rm(container.id, grace=self.stop_timeout)
        return RestoreResult(env, service, running=None)
