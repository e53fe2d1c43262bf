"""Load and validate pipeline.yaml into a PipelineConfig.

Validation collects every problem before failing, so a person fixes the file in one go:
`ConfigError.problems` lists them, each naming the key, the value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from brewline.canary_config import validate_canary
from brewline.fields import (
    Reader,
    checked_name,
    duration,
    flag,
    go_package,
    list_of,
    named_entries,
    nonempty,
    number,
    parse_duration,
    relative_path,
    url_path,
    variables,
    whole,
)
from brewline.identity import NAME_RULE, InvalidName, validate_person
from brewline.model import (
    KNOWN_TARGETS,
    ApprovalConfig,
    BuildConfig,
    EnvironmentConfig,
    InfraConfig,
    KubernetesSpec,
    NotifyConfig,
    PipelineConfig,
    ScanConfig,
    ServiceConfig,
    TestConfig,
)
from brewline.secret_refs import parse_secret_ref
from brewline.severity import SEVERITIES

STRATEGIES = ("direct", "canary")
# Kubernetes names: a namespace and a Helm release are DNS labels (a release at most 53).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_EKS_CLUSTER = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
_HELM_VALUE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# a variable whose name says it holds a secret must be given by reference
_SECRET_LOOKING = re.compile(
    r"(?i)password|passwd|secret|token|private_?key|credential|api_?key|access_?key"
)


class ConfigError(ValueError):
    """pipeline.yaml is not valid; `problems` lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source} is not valid ({len(problems)} problems):\n{lines}")


def _severity(value: object) -> str:
    text = nonempty(value).upper()
    if text not in SEVERITIES:
        raise ValueError(f"{value!r} is not a severity; allowed: {', '.join(SEVERITIES)}")
    return text


def _strategy(value: object) -> str:
    if value not in STRATEGIES:
        raise ValueError(
            f"{value!r} is not a deploy strategy; use direct (all traffic at once) or canary "
            "(the steps under canary:)"
        )
    return str(value)


def _approver(value: object) -> str:
    """An approver as starter.py's --as spells people: " alice" could never match anyone."""
    try:
        return validate_person("approver", value)  # type: ignore[arg-type]
    except InvalidName as exc:
        raise ValueError(str(exc)) from None


def _webhook(value: object) -> str:
    """A chat webhook's URL is a credential: a secret reference, or a loopback URL."""
    text = nonempty(value).strip()
    if text.startswith(("http://", "https://")):
        parts = urlsplit(text)
        if parts.hostname in ("127.0.0.1", "localhost", "::1"):
            return text
        raise ValueError(
            f"{urlsplit(text).scheme}://{parts.hostname}/... is a webhook URL written in the "
            "file: it is a credential (anyone holding it can post), so give it as a secret "
            "reference such as env:BREWLINE_WEBHOOK_URL (only a loopback URL may be inline)"
        )
    try:
        parse_secret_ref(text)
    except ValueError as err:
        raise ValueError(
            f"must be an http(s) URL on loopback or a secret reference to the webhook URL: {err}"
        ) from None
    return text


def _prometheus_url(value: object) -> str:
    url = value.strip() if isinstance(value, str) else ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError(
            f"{value!r} must be the http(s) URL of the Prometheus that scrapes the "
            "cluster's ingress-nginx, e.g. http://prometheus.monitoring.svc:9090"
        )
    return url


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[Any], str]:
    def convert(value: object) -> str:
        text = nonempty(value)
        if not pattern.fullmatch(text):
            raise ValueError(f"{value!r} is not {what}")
        return text

    return convert


def _dns_label(limit: int) -> Callable[[Any], str]:
    def convert(value: object) -> str:
        text = _matching(_DNS_LABEL, "a DNS label (lower-case letters, digits and '-')")(value)
        if len(text) > limit:
            raise ValueError(f"{value!r} is longer than {limit} characters")
        return text

    return convert


