"""Dataclasses that travel through Temporal.

Every workflow input, activity input and result, signal, update and query payload is
one of these. They are plain data with no I/O so the workflow sandbox can import them,
and new fields always get a default so running workflows and older callers keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from brewline.canary_config import CanaryConfig

# Where an environment's services run: this machine (podman behind Traefik) or a cluster.
KNOWN_TARGETS = ("local", "kubernetes")

# --------------------------------------------------------------------------------------
# The validated pipeline.yaml snapshot (built by brewline.config, carried in the input)
# --------------------------------------------------------------------------------------


@dataclass
class ServiceConfig:
    """One releasable service: where its Go package and Containerfile live."""

    name: str
    package: str  # Go package path relative to the Go module, e.g. "./api-gateway"
    containerfile: str  # relative to the Go module, e.g. "api-gateway/Containerfile"
    smoke_path: str = "/health"
    # the path the canary's load generator calls; "" takes canary.load.path. A business
    # endpoint, so a faulty version shows its faults (they never touch /health).
    load_path: str = ""


@dataclass
class TestConfig:
    coverage_min: float = 0.0  # percent of statements
    timeout_seconds: int = 600


@dataclass
class ScanConfig:
    fail_on: str = "HIGH"  # lowest severity that fails the gate: LOW, MEDIUM, HIGH, CRITICAL
    semgrep_rules: str = "policy/semgrep/go.yml"  # relative to the source tree
    shared_paths: list[str] = field(default_factory=list)  # scanned for every release


@dataclass
class BuildConfig:
    parallelism: int = 2


@dataclass
class InfraConfig:
    terraform_dir: str = "terraform/envs/local"  # relative to the source tree
    variables: dict[str, str] = field(default_factory=dict)
    # variable name -> reference to its secret value (env:NAME, file:/path,
    # aws-secretsmanager:<arn>, aws-ssm:<name>); only the reference travels through
    # Temporal, the terraform activity resolves it (brewline.secret_refs)
    secret_variables: dict[str, str] = field(default_factory=dict)


@dataclass
class KubernetesSpec:
    """How a `kubernetes` environment is reached and deployed (Helm chart on a cluster).

    In pipeline.yaml (`environments.<env>.kubernetes`) empty fields are filled by the
    release from the infra stage's outputs (`cluster_name`, `region`, `registry`) before
    any deploy activity sees the spec, so the activities always get concrete values.
    """

    namespace: str
    cluster: str = ""  # EKS cluster name ("" = infra output `cluster_name`)
    region: str = ""  # AWS region of the cluster ("" = infra output `region`)
    release: str = "go-coffee"  # Helm release name
    chart: str = "helm/go-coffee"  # relative to the release's source tree
    values: list[str] = field(default_factory=list)  # values files, relative to the source
    registry: str = ""  # global.imageRegistry ("" = infra output `registry`)
    # Helm value path -> infra output name, set with --set-literal (e.g.
    # managedServices.postgres.host: rds_endpoint)
    values_from_outputs: dict[str, str] = field(default_factory=dict)
    # the filled-in values of values_from_outputs (what the activities pass to helm)
    set_values: dict[str, str] = field(default_factory=dict)
    canary_services: list[str] = field(default_factory=lambda: ["api-gateway"])
    timeout_seconds: int = 600  # readiness deadline of one rollout
    source: str = ""  # the release's source tree (filled by the release)
    # the cluster's Prometheus, which scrapes ingress-nginx: the canary analysis asks it
    # ("" = the worker's own Prometheus, which sees only the local platform)
    prometheus_url: str = ""


@dataclass
class EnvironmentConfig:
    name: str
    target: str = "local"  # which deploy target drives this environment
    requires_approval: bool = False
    strategy: str = "direct"  # direct (all traffic at once) or canary (pipeline's canary:)
    kubernetes: KubernetesSpec | None = None  # set when target is kubernetes
    terraform_dir: str = ""  # this environment's own Terraform root ("" = infra.terraform_dir)


@dataclass
class ApprovalConfig:
    approvers: list[str] = field(default_factory=list)
    allow_self_approval: bool = False
    timeout_seconds: int = 24 * 3600
    # signed approvals (brewline/signing.py): the allowed-signers file, inside the source
    # tree, that approvers' SSH signatures are verified against
    allowed_signers: str = ""
    # accept decisions without a signature (a signed one is still verified): only for a
    # pipeline whose environments are all local (brewline.config refuses it otherwise)
    allow_unsigned: bool = False


@dataclass
class NotifyConfig:
    """Where release events go: a Slack-compatible incoming webhook, or nowhere ("")."""

    webhook: str = ""


@dataclass
class PipelineConfig:
    """What to release and how: the validated content of pipeline.yaml."""

    project: str
    go_module: str  # path of the Go module inside the source tree
    services: list[ServiceConfig]
    environments: list[EnvironmentConfig]
    test: TestConfig = field(default_factory=TestConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    infra: InfraConfig = field(default_factory=InfraConfig)
    approval: ApprovalConfig = field(default_factory=ApprovalConfig)
    canary: CanaryConfig | None = None  # set whenever an environment uses strategy canary
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    def service(self, name: str) -> ServiceConfig:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)

    def environment(self, name: str) -> EnvironmentConfig:
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(name)


# --------------------------------------------------------------------------------------
# Workflow input and result
# --------------------------------------------------------------------------------------


@dataclass
class ReleaseRequest:
    """Everything a release needs; the workflow never reads files."""

    services: list[str]
    version: str
    source: str  # absolute path of the source tree on the worker's machine
    initiator: str
    environments: list[str]
    pipeline: PipelineConfig
    # service -> environment variables for the containers of the new version, in every
    # environment it reaches (validated by brewline.identity.validate_container_env)
    container_env: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class Deployment:
    """What runs for one service in one environment, as the target reports it."""

    environment: str
    service: str
    version: str
    image: str  # repository@sha256:... reference
    endpoint: str = ""  # URL through the environment's router
    env: dict[str, str] = field(default_factory=dict)  # the release's container_env


@dataclass
class ReleaseResult:
    release_id: str
    version: str
    deployments: list[Deployment]
    images: list[ImageRecord]
    approval: ApprovalState | None


# --------------------------------------------------------------------------------------
# Activities
# --------------------------------------------------------------------------------------


@dataclass
class GoTestInput:
    release_id: str
    service: str
    source: str
    go_module: str
    package: str
    coverage_min: float
    timeout_seconds: int = 600


@dataclass
class GoTestResult:
    service: str
    coverage_percent: float
    tests_passed: int
    log_path: str


@dataclass
class ScanInput:
    release_id: str
    service: str
    source: str
    paths: list[str]  # relative to source; what this scanner reads
    fail_on: str
    semgrep_rules: str = ""


@dataclass
class ScanFinding:
    tool: str
    rule_id: str
    severity: str  # LOW, MEDIUM, HIGH, CRITICAL
    path: str
    line: int
    title: str


@dataclass
class ScanResult:
    tool: str
    service: str
    counts: dict[str, int]  # severity -> number of findings
    gate_findings: list[ScanFinding]  # findings at or above fail_on (empty when passed)
    sarif_path: str


@dataclass
class BuildInput:
    release_id: str
    service: str
    version: str
    source: str
    go_module: str
    package: str
    containerfile: str
    # where to push: a full repository (an ECR repository URL from the infra outputs);
    # "" = <local registry>/<project>/<service>
    repository: str = ""


@dataclass
class ImageRecord:
    service: str
    version: str
    image: str  # repository@sha256:...
    digest: str  # sha256:...
    source_digest: str  # sha256 over the inputs the image was built from
    skipped: bool = False  # the registry already held this version built from this source


@dataclass
class TerraformPlanInput:
    release_id: str
    source: str
    terraform_dir: str
    variables: dict[str, str]
    # variable name -> secret reference (never the value): resolved in the activity and
    # given to terraform as TF_VAR_<name> in its environment
    secret_variables: dict[str, str] = field(default_factory=dict)


@dataclass
class ResourceChange:
    address: str
    actions: list[str]  # terraform's actions: create, update, delete, no-op, read


@dataclass
class TerraformPlanResult:
    plan_file: str
    plan_sha256: str
    add: int
    change: int
    destroy: int
    resource_changes: list[ResourceChange]


@dataclass
class TerraformApplyInput:
    release_id: str
    source: str
    terraform_dir: str
    plan_file: str
    plan_sha256: str  # apply refuses a plan file that is not the reviewed one


@dataclass
class TerraformApplyResult:
    outputs: dict[str, str]
    applied: bool  # False when the plan had no changes


@dataclass
class DeployInput:
    """Make `service` in `environment` run `image` (idempotent)."""

    release_id: str
    environment: str
    target: str
    service: str
    version: str
    image: str
    smoke_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)  # extra container environment
    kubernetes: KubernetesSpec | None = None  # for target kubernetes, filled in


@dataclass
class DeployResult:
    deployed: Deployment
    previous: Deployment | None  # what ran before, for compensation
    changed: bool  # False when this version already ran there


@dataclass
class SmokeTestInput:
    release_id: str
    environment: str
    target: str
    service: str
    version: str
    smoke_path: str = "/health"
    kubernetes: KubernetesSpec | None = None  # for target kubernetes, filled in


@dataclass
class SmokeTestResult:
    url: str
    status_code: int
    version_seen: str
    latency_ms: float


@dataclass
class RestoreInput:
    """Put back what ran before a release: `previous`, or nothing at all when None."""

    release_id: str
    environment: str
    target: str
    service: str
    previous: Deployment | None
    kubernetes: KubernetesSpec | None = None  # for target kubernetes, filled in


@dataclass
class DescribeInput:
    """Ask a target what runs for one service in one environment."""

    release_id: str
    environment: str
    target: str
    service: str
    kubernetes: KubernetesSpec | None = None  # for target kubernetes, filled in


@dataclass
class DescribeResult:
    environment: str
    service: str
    running: Deployment | None


@dataclass
class RestoreResult:
    environment: str
    service: str
    running: Deployment | None


# --------------------------------------------------------------------------------------
# Signals, updates and queries
# --------------------------------------------------------------------------------------


@dataclass
class ApprovalSignal:
    """Payload of the `approve` and `reject` signals."""

    approver: str
    reason: str = ""
    plan_sha256: str = ""  # a Terraform plan review: the sha256 of the plan approved
    statement: str = ""  # the signed text (brewline.signing.Statement.to_text())
    signature: str = ""  # armored SSH signature over `statement` (ssh-keygen -Y sign)


@dataclass
class DecisionInput:
    """Payload of the `decide` update."""

    approver: str
    approve: bool
    reason: str = ""
    # A Terraform plan review is bound to the plan: an approval must name the sha256 of
    # the plan file the approver read (starter.py shows it), else it is refused.
    plan_sha256: str = ""
    statement: str = ""  # the signed text (brewline.signing.Statement.to_text())
    signature: str = ""  # armored SSH signature over `statement` (ssh-keygen -Y sign)


@dataclass
class VerifyApprovalInput:
    """Check an approver's SSH signature over a statement against the allowed signers."""

    release_id: str
    source: str  # the release's source tree
    allowed_signers: str  # relative to source (pipeline.yaml approval.allowed_signers)
    principal: str  # the approver: the name the key must be listed under
    statement: str
    signature: str  # armored SSH signature


