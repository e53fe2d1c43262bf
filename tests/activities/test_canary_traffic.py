"""Canary traffic on the local target with the real registry, Traefik and podman.

Stable and canary are real containers of the example service built at different
versions; requests go through the environment's Traefik entry point, and the
version in each answer says who served it. Traefik's weighted round robin splits
sequential requests exactly, so the shares are asserted tightly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.deploy import DeployActivities
from activities.load import LoadActivities
from activities.local_target import LocalTarget, ServiceNotReady
from activities.prometheus import PrometheusActivities
from activities.scrape_targets import ScrapeTargets
from activities.traefik import TraefikRoutes
from brewline.model import (
    CanaryDeployInput,
    CanaryEndInput,
    CountWindowInput,
    DeployInput,
    Deployment,
    DescribeInput,
    LoadInput,
    RestoreInput,
    SetWeightInput,
    TrafficState,
)
from brewline.platform import PlatformSettings, container_env, container_storage_args
from local.platform import LocalPlatform, Traefik
from tests.activities.test_local_target import SERVICE, containers, get, run, unique_service
from tests.local.images import TestImages

RELEASE = "rel-test-canary"
TARGET = "local"


@pytest.fixture(scope="module")
def images(
    local_platform: PlatformSettings, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Built once: the service at v1, v2 and v3, and one image that never gets ready."""
    builder = PlatformSettings(home=str(tmp_path_factory.mktemp("canary-image-builder")))
    build = TestImages(
        builder, local_platform.registry_address, tmp_path_factory.mktemp("canary-contexts")
    )
    return {
        "v1": build.service(SERVICE, "v1"),
        "v2": build.service(SERVICE, "v2"),
        "v3": build.service(SERVICE, "v3"),
        "unready": build.broken("unready"),
    }


@pytest.fixture(scope="module")
def prometheus(local_platform: PlatformSettings) -> Iterator[PlatformSettings]:
    """Prometheus of the local platform in the same home, for this module; stopped by PID."""
    platform = LocalPlatform(local_platform)
    platform.up(["prometheus"], free_ports=True)
    pid = platform.running_pid("prometheus")
    assert pid is not None
    try:
        yield local_platform
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while platform.running_pid("prometheus") is not None:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.1)


