"""The Kubernetes deploy target against a fake Kubernetes API server.

No real API server can run on this machine (no kube-apiserver, kind, k3s or KWOK), so
`fake_kube_api.FakeKubeApi` stands in for the API server ONLY. Everything on our side is
real: the target, the kubernetes Python client (its watch included), and helm 3.17
itself running `upgrade --install`, `rollback`, `history` and `get values` against the
fake with the real go-coffee chart and values-staging.yaml. The fake plays the
Deployment controller: the new generation is observed late and replicas come up one by
one, so readiness is really waited for.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from temporalio.exceptions import ApplicationError

from activities.deploy import DeployActivities
from activities.helm import Helm
from activities.kubernetes_target import (
    CANARY_WEIGHT,
    MERGE_PATCH,
    KubernetesTarget,
    RolloutNotReady,
    SmokeTestUnavailable,
    rollout_progress,
)
from brewline.model import (
    CanaryDeployInput,
    CanaryEndInput,
    DeployInput,
    DescribeInput,
    KubernetesSpec,
    RestoreInput,
    SetWeightInput,
    SmokeTestInput,
)
from brewline.platform import REPO_ROOT, PlatformSettings
from tests.activities.fake_kube_api import FakeKubeApi

NS = "staging"
ENV = "staging"
REGISTRY = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
TOKEN = "fake-bearer-token"


def image(service: str, char: str) -> str:
    return f"{REGISTRY}/go-coffee/{service}@sha256:{char * 64}"


@pytest.fixture
def fake() -> Iterator[FakeKubeApi]:
    api = FakeKubeApi(observe_delay=0.2, replica_delay=0.1, token=TOKEN).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def target(tmp_path: Path, fake: FakeKubeApi) -> KubernetesTarget:
    kubeconfig = tmp_path / "fake.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(fake.kubeconfig()))

    def api_client(spec: KubernetesSpec) -> k8s.ApiClient:
        config = k8s.Configuration(host=fake.url)
        config.api_key["authorization"] = TOKEN
        config.api_key_prefix["authorization"] = "Bearer"
        return k8s.ApiClient(config)

    def helm(spec: KubernetesSpec, log_path: Path) -> Helm:
        # the fake serves no OpenAPI document, so helm must not ask for one
        return Helm(log_path=log_path, kubeconfig=kubeconfig, openapi_validation=False)

    settings = PlatformSettings(home=str(tmp_path / "home"))
    return KubernetesTarget(settings, api_client=api_client, helm=helm, watch_seconds=2)


def spec(**overrides: Any) -> KubernetesSpec:
    fields: dict[str, Any] = {
        "namespace": NS,
        "cluster": "fake",
        "region": "local",
        "values": ["helm/go-coffee/values-staging.yaml"],
        "registry": REGISTRY,
        "set_values": {"managedServices.kafka.bootstrapBrokers": "b-1:9094,b-2:9094"},
        "timeout_seconds": 30,
        "source": str(REPO_ROOT),
    }
    fields.update(overrides)
    return KubernetesSpec(**fields)


def deploy_input(
    service: str, version: str, char: str, env: dict[str, str] | None = None, **kw: Any
) -> DeployInput:
    return DeployInput(
        release_id="rel-k8s",
        environment=ENV,
        target="kubernetes",
        service=service,
        version=version,
        image=image(service, char),
        env=env or {},
        kubernetes=kw.pop("kubernetes", None) or spec(),
    )


def pod_image(fake: FakeKubeApi, name: str) -> str:
    deployment = fake.get("deployments", NS, name)
    assert deployment is not None, f"no Deployment {name}"
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def helm_releases(fake: FakeKubeApi) -> list[dict[str, Any]]:
    """helm's release records (Secrets), decoded, oldest first."""
    records = []
    for name in fake.names("secrets", NS):
        secret = fake.get("secrets", NS, name)
        assert secret is not None
        raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
        records.append(json.loads(gzip.decompress(raw)))
    return sorted(records, key=lambda r: r["version"])


