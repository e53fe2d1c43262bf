"""The local deploy target with the real registry, Traefik and podman (free ports, temp home).

Every test deploys its own service name, so tests do not see each other's containers
or routes; requests go through the environment's Traefik entry point, as users do.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.deploy import DeployActivities
from activities.local_target import LocalTarget, ServiceNotReady
from activities.scrape_targets import ScrapeTargets
from activities.traefik import Route, TraefikRoutes
from brewline.model import (
    DeployInput,
    Deployment,
    DescribeInput,
    RestoreInput,
    SmokeTestInput,
)
from brewline.platform import PlatformSettings, container_env, container_storage_args
from tests.local.images import TestImages

SERVICE = "producer"  # the example service the images are built from
RELEASE = "rel-test-local-target"

T = TypeVar("T")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def images(
    local_platform: PlatformSettings, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Built once: the service at v1 and v2, and two images that never get ready."""
    builder = PlatformSettings(home=str(tmp_path_factory.mktemp("image-builder")))
    build = TestImages(
        builder, local_platform.registry_address, tmp_path_factory.mktemp("contexts")
    )
    return {
        "v1": build.service(SERVICE, "v1"),
        "v2": build.service(SERVICE, "v2"),
        "unready": build.broken("unready"),
        "exit": build.broken("exit"),
    }


def unique_service() -> str:
    return f"{SERVICE}-{uuid.uuid4().hex[:6]}"


async def run(
    fn: Callable[[Any], Awaitable[T]], arg: Any, heartbeats: list[Any] | None = None
) -> T:
    """Run an activity method in an activity context, as a worker would."""
    env = ActivityEnvironment()
    if heartbeats is not None:
        env.on_heartbeat = lambda *details: heartbeats.extend(details)
    return await env.run(fn, arg)


def deploy_input(env: str, service: str, version: str, image: str) -> DeployInput:
    return DeployInput(RELEASE, env, "local", service, version, image)


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with _OPENER.open(url, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body)
        except ValueError:
            return err.code, {"body": body.decode(errors="replace")}


def containers(settings: PlatformSettings, env: str, service: str) -> list[dict[str, Any]]:
    """What podman itself says runs for env/service (not through the code under test)."""
    listing = subprocess.run(
        [
            "podman",
            *container_storage_args(settings),
            "ps",
            "--all",
            "--format",
            "json",
            "--filter",
            f"label=brewline.environment={env}",
            "--filter",
            f"label=brewline.service={service}",
        ],
        env=container_env(settings),
        capture_output=True,
        check=True,
        timeout=60,
    )
    return list(json.loads(listing.stdout or b"[]"))


def route_file(settings: PlatformSettings, env: str, service: str) -> Path:
    return TraefikRoutes(settings.traefik_dynamic_dir, settings.traefik_api_url).path(env, service)


