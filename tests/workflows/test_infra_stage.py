"""The infra stage of ReleaseWorkflow: plans, the plan review, and where its outputs go.

On the time-skipping server with the outside world faked (tests/workflows/fakes.py);
the real terraform activities are tested against a moto server in tests/activities.
"""

from __future__ import annotations

import dataclasses
import json
import uuid

from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from brewline.model import (
    ApprovalSignal,
    Deployment,
    KubernetesSpec,
    ReleaseRequest,
    ReleaseStatus,
    ResourceChange,
    TerraformPlanResult,
)
from tests.workflows.fakes import (
    FakeWorld,
    new_worker,
    release_request,
    start_release,
    wait_for_stage,
)
from workflows.release import PLAN_REVIEW, ReleaseWorkflow

LOCAL_ROOT = "terraform/envs/local"
REVIEWED = "5" * 64
DESTROYING = TerraformPlanResult(
    "/tmp/release/plan.tfplan",
    REVIEWED,
    0,
    1,
    1,
    [
        ResourceChange('module.ecr.aws_ecr_repository.this["consumer"]', ["delete"]),
        ResourceChange("terraform_data.release", ["update"]),
    ],
)


def reviewing(status: ReleaseStatus) -> bool:
    return any(a.environment == PLAN_REVIEW and a.status == "waiting" for a in status.approvals)


def production_gate(status: ReleaseStatus) -> bool:
    return (
        status.approval is not None
        and status.approval.environment == "production"
        and (status.approval.status == "waiting")
    )


async def test_a_destroying_plan_waits_for_a_review_bound_to_its_sha256(
    time_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld(plans={LOCAL_ROOT: DESTROYING})
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, release_request(), queue)
        status = await wait_for_stage(handle, reviewing)
        review = status.approval
        assert review is not None and review.environment == PLAN_REVIEW
        assert review.plan_sha256 == REVIEWED
        assert review.plan_changes == [
            f'{LOCAL_ROOT}: delete module.ecr.aws_ecr_repository.this["consumer"]'
        ]
        assert status.stage == "infra" and "review of the Terraform plan" in status.waiting_for
        assert world.calls["terraform_apply"] == 0 and world.calls["build_image"] == 0

        # an approval that does not name the reviewed plan is refused, whoever sends it
        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("alice", "ok"))
        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("alice", "ok", "6" * 64))
        status = await wait_for_stage(handle, lambda s: len(s.approvals[0].refused) == 2)
        assert reviewing(status)
        assert all("sha256 " + REVIEWED in r.why for r in status.approvals[0].refused)

        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("bob", "ok", REVIEWED))
        await wait_for_stage(handle, production_gate)
        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("alice", "go"))
        await handle.result()
        final = await handle.query(ReleaseWorkflow.status)

    applied = [inp for name, inp in world.log if name == "terraform_apply"]
    assert [(a.plan_file, a.plan_sha256) for a in applied] == [(DESTROYING.plan_file, REVIEWED)]
    order = [name for name, _ in world.log if name in ("terraform_apply", "build_image")]
    assert order == ["terraform_apply", "build_image"]
    assert [(a.environment, a.status, a.decided_by) for a in final.approvals] == [
        (PLAN_REVIEW, "approved", "bob"),
        ("production", "approved", "alice"),
    ]
    assert [s.name for s in final.stages][:4] == ["test", "scan", "infra", "build"]


async def test_a_rejected_plan_review_fails_the_release_and_applies_nothing(
    time_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld(plans={LOCAL_ROOT: DESTROYING})
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, release_request(), queue)
        await wait_for_stage(handle, reviewing)
        await handle.signal(
            ReleaseWorkflow.reject, ApprovalSignal("bob", "the consumer repo must stay")
        )
        try:
            await handle.result()
        except WorkflowFailureError as failure:
            cause = str(failure.cause)
        else:
            raise AssertionError("a rejected plan review must fail the release")
    assert "release failed at infra: plan review rejected by bob: the consumer repo" in cause
    assert world.calls["terraform_apply"] == 0 and world.calls["build_image"] == 0


def kubernetes_request() -> ReleaseRequest:
    """Staging and production on Kubernetes, production with its own Terraform root."""
    request = release_request(["api-gateway", "producer"])
    pipeline = request.pipeline
    staging, production = pipeline.environments
    staging.target = "kubernetes"
    staging.kubernetes = KubernetesSpec(
        namespace="staging",
        values=["helm/go-coffee/values-staging.yaml"],
        values_from_outputs={"managedServices.redis.host": "redis_endpoint"},
    )
    production.target = "kubernetes"
    production.terraform_dir = "terraform/envs/production"
    production.kubernetes = KubernetesSpec(namespace="production", region="eu-west-1")
    return dataclasses.replace(request, pipeline=pipeline)


ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
REPOSITORIES = {s: f"{ECR}/go-coffee/{s}" for s in ("api-gateway", "producer")}


