"""The helm wrapper with the real helm 3.17 and the real go-coffee chart.

`template` runs offline. Install, history, get values and rollback need an API server:
none can run on this machine (no kube-apiserver, kind, k3s or KWOK), so they run against
`fake_kube_api.FakeKubeApi`, which stands in for the API server only; helm is real.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.exceptions import ApplicationError

from activities.helm import Helm, HelmFailed, value_args
from brewline.platform import REPO_ROOT
from tests.activities.fake_kube_api import FakeKubeApi

CHART = REPO_ROOT / "helm" / "go-coffee"
STAGING = CHART / "values-staging.yaml"
DIGEST = "sha256:" + "c" * 64
SECRET_PREFIX = "sh.helm.release.v1.go-coffee.v"


def test_value_args_are_files_in_order_then_literal_pairs(tmp_path: Path) -> None:
    assert value_args(
        [STAGING, tmp_path / "state.json"],
        {"global.imageRegistry": "r.example", "managedServices.kafka.bootstrapBrokers": "a,b"},
    ) == [
        "--values",
        str(STAGING),
        "--values",
        str(tmp_path / "state.json"),
        "--set-literal",
        "global.imageRegistry=r.example",
        "--set-literal",
        "managedServices.kafka.bootstrapBrokers=a,b",
    ]
    for bad in ("", "a=b"):
        with pytest.raises(ApplicationError) as caught:
            value_args([], {bad: "x"})
        assert caught.value.type == "InvalidConfig" and caught.value.non_retryable


async def test_template_renders_exactly_the_values_given(tmp_path: Path) -> None:
    helm = Helm(log_path=tmp_path / "helm.log")
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "services": {
                    "producer": {
                        "image": {"tag": "2.0.0", "digest": DIGEST},
                        "env": {"GREETING": "hi"},
                    }
                }
            }
        )
    )
    objects = await helm.template(
        "go-coffee",
        CHART,
        namespace="staging",
        values=value_args(
            [STAGING, state],
            {
                "global.imageRegistry": "123.dkr.ecr.us-west-2.amazonaws.com",
                "managedServices.kafka.bootstrapBrokers": "b-1:9094,b-2:9094",
            },
        ),
    )
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    producer = by_name[("Deployment", "producer")]
    container = producer["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"123.dkr.ecr.us-west-2.amazonaws.com/go-coffee/producer@{DIGEST}"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GREETING"] == "hi"
    assert env["KAFKA_BROKERS"] == "b-1:9094,b-2:9094", "--set-literal keeps the commas"
    assert producer["spec"]["template"]["metadata"]["labels"]["version"] == "2.0.0"
    assert producer["metadata"]["namespace"] == "staging"


async def test_a_values_problem_is_a_non_retryable_invalid_config(tmp_path: Path) -> None:
    helm = Helm(log_path=tmp_path / "helm.log")
    with pytest.raises(ApplicationError) as caught:
        await helm.template(
            "go-coffee",
            CHART,
            namespace="staging",
            values=value_args([], {"services.api-gateway.image.digest": "sha256:nothex"}),
        )
    assert caught.value.type == "InvalidConfig" and caught.value.non_retryable
    assert "schema" in str(caught.value)


@pytest.fixture
def fake_helm(tmp_path: Path) -> Iterator[tuple[FakeKubeApi, Helm]]:
    api = FakeKubeApi().start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(api.kubeconfig()))
    try:
        yield (
            api,
            Helm(log_path=tmp_path / "helm.log", kubeconfig=kubeconfig, openapi_validation=False),
        )
    finally:
        api.stop()


async def test_install_history_values_and_rollback(
    tmp_path: Path, fake_helm: tuple[FakeKubeApi, Helm]
) -> None:
    api, helm = fake_helm
    assert await helm.history("go-coffee", namespace="staging") == []
    assert await helm.get_values("go-coffee", namespace="staging") is None

    first = value_args([STAGING], {"services.api-gateway.image.digest": DIGEST})
    await helm.upgrade_install("go-coffee", CHART, namespace="staging", values=first)
    second = value_args([STAGING], {"services.api-gateway.image.digest": "sha256:" + "d" * 64})
    await helm.upgrade_install("go-coffee", CHART, namespace="staging", values=second)

    history = await helm.history("go-coffee", namespace="staging")
    assert [(r.revision, r.status) for r in history] == [(1, "superseded"), (2, "deployed")]
    assert history[0].chart.startswith("go-coffee-") and history[0].description
    values = await helm.get_values("go-coffee", namespace="staging", revision=1)
    assert values is not None
    assert values["services"]["api-gateway"]["image"]["digest"] == DIGEST
    computed = await helm.get_values("go-coffee", namespace="staging", all_values=True)
    assert computed is not None and computed["ingress"]["service"] == "api-gateway"

    await helm.rollback("go-coffee", 1, namespace="staging")
    deployment = api.get("deployments", "staging", "api-gateway")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(DIGEST)
    history = await helm.history("go-coffee", namespace="staging")
    assert history[-1].revision == 3 and history[-1].description == "Rollback to 1"


async def test_an_unreachable_cluster_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    helm = Helm(log_path=tmp_path / "helm.log", kubeconfig=kubeconfig, timeout=60)
    with pytest.raises(HelmFailed, match=r"connection refused|unreachable"):
        await helm.history("go-coffee", namespace="staging")


# ---- a release left pending by a helm that died -----------------------------------------


def _release_of(secret: dict[str, Any]) -> dict[str, Any]:
    """helm's storage: the release JSON, gzipped, base64 (helm's), base64 (the Secret's)."""
    packed = base64.b64decode(secret["data"]["release"])
    return dict(json.loads(gzip.decompress(base64.b64decode(packed))))


def _set_release(secret: dict[str, Any], release: dict[str, Any]) -> None:
    packed = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    secret["data"]["release"] = base64.b64encode(packed).decode()


def leave_pending(
    api: FakeKubeApi, status: str, updated: datetime, new_revision: bool = True
) -> int:
    """What a helm killed mid-operation leaves: the newest revision `status` (a new one
    as an upgrade or rollback writes first, or the first install's own), never ended."""
    names = api.names("secrets", "staging")
    newest = max(int(n.rpartition(".v")[2]) for n in names if n.startswith(SECRET_PREFIX))
    secret = copy.deepcopy(api.get("secrets", "staging", f"{SECRET_PREFIX}{newest}"))
    assert secret is not None
    revision = newest + 1 if new_revision else newest
    release = _release_of(secret)
    release["version"] = revision
    release["info"].update(
        status=status,
        description="Preparing upgrade",
        last_deployed=updated.isoformat().replace("+00:00", "Z"),
    )
    _set_release(secret, release)
    secret["metadata"] = {
        "name": f"{SECRET_PREFIX}{revision}",
        "namespace": "staging",
        "labels": {**secret["metadata"]["labels"], "status": status, "version": str(revision)},
    }
    api.put("secrets", "staging", secret)
    return revision


def set_status(api: FakeKubeApi, revision: int, status: str) -> None:
    secret = api.get("secrets", "staging", f"{SECRET_PREFIX}{revision}")
    assert secret is not None
    release = _release_of(secret)
    release["info"]["status"] = status
    _set_release(secret, release)
    secret["metadata"]["labels"]["status"] = status
    api.put("secrets", "staging", secret)


def digest_values(char: str) -> list[str]:
    return value_args([STAGING], {"services.api-gateway.image.digest": "sha256:" + char * 64})


def gateway_image(api: FakeKubeApi) -> str:
    deployment = api.get("deployments", "staging", "api-gateway")
    assert deployment is not None
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


async def test_an_upgrade_takes_over_a_release_its_dead_helm_left_pending(
    fake_helm: tuple[FakeKubeApi, Helm],
) -> None:
    api, helm = fake_helm
    await helm.upgrade_install("go-coffee", CHART, namespace="staging", values=digest_values("c"))
    await helm.upgrade_install("go-coffee", CHART, namespace="staging", values=digest_values("d"))
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    pending = leave_pending(api, "pending-upgrade", an_hour_ago)
    # helm itself refuses to go past it, for ever
    plain = Helm(log_path=helm.log_path, kubeconfig=helm.kubeconfig, openapi_validation=False)
    result = await plain._run("upgrade", "go-coffee", str(CHART), "--namespace", "staging")
    assert "another operation (install/upgrade/rollback) is in progress" in result.tail_text()

    await helm.upgrade_install("go-coffee", CHART, namespace="staging", values=digest_values("e"))

    history = await helm.history("go-coffee", namespace="staging")
    assert [(r.revision, r.status, r.description) for r in history[pending - 1 :]] == [
        (pending, "pending-upgrade", "Preparing upgrade"),  # helm keeps it as it was
        (pending + 1, "superseded", "Rollback to 2"),  # the last deployed revision
        (pending + 2, "deployed", "Upgrade complete"),
    ]
    assert gateway_image(api).endswith("e" * 64)


async def test_a_first_install_whose_helm_died_is_uninstalled_then_installed(
    fake_helm: tuple[FakeKubeApi, Helm],
) -> None:
    api, helm = fake_helm
    await helm.upgrade_install("go-coffee", CHART, namespace="staging", values=digest_values("c"))
    leave_pending(api, "pending-install", datetime.now(UTC) - timedelta(hours=1), False)

    await helm.upgrade_install("go-coffee", CHART, namespace="staging", values=digest_values("d"))

    history = await helm.history("go-coffee", namespace="staging")
    assert [(r.revision, r.status, r.description) for r in history] == [
        (1, "deployed", "Install complete")
    ]
    assert gateway_image(api).endswith("d" * 64)


async def test_a_pending_release_of_a_live_helm_is_waited_for_never_taken_over(
    tmp_path: Path, fake_helm: tuple[FakeKubeApi, Helm]
) -> None:
    api, base = fake_helm
    helm = Helm(
        log_path=tmp_path / "helm.log",
        kubeconfig=base.kubeconfig,
        openapi_validation=False,
        abandoned_after=3600,
        poll_seconds=0.2,
    )
    await helm.upgrade_install("go-coffee", CHART, namespace="staging", values=digest_values("c"))
    pending = leave_pending(api, "pending-upgrade", datetime.now(UTC))
    # the other helm ends its upgrade a moment later
    finish = threading.Timer(1.5, lambda: set_status(api, pending, "deployed"))
    finish.start()
    try:
        await helm.upgrade_install(
            "go-coffee", CHART, namespace="staging", values=digest_values("d")
        )
    finally:
        finish.cancel()

    history = await helm.history("go-coffee", namespace="staging")
    assert not any("Rollback" in r.description for r in history)
    assert [r.status for r in history[-2:]] == ["superseded", "deployed"]
    assert gateway_image(api).endswith("d" * 64)