def promql(settings: PlatformSettings, query: str) -> float | None:
    """Value of a one-series instant query; None when Prometheus has no sample for it."""
    status, body = get(
        f"{settings.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    )
    assert status == 200, body
    result = body["data"]["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


async def eventually_equal(settings: PlatformSettings, query: str, expected: float) -> None:
    """Poll Prometheus (scrapes every second) until `query` reads `expected`."""
    deadline = time.monotonic() + 30
    seen = None
    while seen != expected:
        assert time.monotonic() < deadline, f"{query} read {seen}, expected {expected}"
        await asyncio.sleep(0.2)
        seen = promql(settings, query)


class Canary:
    """The activities for one environment+service, as a workflow would call them."""

    def __init__(self, settings: PlatformSettings, env: str, service: str, **options: Any):
        self.settings = settings
        self.acts = DeployActivities({TARGET: LocalTarget(settings, **options)})
        self.env, self.service = env, service
        self.endpoint = f"{settings.entrypoint_url(env)}/{service}"

    def deployment(self, version: str, image: str) -> Deployment:
        return Deployment(self.env, self.service, version, image, self.endpoint)

    async def deploy(self, version: str, image: str) -> Any:
        return await run(
            self.acts.deploy_service,
            DeployInput(RELEASE, self.env, TARGET, self.service, version, image),
        )

    async def deploy_canary(self, version: str, image: str) -> TrafficState:
        return await run(
            self.acts.deploy_canary,
            CanaryDeployInput(RELEASE, self.env, TARGET, self.service, version, image),
        )

    async def set_weight(self, weight: int) -> TrafficState:
        return await run(
            self.acts.set_canary_weight,
            SetWeightInput(RELEASE, self.env, TARGET, self.service, weight),
        )

    async def promote(self) -> TrafficState:
        return await run(
            self.acts.promote_canary, CanaryEndInput(RELEASE, self.env, TARGET, self.service)
        )

    async def rollback(self) -> TrafficState:
        return await run(
            self.acts.rollback_canary, CanaryEndInput(RELEASE, self.env, TARGET, self.service)
        )

    async def traffic(self) -> TrafficState:
        return await run(
            self.acts.describe_traffic, DescribeInput(RELEASE, self.env, TARGET, self.service)
        )

    async def describe(self) -> Deployment | None:
        described = await run(
            self.acts.describe_service, DescribeInput(RELEASE, self.env, TARGET, self.service)
        )
        running: Deployment | None = described.running
        return running

    async def remove(self) -> None:
        await run(
            self.acts.restore_service, RestoreInput(RELEASE, self.env, TARGET, self.service, None)
        )

    def versions(self, requests: int) -> Counter[str]:
        """Who answered `requests` sequential GETs of /health through Traefik."""
        seen: Counter[str] = Counter()
        for _ in range(requests):
            status, body = get(f"{self.endpoint}/health")
            seen[body.get("version", f"HTTP {status}") if status == 200 else f"HTTP {status}"] += 1
        return seen

    def containers(self) -> list[dict[str, Any]]:
        return containers(self.settings, self.env, self.service)

    def tracks(self) -> dict[str, str]:
        """Container version -> its brewline.track label."""
        return {
            c["Labels"]["brewline.version"]: c["Labels"].get("brewline.track", "")
            for c in self.containers()
        }

    def applied_weights(self) -> dict[str, int]:
        """Leaf service -> weight, as Traefik's API shows the weighted service."""
        status, body = get(
            f"{self.settings.traefik_api_url}/api/http/services/{self.env}-{self.service}@file"
        )
        assert status == 200, body
        return {leaf["name"]: leaf["weight"] for leaf in body["weighted"]["services"]}

    def scraped(self, track: str) -> dict[str, Any] | None:
        return ScrapeTargets(self.settings).read(self.env, self.service, track)


def state(
    canary: Canary, stable: Deployment | None, running: Deployment | None, weight: int
) -> TrafficState:
    return TrafficState(canary.env, canary.service, stable, running, weight)


def port_of(container: dict[str, Any]) -> str:
    return str(container["Labels"]["brewline.port"])


async def test_canary_steps_up_is_promoted_and_a_second_one_is_rolled_back(
    local_platform: PlatformSettings, images: dict[str, str]
) -> None:
    c = Canary(local_platform, "production", unique_service())
    v1, v2, v3 = (c.deployment(v, images[v]) for v in ("v1", "v2", "v3"))
    stable_leaf, canary_leaf = f"{c.env}-{c.service}-stable", f"{c.env}-{c.service}-canary"
    await c.deploy("v1", images["v1"])
    assert await c.traffic() == state(c, v1, None, 0)
    assert c.applied_weights() == {stable_leaf: 100}
    assert c.scraped("stable") is not None

    # ---- canary v2 beside stable v1, at weight 0 -------------------------------------------
    started = await c.deploy_canary("v2", images["v2"])
    assert started == state(c, v1, v2, 0)
    assert c.tracks() == {"v1": "stable", "v2": "canary"}
    assert c.applied_weights() == {stable_leaf: 100, canary_leaf: 0}
    assert c.versions(100) == {"v1": 100}
    ids = sorted(container["Id"] for container in c.containers())
    assert await c.deploy_canary("v2", images["v2"]) == started  # idempotent
    assert sorted(container["Id"] for container in c.containers()) == ids
    by_version = {ct["Labels"]["brewline.version"]: ct for ct in c.containers()}
    stable_target, canary_target = c.scraped("stable"), c.scraped("canary")
    assert stable_target is not None and canary_target is not None
    assert stable_target["targets"] == [f"127.0.0.1:{port_of(by_version['v1'])}"]
    assert canary_target["targets"] == [f"127.0.0.1:{port_of(by_version['v2'])}"]
    assert canary_target["labels"]["version"] == "v2"
    assert canary_target["labels"]["track"] == "canary"

    # ---- 20% to the canary ------------------------------------------------------------------
    assert await c.set_weight(20) == state(c, v1, v2, 20)
    assert c.applied_weights() == {stable_leaf: 80, canary_leaf: 20}
    split = c.versions(500)
    assert set(split) == {"v1", "v2"}
    assert 98 <= split["v2"] <= 102, split  # exactly 100 when nothing else interleaves
    assert await c.set_weight(20) == state(c, v1, v2, 20)  # idempotent
    assert await c.traffic() == state(c, v1, v2, 20)
    assert await c.describe() == v1  # describe_service still reports stable

    # ---- promote: v2 becomes stable at 100%, v1 goes ----------------------------------------
    promoted = await c.promote()
    assert promoted == state(c, v2, None, 0)
    assert c.versions(100) == {"v2": 100}
    [only] = c.containers()
    assert only["Labels"]["brewline.version"] == "v2"
    assert only["Labels"]["brewline.track"] == "stable"
    assert only["Names"] == [f"brewline-{c.env}-{c.service}-{images['v2'][-64:][:12]}"]
    assert await c.describe() == v2
    assert c.applied_weights() == {stable_leaf: 100}
    assert c.scraped("canary") is None
    stable_target = c.scraped("stable")
    assert stable_target is not None
    assert stable_target["labels"]["version"] == "v2"
    assert stable_target["targets"] == [f"127.0.0.1:{port_of(only)}"]
    assert await c.promote() == promoted  # promoting twice is fine
    assert [ct["Id"] for ct in c.containers()] == [only["Id"]]

    # ---- canary v3 rolled back: v2 untouched -----------------------------------------------
    assert await c.deploy_canary("v3", images["v3"]) == state(c, v2, v3, 0)
    assert await c.set_weight(50) == state(c, v2, v3, 50)
    assert c.versions(100) == {"v2": 50, "v3": 50}
    rolled_back = await c.rollback()
    assert rolled_back == state(c, v2, None, 0)
    assert c.versions(100) == {"v2": 100}
    assert [ct["Id"] for ct in c.containers()] == [only["Id"]]  # stable untouched
    assert c.applied_weights() == {stable_leaf: 100}
    assert c.scraped("canary") is None
    assert await c.rollback() == rolled_back  # idempotent: no canary, a no-op
    assert [ct["Id"] for ct in c.containers()] == [only["Id"]]

    await c.remove()
    assert c.containers() == []
    assert c.scraped("stable") is None


async def test_weights_out_of_range_and_a_missing_canary_are_refused(
    local_platform: PlatformSettings, images: dict[str, str]
) -> None:
    c = Canary(local_platform, "staging", unique_service())
    with pytest.raises(ApplicationError) as no_stable:
        await c.deploy_canary("v2", images["v2"])
    assert no_stable.value.type == "InvalidInput" and no_stable.value.non_retryable
    assert "deploy_service" in str(no_stable.value)
    assert c.containers() == []

    await c.deploy("v1", images["v1"])
    for weight in (-1, 101):
        with pytest.raises(ApplicationError) as out_of_range:
            await c.set_weight(weight)
        assert out_of_range.value.type == "InvalidInput"
        assert out_of_range.value.non_retryable
        assert f"weight {weight}" in str(out_of_range.value)
    with pytest.raises(ApplicationError) as no_canary:
        await c.set_weight(10)
    assert no_canary.value.type == "InvalidInput" and no_canary.value.non_retryable
    assert "deploy_canary" in str(no_canary.value)

    # promote and rollback without a canary change nothing
    v1 = c.deployment("v1", images["v1"])
    [before] = c.containers()
    assert await c.promote() == state(c, v1, None, 0)
    assert await c.rollback() == state(c, v1, None, 0)
    assert [ct["Id"] for ct in c.containers()] == [before["Id"]]
    await c.remove()


async def test_a_canary_that_never_gets_ready_leaves_stable_serving_alone(
    local_platform: PlatformSettings, images: dict[str, str]
) -> None:
    c = Canary(local_platform, "production", unique_service(), ready_timeout=3)
    await c.deploy("v1", images["v1"])
    route = TraefikRoutes(local_platform.traefik_dynamic_dir, local_platform.traefik_api_url)
    before = route.path(c.env, c.service).read_text()

    with pytest.raises(ServiceNotReady) as caught:
        await c.deploy_canary("v2", images["unready"])
    assert "was not ready within 3s" in str(caught.value)
    assert "stable keeps serving" in str(caught.value)
    assert route.path(c.env, c.service).read_text() == before
    assert c.tracks() == {"v1": "stable"}
    assert c.scraped("canary") is None
    assert await c.traffic() == state(c, c.deployment("v1", images["v1"]), None, 0)
    await c.remove()


async def test_a_plain_deploy_replaces_stable_and_keeps_the_canary(
    local_platform: PlatformSettings, images: dict[str, str]
) -> None:
    c = Canary(local_platform, "staging", unique_service())
    v2, v3 = c.deployment("v2", images["v2"]), c.deployment("v3", images["v3"])
    await c.deploy("v1", images["v1"])
    await c.deploy_canary("v2", images["v2"])
    await c.set_weight(20)

    result = await c.deploy("v3", images["v3"])
    assert result.changed is True
    assert result.deployed == v3
    assert await c.traffic() == state(c, v3, v2, 20)
    assert c.tracks() == {"v3": "stable", "v2": "canary"}
    assert c.versions(100) == {"v3": 80, "v2": 20}

    await c.remove()  # removes the canary too
    assert c.containers() == []
    assert c.scraped("stable") is None and c.scraped("canary") is None
    assert get(f"{c.endpoint}/health")[0] == 404


async def test_the_release_container_env_reaches_canary_promotion_and_restore(
    local_platform: PlatformSettings, images: dict[str, str]
) -> None:
    """A release's container env (here: every business request fails) is what the
    containers run with, survives promotion, and a restore puts the old env back."""
    c = Canary(local_platform, "production", unique_service())
    faulty = {"FAULT_ERROR_RATE": "1"}
    await c.deploy("v1", images["v1"])
    v1 = c.deployment("v1", images["v1"])
    await run(
        c.acts.deploy_canary,
        CanaryDeployInput(RELEASE, c.env, TARGET, c.service, "v2", images["v2"], env=faulty),
    )
    v2_faulty = Deployment(c.env, c.service, "v2", images["v2"], c.endpoint, faulty)
    assert await c.set_weight(100) == state(c, v1, v2_faulty, 100)
    status, body = get(f"{c.endpoint}/orders/unknown")
    assert status == 500 and "FAULT_ERROR_RATE" in body["error"], body
    assert c.versions(5) == {"v2": 5}  # /health never gets the injected faults

    promoted = await c.promote()
    assert promoted == state(c, v2_faulty, None, 0)
    [only] = c.containers()
    assert json.loads(only["Labels"]["brewline.env"]) == faulty
    assert get(f"{c.endpoint}/orders/unknown")[0] == 500
    # the same image without the env is another deployment: deploying it changes stable
    assert (await c.deploy("v2", images["v2"])).changed is True
    assert get(f"{c.endpoint}/orders/unknown")[0] == 400  # the real answer: a bad order id

    restored = await run(
        c.acts.restore_service, RestoreInput(RELEASE, c.env, TARGET, c.service, v2_faulty)
    )
    assert restored.running == v2_faulty
    assert get(f"{c.endpoint}/orders/unknown")[0] == 500
    await c.remove()


async def test_a_canary_gone_behind_our_back_takes_no_traffic_and_rolls_back(
    local_platform: PlatformSettings, images: dict[str, str]
) -> None:
    c = Canary(local_platform, "staging", unique_service())
    v1 = c.deployment("v1", images["v1"])
    await c.deploy("v1", images["v1"])
    await c.deploy_canary("v2", images["v2"])
    await c.set_weight(10)
    [canary] = [ct for ct in c.containers() if ct["Labels"]["brewline.track"] == "canary"]
    subprocess.run(
        ["podman", *container_storage_args(local_platform), "rm", "--force", canary["Id"]],
        env=container_env(local_platform),
        capture_output=True,
        check=True,
        timeout=60,
    )

    assert await c.traffic() == state(c, v1, None, 10)  # the route still sends it 10%
    with pytest.raises(ApplicationError) as caught:
        await c.set_weight(50)
    assert caught.value.type == "InvalidInput"
    assert await c.rollback() == state(c, v1, None, 0)
    assert c.versions(50) == {"v1": 50}
    assert c.scraped("canary") is None
    route = json.dumps(c.applied_weights())
    assert "canary" not in route
    await c.remove()


async def test_stable_and_canary_have_metrics_of_their_own_under_load(
    prometheus: PlatformSettings, images: dict[str, str]
) -> None:
    settings = prometheus
    c = Canary(settings, "production", unique_service())
    await c.deploy("v1", images["v1"])
    await c.deploy_canary("v2", images["v2"])
    await c.set_weight(20)

    load = await run(
        LoadActivities(settings).generate_load,
        LoadInput(RELEASE, c.env, c.service, "/health", 50, 2, 2),
    )
    assert load.status_codes == {"200": load.requests}
    assert load.requests >= 80

    # Traefik counts each leaf apart; its weighted round robin splits exactly (+-1)
    def leaf_requests(track: str) -> str:
        leaf = f"{c.env}-{c.service}-{track}@file"
        return f'sum(traefik_service_requests_total{{service="{leaf}"}})'

    await eventually_equal(
        settings, f"{leaf_requests('stable')} + {leaf_requests('canary')}", load.requests
    )
    canary_requests = promql(settings, leaf_requests("canary"))
    assert canary_requests is not None
    assert abs(canary_requests - load.requests * 0.2) <= 1

    # each container is scraped as its track, with its version
    def build_info(track: str, version: str) -> str:
        return (
            f'sum(build_info{{job="services",service="{c.service}",track="{track}",'
            f'version="{version}",environment="{c.env}"}})'
        )

    await eventually_equal(settings, build_info("stable", "v1"), 1)
    await eventually_equal(settings, build_info("canary", "v2"), 1)

    # after the rollback the canary is no longer a target
    await c.rollback()
    await eventually_equal(settings, f'count(up{{job="services",service="{c.service}"}})', 1)
    assert promql(settings, f'up{{job="services",service="{c.service}",track="stable"}}') == 1
    await c.remove()


async def test_count_window_reads_both_arms_errors_and_slow_requests_from_the_router(
    prometheus: PlatformSettings, images: dict[str, str]
) -> None:
    """The counts a statistical judge works on, from real Traefik counters in Prometheus:
    a canary failing half of its business requests beside a healthy stable."""
    settings = prometheus
    c = Canary(settings, "production", unique_service())
    await c.deploy("v1", images["v1"])
    await run(
        c.acts.deploy_canary,
        CanaryDeployInput(
            RELEASE, c.env, TARGET, c.service, "v2", images["v2"], env={"FAULT_ERROR_RATE": "0.5"}
        ),
    )
    await c.set_weight(50)
    # GET of an order that does not exist: 400 from a healthy producer, 500 when faulted
    load = await run(
        LoadActivities(settings).generate_load,
        LoadInput(RELEASE, c.env, c.service, "/orders/unknown", 50, 2, 3),
    )
    assert load.requests >= 100
    leaf = f"{c.env}-{c.service}"
    both = (
        f'sum(traefik_service_requests_total{{service=~"{leaf}-stable@file|{leaf}-canary@file"}})'
    )
    await eventually_equal(settings, both, load.requests)
    await asyncio.sleep(2)  # one more scrape, so increase() sees the counters flat at the end

    counts = await run(
        PrometheusActivities(settings).count_window,
        CountWindowInput(f"{leaf}-canary@file", f"{leaf}-stable@file", 60),
    )
    assert counts.error == ""
    # exact counter differences: every request of the run, split exactly by the weights
    assert counts.canary_requests + counts.stable_requests == load.requests, counts
    assert abs(counts.canary_requests - load.requests / 2) <= 1, counts
    assert counts.stable_errors == 0
    assert 0.3 * counts.canary_requests <= counts.canary_errors <= 0.7 * counts.canary_requests
    # slow = slower than the bucket edge holding 99% of stable's answers
    assert counts.latency_bound_seconds in local_platform_buckets()
    assert 0 <= counts.stable_slow <= 0.05 * counts.stable_requests + 1
    assert 0 <= counts.canary_slow <= counts.canary_requests

    unknown = await run(
        PrometheusActivities(settings).count_window,
        CountWindowInput(f"{leaf}-canary@file", 'x"} or vector(1) #', 60),
    )
    assert unknown.error == "router service 'x\"} or vector(1) #' is not a service name"
    await c.rollback()
    await c.remove()


def local_platform_buckets() -> list[float]:
    return list(Traefik.buckets)