@dataclass
class VerifyApprovalResult:
    verified: bool
    reason: str = ""  # why not, when not verified
    key: str = ""  # e.g. "ED25519 key SHA256:..." when verified


@dataclass
class DecisionResult:
    accepted: bool
    status: str


@dataclass
class RefusedDecision:
    approver: str
    approve: bool
    at: datetime
    why: str


@dataclass
class ApprovalState:
    environment: str
    status: str = "pending"  # pending, waiting, approved, rejected, timed-out
    requested_at: datetime | None = None
    deadline: datetime | None = None
    decided_by: str = ""
    decided_at: datetime | None = None
    reason: str = ""
    via: str = ""  # signal, update or timeout
    signed: str = ""  # who signed it and with what key, or "unsigned (allowed)"
    refused: list[RefusedDecision] = field(default_factory=list)
    # set for a Terraform plan review: what an approval must name, and what the plan does
    plan_sha256: str = ""
    plan_changes: list[str] = field(default_factory=list)  # "<root>: delete <address>"


@dataclass
class StageState:
    name: str
    state: str = "pending"  # pending, running, succeeded, failed, skipped, compensated
    started_at: datetime | None = None
    ended_at: datetime | None = None
    detail: str = ""


@dataclass
class ServiceState:
    name: str
    stages: dict[str, str] = field(default_factory=dict)  # stage -> state
    coverage_percent: float | None = None
    image: str = ""


