"""The Kubernetes deploy target: the go-coffee Helm chart on a cluster (EKS by default).

Same interface and semantics as the local target (activities/deploy.py): reconciling,
idempotent, what runs is read from the cluster every time.

- One Helm release (`spec.release`) per namespace holds every service. Each change is a
  `helm upgrade --install` whose values are: the environment's values files, then a
  values file the target writes with what brewline manages (for every service its image
  repository/tag/digest, `env` and `enabled`; the `canary` block), then `--set-literal`
  for `global.imageRegistry` and the infra outputs (`spec.set_values`). What brewline
  manages is read back from the release (`helm get values`) before each change, so a
  deploy of one service keeps the others as they are. The arguments come from
  `activities.helm.value_args`, so `helm template` with the same ones shows what an
  upgrade applies.
- Readiness: the Deployment is watched through the kubernetes client until the new
  generation is observed, all spec replicas are updated and available and no old replica
  is left, with heartbeats, until `spec.timeout_seconds`.
- Canary (nginx-ingress, as Argo Rollouts' trafficRouting.nginx): `deploy_canary` is an
  upgrade with `canary.enabled`, weight 0 and the canary image; `set_canary_weight`
  patches the `canary-weight` annotation of the `<service>-canary` Ingress directly
  (no helm run); promotion first moves stable to the canary's image (the canary keeps
  its share meanwhile), then removes the canary; a rollback sets the weight to 0 first
  and then removes the canary with helm.
- `restore` rolls the release back (`helm rollback`) to the revision that ran `previous`
  when that revision differs from now only in this service; otherwise (other services
  changed since) it upgrades this service alone back to `previous`, so a restore never
  takes another service back with it. `previous=None` disables the service.

Upgrades of one release are serialised inside this worker (a lock per cluster, namespace
and release), since each one reads the release's values and writes them back.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError

from activities.eks import EksAccess
from activities.helm import Helm, value_args
from activities.runner import heartbeat
from brewline.model import (
    CanaryDeployInput,
    CanaryEndInput,
    DeployInput,
    Deployment,
    DeployResult,
    DescribeInput,
    DescribeResult,
    KubernetesSpec,
    RestoreInput,
    RestoreResult,
    SetWeightInput,
    SmokeTestInput,
    SmokeTestResult,
    TrafficState,
)
from brewline.platform import PlatformSettings

CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
MERGE_PATCH = "application/merge-patch+json"
CANARY_SUFFIX = "-canary"

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_IMAGE = re.compile(r"^(?P<repository>[^\s@]+)@(?P<digest>sha256:[0-9a-f]{64})$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

ApiClientFactory = Callable[[KubernetesSpec], k8s.ApiClient]
HelmFactory = Callable[[KubernetesSpec, Path], Helm]


class RolloutNotReady(Exception):
    """A rollout did not finish before the deadline (retryable: see `_wait_ready`)."""


class SmokeTestUnavailable(Exception):
    """The smoke test got no answer or a 5xx (retryable: the pods may still be warming up)."""


def _invalid(message: str, kind: str = "InvalidInput") -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def _digest(image: str) -> str:
    return image.rpartition("@")[2] if "@" in image else ""


def owned_values(values: dict[str, Any] | None) -> dict[str, Any]:
    """The part of a release's user-supplied values that brewline manages: per service
    `enabled`, `image` (repository, tag, digest) and `env`; the `canary` block; and
    `ingress.enabled` when brewline turned the ingress off with its service."""
    values = values or {}
    owned: dict[str, Any] = {}
    services: dict[str, Any] = {}
    for name, svc in (values.get("services") or {}).items():
        if not isinstance(svc, dict):
            continue
        entry: dict[str, Any] = {}
        if "enabled" in svc:
            entry["enabled"] = svc["enabled"]
        image = {
            k: v
            for k, v in (svc.get("image") or {}).items()
            if k in ("repository", "tag", "digest")
        }
        if image:
            entry["image"] = image
        if isinstance(svc.get("env"), dict):
            entry["env"] = dict(svc["env"])
        if entry:
            services[name] = entry
    if services:
        owned["services"] = services
    canary = values.get("canary")
    if isinstance(canary, dict):
        kept = {k: copy.deepcopy(canary.get(k)) for k in ("enabled", "weight", "env", "services")}
        owned["canary"] = {k: v for k, v in kept.items() if v is not None}
    if (values.get("ingress") or {}).get("enabled") is False:
        owned["ingress"] = {"enabled": False}
    return owned


@dataclass
class _Context:
    """Everything one call needs about its environment and service."""

    spec: KubernetesSpec
    environment: str
    service: str
    api: k8s.ApiClient
    helm: Helm
    state_dir: Path

    @property
    def namespace(self) -> str:
        return self.spec.namespace

    @property
    def canary_name(self) -> str:
        return self.service + CANARY_SUFFIX


@dataclass
class _Progress:
    ready: bool
    failed: bool
    detail: str


def rollout_progress(deployment: k8s.V1Deployment | None) -> _Progress:
    """Where a Deployment's rollout stands, as `kubectl rollout status` judges it."""
    if deployment is None:
        return _Progress(False, False, "the Deployment does not exist")
    spec = deployment.spec
    wanted = spec.replicas if spec is not None and spec.replicas is not None else 1
    status = deployment.status or k8s.V1DeploymentStatus()
    generation = (deployment.metadata.generation if deployment.metadata else None) or 0
    observed = status.observed_generation or 0
    if observed < generation:
        return _Progress(
            False, False, f"generation {generation} not observed yet (observed {observed})"
        )
    for condition in status.conditions or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            return _Progress(
                False, True, f"the rollout exceeded its progress deadline: {condition.message}"
            )
    updated = status.updated_replicas or 0
    total = status.replicas or 0
    available = status.available_replicas or 0
    if updated < wanted:
        return _Progress(False, False, f"{updated} of {wanted} replicas updated")
    if total > updated:
        return _Progress(
            False, False, f"{total - updated} old replicas still running beside {updated} new"
        )
    if available < wanted:
        return _Progress(False, False, f"{available} of {wanted} updated replicas available")
    return _Progress(True, False, f"{available} of {wanted} replicas updated and available")