def _values_from_outputs(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{value!r} must map Helm value paths to Terraform output names")
    out: dict[str, str] = {}
    for path, output in value.items():
        if not isinstance(path, str) or not _HELM_VALUE_PATH.fullmatch(path):
            raise ValueError(
                f"{path!r} is not a Helm value path such as managedServices.redis.host"
            )
        if not isinstance(output, str) or not _IDENT.fullmatch(output):
            raise ValueError(f"{output!r} (for {path}) is not a Terraform output name")
        out[path] = output
    return out


def _secret_variables(value: object) -> dict[str, str]:
    """infra.secret_variables: variable name -> reference to its value (never the value)."""
    if not isinstance(value, dict):
        raise ValueError(
            f"{value!r} must map Terraform variable names to secret references such as "
            "env:GO_COFFEE_DB_PASSWORD"
        )
    out: dict[str, str] = {}
    bad: list[str] = []
    for name, reference in value.items():
        if not isinstance(name, str) or not _IDENT.fullmatch(name):
            bad.append(f"variable name {name!r} must be an identifier")
            continue
        try:
            out[name] = str(parse_secret_ref(reference))
        except ValueError as err:
            # the message names the reference; a value written here by mistake shows
            # only in this local error, never in a workflow
            bad.append(f"{name}: {err}")
    if bad:
        raise ValueError("; ".join(bad))
    return out


def _check_infra_variables(infra: InfraConfig, problems: list[str]) -> None:
    """Secrets only by reference: no plain variable that is (or looks like) a secret one."""
    for name in sorted(set(infra.variables) & set(infra.secret_variables)):
        problems.append(
            f"infra.variables.{name} is also in infra.secret_variables; keep it only there"
        )
    for name in sorted(set(infra.variables) - set(infra.secret_variables)):
        if _SECRET_LOOKING.search(name):
            problems.append(
                f"infra.variables.{name} looks like a secret (by its name): values in "
                "pipeline.yaml travel through workflow history; give it by reference "
                f"under infra.secret_variables (e.g. {name}: env:<VARIABLE>)"
            )


def _kubernetes(node: Reader, services: list[str]) -> KubernetesSpec:
    """environments.<env>.kubernetes: where the Helm chart goes and how to reach it."""
    spec = KubernetesSpec(
        namespace=node.get("namespace", "default", _dns_label(63), required=True),
        cluster=node.get("cluster", "", _matching(_EKS_CLUSTER, "an EKS cluster name")),
        region=node.get("region", "", _matching(_AWS_REGION, "an AWS region such as us-east-1")),
        release=node.get("release", "go-coffee", _dns_label(53)),
        chart=node.get("chart", "helm/go-coffee", relative_path),
        values=node.get("values", [], list_of(relative_path)),
        registry=node.get("registry", "", nonempty),
        values_from_outputs=node.get("values_from_outputs", {}, _values_from_outputs),
        canary_services=node.get("canary_services", ["api-gateway"], list_of(nonempty)),
        timeout_seconds=node.get("rollout_timeout", 600, duration(30, 3 * 3600)),
        prometheus_url=node.get("prometheus_url", "", _prometheus_url),
    )
    for name in spec.canary_services:
        if name not in services:
            node.problems.append(
                f"{node.key('canary_services')}: {name!r} is not a service of this pipeline; "
                f"known: {', '.join(services)}"
            )
    node.finish()
    return spec


def _check_signing(
    approval: ApprovalConfig, environments: list[EnvironmentConfig], problems: list[str]
) -> None:
    """Signed approvals: unsigned ones only for a local demo; else an allowed-signers file."""
    if approval.allow_unsigned:
        # an unknown target is already a problem of its own
        remote = [e for e in environments if e.target != "local" and e.target in KNOWN_TARGETS]
        for env in remote:
            problems.append(
                f"approval.allow_unsigned: true is for a local demo only, but "
                f"environments.{env.name}.target is {env.target!r}: set allow_unsigned: "
                "false and name approval.allowed_signers"
            )
    elif not approval.allowed_signers and (
        approval.approvers or any(e.requires_approval for e in environments)
    ):
        problems.append(
            "approval.allowed_signers must name the allowed-signers file (inside the source "
            "tree, e.g. policy/allowed_signers) that approvers' SSH signatures are checked "
            "against; or, for a local demo only, set approval.allow_unsigned: true"
        )


def validate(data: object, source: str = "pipeline.yaml") -> PipelineConfig:
    """Validate the parsed YAML tree; raise ConfigError listing every problem."""
    problems: list[str] = []
    top = Reader(problems, "", data)
    schema = top.get("version", 0, whole(1, 1), required=True)
    del schema
    project = top.get("project", "project", checked_name("project"), required=True)
    go_module = top.get("go_module", ".", relative_path, required=True)

    services: list[ServiceConfig] = []
    for name, svc in named_entries(top, "services", "service", "at least one service"):
        package = svc.get("package", f"./{name}", go_package)
        services.append(
            ServiceConfig(
                name=name,
                package=package,
                containerfile=svc.get(
                    "containerfile", f"{package[2:]}/Containerfile", relative_path
                ),
                smoke_path=svc.get("smoke_path", "/health", url_path),
                load_path=svc.get("load_path", "", url_path),
            )
        )
        svc.finish()

    test_node = top.sub("test")
    test = TestConfig(
        coverage_min=test_node.get("coverage_min", 0.0, number(0, 100)),
        timeout_seconds=test_node.get("timeout", 600, duration(10, 6 * 3600)),
    )
    test_node.finish()

    scan_node = top.sub("scan")
    scan = ScanConfig(
        fail_on=scan_node.get("fail_on", "HIGH", _severity),
        semgrep_rules=scan_node.get("semgrep_rules", "policy/semgrep/go.yml", relative_path),
        shared_paths=scan_node.get("shared_paths", [], list_of(relative_path)),
    )
    scan_node.finish()

    build_node = top.sub("build")
    build = BuildConfig(parallelism=build_node.get("parallelism", 2, whole(1, 16)))
    build_node.finish()

    infra_node = top.sub("infra")
    infra = InfraConfig(
        terraform_dir=infra_node.get("terraform_dir", "terraform/envs/local", relative_path),
        variables=infra_node.get("variables", {}, variables),
        secret_variables=infra_node.get("secret_variables", {}, _secret_variables),
    )
    infra_node.finish()
    _check_infra_variables(infra, problems)

    environments: list[EnvironmentConfig] = []
    for name, env in named_entries(
        top, "environments", "environment", "at least one environment, in release order"
    ):
        target = env.get("target", "local", nonempty)
        if target not in KNOWN_TARGETS:
            problems.append(
                f"environments.{name}.target: {target!r} is not a known deploy target; "
                f"allowed: {', '.join(KNOWN_TARGETS)}"
            )
        kubernetes = None
        if "kubernetes" in env.data or target == "kubernetes":
            kubernetes = _kubernetes(env.sub("kubernetes"), [s.name for s in services])
            if target != "kubernetes":
                problems.append(
                    f"environments.{name}.kubernetes is only read with target: kubernetes "
                    f"(the target is {target!r}); remove it or change the target"
                )
        environment = EnvironmentConfig(
            name=name,
            target=target,
            requires_approval=env.get("requires_approval", False, flag),
            strategy=env.get("strategy", "direct", _strategy),
            kubernetes=kubernetes,
            terraform_dir=env.get("terraform_dir", "", relative_path),
        )
        # the worker's own Prometheus never sees the cluster's ingress-nginx: the analysis
        # would only ever read "no data"
        canary_on_kubernetes = kubernetes is not None and environment.strategy == "canary"
        given = isinstance(env.data.get("kubernetes"), dict) and (
            "prometheus_url" in env.data["kubernetes"]
        )
        if canary_on_kubernetes and not given:  # a bad one is already a problem
            problems.append(
                f"environments.{name}.kubernetes.prometheus_url is required with strategy "
                "canary: the http(s) URL of the Prometheus that scrapes the cluster's "
                "ingress-nginx"
            )
        environments.append(environment)
        env.finish()

    # The canary section is read whenever it is there (so its mistakes show even before an
    # environment uses it) and defaults to DEFAULT_CANARY when an environment needs it.
    canary = None
    if "canary" in top.data or any(e.strategy == "canary" for e in environments):
        canary = validate_canary(top.data.get("canary"), problems, "canary")
    top.seen.add("canary")

    notify_node = top.sub("notify")
    notify = NotifyConfig(webhook=notify_node.get("webhook", "", _webhook))
    notify_node.finish()

    approval_node = top.sub("approval")
    approval = ApprovalConfig(
        approvers=approval_node.get("approvers", [], list_of(_approver)),
        allow_self_approval=approval_node.get("allow_self_approval", False, flag),
        timeout_seconds=approval_node.get("timeout", 24 * 3600, duration(60, 30 * 86400)),
        allowed_signers=approval_node.get("allowed_signers", "", relative_path),
        allow_unsigned=approval_node.get("allow_unsigned", False, flag),
    )
    approval_node.finish()
    _check_signing(approval, environments, problems)
    if any(e.requires_approval for e in environments) and not approval.approvers:
        problems.append(
            "approval.approvers must name at least one person: "
            + ", ".join(e.name for e in environments if e.requires_approval)
            + " requires approval"
        )
    top.finish()

    if problems:
        raise ConfigError(source, problems)
    return PipelineConfig(
        project=project,
        go_module=go_module,
        services=services,
        environments=environments,
        test=test,
        scan=scan,
        build=build,
        infra=infra,
        approval=approval,
        canary=canary,
        notify=notify,
    )


def load(path: Path) -> PipelineConfig:
    """Read and validate a pipeline.yaml file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read it: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        raise ConfigError(str(path), [problem]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from None
    except RecursionError:
        # PyYAML composes nested collections recursively: thousands of '[' exhaust the stack
        raise ConfigError(str(path), ["not valid YAML: nested too deeply"]) from None
    return validate(data, str(path))


__all__ = ["NAME_RULE", "ConfigError", "load", "parse_duration", "validate"]
