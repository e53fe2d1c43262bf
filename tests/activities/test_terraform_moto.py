"""terraform/envs/local and the S3 backend against a real moto server, with the real terraform.

The moto server is the local platform's component, started on a free 127.0.0.1 port
for this module and stopped by PID. Each terraform call loads the AWS provider
(~10 s of CPU here), so the lifecycle of envs/local is one test.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.terraform import TerraformActivities, TerraformStateLocked
from brewline.model import TerraformApplyInput, TerraformPlanInput, TerraformPlanResult
from brewline.platform import REPO_ROOT, PlatformSettings
from local.platform import LocalPlatform

SERVICES = ["api-gateway", "producer"]
REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformSettings]:
    """A home whose moto server runs on a free loopback port for this module."""
    settings = PlatformSettings(home=str(tmp_path_factory.mktemp("moto-home")))
    platform = LocalPlatform(settings)
    platform.up(["moto"], free_ports=True)
    try:
        yield settings
    finally:
        platform.down()


@pytest.fixture
def settings(moto: PlatformSettings, tmp_path: Path) -> PlatformSettings:
    """A fresh home (own terraform state) talking to the module's moto server."""
    return PlatformSettings(
        home=str(tmp_path / "home"), registry_port=5999, moto_port=moto.moto_port
    )


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A source tree with a copy of terraform/ (envs/local uses ../../modules)."""
    src = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "terraform", src / "terraform")
    return src


def aws(settings: PlatformSettings, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=settings.moto_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


async def plan(
    acts: TerraformActivities, source: Path, tf_dir: str, variables: dict[str, str]
) -> TerraformPlanResult:
    return await ActivityEnvironment().run(
        acts.terraform_plan,
        TerraformPlanInput(
            release_id=f"r-{uuid.uuid4().hex[:8]}",
            source=str(source),
            terraform_dir=tf_dir,
            variables=variables,
        ),
    )


async def apply(
    acts: TerraformActivities, source: Path, tf_dir: str, planned: TerraformPlanResult
) -> dict[str, str]:
    result = await ActivityEnvironment().run(
        acts.terraform_apply,
        TerraformApplyInput(
            release_id="r-apply",
            source=str(source),
            terraform_dir=tf_dir,
            plan_file=planned.plan_file,
            plan_sha256=planned.plan_sha256,
        ),
    )
    assert result.applied
    return result.outputs


def local_vars(version: str, services: list[str]) -> dict[str, str]:
    return {
        "release_version": version,
        "services": ",".join(services),
        "environments": "staging,production",
    }


async def test_local_env_applies_against_moto_then_plans_no_changes(
    settings: PlatformSettings, source: Path
) -> None:
    acts = TerraformActivities(settings)
    tf_dir = "terraform/envs/local"

    first = await plan(acts, source, tf_dir, local_vars("1.0.0", SERVICES))
    assert first.destroy == 0 and first.change == 0 and first.add > 20
    created = {c.address for c in first.resource_changes}
    assert {
        'module.ecr.aws_ecr_repository.service["api-gateway"]',
        'module.ecr.aws_ecr_repository.service["producer"]',
        "aws_s3_bucket.artifacts",
        "aws_dynamodb_table.terraform_lock",
        "module.network.aws_vpc.this",
        "terraform_data.release",
    } <= created
    assert not any("aws_nat_gateway" in address for address in created)
    # the activity wrote the moto URL for the configuration's aws_endpoint
    platform_vars = json.loads((Path(first.plan_file).parent / "platform.tfvars.json").read_text())
    assert platform_vars["aws_endpoint"] == settings.moto_url

    outputs = await apply(acts, source, tf_dir, first)
    assert outputs["registry"] == "127.0.0.1:5999"
    assert outputs["image_repository"] == "127.0.0.1:5999/go-coffee"
    assert outputs["release_version"] == "1.0.0"
    assert "image_repositories" not in outputs  # the local build keeps the local registry
    repositories = json.loads(outputs["ecr_repositories"])
    assert sorted(repositories) == SERVICES
    assert repositories["producer"].endswith(".amazonaws.com/go-coffee/producer")

    # what terraform says it made is there, as the modules configure it
    ecr = aws(settings, "ecr")
    described = ecr.describe_repositories()["repositories"]
    by_name = {r["repositoryName"]: r for r in described}
    assert sorted(by_name) == ["go-coffee/api-gateway", "go-coffee/producer"]
    for repo in by_name.values():
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo["repositoryUri"] == repositories[repo["repositoryName"].split("/")[1]]
        policy = json.loads(
            ecr.get_lifecycle_policy(repositoryName=repo["repositoryName"])["lifecyclePolicyText"]
        )
        assert [rule["selection"]["tagStatus"] for rule in policy["rules"]] == ["untagged", "any"]

    s3 = aws(settings, "s3")
    bucket = outputs["artifacts_bucket"]
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())

    table = aws(settings, "dynamodb").describe_table(TableName=outputs["lock_table"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]

    ec2 = aws(settings, "ec2")
    vpc = ec2.describe_vpcs(VpcIds=[outputs["vpc_id"]])["Vpcs"][0]
    assert vpc["CidrBlock"] == "10.42.0.0/16"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    assert len(subnets["Subnets"]) == 4  # public and private in each of the two zones

    # the same variables again: nothing to do (no drift between moto and the config)
    again = await plan(acts, source, tf_dir, local_vars("1.0.0", SERVICES))
    assert (again.add, again.change, again.destroy) == (0, 0, 0)

    # a normal release (new version) changes the release record only
    bumped = await plan(acts, source, tf_dir, local_vars("1.1.0", SERVICES))
    assert (bumped.add, bumped.change, bumped.destroy) == (0, 1, 0)

    # dropping a service destroys its repository (and its lifecycle policy)
    dropped = await plan(acts, source, tf_dir, local_vars("1.1.0", ["api-gateway"]))
    assert dropped.destroy >= 1
    destroyed = {c.address for c in dropped.resource_changes if "delete" in c.actions}
    assert destroyed == {
        'module.ecr.aws_ecr_repository.service["producer"]',
        'module.ecr.aws_ecr_lifecycle_policy.service["producer"]',
    }
    outputs = await apply(acts, source, tf_dir, dropped)
    assert sorted(json.loads(outputs["ecr_repositories"])) == ["api-gateway"]
    names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert names == ["go-coffee/api-gateway"]


S3_ROOT = """\
terraform {
  backend "s3" {}
}

