"""pipeline.yaml for Kubernetes environments: the AWS example, and each rule naming its key."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from brewline.config import ConfigError, load, validate
from brewline.platform import REPO_ROOT

AWS_EXAMPLE = REPO_ROOT / "examples" / "pipeline-aws.yaml"


def aws_pipeline() -> dict[str, Any]:
    return yaml.safe_load(AWS_EXAMPLE.read_text())


def test_the_aws_example_points_both_environments_at_kubernetes() -> None:
    config = load(AWS_EXAMPLE)
    staging, production = config.environments
    assert (staging.target, production.target) == ("kubernetes", "kubernetes")
    assert config.infra.terraform_dir == "terraform/envs/staging"
    assert (staging.terraform_dir, production.terraform_dir) == ("", "terraform/envs/production")
    assert staging.kubernetes is not None and production.kubernetes is not None
    assert staging.kubernetes.namespace == "go-coffee"
    assert staging.kubernetes.cluster == ""  # from the root's output cluster_name
    assert production.kubernetes.timeout_seconds == 15 * 60
    assert production.kubernetes.canary_services == ["api-gateway"]
    assert production.kubernetes.prometheus_url.startswith("https://")
    assert staging.kubernetes.values_from_outputs["managedServices.redis.host"] == "redis_endpoint"
    # every file it names is in the tree, and each Terraform root has the outputs it reads
    for env in config.environments:
        assert env.kubernetes is not None
        for values in env.kubernetes.values:
            assert (REPO_ROOT / values).is_file(), values
        root = REPO_ROOT / (env.terraform_dir or config.infra.terraform_dir)
        outputs = (root / "outputs.tf").read_text()
        for name in ["cluster_name", "region", *env.kubernetes.values_from_outputs.values()]:
            assert f'output "{name}"' in outputs, (root, name)
    assert (
        'output "image_repositories"'
        in (REPO_ROOT / config.infra.terraform_dir / "outputs.tf").read_text()
    )


def staging_kubernetes(d: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = d["environments"]["staging"]["kubernetes"]
    return node


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: staging_kubernetes(d).pop("namespace"),
            "environments.staging.kubernetes.namespace is required",
        ),
        (
            lambda d: d["environments"]["staging"].pop("kubernetes"),
            "environments.staging.kubernetes.namespace is required",
        ),
        (
            lambda d: staging_kubernetes(d).update(namespace="Go_Coffee"),
            "environments.staging.kubernetes.namespace: 'Go_Coffee' is not a DNS label",
        ),
        (
            lambda d: staging_kubernetes(d).update(release="r" * 54),
            "environments.staging.kubernetes.release: '" + "r" * 54 + "' is longer than 53",
        ),
        (
            lambda d: staging_kubernetes(d).update(region="mars-1"),
            "environments.staging.kubernetes.region: 'mars-1' is not an AWS region",
        ),
        (
            lambda d: staging_kubernetes(d).update(values=["/etc/passwd"]),
            "environments.staging.kubernetes.values: '/etc/passwd' must be a path inside",
        ),
        (
            lambda d: staging_kubernetes(d).update(canary_services=["billing"]),
            "environments.staging.kubernetes.canary_services: 'billing' is not a service",
        ),
        (
            lambda d: staging_kubernetes(d).update(values_from_outputs={"a..b": "x"}),
            "'a..b' is not a Helm value path",
        ),
        (
            lambda d: staging_kubernetes(d).update(values_from_outputs={"a.b": "no-such"}),
            "'no-such' (for a.b) is not a Terraform output name",
        ),
        (
            lambda d: staging_kubernetes(d).update(context="prod"),
            "unknown key 'environments.staging.kubernetes.context'",
        ),
        (
            lambda d: d["environments"]["staging"].update(target="local"),
            "environments.staging.kubernetes is only read with target: kubernetes",
        ),
        (
            lambda d: d["environments"]["production"]["kubernetes"].pop("prometheus_url"),
            "environments.production.kubernetes.prometheus_url is required with strategy canary",
        ),
        (
            lambda d: d["environments"]["production"].update(terraform_dir="../infra"),
            "environments.production.terraform_dir: '../infra' must be a path inside",
        ),
    ],
)
def test_each_kubernetes_rule_names_the_key(mutate: Any, expected: str) -> None:
    data = copy.deepcopy(aws_pipeline())
    mutate(data)
    with pytest.raises(ConfigError) as info:
        validate(data)
    assert expected in str(info.value)