async def test_infra_outputs_flow_into_build_and_the_kubernetes_environments(
    time_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld(
        # producer already serves in production: with strategy canary it still goes
        # direct, because only api-gateway has the ingress that routes a canary
        running={
            ("production", "producer"): Deployment(
                "production", "producer", "1.3.0", f"{ECR}/go-coffee/producer@sha256:old"
            )
        },
        outputs={
            LOCAL_ROOT: {
                "image_repositories": json.dumps(REPOSITORIES),
                "cluster_name": "go-coffee-staging",
                "region": "eu-west-1",
                "registry": ECR,
                "redis_endpoint": "redis.staging.internal",
            },
            "terraform/envs/production": {"cluster_name": "go-coffee-production"},
        },
    )
    request = kubernetes_request()
    request.services = ["producer"]
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, request, queue)
        await wait_for_stage(handle, production_gate)
        await handle.signal(ReleaseWorkflow.approve, ApprovalSignal("alice", "go"))
        await handle.result()

    planned = [inp.terraform_dir for name, inp in world.log if name == "terraform_plan"]
    assert planned == [LOCAL_ROOT, "terraform/envs/production"]
    builds = [inp for name, inp in world.log if name == "build_image"]
    assert [b.repository for b in builds] == [REPOSITORIES["producer"]]
    deploys = {inp.environment: inp for name, inp in world.log if name == "deploy_service"}
    assert set(deploys) == {"staging", "production"}  # production direct: no ingress canary
    assert world.calls["deploy_canary"] == 0
    staging, production = deploys["staging"].kubernetes, deploys["production"].kubernetes
    assert staging is not None and production is not None
    assert (staging.cluster, staging.region, staging.registry, staging.namespace) == (
        "go-coffee-staging",
        "eu-west-1",
        ECR,
        "staging",
    )
    assert staging.set_values == {"managedServices.redis.host": "redis.staging.internal"}
    assert staging.source == request.source
    # production reads its own root; what it sets itself wins over outputs
    assert (production.cluster, production.region) == ("go-coffee-production", "eu-west-1")
    smoke = [inp for name, inp in world.log if name == "smoke_test"]
    assert all(s.kubernetes is not None for s in smoke)


async def test_a_kubernetes_environment_without_its_cluster_fails_naming_the_output(
    time_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()  # the root's outputs have no cluster_name
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, kubernetes_request(), queue)
        try:
            await handle.result()
        except WorkflowFailureError as failure:
            cause = str(failure.cause)
        else:
            raise AssertionError("the release must fail without a cluster")
    assert "release failed at deploy-staging: environments.staging.kubernetes.cluster is not" in (
        cause
    )
    assert f"the Terraform root {LOCAL_ROOT} has no output 'cluster_name'" in cause
    assert world.calls["deploy_service"] == 0


async def test_an_image_repository_map_without_the_service_fails_the_build(
    time_env: WorkflowEnvironment,
) -> None:
    only_gateway = {"api-gateway": REPOSITORIES["api-gateway"]}
    world = FakeWorld(outputs={LOCAL_ROOT: {"image_repositories": json.dumps(only_gateway)}})
    request = release_request(["producer"])
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, request, queue)
        try:
            await handle.result()
        except WorkflowFailureError as failure:
            cause = str(failure.cause)
        else:
            raise AssertionError("the build must fail without a repository")
    assert "image_repositories of terraform/envs/local has no repository for 'producer'" in cause
    assert world.calls["build_image"] == 0


async def test_secret_variables_reach_the_plan_as_references_only(
    time_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    request = release_request()
    request.pipeline.infra.secret_variables = {"db_password": "env:GO_COFFEE_DB_PASSWORD"}
    queue = f"tq-{uuid.uuid4()}"
    async with new_worker(time_env.client, world, queue):
        handle = await start_release(time_env.client, request, queue)
        await wait_for_stage(handle, production_gate)
        await handle.terminate()
    planned = [inp for name, inp in world.log if name == "terraform_plan"]
    assert [p.secret_variables for p in planned] == [{"db_password": "env:GO_COFFEE_DB_PASSWORD"}]
    assert all("db_password" not in p.variables for p in planned)