variable "release_version" {
  type = string
}

resource "terraform_data" "release" {
  input = var.release_version
}

output "release_version" {
  value = terraform_data.release.output
}
"""


async def test_s3_backend_from_backend_hcl_and_its_dynamodb_lock_is_retryable(
    settings: PlatformSettings, tmp_path: Path
) -> None:
    """A root with `backend "s3" {}` gets backend.hcl at init; a held lock is retryable."""
    bucket, table, key = f"state-{uuid.uuid4().hex[:8]}", "state-lock", "app/terraform.tfstate"
    aws(settings, "s3").create_bucket(Bucket=bucket)
    dynamodb = aws(settings, "dynamodb")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    root = tmp_path / "src" / "infra"
    root.mkdir(parents=True)
    (root / "main.tf").write_text(S3_ROOT)
    # moto's endpoints and test credentials; a real account's backend.hcl has only
    # bucket, key, region and dynamodb_table (credentials come from the environment)
    endpoint = settings.moto_url
    (root / "backend.hcl").write_text(
        f'bucket = "{bucket}"\nkey = "{key}"\nregion = "{REGION}"\n'
        f'dynamodb_table = "{table}"\nencrypt = true\n'
        f'endpoints = {{\n  s3 = "{endpoint}"\n  dynamodb = "{endpoint}"\n'
        f'  sts = "{endpoint}"\n}}\n'
        'access_key = "testing"\nsecret_key = "testing"\n'
        "use_path_style = true\nskip_credentials_validation = true\n"
        "skip_requesting_account_id = true\nskip_metadata_api_check = true\n"
        "skip_region_validation = true\n"
    )
    acts = TerraformActivities(settings)
    source = tmp_path / "src"

    first = await plan(acts, source, "infra", {"release_version": "1.0.0"})
    assert (first.add, first.change, first.destroy) == (1, 0, 0)
    outputs = await apply(acts, source, "infra", first)
    assert outputs["release_version"] == "1.0.0"
    # the state went to the bucket, not to the home's local state file
    state = aws(settings, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert json.loads(state)["outputs"]["release_version"]["value"] == "1.0.0"
    assert not list((settings.terraform_dir / "state").glob("*.tfstate"))  # no local state

    bumped = await plan(acts, source, "infra", {"release_version": "1.1.0"})
    # someone else's terraform holds the lock: the item the S3 backend writes
    lock_id = f"{bucket}/{key}"
    info = {
        "ID": str(uuid.uuid4()),
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": "someone@elsewhere",
        "Version": "1.11.0",
        "Created": "2026-01-01T00:00:00Z",
        "Path": lock_id,
    }
    dynamodb.put_item(
        TableName=table, Item={"LockID": {"S": lock_id}, "Info": {"S": json.dumps(info)}}
    )
    with pytest.raises(TerraformStateLocked) as err:
        await apply(acts, source, "infra", bumped)
    assert "Error acquiring the state lock" in str(err.value)
    assert "backend.hcl" in str(err.value)
    with pytest.raises(TerraformStateLocked):
        await plan(acts, source, "infra", {"release_version": "1.2.0"})
    # never force-unlocked: the other holder's item is still there
    held = dynamodb.get_item(TableName=table, Key={"LockID": {"S": lock_id}})
    assert json.loads(held["Item"]["Info"]["S"])["ID"] == info["ID"]

    # the holder finishes; Temporal's retry applies the same reviewed plan
    dynamodb.delete_item(TableName=table, Key={"LockID": {"S": lock_id}})
    outputs = await apply(acts, source, "infra", bumped)
    assert outputs["release_version"] == "1.1.0"


async def test_s3_root_without_backend_hcl_is_invalid_config(
    settings: PlatformSettings, tmp_path: Path
) -> None:
    """Without backend.hcl the partial S3 backend lacks its bucket: a clear, final error."""
    root = tmp_path / "src" / "infra"
    root.mkdir(parents=True)
    (root / "main.tf").write_text(S3_ROOT)
    with pytest.raises(ApplicationError) as err:
        await plan(
            TerraformActivities(settings),
            tmp_path / "src",
            "infra",
            {"release_version": "1.0.0"},
        )
    assert err.value.type == "InvalidConfig" and err.value.non_retryable
    assert "terraform init" in str(err.value)