async def test_deploy_is_idempotent_switches_versions_and_restores(
    local_platform: PlatformSettings, images: dict[str, str]
) -> None:
    env, service = "staging", unique_service()
    acts = DeployActivities({"local": LocalTarget(local_platform)})
    endpoint = f"{local_platform.entrypoint_url(env)}/{service}"

    first = await run(acts.deploy_service, deploy_input(env, service, "v1", images["v1"]))
    assert first.changed is True
    assert first.previous is None
    assert first.deployed == Deployment(env, service, "v1", images["v1"], endpoint)
    smoke = await run(acts.smoke_test, SmokeTestInput(RELEASE, env, "local", service, "v1"))
    assert (smoke.url, smoke.status_code, smoke.version_seen) == (f"{endpoint}/health", 200, "v1")
    [v1_container] = containers(local_platform, env, service)
    assert v1_container["State"] == "running"
    assert v1_container["Labels"]["brewline.version"] == "v1"
    assert v1_container["Labels"]["brewline.release"] == RELEASE
    assert v1_container["Names"] == [f"brewline-{env}-{service}-{images['v1'][-64:][:12]}"]

    again = await run(acts.deploy_service, deploy_input(env, service, "v1", images["v1"]))
    assert again.changed is False
    assert again.deployed == first.deployed
    assert [c["Id"] for c in containers(local_platform, env, service)] == [v1_container["Id"]]

    described = await run(acts.describe_service, DescribeInput(RELEASE, env, "local", service))
    assert described.running == first.deployed

    second = await run(acts.deploy_service, deploy_input(env, service, "v2", images["v2"]))
    assert second.changed is True
    assert second.previous == first.deployed
    assert get(f"{endpoint}/health") == (200, {"status": "ok", "service": SERVICE, "version": "v2"})
    [v2_container] = containers(local_platform, env, service)
    assert v2_container["Id"] != v1_container["Id"]
    assert v2_container["Labels"]["brewline.version"] == "v2"

    restored = await run(
        acts.restore_service, RestoreInput(RELEASE, env, "local", service, previous=second.previous)
    )
    assert restored.running == first.deployed
    smoke = await run(acts.smoke_test, SmokeTestInput(RELEASE, env, "local", service, "v1"))
    assert smoke.version_seen == "v1"
    assert [c["Labels"]["brewline.version"] for c in containers(local_platform, env, service)] == [
        "v1"
    ]

    removed = await run(acts.restore_service, RestoreInput(RELEASE, env, "local", service, None))
    assert removed.running is None
    assert get(f"{endpoint}/health")[0] == 404  # Traefik has no route for it any more
    assert containers(local_platform, env, service) == []
    assert not route_file(local_platform, env, service).exists()
    # restoring "nothing" again is harmless
    again_removed = await run(
        acts.restore_service, RestoreInput(RELEASE, env, "local", service, None)
    )
    assert again_removed.running is None


@pytest.mark.parametrize(
    ("broken", "why"),
    [("unready", "was not ready within 3s"), ("exit", "exited with code 3")],
)
async def test_container_that_never_gets_ready_leaves_the_old_version_serving(
    local_platform: PlatformSettings, images: dict[str, str], broken: str, why: str
) -> None:
    env, service = "production", unique_service()
    acts = DeployActivities({"local": LocalTarget(local_platform, ready_timeout=3)})
    endpoint = f"{local_platform.entrypoint_url(env)}/{service}"
    await run(acts.deploy_service, deploy_input(env, service, "v1", images["v1"]))
    route_before = route_file(local_platform, env, service).read_text()

    heartbeats: list[Any] = []
    with pytest.raises(ServiceNotReady) as caught:
        await run(acts.deploy_service, deploy_input(env, service, "v2", images[broken]), heartbeats)
    message = str(caught.value)
    assert why in message
    assert f"brewline-{env}-{service}-{images[broken][-64:][:12]}" in message
    assert "brokenservice:" in message  # the container's last log lines
    if broken == "unready":
        assert heartbeats  # the 3 s wait told Temporal the activity was alive

    assert get(f"{endpoint}/health")[1]["version"] == "v1"
    assert route_file(local_platform, env, service).read_text() == route_before
    assert [c["Labels"]["brewline.version"] for c in containers(local_platform, env, service)] == [
        "v1"
    ]
    await run(acts.restore_service, RestoreInput(RELEASE, env, "local", service, None))


async def test_smoke_test_of_wrong_version_or_missing_route_fails_for_good(
    local_platform: PlatformSettings, images: dict[str, str]
) -> None:
    env, service = "staging", unique_service()
    acts = DeployActivities({"local": LocalTarget(local_platform)})
    await run(acts.deploy_service, deploy_input(env, service, "v1", images["v1"]))

    with pytest.raises(ApplicationError) as wrong:
        await run(acts.smoke_test, SmokeTestInput(RELEASE, env, "local", service, "v2"))
    assert wrong.value.type == "SmokeTestFailed"
    assert wrong.value.non_retryable
    assert "'v1'" in str(wrong.value) and "'v2'" in str(wrong.value)

    await run(acts.restore_service, RestoreInput(RELEASE, env, "local", service, None))
    with pytest.raises(ApplicationError) as missing:
        await run(acts.smoke_test, SmokeTestInput(RELEASE, env, "local", service, "v1"))
    assert missing.value.type == "SmokeTestFailed"
    assert "404" in str(missing.value)