class KubernetesTarget:
    """Deploy target for `kubernetes` environments (see module doc).

    `api_client(spec)` returns a kubernetes `ApiClient` for the spec's cluster and
    `helm(spec, log_path)` a `Helm` that reaches it; both default to EKS credentials
    (`activities.eks.EksAccess`, kubeconfigs for helm under `<home>/kube`).
    """

    def __init__(
        self,
        settings: PlatformSettings,
        *,
        api_client: ApiClientFactory | None = None,
        helm: HelmFactory | None = None,
        eks: EksAccess | None = None,
        watch_seconds: int = 5,
        http_timeout: float = 10.0,
    ) -> None:
        self.settings = settings
        if api_client is None or helm is None:
            access = eks or EksAccess(settings.home_path / "kube")

            clients: dict[tuple[str, str], k8s.ApiClient] = {}

            def default_api(spec: KubernetesSpec) -> k8s.ApiClient:
                # one client (connection pool, token renewed inside) per cluster
                key = (spec.cluster, spec.region)
                if key not in clients:
                    clients[key] = access.api_client(spec.cluster, spec.region)
                return clients[key]

            def default_helm(spec: KubernetesSpec, log_path: Path) -> Helm:
                return Helm(
                    log_path=log_path, kubeconfig=access.write_kubeconfig(spec.cluster, spec.region)
                )

        self.api_client = api_client or default_api
        self.helm = helm or default_helm
        self.watch_seconds = watch_seconds
        self.http_timeout = http_timeout
        self._locks: dict[tuple[str, str, str, str], asyncio.Lock] = {}

    # ---- plumbing ------------------------------------------------------------------------
    async def _context(
        self, release_id: str, environment: str, service: str, spec: KubernetesSpec | None
    ) -> _Context:
        if spec is None:
            raise _invalid(
                f"{service} in {environment}: the input has no `kubernetes` spec; the "
                "environment's target is kubernetes, so pipeline.yaml needs "
                f"environments.{environment}.kubernetes (namespace at least)",
                "InvalidConfig",
            )
        for what, value in (("namespace", spec.namespace), ("release", spec.release)):
            if not value or not _NAME.fullmatch(value) or len(value) > 53:
                raise _invalid(
                    f"kubernetes {what} {value!r} of {environment} is not a DNS label "
                    "(lower-case letters, digits, dashes, at most 53 characters); fix "
                    f"environments.{environment}.kubernetes.{what} in pipeline.yaml",
                    "InvalidConfig",
                )
        if not _NAME.fullmatch(service) or service.endswith(CANARY_SUFFIX):
            raise _invalid(
                f"service name {service!r} is not usable as a Kubernetes object name (or "
                f"ends in {CANARY_SUFFIX!r}, the canary's suffix); use lower-case letters, "
                "digits and dashes"
            )
        state_dir = self.settings.release_dir(release_id or "no-release") / "deploy"
        state_dir.mkdir(parents=True, exist_ok=True)
        log_path = state_dir / f"{environment}-{service}-helm.log"
        api, helm = await asyncio.gather(
            asyncio.to_thread(self.api_client, spec), asyncio.to_thread(self.helm, spec, log_path)
        )
        return _Context(spec, environment, service, api, helm, state_dir)

    def _lock(self, ctx: _Context) -> asyncio.Lock:
        key = (ctx.spec.cluster, ctx.spec.region, ctx.namespace, ctx.spec.release)
        return self._locks.setdefault(key, asyncio.Lock())

    def _source(self, spec: KubernetesSpec) -> Path:
        if not spec.source:
            raise _invalid(
                "kubernetes spec has no `source` (the release's source tree); the release "
                "fills it in: is the workflow older than the kubernetes target?",
                "InvalidConfig",
            )
        return Path(spec.source)

    def chart(self, spec: KubernetesSpec) -> Path:
        chart = self._source(spec) / spec.chart
        if not (chart / "Chart.yaml").is_file():
            raise _invalid(
                f"Helm chart {chart} has no Chart.yaml; fix kubernetes.chart (relative to "
                "the source tree) in pipeline.yaml",
                "InvalidConfig",
            )
        return chart

    def _default_canary_services(self, spec: KubernetesSpec) -> list[str]:
        """The keys of canary.services in the chart's own values.yaml."""
        defaults = yaml.safe_load((self.chart(spec) / "values.yaml").read_text()) or {}
        return list(((defaults.get("canary") or {}).get("services") or {}).keys())

    def values_args(self, spec: KubernetesSpec, state_file: Path | None) -> list[str]:
        """The value arguments of an upgrade: the environment's values files, the file
        of what brewline manages, then --set-literal registry and infra outputs."""
        source = self._source(spec)
        files: list[Path] = []
        for name in spec.values:
            path = source / name
            if not path.is_file():
                raise _invalid(
                    f"values file {path} does not exist; fix kubernetes.values in "
                    "pipeline.yaml (paths relative to the source tree)",
                    "InvalidConfig",
                )
            files.append(path)
        if state_file is not None:
            files.append(state_file)
        literal: dict[str, str] = {}
        if spec.registry:
            literal["global.imageRegistry"] = spec.registry
        literal.update(spec.set_values)
        return value_args(files, literal)

    async def _values(self, ctx: _Context, revision: int | None = None) -> dict[str, Any] | None:
        return await ctx.helm.get_values(
            ctx.spec.release, namespace=ctx.namespace, revision=revision
        )

    async def _upgrade(self, ctx: _Context, state: dict[str, Any], step: str) -> None:
        """helm upgrade --install with `state` as the values brewline manages."""
        state_file = ctx.state_dir / f"{ctx.environment}-{ctx.service}-{step}.values.json"
        state_file.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        args = self.values_args(ctx.spec, state_file)
        heartbeat(f"helm upgrade {ctx.spec.release} in {ctx.namespace}: {step}")
        await ctx.helm.upgrade_install(
            ctx.spec.release, self.chart(ctx.spec), namespace=ctx.namespace, values=args
        )

    def _repository(self, spec: KubernetesSpec, image: str) -> tuple[str, str]:
        """(chart repository, digest) so that the chart renders exactly `image`."""
        match = _IMAGE.fullmatch(image)
        if match is None:
            raise _invalid(
                f"image {image!r} is not pinned by digest; deploy needs "
                "repository@sha256:<64 hex digits>, as the build stage returns it"
            )
        repository, digest = match["repository"], match["digest"]
        if spec.registry:
            prefix = spec.registry.rstrip("/") + "/"
            if not repository.startswith(prefix):
                raise _invalid(
                    f"image {image} is not in the environment's registry {spec.registry}; "
                    "the cluster pulls from global.imageRegistry: build into that registry "
                    "(infra output `registry`) or fix kubernetes.registry"
                )
            repository = repository.removeprefix(prefix)
        return repository, digest

    @staticmethod
    def _tag(version: str) -> str:
        if not _TAG.fullmatch(version):
            raise _invalid(
                f"version {version!r} cannot be an image tag (letters, digits, '_', '.', "
                "'-', at most 128, not starting with '.' or '-'); the chart records it as one"
            )
        return version

    # ---- reading the cluster -------------------------------------------------------------
    async def _read_deployment(self, ctx: _Context, name: str) -> k8s.V1Deployment | None:
        apps = k8s.AppsV1Api(ctx.api)
        try:
            return await asyncio.to_thread(
                apps.read_namespaced_deployment, name, ctx.namespace, _request_timeout=30
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    async def _read_ingress(self, ctx: _Context, name: str) -> k8s.V1Ingress | None:
        networking = k8s.NetworkingV1Api(ctx.api)
        try:
            return await asyncio.to_thread(
                networking.read_namespaced_ingress, name, ctx.namespace, _request_timeout=30
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def endpoint(self, ctx: _Context, name: str) -> str:
        """The service through the API server's service proxy (what smoke_test calls)."""
        host = ctx.api.configuration.host.rstrip("/")
        return f"{host}/api/v1/namespaces/{ctx.namespace}/services/{name}:http/proxy"

    def _model(
        self,
        ctx: _Context,
        deployment: k8s.V1Deployment,
        image_values: dict[str, Any],
        env_values: dict[str, Any] | None,
    ) -> Deployment:
        """What a Deployment runs; version and env exactly as brewline set them when the
        release's values describe this very image, else from the pod labels."""
        template = deployment.spec.template if deployment.spec else None
        pod = template.spec if template else None
        containers = (pod.containers if pod else None) or []
        container = next((c for c in containers if c.name == ctx.service), None)
        container = container or (containers[0] if containers else None)
        image = (container.image if container is not None else None) or ""
        labels = (template.metadata.labels if template and template.metadata else None) or {}
        meta = deployment.metadata or k8s.V1ObjectMeta()
        version = labels.get("version") or (meta.labels or {}).get("app.kubernetes.io/version", "")
        env: dict[str, str] = {}
        if image_values.get("digest") and image_values.get("digest") == _digest(image):
            version = str(image_values.get("tag") or version)
            env = {str(k): str(v) for k, v in (env_values or {}).items() if v is not None}
        return Deployment(
            environment=ctx.environment,
            service=ctx.service,
            version=version,
            image=image,
            endpoint=self.endpoint(ctx, meta.name or ctx.service),
            env=env,
        )

    def _stable_model(
        self, ctx: _Context, deployment: k8s.V1Deployment | None, values: dict[str, Any]
    ) -> Deployment | None:
        if deployment is None:
            return None
        svc = (values.get("services") or {}).get(ctx.service) or {}
        return self._model(ctx, deployment, svc.get("image") or {}, svc.get("env"))

    def _canary_model(
        self, ctx: _Context, deployment: k8s.V1Deployment | None, values: dict[str, Any]
    ) -> Deployment | None:
        if deployment is None:
            return None
        canary = values.get("canary") or {}
        image = ((canary.get("services") or {}).get(ctx.service) or {}).get("image") or {}
        return self._model(ctx, deployment, image, canary.get("env"))

    @staticmethod
    def _weight(ingress: k8s.V1Ingress | None) -> int:
        if ingress is None:
            return 0
        meta = ingress.metadata or k8s.V1ObjectMeta()
        raw = (meta.annotations or {}).get(CANARY_WEIGHT, "0")
        try:
            return int(raw)
        except ValueError:
            return 0

    async def _traffic(self, ctx: _Context, values: dict[str, Any] | None = None) -> TrafficState:
        if values is None:
            values = await self._values(ctx) or {}
        stable, canary, ingress = await asyncio.gather(
            self._read_deployment(ctx, ctx.service),
            self._read_deployment(ctx, ctx.canary_name),
            self._read_ingress(ctx, ctx.canary_name),
        )
        canary_model = self._canary_model(ctx, canary, values)
        return TrafficState(
            environment=ctx.environment,
            service=ctx.service,
            stable=self._stable_model(ctx, stable, values),
            canary=canary_model,
            canary_weight=self._weight(ingress) if canary_model is not None else 0,
        )

    # ---- readiness -------------------------------------------------------------------------
    def _watch_once(self, ctx: _Context, name: str, seconds: int) -> tuple[_Progress, bool]:
        """Watch Deployment `name` for up to `seconds`; (last progress, whether seen)."""
        apps = k8s.AppsV1Api(ctx.api)
        watcher = k8s_watch.Watch()
        progress = rollout_progress(None)
        seen = False
        try:
            for event in watcher.stream(
                apps.list_namespaced_deployment,
                ctx.namespace,
                field_selector=f"metadata.name={name}",
                timeout_seconds=seconds,
                _request_timeout=seconds + 10,
            ):
                if event["type"] == "DELETED":
                    progress, seen = rollout_progress(None), False
                    continue
                if event["type"] not in ("ADDED", "MODIFIED"):
                    continue
                seen = True
                progress = rollout_progress(event["object"])
                if progress.ready or progress.failed:
                    break
        finally:
            watcher.stop()
        return progress, seen

    async def _wait_ready(self, ctx: _Context, name: str) -> None:
        """Watch Deployment `name` until its rollout is complete, heartbeating.

        Past `spec.timeout_seconds`: `RolloutNotReady`, retryable, because a rollout that
        is merely slow (nodes scaling up, images pulling) finishes on its own: the retry
        re-applies the same values (no change) and waits again, bounded by the
        activity's retry policy, while old replicas keep serving (maxUnavailable 0).
        When Kubernetes itself declares the rollout failed (ProgressDeadlineExceeded),
        waiting cannot help: non-retryable `RolloutFailed`.
        """
        timeout = ctx.spec.timeout_seconds
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            seconds = max(1, min(self.watch_seconds, math.ceil(remaining)))
            progress, _ = await asyncio.to_thread(self._watch_once, ctx, name, seconds)
            if progress.ready:
                return
            if progress.failed:
                raise _invalid(
                    f"deployment {name} in namespace {ctx.namespace}: {progress.detail}; "
                    f"see `kubectl -n {ctx.namespace} describe deployment {name}` and its "
                    "pods' events (image pull, crash loop, probes)",
                    "RolloutFailed",
                )
            heartbeat(f"waiting for deployment {name} in {ctx.namespace}: {progress.detail}")
        progress = rollout_progress(await self._read_deployment(ctx, name))
        if progress.ready:
            return
        raise RolloutNotReady(
            f"deployment {name} in namespace {ctx.namespace} was not ready within "
            f"{timeout}s: {progress.detail}; old replicas keep serving. See `kubectl -n "
            f"{ctx.namespace} describe deployment {name}` and its pods' events"
        )

    async def _wait_gone(self, ctx: _Context, name: str) -> None:
        deadline = time.monotonic() + ctx.spec.timeout_seconds
        while await self._read_deployment(ctx, name) is not None:
            if time.monotonic() > deadline:
                raise RolloutNotReady(
                    f"deployment {name} in namespace {ctx.namespace} still exists "
                    f"{ctx.spec.timeout_seconds}s after helm removed it from the release"
                )
            heartbeat(f"waiting for deployment {name} in {ctx.namespace} to go")
            await asyncio.sleep(0.5)

    # ---- describe ----------------------------------------------------------------------------
    async def describe(self, input: DescribeInput) -> DescribeResult:
        """What the service's (stable) Deployment runs now, or None without one."""
        ctx = await self._context(
            input.release_id, input.environment, input.service, input.kubernetes
        )
        values, deployment = await asyncio.gather(
            self._values(ctx), self._read_deployment(ctx, ctx.service)
        )
        running = self._stable_model(ctx, deployment, values or {})
        return DescribeResult(input.environment, input.service, running)

    async def describe_traffic(self, input: DescribeInput) -> TrafficState:
        """Stable and canary Deployments and the canary Ingress's weight."""
        ctx = await self._context(
            input.release_id, input.environment, input.service, input.kubernetes
        )
        return await self._traffic(ctx)

    # ---- deploy ------------------------------------------------------------------------------
    async def _live_state(self, ctx: _Context, values: dict[str, Any] | None) -> dict[str, Any]:
        """What brewline manages now, with the live canary weight (patched outside helm)."""
        state = owned_values(values)
        canary = state.get("canary") or {}
        if canary.get("enabled"):
            for name in canary.get("services") or {}:
                ingress = await self._read_ingress(
                    _Context(ctx.spec, ctx.environment, name, ctx.api, ctx.helm, ctx.state_dir),
                    name + CANARY_SUFFIX,
                )
                if ingress is not None:
                    canary["weight"] = self._weight(ingress)
        return state

    async def deploy(self, input: DeployInput) -> DeployResult:
        """helm upgrade the service to `image`, wait for its rollout; report what ran."""
        ctx = await self._context(
            input.release_id, input.environment, input.service, input.kubernetes
        )
        return await self._deploy(ctx, input.version, input.image, input.env)

    async def _deploy(
        self, ctx: _Context, version: str, image: str, env: dict[str, str]
    ) -> DeployResult:
        repository, digest = self._repository(ctx.spec, image)
        tag = self._tag(version)
        async with self._lock(ctx):
            values, deployment = await asyncio.gather(
                self._values(ctx), self._read_deployment(ctx, ctx.service)
            )
            previous = self._stable_model(ctx, deployment, values or {})
            svc = ((values or {}).get("services") or {}).get(ctx.service) or {}
            already = (
                previous is not None
                and previous.image == image
                and previous.env == env
                and svc.get("enabled", True) is not False
                and rollout_progress(deployment).ready
            )
            if not already:
                state = await self._live_state(ctx, values)
                state.pop("ingress", None)  # the values files decide again
                entry = state.setdefault("services", {}).setdefault(ctx.service, {})
                entry["enabled"] = True
                entry["image"] = {"repository": repository, "tag": tag, "digest": digest}
                entry["env"] = dict(env)
                await self._upgrade(ctx, state, "deploy")
        if already:
            assert previous is not None
            return DeployResult(deployed=previous, previous=previous, changed=False)
        await self._wait_ready(ctx, ctx.service)
        deployed = Deployment(
            ctx.environment, ctx.service, version, image, self.endpoint(ctx, ctx.service), env
        )
        return DeployResult(deployed=deployed, previous=previous, changed=True)

    # ---- smoke test --------------------------------------------------------------------------
    async def smoke_test(self, input: SmokeTestInput) -> SmokeTestResult:
        """GET `<smoke_path>` of the service through the API server's service proxy and
        expect the version (as the local target checks it through Traefik)."""
        ctx = await self._context(
            input.release_id, input.environment, input.service, input.kubernetes
        )
        path = input.smoke_path if input.smoke_path.startswith("/") else "/" + input.smoke_path
        resource = f"/api/v1/namespaces/{ctx.namespace}/services/{ctx.service}:http/proxy{path}"
        url = self.endpoint(ctx, ctx.service) + path
        started = time.monotonic()
        try:
            status, body = await asyncio.to_thread(self._get, ctx.api, resource)
        except OSError as err:
            raise SmokeTestUnavailable(
                f"smoke test GET {url} got no answer ({err}); is the cluster reachable?"
            ) from None
        latency_ms = (time.monotonic() - started) * 1000
        text = body[:300].decode(errors="replace")
        if status == 0 or status >= 500:
            raise SmokeTestUnavailable(f"smoke test GET {url} answered {status}: {text}")
        if status != 200:
            raise _invalid(
                f"smoke test GET {url} answered {status}, expected 200: {text}; the "
                f"Service {input.service} in namespace {ctx.namespace} is missing or wrong",
                "SmokeTestFailed",
            )
        try:
            answer = json.loads(body)
            seen = answer.get("version", "")
        except (ValueError, AttributeError):
            raise _invalid(
                f"smoke test GET {url} answered 200 without a JSON object with a version: {text}",
                "SmokeTestFailed",
            ) from None
        if seen != input.version:
            raise _invalid(
                f"smoke test GET {url} answered version {seen!r}, expected {input.version!r}: "
                f"the Service {input.service} in {ctx.namespace} reaches another deployment",
                "SmokeTestFailed",
            )
        return SmokeTestResult(
            url=url, status_code=status, version_seen=seen, latency_ms=latency_ms
        )

    def _get(self, api: k8s.ApiClient, resource: str) -> tuple[int, bytes]:
        """GET a raw API path: (status, body); an HTTP error status is returned, not raised."""
        method, url, headers, body, post = api.param_serialize(
            "GET",
            resource,
            header_params={"Accept": "application/json, */*"},
            auth_settings=["BearerToken"],
        )
        try:
            response = api.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                post_params=post,
                _request_timeout=self.http_timeout,
            )
            response.read()
        except ApiException as err:
            raise OSError(str(err.reason)) from None
        except Exception as err:  # urllib3's connection errors are not OSErrors
            if type(err).__module__.startswith("urllib3"):
                raise OSError(str(err)) from None
            raise
        return int(response.status), bytes(response.data or b"")

    # ---- restore -----------------------------------------------------------------------------
    async def restore(self, input: RestoreInput) -> RestoreResult:
        """Put `previous` back (helm rollback to the revision that ran it when only this
        service changed since, else an upgrade of this service alone), or disable the
        service when `previous` is None."""
        ctx = await self._context(
            input.release_id, input.environment, input.service, input.kubernetes
        )
        previous = input.previous
        if previous is None:
            return await self._remove_service(ctx)
        if (previous.environment, previous.service) != (input.environment, input.service):
            raise _invalid(
                f"restore of {input.service} in {input.environment} was given a deployment "
                f"of {previous.service} in {previous.environment}"
            )
        revision = await self._rollback_revision(ctx, previous)
        if revision is None:
            result = await self._deploy(ctx, previous.version, previous.image, previous.env)
            return RestoreResult(input.environment, input.service, running=result.deployed)
        async with self._lock(ctx):
            await ctx.helm.rollback(ctx.spec.release, revision, namespace=ctx.namespace)
        await self._wait_ready(ctx, ctx.service)
        running = Deployment(
            ctx.environment,
            ctx.service,
            previous.version,
            previous.image,
            self.endpoint(ctx, ctx.service),
            previous.env,
        )
        return RestoreResult(input.environment, input.service, running=running)

    async def _rollback_revision(self, ctx: _Context, previous: Deployment) -> int | None:
        """The newest revision that ran `previous` and differs from the current values only
        in this service; None when there is none (or `previous` already runs)."""
        current = await self._values(ctx)
        if current is None:
            return None
        svc = (current.get("services") or {}).get(ctx.service) or {}
        image = svc.get("image") or {}
        if image.get("digest") == _digest(previous.image) and (svc.get("env") or {}) == (
            previous.env or {}
        ):
            return None  # it already runs: _deploy checks the rollout and changes nothing
        history = await ctx.helm.history(ctx.spec.release, namespace=ctx.namespace)
        others_now = _without_service(current, ctx.service)
        for revision in sorted(history, key=lambda r: r.revision, reverse=True)[1:]:
            old = await self._values(ctx, revision.revision) or {}
            old_svc = (old.get("services") or {}).get(ctx.service) or {}
            # an unpinned `previous` (installed by hand with a tag) matches a revision
            # that had no digest for the service
            if ((old_svc.get("image") or {}).get("digest") or "") != _digest(previous.image):
                continue
            if (old_svc.get("env") or {}) != (previous.env or {}):
                continue
            if _without_service(old, ctx.service) != others_now:
                return None  # other services changed since: a rollback would undo them
            return revision.revision
        return None

    async def _remove_service(self, ctx: _Context) -> RestoreResult:
        """Disable the service in the release (its Deployment, Service... go)."""
        async with self._lock(ctx):
            values = await self._values(ctx)
            if values is not None:
                state = await self._live_state(ctx, values)
                entry = state.setdefault("services", {}).setdefault(ctx.service, {})
                changed = entry.get("enabled") is not False
                entry["enabled"] = False
                canary = state.get("canary") or {}
                if ctx.service in (canary.get("services") or {}):
                    changed = True
                    defaults = self._default_canary_services(ctx.spec)
                    _drop(canary["services"], ctx.service, defaults)
                    if not [v for v in canary["services"].values() if v]:
                        canary["enabled"] = False
                computed = await ctx.helm.get_values(
                    ctx.spec.release, namespace=ctx.namespace, all_values=True
                )
                if ((computed or {}).get("ingress") or {}).get("service") == ctx.service:
                    state["ingress"] = {"enabled": False}  # the chart refuses it otherwise
                if changed:
                    await self._upgrade(ctx, state, "remove")
        await self._wait_gone(ctx, ctx.canary_name)
        await self._wait_gone(ctx, ctx.service)
        return RestoreResult(ctx.environment, ctx.service, running=None)

    # ---- canary ------------------------------------------------------------------------------
    def _check_canary(self, ctx: _Context) -> None:
        if ctx.service not in ctx.spec.canary_services:
            raise _invalid(
                f"{ctx.service} in {ctx.environment} cannot run a canary on Kubernetes: "
                f"only {', '.join(ctx.spec.canary_services) or 'no service'} can "
                "(kubernetes.canary_services; the chart routes canary traffic through the "
                "ingress service's canary Ingress); use strategy direct for it",
                "CanaryUnsupported",
            )

    async def deploy_canary(self, input: CanaryDeployInput) -> TrafficState:
        """helm upgrade with canary.enabled, weight 0 and the canary's image; wait for
        `<service>-canary`. Idempotent: a ready canary of this image is left as it is."""
        ctx = await self._context(
            input.release_id, input.environment, input.service, input.kubernetes
        )
        self._check_canary(ctx)
        _, digest = self._repository(ctx.spec, input.image)
        tag = self._tag(input.version)
        async with self._lock(ctx):
            values = await self._values(ctx) or {}
            stable, canary = await asyncio.gather(
                self._read_deployment(ctx, ctx.service),
                self._read_deployment(ctx, ctx.canary_name),
            )
            if stable is None:
                raise _invalid(
                    f"{ctx.service} in {ctx.environment} has no stable deployment to start a "
                    "canary beside; deploy a first version with deploy_service, then the canary"
                )
            running = self._canary_model(ctx, canary, values)
            if (
                running is not None
                and running.image.endswith("@" + digest)
                and running.env == input.env
                and rollout_progress(canary).ready
            ):
                return await self._traffic(ctx, values)
            state = await self._live_state(ctx, values)
            block = state.setdefault("canary", {})
            services = block.get("services") or {}
            # Every entry of canary.services gets a canary while canary.enabled, and the
            # chart's defaults have entries without an image: null removes every entry
            # but this one and those of other running canaries.
            defaults = self._default_canary_services(ctx.spec)
            for name in {*defaults, *services}:
                image = (services.get(name) or {}).get("image") or {}
                if name != ctx.service and not (image.get("digest") or image.get("tag")):
                    _drop(services, name, defaults)
            services[ctx.service] = {"image": {"tag": tag, "digest": digest}}
            block.update(enabled=True, weight=0, env=dict(input.env), services=services)
            await self._upgrade(ctx, state, "canary")
        await self._wait_ready(ctx, ctx.canary_name)
        return await self._traffic(ctx)

    async def set_canary_weight(self, input: SetWeightInput) -> TrafficState:
        """PATCH the canary Ingress's canary-weight annotation (merge patch; no helm)."""
        weight = input.weight
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise _invalid(
                f"canary weight {weight!r} for {input.service} in {input.environment} is not "
                "a whole percent from 0 to 100"
            )
        ctx = await self._context(
            input.release_id, input.environment, input.service, input.kubernetes
        )
        self._check_canary(ctx)
        ingress, canary = await asyncio.gather(
            self._read_ingress(ctx, ctx.canary_name),
            self._read_deployment(ctx, ctx.canary_name),
        )
        if ingress is None or canary is None:
            raise _invalid(
                f"{ctx.service} in {ctx.environment} has no canary (Ingress and Deployment "
                f"{ctx.canary_name} in {ctx.namespace}) to send {weight}% of requests to; "
                "start one with deploy_canary first"
            )
        if weight > 0 and not (canary.status and canary.status.available_replicas):
            raise _invalid(
                f"the canary Deployment {ctx.canary_name} in {ctx.namespace} has no available "
                f"replica; it cannot take {weight}% of requests: roll it back (rollback_canary)"
            )
        await self._patch_weight(ctx, weight)
        return await self._traffic(ctx)

    async def _patch_weight(self, ctx: _Context, weight: int) -> None:
        networking = k8s.NetworkingV1Api(ctx.api)
        body = {"metadata": {"annotations": {CANARY_WEIGHT: str(weight)}}}
        await asyncio.to_thread(
            networking.patch_namespaced_ingress,
            ctx.canary_name,
            ctx.namespace,
            body,
            _content_type=MERGE_PATCH,
            _request_timeout=30,
        )

    async def promote_canary(self, input: CanaryEndInput) -> TrafficState:
        """Stable takes the canary's image (its rollout finishes while the canary keeps its
        share), then the canary is removed. Idempotent: without a canary, the state."""
        ctx = await self._context(
            input.release_id, input.environment, input.service, input.kubernetes
        )
        self._check_canary(ctx)
        async with self._lock(ctx):
            values = await self._values(ctx) or {}
            canary_values = values.get("canary") or {}
            image = ((canary_values.get("services") or {}).get(ctx.service) or {}).get(
                "image"
            ) or {}
            if not canary_values.get("enabled") or not image.get("digest"):
                return await self._traffic(ctx, values)
            state = await self._live_state(ctx, values)
            entry = state.setdefault("services", {}).setdefault(ctx.service, {})
            stable_image = dict(entry.get("image") or {})
            stable_image.update(tag=image.get("tag", ""), digest=image["digest"])
            entry.update(enabled=True, image=stable_image, env=dict(canary_values.get("env") or {}))
            await self._upgrade(ctx, state, "promote")
        await self._wait_ready(ctx, ctx.service)
        await self._end_canary(ctx)
        return await self._traffic(ctx)

    async def rollback_canary(self, input: CanaryEndInput) -> TrafficState:
        """Weight 0 on the canary Ingress FIRST, then helm removes the canary. Stable is
        untouched; without a canary this is a no-op."""
        ctx = await self._context(
            input.release_id, input.environment, input.service, input.kubernetes
        )
        self._check_canary(ctx)
        ingress = await self._read_ingress(ctx, ctx.canary_name)
        if ingress is not None and self._weight(ingress) != 0:
            await self._patch_weight(ctx, 0)
        await self._end_canary(ctx)
        return await self._traffic(ctx)

    async def _end_canary(self, ctx: _Context) -> None:
        """helm upgrade without this service's canary (canary.enabled=false when it was
        the only one); wait until its Deployment is gone."""
        async with self._lock(ctx):
            values = await self._values(ctx) or {}
            block = values.get("canary") or {}
            if block.get("enabled") and ctx.service in (block.get("services") or {}):
                state = await self._live_state(ctx, values)
                canary = state["canary"]
                _drop(canary["services"], ctx.service, self._default_canary_services(ctx.spec))
                others = [n for n, v in canary["services"].items() if v and n != ctx.service]
                if not others:
                    canary.update(enabled=False, weight=0, env={})
                await self._upgrade(ctx, state, "end-canary")
        await self._wait_gone(ctx, ctx.canary_name)


def _drop(services: dict[str, Any], name: str, defaults: list[str]) -> None:
    """Remove `name` from canary.services: null deletes a key of the chart's defaults
    (helm's rule); a key the defaults lack must be left out instead (null would stay
    and fail the schema)."""
    if name in defaults:
        services[name] = None
    else:
        services.pop(name, None)


def _without_service(values: dict[str, Any], service: str) -> dict[str, Any]:
    """The values with one service's entry left out (to compare the rest)."""
    rest = copy.deepcopy(values)
    (rest.get("services") or {}).pop(service, None)
    return rest