@dataclass
class StatusQuery:
    """Input of the `status` query (no fields yet; kept so fields can be added)."""


@dataclass
class ReleaseStatus:
    release_id: str
    version: str
    services: list[str]
    initiator: str
    stage: str
    state: str  # running, succeeded, failed, aborted
    waiting_for: str
    stages: list[StageState]
    service_states: list[ServiceState]
    approval: ApprovalState | None
    deployments: list[Deployment]
    infra: TerraformPlanResult | None = None
    failure: str = ""
    canaries: list[CanaryRef] = field(default_factory=list)
    plans: dict[str, TerraformPlanResult] = field(default_factory=dict)  # Terraform root -> plan
    approvals: list[ApprovalState] = field(default_factory=list)  # every gate, plan review first
    unsigned_allowed: bool = False  # pipeline approval.allow_unsigned (local demo only)
    allowed_signers: str = ""  # the allowed-signers file on the worker's machine (absolute)


@dataclass
class CanaryRef:
    """A CanaryWorkflow the release started: query it (`status`) or steer it (`control`)."""

    environment: str
    service: str
    workflow_id: str
    outcome: str = "running"  # running, promoted, rolled-back, failed, aborted
    reason: str = ""


# --------------------------------------------------------------------------------------
# Progressive delivery (canary): traffic, metrics, load
# --------------------------------------------------------------------------------------