async def test_deploy_replaces_a_container_removed_behind_its_back(
    local_platform: PlatformSettings, images: dict[str, str]
) -> None:
    env, service = "staging", unique_service()
    acts = DeployActivities({"local": LocalTarget(local_platform)})
    await run(acts.deploy_service, deploy_input(env, service, "v1", images["v1"]))
    [gone] = containers(local_platform, env, service)
    subprocess.run(
        ["podman", *container_storage_args(local_platform), "rm", "--force", gone["Id"]],
        env=container_env(local_platform),
        capture_output=True,
        check=True,
        timeout=60,
    )

    redeployed = await run(acts.deploy_service, deploy_input(env, service, "v1", images["v1"]))
    assert redeployed.changed is True
    assert get(f"{local_platform.entrypoint_url(env)}/{service}/health")[1]["version"] == "v1"
    assert [c["State"] for c in containers(local_platform, env, service)] == ["running"]
    await run(acts.restore_service, RestoreInput(RELEASE, env, "local", service, None))


class WorkerKilled(BaseException):
    """Stands for SIGKILL of the worker: no handler of the activity's runs."""


def podman_cli(settings: PlatformSettings, *args: str) -> None:
    subprocess.run(
        ["podman", *container_storage_args(settings), *args],
        env=container_env(settings),
        capture_output=True,
        check=True,
        timeout=60,
    )


@pytest.mark.parametrize("leftover", ["running", "stopped"])
async def test_a_deploy_interrupted_after_starting_its_container_is_finished_by_the_retry(
    local_platform: PlatformSettings,
    images: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    leftover: str,
) -> None:
    # Found by the chaos suite: the worker died between `podman run` and the route
    # switch; the retry removed the container and started the same one again.
    env, service = "staging", unique_service()
    acts = DeployActivities({"local": LocalTarget(local_platform)})
    await run(acts.deploy_service, deploy_input(env, service, "v1", images["v1"]))
    [v1] = containers(local_platform, env, service)

    async def killed(*_: Any, **__: Any) -> None:
        raise WorkerKilled

    with monkeypatch.context() as patch:
        patch.setattr(LocalTarget, "_switch", killed)
        with pytest.raises(WorkerKilled):
            await run(acts.deploy_service, deploy_input(env, service, "v2", images["v2"]))
    [started] = [c for c in containers(local_platform, env, service) if c["Id"] != v1["Id"]]
    assert get(f"{local_platform.entrypoint_url(env)}/{service}/health")[1]["version"] == "v1"
    if leftover == "stopped":  # it died meanwhile: not taken over, started afresh
        podman_cli(local_platform, "stop", "--time", "1", started["Id"])

    retried = await run(acts.deploy_service, deploy_input(env, service, "v2", images["v2"]))
    assert retried.changed is True and retried.previous is not None
    assert retried.previous.version == "v1"
    assert get(f"{local_platform.entrypoint_url(env)}/{service}/health")[1]["version"] == "v2"
    [serving] = containers(local_platform, env, service)  # v1 removed after the switch
    assert serving["State"] == "running"
    if leftover == "running":
        assert serving["Id"] == started["Id"]  # the same container: started once
    else:
        assert serving["Id"] != started["Id"]
    await run(acts.restore_service, RestoreInput(RELEASE, env, "local", service, None))


