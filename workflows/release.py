"""ReleaseWorkflow: one durable release of a set of services at one version.

test -> scan -> infra -> build -> for each environment in order:
    [approval-<env> if the environment requires it] -> deploy-<env>

infra plans every Terraform root the release uses (infra.terraform_dir, then each
environment's own), stops for a plan review when a plan destroys or replaces anything
(an approval bound to the plan's sha256), then applies exactly the plans made. Its
outputs flow on: `image_repositories` tells build where to push, and a kubernetes
environment's cluster, region, registry and values come from its root's outputs.
Releases started before infra moved ahead of build (patch `infra-before-build`) keep
build -> infra and never stop for a plan review.

deploy-<env> with strategy `direct` switches all traffic at once, then smoke-tests; with
strategy `canary` it runs one CanaryWorkflow child per service (workflows/canary.py),
which steps traffic up under analysis and promotes or rolls back by itself. A service
with nothing running there yet is deployed directly: there is no stable to compare with.

A failed stage, a rejected or timed-out approval, or an abort (workflow cancellation)
stops the release and restores, newest first, every service this release changed. A
canary that rolled itself back is the exception: it already put production back, and
the release fails with its reason while staging keeps what it had and nothing else changes.
Stage names here are the names people see in `starter.py status`, the search attribute
`ReleaseStage` and the Temporal UI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    # Imported as modules, not as attributes of `brewline`, so the sandbox's sys.modules
    # holds them: the converter resolves their dataclasses' string annotations there.
    import brewline.analysis
    import brewline.canary_config
    import brewline.judge  # noqa: F401
    from brewline import search_attributes as sa
    from brewline.approval import refusal
    from brewline.canary import CanaryInput, CanaryResult
    from brewline.identity import request_problems
    from brewline.model import (
        ApprovalSignal,
        ApprovalState,
        BuildInput,
        CanaryRef,
        DecisionInput,
        DecisionResult,
        DeployInput,
        Deployment,
        DeployResult,
        DescribeInput,
        DescribeResult,
        EnvironmentConfig,
        GoTestInput,
        GoTestResult,
        ImageRecord,
        KubernetesSpec,
        RefusedDecision,
        ReleaseRequest,
        ReleaseResult,
        ReleaseStatus,
        RestoreInput,
        RestoreResult,
        ScanInput,
        ScanResult,
        ServiceState,
        SmokeTestInput,
        SmokeTestResult,
        StageState,
        StatusQuery,
        TerraformApplyInput,
        TerraformApplyResult,
        TerraformPlanInput,
        TerraformPlanResult,
    )
    from brewline.signing import PLAN_REVIEW_STAGE, UNSIGNED_NOTICE
    from workflows import activity_options as opts
    from workflows.failures import failure_reason
    from workflows.notifications import notify
    from workflows.signed_decisions import SIGNED_APPROVALS, Expected, check

T = TypeVar("T")

TEST, SCAN, BUILD, INFRA = "test", "scan", "build", "infra"
INFRA_FIRST = "infra-before-build"  # patch id: infra's outputs flow into build
# the key of the plan review among the approvals (environment names cannot hold spaces)
PLAN_REVIEW = "terraform plan"
SHARED_SCAN = "shared"  # pseudo-service: the paths scanned once per release


def approval_stage(environment: str) -> str:
    return f"approval-{environment}"


def deploy_stage(environment: str) -> str:
    return f"deploy-{environment}"


def canary_workflow_id(release_id: str, environment: str, service: str) -> str:
    return f"{release_id}-canary-{environment}-{service}"


class StageFailed(Exception):
    """A stage ended the release; `reason` is what a person reads."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


class CanaryRolledBack(StageFailed):
    """A canary rolled itself back: production is as it was, so nothing is compensated."""


@dataclass
class _Undo:
    """What to put back if the release stops: `previous` for env/service (None = nothing)."""

    environment: str
    target: str
    service: str
    previous: Deployment | None
    kubernetes: KubernetesSpec | None = None


