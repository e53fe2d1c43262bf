"""The helm wrapper with the real helm 3.17 and the real go-coffee chart.

`template` runs offline. Install, history, get values and rollback need an API server:
none can run on this machine (no kube-apiserver, kind, k3s or KWOK), so they run against
`fake_kube_api.FakeKubeApi`, which stands in for the API server only; helm is real.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from temporalio.exceptions import ApplicationError

from activities.helm import Helm, HelmFailed, value_args
from brewline.platform import REPO_ROOT
from tests.activities.fake_kube_api import FakeKubeApi

CHART = REPO_ROOT / "helm" / "go-coffee"
STAGING = CHART / "values-staging.yaml"
DIGEST = "sha256:" + "c" * 64


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