async def test_bad_target_environment_or_image_is_refused_before_touching_anything(
    local_platform: PlatformSettings,
) -> None:
    acts = DeployActivities({"local": LocalTarget(local_platform)})
    digest_ref = f"{local_platform.registry_address}/test/x@sha256:" + "0" * 64
    cases = [
        (DeployInput(RELEASE, "staging", "kubernetes", "svc", "v1", digest_ref), "InvalidConfig"),
        (DeployInput(RELEASE, "qa", "local", "svc", "v1", digest_ref), "InvalidConfig"),
        (DeployInput(RELEASE, "staging", "local", "svc", "v1", "registry/x:v1"), "InvalidInput"),
        (DeployInput(RELEASE, "staging", "local", "Bad_Name", "v1", digest_ref), "InvalidInput"),
    ]
    for bad, kind in cases:
        with pytest.raises(ApplicationError) as caught:
            await run(acts.deploy_service, bad)
        assert caught.value.type == kind, bad
        assert caught.value.non_retryable
    assert containers(local_platform, "staging", "svc") == []


async def test_stable_is_labelled_scraped_and_a_route_file_from_before_canaries_is_taken_over(
    local_platform: PlatformSettings, images: dict[str, str]
) -> None:
    env, service = "production", unique_service()
    acts = DeployActivities({"local": LocalTarget(local_platform)})
    endpoint = f"{local_platform.entrypoint_url(env)}/{service}"
    api = f"{local_platform.traefik_api_url}/api/http/services/{env}-{service}@file"
    first = await run(acts.deploy_service, deploy_input(env, service, "v1", images["v1"]))
    [v1_container] = containers(local_platform, env, service)
    assert v1_container["Labels"]["brewline.track"] == "stable"
    port = v1_container["Labels"]["brewline.port"]
    target = ScrapeTargets(local_platform).read(env, service, "stable")
    assert target is not None
    assert target["targets"] == [f"127.0.0.1:{port}"]
    assert target["labels"] == {
        "environment": env,
        "service": service,
        "track": "stable",
        "version": "v1",
        "release": RELEASE,
    }

    # The route file as it was written before canaries: one load balancer, no weights.
    path = route_file(local_platform, env, service)
    legacy = yaml.safe_load(path.read_text())
    legacy["http"]["services"] = {
        f"{env}-{service}": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{port}"}]}}
    }
    path.with_suffix(".tmp").write_text(yaml.safe_dump(legacy))
    path.with_suffix(".tmp").replace(path)
    deadline = time.monotonic() + 20
    while get(api)[1].get("type") != "loadbalancer":
        assert time.monotonic() < deadline, "Traefik did not load the legacy route file"
        await asyncio.sleep(0.05)
    routes = TraefikRoutes(local_platform.traefik_dynamic_dir, local_platform.traefik_api_url)
    assert await routes.applied(env, service) == Route(env, service, f"http://127.0.0.1:{port}")

    again = await run(acts.deploy_service, deploy_input(env, service, "v1", images["v1"]))
    assert (again.changed, again.deployed) == (False, first.deployed)
    second = await run(acts.deploy_service, deploy_input(env, service, "v2", images["v2"]))
    assert second.previous == first.deployed
    assert get(f"{endpoint}/health")[1]["version"] == "v2"
    status, weighted = get(api)
    assert status == 200
    assert weighted["weighted"]["services"] == [{"name": f"{env}-{service}-stable", "weight": 100}]

    await run(acts.restore_service, RestoreInput(RELEASE, env, "local", service, None))
    assert ScrapeTargets(local_platform).read(env, service, "stable") is None


async def test_service_names_that_clash_with_a_track_leaf_are_refused(
    local_platform: PlatformSettings,
) -> None:
    acts = DeployActivities({"local": LocalTarget(local_platform)})
    digest_ref = f"{local_platform.registry_address}/test/x@sha256:" + "0" * 64
    for service in ("svc-canary", "svc-stable"):
        with pytest.raises(ApplicationError) as caught:
            await run(
                acts.deploy_service,
                DeployInput(RELEASE, "staging", "local", service, "v1", digest_ref),
            )
        assert caught.value.type == "InvalidInput"
        assert "clash" in str(caught.value)
        assert containers(local_platform, "staging", service) == []