@dataclass
class CanaryDeployInput:
    """Start `image` as the canary of `service` in `environment`, beside stable, at weight 0."""

    release_id: str
    environment: str
    target: str
    service: str
    version: str
    image: str
    smoke_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)  # extra container environment
    kubernetes: KubernetesSpec | None = None  # for target kubernetes, filled in


@dataclass
class TrafficState:
    """Who serves a service in an environment and with what share of requests (0-100)."""

    environment: str
    service: str
    stable: Deployment | None
    canary: Deployment | None
    canary_weight: int


@dataclass
class SetWeightInput:
    release_id: str
    environment: str
    target: str
    service: str
    weight: int  # percent of requests to the canary, 0-100
    kubernetes: KubernetesSpec | None = None  # for target kubernetes, filled in


@dataclass
class CanaryEndInput:
    """Promote the canary (it becomes stable at 100%) or roll it back (weight 0, removed)."""

    release_id: str
    environment: str
    target: str
    service: str
    kubernetes: KubernetesSpec | None = None  # for target kubernetes, filled in


@dataclass
class MetricQueryInput:
    """One instant PromQL query; `query` is already rendered (no template left)."""

    query: str
    prometheus_url: str = ""  # empty: the worker's configured Prometheus


@dataclass
class MetricQueryResult:
    """The query's value; None when Prometheus answered with no data or NaN."""

    value: float | None
    samples: int  # series in the answer (0 = no data)
    at: datetime | None = None
    error: str = ""  # Prometheus unreachable or the query rejected: an Error measurement


@dataclass
class CountWindowInput:
    """Counts of one window for a statistical judge: requests, 5xx and slow requests of
    the canary and stable arms as the router counts them. With router `traefik` the
    services are Traefik leaves (`<env>-<service>-canary@file`, ...); with
    `ingress-nginx` they are the Kubernetes Services (`<service>`, `<service>-canary`)
    behind the stable Ingress of that name in `namespace`."""

    canary_service: str
    stable_service: str
    interval_seconds: int
    quantile: float = 0.99  # "slow" = slower than the bucket edge at stable's quantile
    edge_lookback_seconds: int = 60  # stable's latency distribution is read over this
    prometheus_url: str = ""  # empty: the worker's configured Prometheus
    router: str = "traefik"  # whose counters: traefik or ingress-nginx (brewline.analysis)
    namespace: str = ""  # ingress-nginx: the Kubernetes namespace of the Ingresses


@dataclass
class CountWindowResult:
    """Counter increases over the window (0 where nothing was counted); `error` when
    Prometheus could not be asked: an Error, never counts of zero that look like data."""

    canary_requests: float = 0.0
    canary_errors: float = 0.0
    stable_requests: float = 0.0
    stable_errors: float = 0.0
    canary_slow: float = 0.0
    stable_slow: float = 0.0
    latency_bound_seconds: float = 0.0  # 0: stable had no latency samples to pick it from
    error: str = ""


@dataclass
class LoadInput:
    """Send traffic through the environment's router for `duration_seconds` (hey)."""

    release_id: str
    environment: str
    service: str
    path: str
    rate_per_second: float
    concurrency: int
    duration_seconds: int


@dataclass
class LoadResult:
    requests: int
    status_codes: dict[str, int]
    duration_seconds: float


@dataclass
class NotifyInput:
    """One release event for a Slack-compatible incoming webhook."""

    release_id: str
    event: str  # started, awaiting-approval, canary-step, promoted, rolled-back, ...
    text: str
    webhook_url: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class NotifyResult:
    delivered: bool
    status_code: int = 0
    error: str = ""