def ready(fake: FakeKubeApi, name: str) -> bool:
    return rollout_progress(k8s.V1Deployment.from_dict(fake.get("deployments", NS, name))).ready


# ---- deploy and readiness -------------------------------------------------------------------
async def test_deploy_installs_waits_for_the_rollout_and_reports_what_ran_before(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    first = await target.deploy(deploy_input("api-gateway", "1.0.0", "a", {"GREETING": "hi"}))
    assert first.changed and first.previous is None
    assert first.deployed.image == image("api-gateway", "a")
    assert pod_image(fake, "api-gateway") == image("api-gateway", "a")
    assert ready(fake, "api-gateway"), "deploy returned before the rollout was complete"
    deployment = fake.get("deployments", NS, "api-gateway")
    assert deployment is not None
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["version"] == "1.0.0"
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["GREETING"] == "hi"
    # the watch was used, not a poll of single reads, with the client's bearer token
    watches = [
        r
        for r in fake.requests
        if r.query.get("watch") == "true" and r.path.endswith("/deployments")
    ]
    assert watches and all(r.authorization == f"Bearer {TOKEN}" for r in watches)

    again = await target.deploy(deploy_input("api-gateway", "1.0.0", "a", {"GREETING": "hi"}))
    assert not again.changed and again.previous == first.deployed

    second = await target.deploy(deploy_input("api-gateway", "1.1.0", "b"))
    assert second.changed
    assert second.previous is not None
    assert (second.previous.version, second.previous.image, second.previous.env) == (
        "1.0.0",
        image("api-gateway", "a"),
        {"GREETING": "hi"},
    )
    described = await target.describe(
        DescribeInput("rel-k8s", ENV, "kubernetes", "api-gateway", spec())
    )
    assert described.running is not None
    assert (described.running.version, described.running.image, described.running.env) == (
        "1.1.0",
        image("api-gateway", "b"),
        {},
    )
    # the env var the first release set is gone: brewline's env replaces, never merges
    deployment = fake.get("deployments", NS, "api-gateway")
    assert deployment is not None
    names = [e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert "GREETING" not in names


async def test_deploying_one_service_keeps_the_others(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    await target.deploy(deploy_input("api-gateway", "1.0.0", "a"))
    await target.deploy(deploy_input("producer", "2.0.0", "c"))
    assert pod_image(fake, "api-gateway") == image("api-gateway", "a")
    assert pod_image(fake, "producer") == image("producer", "c")
    # the infra outputs went in as one literal string, commas and all
    producer = fake.get("deployments", NS, "producer")
    assert producer is not None
    env = {
        e["name"]: e.get("value")
        for e in producer["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["KAFKA_BROKERS"] == "b-1:9094,b-2:9094"


async def test_deploy_waits_while_the_controller_lags_and_replicas_come_up(
    tmp_path: Path, target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    fake.observe_delay, fake.replica_delay = 0.6, 0.3
    three = tmp_path / "three-replicas.yaml"
    three.write_text("services:\n  api-gateway:\n    replicaCount: 3\n")
    started = time.monotonic()
    result = await target.deploy(
        deploy_input(
            "api-gateway",
            "1.0.0",
            "a",
            kubernetes=spec(values=["helm/go-coffee/values-staging.yaml", str(three)]),
        )
    )
    took = time.monotonic() - started
    assert result.changed
    deployment = fake.get("deployments", NS, "api-gateway")
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 3
    assert deployment["status"]["availableReplicas"] == 3
    # observed after 0.6 s, then one replica every 0.3 s: 1.5 s at the least
    assert took >= 1.5, f"deploy returned after {took:.2f}s, before the rollout could finish"


async def test_a_rollout_that_never_gets_available_hits_the_deadline(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    fake.stuck.add("api-gateway")
    started = time.monotonic()
    with pytest.raises(RolloutNotReady) as caught:
        await target.deploy(
            deploy_input("api-gateway", "1.0.0", "a", kubernetes=spec(timeout_seconds=2))
        )
    assert 2 <= time.monotonic() - started < 15
    message = str(caught.value)
    assert "deployment api-gateway in namespace staging" in message
    assert "not ready within 2s" in message
    assert "0 of 1 updated replicas available" in message


async def test_a_rollout_kubernetes_gave_up_on_fails_at_once_without_retry(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    fake.stuck.add("api-gateway")
    fake.deadline_exceeded.add("api-gateway")
    started = time.monotonic()
    with pytest.raises(ApplicationError) as caught:
        await target.deploy(deploy_input("api-gateway", "1.0.0", "a"))
    assert time.monotonic() - started < 20, "waited for the deadline instead"
    assert caught.value.type == "RolloutFailed" and caught.value.non_retryable
    assert "deployment api-gateway in namespace staging" in str(caught.value)
    assert "progress deadline" in str(caught.value)


def test_rollout_progress_reads_the_deployment_like_kubectl_rollout_status() -> None:
    def deployment(generation: int, **status: Any) -> k8s.V1Deployment:
        return k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name="d", generation=generation),
            spec=k8s.V1DeploymentSpec(
                replicas=2,
                selector=k8s.V1LabelSelector(match_labels={"a": "b"}),
                template=k8s.V1PodTemplateSpec(),
            ),
            status=k8s.V1DeploymentStatus(**status),
        )

    lagging = rollout_progress(deployment(3, observed_generation=2, updated_replicas=2))
    assert not lagging.ready and "generation 3 not observed" in lagging.detail
    old_left = rollout_progress(
        deployment(3, observed_generation=3, updated_replicas=2, replicas=3, available_replicas=3)
    )
    assert not old_left.ready and "1 old replicas" in old_left.detail
    unavailable = rollout_progress(
        deployment(3, observed_generation=3, updated_replicas=2, replicas=2, available_replicas=1)
    )
    assert not unavailable.ready and "1 of 2 updated replicas available" in unavailable.detail
    done = rollout_progress(
        deployment(3, observed_generation=3, updated_replicas=2, replicas=2, available_replicas=2)
    )
    assert done.ready
    failed = rollout_progress(
        deployment(
            3,
            observed_generation=3,
            conditions=[
                k8s.V1DeploymentCondition(
                    type="Progressing",
                    status="False",
                    reason="ProgressDeadlineExceeded",
                    message="ReplicaSet d-1 has timed out progressing.",
                )
            ],
        )
    )
    assert failed.failed and "progress deadline" in failed.detail


async def test_bad_inputs_are_refused_before_anything_runs(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    unpinned = deploy_input("api-gateway", "1.0.0", "a")
    unpinned.image = f"{REGISTRY}/go-coffee/api-gateway:1.0.0"
    foreign = deploy_input("api-gateway", "1.0.0", "a")
    foreign.image = "docker.io/someone/api-gateway@sha256:" + "a" * 64
    no_spec = deploy_input("api-gateway", "1.0.0", "a")
    no_spec.kubernetes = None
    for bad, kind, words in (
        (unpinned, "InvalidInput", "not pinned by digest"),
        (foreign, "InvalidInput", "not in the environment's registry"),
        (no_spec, "InvalidConfig", "no `kubernetes` spec"),
    ):
        with pytest.raises(ApplicationError) as caught:
            await target.deploy(bad)
        assert caught.value.type == kind and caught.value.non_retryable
        assert words in str(caught.value)
    assert fake.names("secrets", NS) == []


# ---- smoke test ---------------------------------------------------------------------------
async def test_smoke_test_goes_through_the_service_proxy_and_checks_the_version(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    await target.deploy(deploy_input("api-gateway", "1.0.0", "a"))
    smoke = SmokeTestInput("rel-k8s", ENV, "kubernetes", "api-gateway", "1.0.0", "/health", spec())
    result = await target.smoke_test(smoke)
    assert result.status_code == 200 and result.version_seen == "1.0.0"
    assert result.url.endswith("/api/v1/namespaces/staging/services/api-gateway:http/proxy/health")
    assert any(
        r.path == "/api/v1/namespaces/staging/services/api-gateway:http/proxy/health"
        for r in fake.requests
    )

    smoke.version = "9.9.9"
    with pytest.raises(ApplicationError) as caught:
        await target.smoke_test(smoke)
    assert caught.value.type == "SmokeTestFailed" and "'1.0.0'" in str(caught.value)

    fake.proxy_answers[(NS, "api-gateway")] = lambda path: (503, b"no endpoints")
    with pytest.raises(SmokeTestUnavailable):
        await target.smoke_test(smoke)
    fake.proxy_answers[(NS, "api-gateway")] = lambda path: (404, b"not here")
    with pytest.raises(ApplicationError) as caught:
        await target.smoke_test(smoke)
    assert caught.value.type == "SmokeTestFailed" and "404" in str(caught.value)


# ---- canary -------------------------------------------------------------------------------
def canary_input(version: str, char: str, env: dict[str, str] | None = None) -> CanaryDeployInput:
    return CanaryDeployInput(
        release_id="rel-k8s",
        environment=ENV,
        target="kubernetes",
        service="api-gateway",
        version=version,
        image=image("api-gateway", char),
        env=env or {},
        kubernetes=spec(),
    )


def weight_input(weight: Any, service: str = "api-gateway") -> SetWeightInput:
    return SetWeightInput("rel-k8s", ENV, "kubernetes", service, weight, spec())


def end_input() -> CanaryEndInput:
    return CanaryEndInput("rel-k8s", ENV, "kubernetes", "api-gateway", spec())


def ingress_weight(fake: FakeKubeApi) -> str | None:
    ingress = fake.get("ingresses", NS, "api-gateway-canary")
    return None if ingress is None else ingress["metadata"]["annotations"][CANARY_WEIGHT]


async def test_canary_starts_at_weight_0_weight_is_patched_and_promotion_makes_it_stable(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    await target.deploy(deploy_input("api-gateway", "1.0.0", "a"))
    state = await target.deploy_canary(canary_input("1.1.0", "b", {"FAULT_ERROR_RATE": "0"}))
    assert state.canary is not None and state.stable is not None
    assert state.canary.image == image("api-gateway", "b") and state.canary.version == "1.1.0"
    assert state.canary.env == {"FAULT_ERROR_RATE": "0"}
    assert state.stable.image == image("api-gateway", "a")
    assert state.canary_weight == 0 and ingress_weight(fake) == "0"
    assert ready(fake, "api-gateway-canary")
    # idempotent: the same canary again changes nothing (no new helm revision)
    revisions = len(helm_releases(fake))
    await target.deploy_canary(canary_input("1.1.0", "b", {"FAULT_ERROR_RATE": "0"}))
    assert len(helm_releases(fake)) == revisions

    before = len(fake.requests)
    state = await target.set_canary_weight(weight_input(30))
    assert state.canary_weight == 30 and ingress_weight(fake) == "30"
    patches = [r for r in fake.requests[before:] if r.method == "PATCH"]
    assert [(p.path, p.content_type) for p in patches] == [
        ("/apis/networking.k8s.io/v1/namespaces/staging/ingresses/api-gateway-canary", MERGE_PATCH)
    ]
    assert patches[0].body == {"metadata": {"annotations": {CANARY_WEIGHT: "30"}}}
    assert len(helm_releases(fake)) == revisions, "a weight change must not run helm"
    traffic = await target.describe_traffic(
        DescribeInput("rel-k8s", ENV, "kubernetes", "api-gateway", spec())
    )
    assert traffic.canary_weight == 30

    # a deploy of another service keeps the canary and its live weight
    await target.deploy(deploy_input("producer", "2.0.0", "c"))
    assert ingress_weight(fake) == "30"

    for bad in (101, -1, True, "50"):
        with pytest.raises(ApplicationError) as caught:
            await target.set_canary_weight(weight_input(bad))
        assert caught.value.type == "InvalidInput" and caught.value.non_retryable

    promoted = await target.promote_canary(end_input())
    assert promoted.canary is None and promoted.canary_weight == 0
    assert promoted.stable is not None
    assert (promoted.stable.image, promoted.stable.version, promoted.stable.env) == (
        image("api-gateway", "b"),
        "1.1.0",
        {"FAULT_ERROR_RATE": "0"},
    )
    assert pod_image(fake, "api-gateway") == image("api-gateway", "b")
    assert fake.get("deployments", NS, "api-gateway-canary") is None
    assert fake.get("ingresses", NS, "api-gateway-canary") is None
    assert pod_image(fake, "producer") == image("producer", "c")
    # promoting again is a no-op
    again = await target.promote_canary(end_input())
    assert again.stable == promoted.stable and again.canary is None


async def test_rollback_sets_weight_0_before_helm_removes_the_canary(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    await target.deploy(deploy_input("api-gateway", "1.0.0", "a"))
    await target.deploy_canary(canary_input("1.1.0", "b"))
    await target.set_canary_weight(weight_input(40))
    revisions = len(helm_releases(fake))
    before = len(fake.requests)

    state = await target.rollback_canary(end_input())

    assert state.canary is None and state.canary_weight == 0
    assert state.stable is not None and state.stable.image == image("api-gateway", "a")
    log = fake.requests[before:]
    patch = next(
        n
        for n, r in enumerate(log)
        if r.method == "PATCH" and "ingresses/api-gateway-canary" in r.path
    )
    assert log[patch].body == {"metadata": {"annotations": {CANARY_WEIGHT: "0"}}}
    helm_writes = [
        n for n, r in enumerate(log) if r.method in ("POST", "PUT") and "/secrets" in r.path
    ]
    deletes = [n for n, r in enumerate(log) if r.method == "DELETE" and "canary" in r.path]
    assert helm_writes and deletes, "helm did not run"
    assert patch < min(helm_writes) and patch < min(deletes), "weight 0 must come first"
    assert len(helm_releases(fake)) == revisions + 1
    assert fake.get("deployments", NS, "api-gateway-canary") is None
    assert pod_image(fake, "api-gateway") == image("api-gateway", "a")

    # no canary: a no-op (no helm run, no patch)
    before = len(fake.requests)
    await target.rollback_canary(end_input())
    assert not [r for r in fake.requests[before:] if r.method in ("PATCH", "POST", "DELETE")]


async def test_canary_of_a_service_without_canary_routing_is_refused(
    target: KubernetesTarget,
) -> None:
    bad = canary_input("1.1.0", "b")
    bad.service, bad.image = "producer", image("producer", "b")
    with pytest.raises(ApplicationError) as caught:
        await target.deploy_canary(bad)
    assert caught.value.type == "CanaryUnsupported" and caught.value.non_retryable
    assert "producer" in str(caught.value) and "api-gateway" in str(caught.value)
    with pytest.raises(ApplicationError) as caught:
        await target.set_canary_weight(weight_input(10, service="producer"))
    assert caught.value.type == "CanaryUnsupported"


async def test_set_weight_without_a_canary_is_refused(target: KubernetesTarget) -> None:
    await target.deploy(deploy_input("api-gateway", "1.0.0", "a"))
    with pytest.raises(ApplicationError) as caught:
        await target.set_canary_weight(weight_input(10))
    assert caught.value.type == "InvalidInput" and "deploy_canary" in str(caught.value)


# ---- restore ------------------------------------------------------------------------------
async def test_restore_rolls_back_with_helm_when_only_this_service_changed(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    first = await target.deploy(deploy_input("api-gateway", "1.0.0", "a", {"A": "1"}))
    await target.deploy(deploy_input("api-gateway", "1.1.0", "b"))
    restored = await target.restore(
        RestoreInput("rel-k8s", ENV, "kubernetes", "api-gateway", first.deployed, spec())
    )
    assert restored.running is not None and restored.running.image == image("api-gateway", "a")
    assert pod_image(fake, "api-gateway") == image("api-gateway", "a")
    assert helm_releases(fake)[-1]["info"]["description"] == "Rollback to 1"
    assert ready(fake, "api-gateway")
    described = await target.describe(
        DescribeInput("rel-k8s", ENV, "kubernetes", "api-gateway", spec())
    )
    assert described.running is not None and described.running.env == {"A": "1"}


async def test_restore_upgrades_this_service_alone_when_others_changed_since(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    first = await target.deploy(deploy_input("api-gateway", "1.0.0", "a"))
    await target.deploy(deploy_input("api-gateway", "1.1.0", "b"))
    await target.deploy(deploy_input("producer", "2.0.0", "c"))
    await target.restore(
        RestoreInput("rel-k8s", ENV, "kubernetes", "api-gateway", first.deployed, spec())
    )
    assert pod_image(fake, "api-gateway") == image("api-gateway", "a")
    assert pod_image(fake, "producer") == image("producer", "c"), "restore undid producer"
    assert not helm_releases(fake)[-1]["info"]["description"].startswith("Rollback")


async def test_restore_to_nothing_removes_the_service(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    await target.deploy(deploy_input("api-gateway", "1.0.0", "a"))
    await target.deploy(deploy_input("producer", "2.0.0", "c"))
    result = await target.restore(
        RestoreInput("rel-k8s", ENV, "kubernetes", "producer", None, spec())
    )
    assert result.running is None
    assert fake.get("deployments", NS, "producer") is None
    assert pod_image(fake, "api-gateway") == image("api-gateway", "a")
    described = await target.describe(
        DescribeInput("rel-k8s", ENV, "kubernetes", "producer", spec())
    )
    assert described.running is None
    # the ingress service too: its Ingress goes with it instead of failing the chart
    await target.restore(RestoreInput("rel-k8s", ENV, "kubernetes", "api-gateway", None, spec()))
    assert fake.get("deployments", NS, "api-gateway") is None
    assert fake.get("ingresses", NS, "api-gateway") is None
    # and a later deploy brings both back
    await target.deploy(deploy_input("api-gateway", "1.0.0", "a"))
    assert fake.get("ingresses", NS, "api-gateway") is not None


# ---- the helm arguments, checked with helm template ---------------------------------------
async def test_the_upgrade_arguments_render_what_the_target_means(
    tmp_path: Path, target: KubernetesTarget
) -> None:
    """The values files and --set-literal pairs the target gives helm upgrade, given to
    `helm template`: the digest, the canary objects, and no canary after rollback."""
    await target.deploy(deploy_input("api-gateway", "1.0.0", "a"))
    await target.deploy_canary(canary_input("1.1.0", "b"))
    state_dir = target.settings.release_dir("rel-k8s") / "deploy"
    helm = Helm(log_path=tmp_path / "template.log")

    async def render(step: str) -> dict[tuple[str, str], dict[str, Any]]:
        state = state_dir / f"{ENV}-api-gateway-{step}.values.json"
        objects = await helm.template(
            "go-coffee",
            target.chart(spec()),
            namespace=NS,
            values=target.values_args(spec(), state),
        )
        return {(o["kind"], o["metadata"]["name"]): o for o in objects}

    canary = await render("canary")
    container = canary[("Deployment", "api-gateway-canary")]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["image"] == image("api-gateway", "b")
    stable = canary[("Deployment", "api-gateway")]["spec"]["template"]["spec"]["containers"][0]
    assert stable["image"] == image("api-gateway", "a")
    annotations = canary[("Ingress", "api-gateway-canary")]["metadata"]["annotations"]
    assert annotations[CANARY_WEIGHT] == "0"
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"

    await target.rollback_canary(end_input())
    ended = await render("end-canary")
    assert ("Deployment", "api-gateway-canary") not in ended
    assert ("Ingress", "api-gateway-canary") not in ended
    stable = ended[("Deployment", "api-gateway")]["spec"]["template"]["spec"]["containers"][0]
    assert stable["image"] == image("api-gateway", "a")


async def test_the_deploy_activities_dispatch_to_the_kubernetes_target(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    activities = DeployActivities({"kubernetes": target})
    result = await activities.deploy_service(deploy_input("api-gateway", "1.0.0", "a"))
    assert result.deployed.image == image("api-gateway", "a")
    described = await activities.describe_service(
        DescribeInput("rel-k8s", ENV, "kubernetes", "api-gateway", spec())
    )
    assert described.running == result.deployed


async def test_concurrent_deploys_of_two_services_keep_both(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    """Each upgrade reads and writes the release's values: the target serialises them."""
    await asyncio.gather(
        target.deploy(deploy_input("api-gateway", "1.0.0", "a")),
        target.deploy(deploy_input("producer", "2.0.0", "c")),
    )
    assert pod_image(fake, "api-gateway") == image("api-gateway", "a")
    assert pod_image(fake, "producer") == image("producer", "c")


async def test_restore_to_a_release_installed_by_hand_rolls_back_to_it(
    tmp_path: Path, target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    """The chart installed before brewline (image by tag): what describe reports is not
    pinned, and restore finds the revision that ran it."""
    kubeconfig = tmp_path / "fake.kubeconfig"
    by_hand = Helm(
        log_path=tmp_path / "by-hand.log", kubeconfig=kubeconfig, openapi_validation=False
    )
    await by_hand.upgrade_install(
        "go-coffee",
        REPO_ROOT / "helm" / "go-coffee",
        namespace=NS,
        values=target.values_args(spec(), None),  # the same files and infra outputs
    )
    before = await target.describe(
        DescribeInput("rel-k8s", ENV, "kubernetes", "api-gateway", spec())
    )
    assert before.running is not None and "@" not in before.running.image
    await target.deploy(deploy_input("api-gateway", "1.1.0", "b"))
    await target.restore(
        RestoreInput("rel-k8s", ENV, "kubernetes", "api-gateway", before.running, spec())
    )
    assert pod_image(fake, "api-gateway") == before.running.image
    assert helm_releases(fake)[-1]["info"]["description"] == "Rollback to 1"


async def test_a_canary_of_another_listed_service_runs_without_the_default_one(
    target: KubernetesTarget, fake: FakeKubeApi
) -> None:
    both = spec(canary_services=["api-gateway", "producer"])
    await target.deploy(deploy_input("producer", "2.0.0", "c", kubernetes=both))
    state = await target.deploy_canary(
        CanaryDeployInput(
            "rel-k8s",
            ENV,
            "kubernetes",
            "producer",
            "2.1.0",
            image("producer", "d"),
            kubernetes=both,
        )
    )
    assert state.canary is not None and state.canary.image == image("producer", "d")
    assert pod_image(fake, "producer-canary") == image("producer", "d")
    assert fake.get("deployments", NS, "api-gateway-canary") is None
    # no canary Ingress for a service the ingress does not route to: no weight to set
    with pytest.raises(ApplicationError) as caught:
        await target.set_canary_weight(
            SetWeightInput("rel-k8s", ENV, "kubernetes", "producer", 10, both)
        )
    assert caught.value.type == "InvalidInput"
    ended = await target.rollback_canary(
        CanaryEndInput("rel-k8s", ENV, "kubernetes", "producer", both)
    )
    assert ended.canary is None
    assert fake.get("deployments", NS, "producer-canary") is None