@workflow.defn(name="ReleaseWorkflow")
class ReleaseWorkflow:
    @workflow.init
    def __init__(self, request: ReleaseRequest) -> None:
        self._request = request
        self._config = request.pipeline
        # unknown names are refused by run() (request_problems), not left to crash here
        known = {e.name for e in self._config.environments}
        self._environments: list[EnvironmentConfig] = [
            self._config.environment(name) for name in request.environments if name in known
        ]
        names = [TEST, SCAN, BUILD, INFRA]
        self._approvals: dict[str, ApprovalState] = {}
        for env in self._environments:
            if env.requires_approval:
                names.append(approval_stage(env.name))
                self._approvals[env.name] = ApprovalState(environment=env.name)
            names.append(deploy_stage(env.name))
        self._stages = {name: StageState(name=name) for name in names}
        self._services = {name: ServiceState(name=name) for name in request.services}
        self._stage = "queued"
        self._state = "running"
        self._waiting_for = ""
        self._failure = ""
        self._images: dict[str, ImageRecord] = {}
        self._plan: TerraformPlanResult | None = None
        self._plans: dict[str, TerraformPlanResult] = {}  # Terraform root -> its plan
        self._outputs: dict[str, dict[str, str]] = {}  # Terraform root -> its outputs
        self._infra_first = False
        self._deployments: dict[tuple[str, str], Deployment] = {}
        self._undo: list[_Undo] = []
        self._canaries: dict[tuple[str, str], CanaryRef] = {}

    # ---------------------------------------------------------------- the pipeline
    @workflow.run
    async def run(self, request: ReleaseRequest) -> ReleaseResult:
        problems = request_problems(
            workflow.info().workflow_id,
            request.version,
            request.services,
            request.environments,
            request.initiator,
            [s.name for s in self._config.services],
            [e.name for e in self._config.environments],
        )
        if problems:  # started around starter.py: fail at once, before anything runs
            raise ApplicationError(
                "invalid release request: " + "; ".join(problems),
                type="InvalidRequest",
                non_retryable=True,
            )
        # Asked first, once: a release started before signed approvals keeps deciding
        # unsigned to its end (its pipeline snapshot names no allowed signers).
        self._signed_approvals()
        self._publish()
        try:
            await self._notify("started", f"release started by {request.initiator}")
            await self._run_stage(TEST, self._test)
            await self._run_stage(SCAN, self._scan)
            self._infra_first = workflow.patched(INFRA_FIRST)
            if self._infra_first:
                self._stages = {n: self._stages[n] for n in self._stage_order()}
                await self._run_stage(INFRA, self._infra)
                await self._run_stage(BUILD, self._build)
            else:
                await self._run_stage(BUILD, self._build)
                await self._run_stage(INFRA, self._infra)
            for env in self._environments:
                if env.requires_approval:
                    await self._run_stage(approval_stage(env.name), self._approval, env)
                await self._run_stage(deploy_stage(env.name), self._deploy, env)
        except StageFailed as failed:
            self._failure = f"release failed at {failed.stage}: {failed.reason}"
            if isinstance(failed, CanaryRolledBack):
                self._undo.clear()  # the canary put production back; staging keeps its version
            await self._compensate()
            self._finish("failed", sa.FAILED)
            await self._notify("failed", self._failure)
            await self._handlers_finished()
            raise ApplicationError(
                self._failure, type="ReleaseFailed", non_retryable=True
            ) from None
        except asyncio.CancelledError:
            self._failure = f"release aborted at {self._stage}"
            await self._compensate()
            self._finish("aborted", sa.ABORTED)
            raise
        self._finish("succeeded", sa.SUCCEEDED)
        await self._notify("succeeded", "released to " + ", ".join(request.environments))
        await self._handlers_finished()
        return ReleaseResult(
            release_id=workflow.info().workflow_id,
            version=request.version,
            deployments=list(self._deployments.values()),
            images=list(self._images.values()),
            approval=self._first_environment_approval(),
        )

    async def _test(self) -> None:
        cfg = self._config

        async def one(service: str) -> None:
            svc = cfg.service(service)
            result = await opts.call(
                "run_go_tests",
                GoTestInput(
                    release_id=workflow.info().workflow_id,
                    service=service,
                    source=self._request.source,
                    go_module=cfg.go_module,
                    package=svc.package,
                    coverage_min=cfg.test.coverage_min,
                    timeout_seconds=cfg.test.timeout_seconds,
                ),
                GoTestResult,
                opts.test_options(cfg.test.timeout_seconds),
                summary=f"go test {service}",
            )
            self._services[service].coverage_percent = result.coverage_percent

        await self._per_service(TEST, one, self._request.services)

    async def _scan(self) -> None:
        cfg = self._config

        def inputs(service: str) -> ScanInput:
            if service == SHARED_SCAN:
                paths = list(cfg.scan.shared_paths)
            else:
                svc = cfg.service(service)
                paths = [
                    f"{cfg.go_module}/{svc.package[2:]}",
                    f"{cfg.go_module}/{svc.containerfile}",
                ]
            return ScanInput(
                release_id=workflow.info().workflow_id,
                service=service,
                source=self._request.source,
                paths=paths,
                fail_on=cfg.scan.fail_on,
                semgrep_rules=cfg.scan.semgrep_rules,
            )

        async def one(service: str) -> None:
            scan = inputs(service)
            results = await asyncio.gather(
                *(
                    opts.call(tool, scan, ScanResult, opts.SCAN, summary=f"{tool} {service}")
                    for tool in ("trivy_scan", "semgrep_scan")
                ),
                return_exceptions=True,
            )
            # both scanners report before the gate decides, so one run shows every finding
            failures = [r for r in results if isinstance(r, BaseException)]
            if any(is_cancelled_exception(f) for f in failures):
                raise asyncio.CancelledError()
            if failures:
                raise StageFailed(SCAN, "; ".join(failure_reason(f) for f in failures))

        targets = list(self._request.services)
        if cfg.scan.shared_paths:
            targets.append(SHARED_SCAN)
        await self._per_service(SCAN, one, targets)

    async def _build(self) -> None:
        cfg = self._config

        async def one(service: str) -> None:
            svc = cfg.service(service)
            image = await opts.call(
                "build_image",
                BuildInput(
                    release_id=workflow.info().workflow_id,
                    service=service,
                    version=self._request.version,
                    source=self._request.source,
                    go_module=cfg.go_module,
                    package=svc.package,
                    containerfile=svc.containerfile,
                    repository=self._repository(service),
                ),
                ImageRecord,
                opts.BUILD,
                summary=f"build {service}",
            )
            self._images[service] = image
            self._services[service].image = image.image

        await self._per_service(BUILD, one, self._request.services, cfg.build.parallelism)

    async def _infra(self) -> None:
        variables = dict(self._config.infra.variables)
        variables.update(
            release_version=self._request.version,
            services=",".join(self._request.services),
            environments=",".join(e.name for e in self._environments),
        )
        roots = self._terraform_roots()
        for root in roots:
            plan = await opts.call(
                "terraform_plan",
                TerraformPlanInput(
                    release_id=workflow.info().workflow_id,
                    source=self._request.source,
                    terraform_dir=root,
                    variables=variables,
                    # references only: the activity resolves them (never in history)
                    secret_variables=dict(self._config.infra.secret_variables),
                ),
                TerraformPlanResult,
                opts.TERRAFORM,
                summary=f"terraform plan {root}",
            )
            self._plans[root] = plan
            self._plan = self._plan or plan
            self._stages[INFRA].detail = "; ".join(
                f"{r}: {p.add} to add, {p.change} to change, {p.destroy} to destroy"
                for r, p in self._plans.items()
            )
            self._publish()
        if self._infra_first and any(p.destroy for p in self._plans.values()):
            await self._plan_review()
        for root in roots:
            plan = self._plans[root]
            applied = await opts.call(
                "terraform_apply",
                TerraformApplyInput(
                    release_id=workflow.info().workflow_id,
                    source=self._request.source,
                    terraform_dir=root,
                    plan_file=plan.plan_file,
                    plan_sha256=plan.plan_sha256,
                ),
                TerraformApplyResult,
                opts.TERRAFORM,
                summary=f"terraform apply {root}",
            )
            self._outputs[root] = dict(applied.outputs)

    def _terraform_roots(self) -> list[str]:
        """infra.terraform_dir, then each environment's own root, each once, in order."""
        roots = [self._config.infra.terraform_dir]
        for env in self._environments:
            if env.terraform_dir and env.terraform_dir not in roots:
                roots.append(env.terraform_dir)
        return roots

    async def _plan_review(self) -> None:
        """A plan destroys or replaces something: a person reviews exactly these plans.

        The approval is bound to the plans' sha256 (one plan: its file's sha256; several:
        the sha256 of "<root> <sha256>" lines), so approving anything else is refused.
        """
        changes: list[str] = []
        for root, plan in self._plans.items():
            for rc in plan.resource_changes:
                if "delete" in rc.actions:
                    kind = "replace" if "create" in rc.actions else "delete"
                    changes.append(f"{root}: {kind} {rc.address}")
        review = ApprovalState(
            environment=PLAN_REVIEW, plan_sha256=self._review_sha256(), plan_changes=changes
        )
        self._approvals = {PLAN_REVIEW: review, **self._approvals}
        destroys = sum(p.destroy for p in self._plans.values())
        await self._await_decision(
            review,
            INFRA,
            f"a review of the Terraform plan (destroys {destroys}; sha256 "
            f"{review.plan_sha256[:12]})",
            "plan review",
        )
        self._publish()  # back from awaiting approval to the infra stage

    def _review_sha256(self) -> str:
        if len(self._plans) == 1:
            return next(iter(self._plans.values())).plan_sha256
        lines = "".join(f"{root} {plan.plan_sha256}\n" for root, plan in self._plans.items())
        return hashlib.sha256(lines.encode()).hexdigest()

    def _repository(self, service: str) -> str:
        """Where build pushes `service`: the infra output `image_repositories`, if any."""
        for root in self._terraform_roots():
            found = self._outputs.get(root, {}).get("image_repositories")
            if found is None:
                continue
            repositories = json.loads(found)
            if not isinstance(repositories, dict) or service not in repositories:
                raise StageFailed(
                    BUILD,
                    f"the Terraform output image_repositories of {root} has no repository "
                    f"for {service!r}: add the service to the root's ECR repositories",
                )
            return str(repositories[service])
        return ""

    def _kubernetes(self, env: EnvironmentConfig) -> KubernetesSpec | None:
        """The environment's Kubernetes spec with its blanks filled from infra's outputs."""
        spec = env.kubernetes
        if spec is None:
            return None
        root = env.terraform_dir or self._config.infra.terraform_dir
        outputs = self._outputs.get(root, {})

        def output(name: str, what: str) -> str:
            if name in outputs:
                return outputs[name]
            raise StageFailed(
                deploy_stage(env.name),
                f"{what} is not set and the Terraform root {root} has no output {name!r}",
            )

        key = f"environments.{env.name}.kubernetes"
        return dataclasses.replace(
            spec,
            cluster=spec.cluster or output("cluster_name", f"{key}.cluster"),
            region=spec.region or output("region", f"{key}.region"),
            registry=spec.registry or outputs.get("registry", ""),
            set_values={
                path: output(name, f"{key}.values_from_outputs.{path}")
                for path, name in spec.values_from_outputs.items()
            },
            source=self._request.source,
        )

    def _stage_order(self) -> list[str]:
        order = [TEST, SCAN, INFRA, BUILD]
        return order + [n for n in self._stages if n not in order]

    async def _approval(self, env: EnvironmentConfig) -> None:
        approval = self._approvals[env.name]
        stage = approval_stage(env.name)
        await self._await_decision(approval, stage, f"approval to deploy to {env.name}", "approval")
        self._stages[stage].detail = f"approved by {approval.decided_by}" + (
            f": {approval.reason}" if approval.reason else ""
        )

    async def _await_decision(
        self, approval: ApprovalState, stage: str, what: str, kind: str
    ) -> None:
        """Wait for an approver's decision on `approval`; anything but approved fails `stage`."""
        timeout = timedelta(seconds=self._config.approval.timeout_seconds)
        approval.status = "waiting"
        approval.requested_at = workflow.now()
        approval.deadline = approval.requested_at + timeout
        self._waiting_for = f"{what} from one of: " + ", ".join(self._config.approval.approvers)
        self._publish(sa.AWAITING_APPROVAL)
        await self._notify(
            "awaiting-approval",
            f"waiting for {self._waiting_for}",
            environment=approval.environment,
            deadline=approval.deadline.isoformat(),
        )
        try:
            await workflow.wait_condition(lambda: approval.status != "waiting", timeout=timeout)
        except TimeoutError:
            approval.status = "timed-out"
            approval.decided_at = workflow.now()
            approval.via = "timeout"
            approval.reason = f"no decision within {timeout}"
        finally:
            self._waiting_for = ""
        if approval.status != "approved":
            who = f" by {approval.decided_by}" if approval.decided_by else ""
            raise StageFailed(stage, f"{kind} {approval.status}{who}: {approval.reason}")

    async def _deploy(self, env: EnvironmentConfig) -> None:
        release_id = workflow.info().workflow_id

        kubernetes = self._kubernetes(env)

        async def one(service: str) -> None:
            svc = self._config.service(service)
            image = self._images[service]
            # Ask what runs now and remember it before changing anything, so an
            # abort or failure can put it back even if the deploy itself dies half-way.
            current = await opts.call(
                "describe_service",
                DescribeInput(release_id, env.name, env.target, service, kubernetes),
                DescribeResult,
                opts.SMOKE,
                summary=f"describe {service} in {env.name}",
            )
            env_vars = dict(self._request.container_env.get(service, {}))
            running = current.running
            serves_it = running is not None and (running.image, running.env) == (
                image.image,
                env_vars,
            )
            if not serves_it:
                self._undo.append(_Undo(env.name, env.target, service, running, kubernetes))
            # a Kubernetes canary is routed by the ingress: services without one go direct
            can_canary = kubernetes is None or service in kubernetes.canary_services
            if env.strategy == "canary" and running is not None and can_canary:
                if serves_it:
                    self._deployments[(env.name, service)] = running
                    return  # this very version already serves: nothing to compare
                await self._canary(env, service, image, env_vars, kubernetes)
            else:
                await self._deploy_direct(env, service, image, env_vars, kubernetes)
            await opts.call(
                "smoke_test",
                SmokeTestInput(
                    release_id=release_id,
                    environment=env.name,
                    target=env.target,
                    service=service,
                    version=self._request.version,
                    smoke_path=svc.smoke_path,
                    kubernetes=kubernetes,
                ),
                SmokeTestResult,
                opts.SMOKE,
                summary=f"smoke test {service} in {env.name}",
            )

        await self._per_service(deploy_stage(env.name), one, self._request.services)

    async def _deploy_direct(
        self,
        env: EnvironmentConfig,
        service: str,
        image: ImageRecord,
        env_vars: dict[str, str],
        kubernetes: KubernetesSpec | None,
    ) -> None:
        """All traffic to the new version at once (the target confirms its router applied it)."""
        result = await opts.call(
            "deploy_service",
            DeployInput(
                release_id=workflow.info().workflow_id,
                environment=env.name,
                target=env.target,
                service=service,
                version=self._request.version,
                image=image.image,
                smoke_path=self._config.service(service).smoke_path,
                env=env_vars,
                kubernetes=kubernetes,
            ),
            DeployResult,
            opts.for_rollout(opts.DEPLOY, kubernetes.timeout_seconds if kubernetes else None),
            summary=f"deploy {service} {self._request.version} to {env.name}",
        )
        self._deployments[(env.name, service)] = result.deployed

    async def _canary(
        self,
        env: EnvironmentConfig,
        service: str,
        image: ImageRecord,
        env_vars: dict[str, str],
        kubernetes: KubernetesSpec | None,
    ) -> None:
        """One CanaryWorkflow child; a rolled-back canary fails the stage with its reason."""
        release_id = workflow.info().workflow_id
        svc = self._config.service(service)
        canary = self._config.canary
        if canary is None:  # config.validate always sets it for a canary environment
            raise StageFailed(deploy_stage(env.name), "the pipeline has no canary: section")
        if svc.load_path:
            canary = dataclasses.replace(
                canary, load=dataclasses.replace(canary.load, path=svc.load_path)
            )
        ref = CanaryRef(env.name, service, canary_workflow_id(release_id, env.name, service))
        self._canaries[(env.name, service)] = ref
        self._publish()
        try:
            result = await workflow.execute_child_workflow(
                "CanaryWorkflow",
                CanaryInput(
                    release_id=release_id,
                    environment=env.name,
                    target=env.target,
                    service=service,
                    version=self._request.version,
                    image=image.image,
                    canary=canary,
                    approval=self._config.approval,
                    initiator=self._request.initiator,
                    smoke_path=svc.smoke_path,
                    env=env_vars,
                    notify_webhook=self._config.notify.webhook,
                    kubernetes=kubernetes,
                    source=self._request.source,
                ),
                id=ref.workflow_id,
                result_type=CanaryResult,
                # the canary rolls back before the release compensates or ends
                cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"canary {service} {self._request.version} in {env.name}",
            )
        except ChildWorkflowError as exc:
            if is_cancelled_exception(exc):
                ref.outcome = "aborted"
                raise asyncio.CancelledError() from exc
            ref.outcome, ref.reason = "failed", failure_reason(exc)
            raise StageFailed(deploy_stage(env.name), f"canary failed: {ref.reason}") from exc
        except asyncio.CancelledError:
            ref.outcome = "aborted"
            raise
        ref.outcome, ref.reason = result.outcome, result.reason
        if result.outcome != "promoted":
            raise CanaryRolledBack(deploy_stage(env.name), f"canary rolled back: {result.reason}")
        if result.traffic is not None and result.traffic.stable is not None:
            self._deployments[(env.name, service)] = result.traffic.stable

    async def _compensate(self) -> None:
        """Restore, newest first, what this release changed. Runs even after an abort."""
        if not self._undo:
            return
        self._waiting_for = "the restore of what this release changed"
        self._publish(sa.ROLLING_BACK)
        problems: list[str] = []
        for undo in reversed(self._undo):
            try:
                await opts.call(
                    "restore_service",
                    RestoreInput(
                        release_id=workflow.info().workflow_id,
                        environment=undo.environment,
                        target=undo.target,
                        service=undo.service,
                        previous=undo.previous,
                        kubernetes=undo.kubernetes,
                    ),
                    RestoreResult,
                    opts.for_rollout(
                        opts.RESTORE, undo.kubernetes.timeout_seconds if undo.kubernetes else None
                    ),
                    summary=f"restore {undo.service} in {undo.environment}",
                )
            except ActivityError as exc:
                problems.append(f"{undo.service} in {undo.environment}: {failure_reason(exc)}")
                continue
            if undo.previous is None:
                self._deployments.pop((undo.environment, undo.service), None)
            else:
                self._deployments[(undo.environment, undo.service)] = undo.previous
            self._services[undo.service].stages[deploy_stage(undo.environment)] = "compensated"
            self._stages[deploy_stage(undo.environment)].state = "compensated"
        self._undo.clear()
        self._waiting_for = ""
        if problems:
            self._failure += "; rollback incomplete, fix by hand: " + "; ".join(problems)

    # ---------------------------------------------------------------- human decisions
    # Handlers are async: a signed decision is verified by an activity before it applies.
    # A decision that started verifying is applied only if its gate still waits after.
    @workflow.signal(name="approve")
    async def approve(self, signal: ApprovalSignal) -> None:
        decision = DecisionInput(
            signal.approver,
            True,
            signal.reason,
            signal.plan_sha256,
            statement=signal.statement,
            signature=signal.signature,
        )
        await self._decide_checked(decision, via="signal")

    @workflow.signal(name="reject")
    async def reject(self, signal: ApprovalSignal) -> None:
        decision = DecisionInput(
            signal.approver,
            False,
            signal.reason,
            statement=signal.statement,
            signature=signal.signature,
        )
        await self._decide_checked(decision, via="signal")

    @workflow.update(name="decide")
    async def decide(self, decision: DecisionInput) -> DecisionResult:
        if not self._signed_approvals():
            approval = self._decide(decision, via="update")
            return DecisionResult(accepted=True, status=approval.status if approval else "")
        approval, why = await self._decide_checked(decision, via="update")
        if approval is None:  # recorded with the approval; the caller is told why
            raise ApplicationError(why, type="DecisionRefused", non_retryable=True)
        return DecisionResult(accepted=True, status=approval.status)

    @decide.validator
    def _validate_decide(self, decision: DecisionInput) -> None:
        why = self._refusal(decision)
        if why:
            raise ValueError(why)

    def _open_approval(self) -> ApprovalState | None:
        return next((a for a in self._approvals.values() if a.status == "waiting"), None)

    def _refusal(self, decision: DecisionInput) -> str | None:
        approval = self._open_approval()
        if approval is None:
            return f"no approval is waiting for a decision (release is at stage {self._stage})"
        if approval.plan_sha256 and decision.approve:
            named = decision.plan_sha256.strip().lower()
            if named != approval.plan_sha256:
                return (
                    f"this review is of the Terraform plan with sha256 {approval.plan_sha256}; "
                    f"the approval names {named or 'no plan'}. Read the plan with `starter.py "
                    "status` and approve it with --plan <its sha256>"
                )
        return refusal(
            self._config.approval,
            self._request.initiator,
            decision.approver,
            decision.approve,
            decision.reason,
        )

    def _decide(self, decision: DecisionInput, via: str, signed: str = "") -> ApprovalState | None:
        """Apply a decision, or record why it was refused (signals cannot be rejected)."""
        why = self._refusal(decision)
        approval = self._open_approval()
        if why:
            self._refuse(decision, why, via, approval)
            return None
        assert approval is not None
        approval.status = "approved" if decision.approve else "rejected"
        approval.decided_by = decision.approver.strip()
        approval.decided_at = workflow.now()
        approval.reason = decision.reason
        approval.via = via
        approval.signed = signed
        return approval

    def _refuse(
        self, decision: DecisionInput, why: str, via: str, approval: ApprovalState | None
    ) -> None:
        record = RefusedDecision(decision.approver, decision.approve, workflow.now(), why)
        target = approval or next(iter(self._approvals.values()), None)
        if target is not None:
            target.refused.append(record)
        workflow.logger.warning("refused %s from %r: %s", via, decision.approver, why)

    async def _decide_checked(
        self, decision: DecisionInput, via: str
    ) -> tuple[ApprovalState | None, str]:
        """`_decide` after the statement and signature are checked: (approval, "") when
        applied, else (None, why), recorded with the approval."""
        if not self._signed_approvals():
            return self._decide(decision, via), ""
        approval = self._open_approval()
        why = self._refusal(decision)
        if why or approval is None:
            self._decide(decision, via)  # records the refusal
            return None, why or "no approval is waiting for a decision"
        stage = (
            PLAN_REVIEW_STAGE
            if approval.environment == PLAN_REVIEW
            else approval_stage(approval.environment)
        )
        expected = Expected(
            release_id=workflow.info().workflow_id,
            stage=stage,
            version=self._request.version,
            decision="approve" if decision.approve else "reject",
            approver=decision.approver.strip(),
            plan_sha256=approval.plan_sha256,
        )
        checked = await check(
            self._config.approval,
            self._request.source,
            expected,
            decision.statement,
            decision.signature,
        )
        if not checked.refused and self._open_approval() is not approval:
            checked.refused = f"{stage} stopped waiting while the signature was verified"
        if checked.refused:
            self._refuse(decision, checked.refused, via, approval)
            return None, checked.refused
        applied = self._decide(decision, via, checked.signed)
        if applied is None:
            return None, self._refusal(decision) or "refused"
        return applied, ""

    def _signed_approvals(self) -> bool:
        """Whether this run checks signatures (patched: the first call decides, at start)."""
        return workflow.patched(SIGNED_APPROVALS)

    async def _handlers_finished(self) -> None:
        """A decision still being verified when the release ends is let finish (and
        refused: no gate waits), so no handler is cut off."""
        if self._signed_approvals():
            await workflow.wait_condition(workflow.all_handlers_finished)

    # ---------------------------------------------------------------- following it
    @workflow.query(name="status")
    def status(self, _: StatusQuery | None = None) -> ReleaseStatus:
        return ReleaseStatus(
            release_id=workflow.info().workflow_id,
            version=self._request.version,
            services=list(self._request.services),
            initiator=self._request.initiator,
            stage=self._stage,
            state=self._state,
            waiting_for=self._waiting_for,
            stages=list(self._stages.values()),
            service_states=list(self._services.values()),
            approval=self._open_approval() or self._first_environment_approval(),
            deployments=list(self._deployments.values()),
            infra=self._plan,
            failure=self._failure,
            canaries=list(self._canaries.values()),
            plans=dict(self._plans),
            approvals=list(self._approvals.values()),
            unsigned_allowed=self._config.approval.allow_unsigned,
            allowed_signers=(
                f"{self._request.source}/{self._config.approval.allowed_signers}"
                if self._config.approval.allowed_signers
                else ""
            ),
        )

    def _first_environment_approval(self) -> ApprovalState | None:
        return next((a for k, a in self._approvals.items() if k != PLAN_REVIEW), None)

    def _publish(self, stage_attribute: str | None = None) -> None:
        """Keep the search attributes and the UI's current details in step with the state."""
        workflow.upsert_search_attributes(
            [
                sa.RELEASE_SERVICES.value_set(list(self._request.services)),
                sa.RELEASE_VERSION.value_set(self._request.version),
                sa.RELEASE_STAGE.value_set(stage_attribute or self._stage),
            ]
        )
        lines = [
            f"**{self._state}** at stage `{self._stage}`"
            + (f": waiting for {self._waiting_for}" if self._waiting_for else ""),
            "",
        ]
        if self._config.approval.allow_unsigned:
            lines[1:1] = [f"**{UNSIGNED_NOTICE}**", ""]
        for stage in self._stages.values():
            detail = f" ({stage.detail})" if stage.detail else ""
            lines.append(f"- {stage.name}: {stage.state}{detail}")
        for ref in self._canaries.values():
            why = f": {ref.reason}" if ref.reason else ""
            lines.append(
                f"- canary {ref.environment}/{ref.service} ({ref.workflow_id}): {ref.outcome}{why}"
            )
        if self._failure:
            lines += ["", self._failure]
        workflow.set_current_details("\n".join(lines))

    def _finish(self, state: str, stage_attribute: str) -> None:
        """The release ended; `stage` keeps where it was, the search attribute the outcome."""
        self._state = state
        self._publish(stage_attribute)

    async def _notify(self, event: str, what: str, **fields: str) -> None:
        await notify(
            self._config.notify.webhook,
            workflow.info().workflow_id,
            event,
            f"{', '.join(self._request.services)} {self._request.version}: {what}",
            stage=self._stage,
            **fields,
        )

    # ---------------------------------------------------------------- plumbing
    async def _run_stage(self, name: str, body: Callable[..., Awaitable[None]], *args: Any) -> None:
        stage = self._stages[name]
        self._stage = name
        stage.state = "running"
        stage.started_at = workflow.now()
        self._publish()
        try:
            await body(*args)
        except StageFailed as failed:
            stage.state = "failed"
            stage.detail = failed.reason
            raise
        except ActivityError as exc:  # a stage's own activity call (not per service) failed
            if is_cancelled_exception(exc):
                stage.state = "aborted"
                raise asyncio.CancelledError() from exc
            stage.state = "failed"
            stage.detail = failure_reason(exc)
            raise StageFailed(name, stage.detail) from exc
        except asyncio.CancelledError:
            stage.state = "aborted"
            raise
        except BaseException:
            stage.state = "failed"
            raise
        finally:
            stage.ended_at = workflow.now()
        stage.state = "succeeded"
        self._publish()

    async def _per_service(
        self,
        stage: str,
        body: Callable[[str], Awaitable[None]],
        services: Sequence[str],
        parallelism: int | None = None,
    ) -> None:
        """Run `body` for every service (bounded), wait for all, then fail with all reasons."""
        limit = asyncio.Semaphore(parallelism or len(services) or 1)

        async def guarded(service: str) -> None:
            async with limit:
                if service in self._services:
                    self._services[service].stages[stage] = "running"
                try:
                    await body(service)
                except BaseException:
                    if service in self._services:
                        self._services[service].stages[stage] = "failed"
                    raise
                if service in self._services:
                    self._services[service].stages[stage] = "succeeded"

        results = await asyncio.gather(*(guarded(s) for s in services), return_exceptions=True)
        failures: list[str] = []
        only_canaries = True
        for service, result in zip(services, results, strict=True):
            if isinstance(result, BaseException):
                if is_cancelled_exception(result):
                    raise asyncio.CancelledError()
                if not isinstance(result, ActivityError | StageFailed):
                    raise result
                only_canaries = only_canaries and isinstance(result, CanaryRolledBack)
                failures.append(f"{service}: {failure_reason(result)}")
        if failures:
            # only when every failure is a canary that put production back itself
            failed = CanaryRolledBack if only_canaries else StageFailed
            raise failed(stage, "; ".join(failures))
