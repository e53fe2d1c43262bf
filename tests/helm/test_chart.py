"""The go-coffee Helm chart, checked with the real helm 3.17.3, Trivy and Kubernetes schemas.

helm comes from `helm/install-helm.py` (found through BREWLINE_HELM or the venv); every
test renders the chart in helm/go-coffee as it is in the work tree.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from brewline.platform import REPO_ROOT, tool_path

CHART = REPO_ROOT / "helm" / "go-coffee"
SERVICES = ("api-gateway", "auth-service", "consumer", "producer")
# values.yaml alone, then each environment's file layered over it.
ENVIRONMENTS = {
    "default": [],
    "staging": [CHART / "values-staging.yaml"],
    "production": [CHART / "values-production.yaml"],
}
DIGEST = "sha256:" + hashlib.sha256(b"go-coffee canary").hexdigest()
OTHER_DIGEST = "sha256:" + hashlib.sha256(b"go-coffee stable").hexdigest()
ECR = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
TRIVY_BLOCKING = {"HIGH", "CRITICAL"}

Manifest = dict[str, Any]


@pytest.fixture(scope="session")
def helm() -> str:
    try:
        return tool_path("helm", "BREWLINE_HELM")
    except FileNotFoundError as exc:
        pytest.fail(f"{exc}; install it with `.venv/bin/python helm/install-helm.py`")


@pytest.fixture(scope="session")
def trivy() -> str:
    return tool_path("trivy", "BREWLINE_TRIVY")


def run(argv: list[str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def values_args(files: Iterable[Path], settings: dict[str, str] | None = None) -> list[str]:
    args: list[str] = []
    for path in files:
        args += ["--values", str(path)]
    for key, value in (settings or {}).items():
        # --set splits on commas (a broker list); --set-literal takes the value whole.
        flag = "--set"
        if "," in value:
            flag = "--set-literal"
        elif key.endswith(".tag"):
            flag = "--set-string"  # 1.10 stays the string "1.10"
        args += [flag, f"{key}={value}"]
    return args


def render_text(
    helm: str,
    environment: str = "default",
    settings: dict[str, str] | None = None,
    namespace: str = "staging",
) -> str:
    argv = [helm, "template", "go-coffee", str(CHART), "--namespace", namespace]
    result = run(argv + values_args(ENVIRONMENTS[environment], settings))
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return result.stdout


def render(
    helm: str,
    environment: str = "default",
    settings: dict[str, str] | None = None,
    namespace: str = "staging",
) -> list[Manifest]:
    """`helm template` parsed as YAML: every document must be one Kubernetes object."""
    docs = [
        doc
        for doc in yaml.safe_load_all(render_text(helm, environment, settings, namespace))
        if doc is not None
    ]
    for doc in docs:
        assert isinstance(doc, dict), f"a rendered document is not a mapping: {doc!r}"
        assert doc.get("apiVersion") and doc.get("kind"), f"no apiVersion/kind: {doc}"
        assert doc["metadata"]["name"], f"no name: {doc}"
        assert doc["metadata"]["namespace"] == namespace, f"wrong namespace: {doc['metadata']}"
    return docs


def objects(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def container(deployment: Manifest) -> Manifest:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(deployment: Manifest) -> dict[str, Any]:
    """NAME -> value, or NAME -> the secretKeyRef for variables read from a Secret."""
    result: dict[str, Any] = {}
    for var in container(deployment)["env"]:
        assert var["name"] not in result, f"{var['name']} is set twice"
        result[var["name"]] = var["value"] if "value" in var else var["valueFrom"]["secretKeyRef"]
    return result


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# ---- helm lint and helm template ------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_lint_strict(helm: str, environment: str) -> None:
    argv = [helm, "lint", "--strict", str(CHART), *values_args(ENVIRONMENTS[environment])]
    result = run(argv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_template_renders_every_service(helm: str, environment: str) -> None:
    docs = render(helm, environment)
    kinds = sorted({doc["kind"] for doc in docs})
    assert kinds == sorted(
        {
            "Deployment",
            "Service",
            "ServiceAccount",
            "NetworkPolicy",
            "Ingress",
            *(["PodDisruptionBudget"] if environment != "staging" else []),
            *(["HorizontalPodAutoscaler"] if environment == "production" else []),
        }
    )
    for kind in ("Deployment", "Service", "ServiceAccount", "NetworkPolicy"):
        assert sorted(objects(docs, kind)) == sorted(SERVICES), kind
    assert list(objects(docs, "Ingress")) == ["api-gateway"]
    # No canary unless asked for.
    assert not [doc for doc in docs if doc["metadata"]["name"].endswith("-canary")]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_deployment_is_hardened_and_probed(helm: str, environment: str) -> None:
    docs = render(helm, environment)
    accounts = objects(docs, "ServiceAccount")
    for name, deployment in objects(docs, "Deployment").items():
        pod = deployment["spec"]["template"]
        spec = pod["spec"]
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        }, name
        main = container(deployment)
        security = main["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] == 65532, name
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["privileged"] is False, name
        assert security["capabilities"] == {"drop": ["ALL"]}, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name

        assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert main["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}, name
        assert main["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}, name
        for part in ("requests", "limits"):
            assert set(main["resources"][part]) == {"cpu", "memory"}, (name, part)

        env = env_of(deployment)
        assert env["LISTEN_ADDR"] == "0.0.0.0:8080", name
        assert "FAULT_ERROR_RATE" not in env and "FAULT_LATENCY_MS" not in env, name

        assert pod["metadata"]["annotations"] == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "8080",
            "prometheus.io/path": "/metrics",
        }, name
        labels = pod["metadata"]["labels"]
        assert labels["version"] == "1.0.0", name
        assert labels["app.kubernetes.io/name"] == name
        assert labels["app.kubernetes.io/instance"] == "go-coffee"
        assert labels["app.kubernetes.io/version"] == "1.0.0"
        assert selects(deployment["spec"]["selector"]["matchLabels"], labels), name

        assert spec["automountServiceAccountToken"] is False, name
        assert spec["serviceAccountName"] == name
        assert accounts[name]["automountServiceAccountToken"] is False, name

        anti = spec["affinity"]["podAntiAffinity"]
        term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert selects(term["labelSelector"]["matchLabels"], labels), name


def test_api_gateway_gets_its_upstreams(helm: str) -> None:
    deployments = objects(render(helm), "Deployment")
    env = env_of(deployments["api-gateway"])
    assert env["PRODUCER_URL"] == "http://producer:80"
    assert env["CONSUMER_URL"] == "http://consumer:80"
    # Without a producer the gateway is told nothing and answers 503 on its routes.
    docs = render(helm, settings={"services.producer.enabled": "false"})
    assert "PRODUCER_URL" not in env_of(objects(docs, "Deployment")["api-gateway"])
    assert "producer" not in objects(docs, "Deployment")


def test_services_select_their_pods(helm: str) -> None:
    docs = render(helm)
    deployments = objects(docs, "Deployment")
    for name, service in objects(docs, "Service").items():
        assert service["spec"]["ports"] == [
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
        ]
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert selects(service["spec"]["selector"], pod_labels), name


def test_production_scales_spreads_and_budgets(helm: str) -> None:
    docs = render(helm, "production", namespace="production")
    deployments = objects(docs, "Deployment")
    scalers = objects(docs, "HorizontalPodAutoscaler")
    budgets = objects(docs, "PodDisruptionBudget")
    for name in SERVICES:
        # The HPA owns the replica count: a fixed one would fight it on every upgrade.
        assert "replicas" not in deployments[name]["spec"], name
        hpa = scalers[name]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert hpa["spec"]["minReplicas"] == 3
        assert hpa["spec"]["maxReplicas"] >= 10
        assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} >= {"cpu"}

        spec = deployments[name]["spec"]["template"]["spec"]
        (spread,) = spec["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        assert (
            spread["labelSelector"]["matchLabels"]
            == deployments[name]["spec"]["selector"]["matchLabels"]
        )
        assert budgets[name]["apiVersion"] == "policy/v1"
        assert budgets[name]["spec"]["selector"] == deployments[name]["spec"]["selector"]
    assert budgets["auth-service"]["spec"] == {
        "minAvailable": 2,
        "selector": deployments["auth-service"]["spec"]["selector"],
    }
    assert budgets["producer"]["spec"]["maxUnavailable"] == 1

    ingress = objects(docs, "Ingress")["api-gateway"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"secretName": "go-coffee-production-tls", "hosts": ["api.gocoffee.io"]}
    ]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "api-gateway", "port": {"number": 80}}}


def test_staging_runs_one_replica_without_autoscaling(helm: str) -> None:
    deployments = objects(render(helm, "staging"), "Deployment")
    for name, deployment in deployments.items():
        assert deployment["spec"]["replicas"] == 1, name
        assert "topologySpreadConstraints" not in deployment["spec"]["template"]["spec"]


# ---- images ---------------------------------------------------------------------------


def test_image_digest_wins_over_tag(helm: str) -> None:
    docs = render(
        helm,
        "production",
        {
            "global.imageRegistry": ECR,
            "services.producer.image.tag": "1.4.0",
            "services.producer.image.digest": OTHER_DIGEST,
            "services.consumer.image.tag": "1.4.0",
        },
        namespace="production",
    )
    deployments = objects(docs, "Deployment")
    assert container(deployments["producer"])["image"] == (
        f"{ECR}/go-coffee/producer@{OTHER_DIGEST}"
    )
    assert container(deployments["consumer"])["image"] == f"{ECR}/go-coffee/consumer:1.4.0"
    # Neither set: the chart's appVersion.
    assert container(deployments["api-gateway"])["image"] == f"{ECR}/go-coffee/api-gateway:1.0.0"
    # The version label is the tag when there is one.
    assert deployments["producer"]["spec"]["template"]["metadata"]["labels"]["version"] == "1.4.0"


def test_digest_alone_labels_the_version_with_the_digest(helm: str) -> None:
    docs = render(helm, settings={"services.auth-service.image.digest": OTHER_DIGEST})
    deployment = objects(docs, "Deployment")["auth-service"]
    assert container(deployment)["image"] == f"go-coffee/auth-service@{OTHER_DIGEST}"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["version"] == "sha256-" + OTHER_DIGEST[7:19]


# ---- canary mode ----------------------------------------------------------------------


def canary_settings(weight: int = 25) -> dict[str, str]:
    return {
        "canary.enabled": "true",
        "canary.weight": str(weight),
        "canary.services.api-gateway.image.digest": DIGEST,
        "canary.env.FAULT_ERROR_RATE": "0.5",
    }


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_canary_mode_renders_the_nginx_canary(helm: str, environment: str) -> None:
    docs = render(helm, environment, canary_settings(weight=25))
    deployments = objects(docs, "Deployment")
    services = objects(docs, "Service")
    ingresses = objects(docs, "Ingress")

    canary = deployments["api-gateway-canary"]
    assert container(canary)["image"] == f"go-coffee/api-gateway@{DIGEST}"
    assert canary["spec"]["replicas"] == (2 if environment == "production" else 1)
    canary_pod = canary["spec"]["template"]["metadata"]["labels"]
    assert canary_pod["track"] == "canary"
    assert canary_pod["version"] == "sha256-" + DIGEST[7:19]
    # The rehearsal's fault goes to the canary only.
    assert env_of(canary)["FAULT_ERROR_RATE"] == "0.5"
    assert "FAULT_ERROR_RATE" not in env_of(deployments["api-gateway"])
    # The canary still calls the stable upstreams.
    assert env_of(canary)["PRODUCER_URL"] == "http://producer:80"
    assert canary["spec"]["template"]["spec"]["serviceAccountName"] == "api-gateway"

    # Each Service selects its own track only.
    stable_pod = deployments["api-gateway"]["spec"]["template"]["metadata"]["labels"]
    assert selects(services["api-gateway-canary"]["spec"]["selector"], canary_pod)
    assert not selects(services["api-gateway-canary"]["spec"]["selector"], stable_pod)
    assert selects(services["api-gateway"]["spec"]["selector"], stable_pod)
    assert not selects(services["api-gateway"]["spec"]["selector"], canary_pod)

    stable_ingress = ingresses["api-gateway"]
    canary_ingress = ingresses["api-gateway-canary"]
    assert canary_ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "25",
        "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
    }
    assert "nginx.ingress.kubernetes.io/canary" not in (
        stable_ingress["metadata"].get("annotations") or {}
    )
    assert canary_ingress["spec"]["ingressClassName"] == "nginx"
    stable_rules = stable_ingress["spec"]["rules"]
    canary_rules = canary_ingress["spec"]["rules"]
    # nginx pairs a canary Ingress with the stable one by host and path.
    assert [r["host"] for r in canary_rules] == [r["host"] for r in stable_rules]
    for rule in canary_rules:
        for path in rule["http"]["paths"]:
            assert path["backend"] == {
                "service": {"name": "api-gateway-canary", "port": {"number": 80}}
            }
    # Stable objects that only the stable track has.
    assert "api-gateway-canary" not in objects(docs, "HorizontalPodAutoscaler")
    assert "api-gateway-canary" not in objects(docs, "PodDisruptionBudget")


def test_canary_weight_follows_the_value(helm: str) -> None:
    for weight in (0, 100):
        ingress = objects(render(helm, settings=canary_settings(weight)), "Ingress")
        annotations = ingress["api-gateway-canary"]["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == str(weight)


def test_canary_without_an_image_fails_with_a_clear_message(helm: str) -> None:
    argv = [helm, "template", "go-coffee", str(CHART), "--set", "canary.enabled=true"]
    result = run(argv)
    assert result.returncode != 0
    assert "canary.services.api-gateway.image.digest (or .tag) is required" in result.stderr


def test_canary_of_an_unknown_service_fails(helm: str) -> None:
    settings = {**canary_settings(), "canary.services.barista.image.tag": "2.0.0"}
    argv = [helm, "template", "go-coffee", str(CHART), *values_args([], settings)]
    result = run(argv)
    assert result.returncode != 0
    assert "canary.services.barista names no enabled service" in result.stderr


# ---- values the chart refuses ---------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        # The seed's CI passes --set image.tag: here it fails instead of doing nothing.
        ("image.tag=1.2.3", "Additional property image is not allowed"),
        ("managedServices.postgres.password=hunter2", "Additional property password"),
        ("services.producer.image.digest=sha256:abc", "services.producer.image.digest"),
        ("canary.weight=101", "canary.weight"),
        ("services.producer.resources.limits=null", "limits is required"),
    ],
)
def test_schema_rejects_bad_values(helm: str, setting: str, complaint: str) -> None:
    result = run([helm, "lint", "--strict", str(CHART), "--set", setting])
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


# ---- managed services and secrets -----------------------------------------------------


def test_managed_services_come_in_by_endpoint_and_secret_reference(helm: str) -> None:
    docs = render(
        helm,
        "production",
        {
            "managedServices.postgres.host": "orders.cluster-x.us-west-2.rds.amazonaws.com",
            "managedServices.redis.host": "orders.x.cache.amazonaws.com",
            "managedServices.kafka.bootstrapBrokers": "b-1.msk:9094,b-2.msk:9094",
        },
        namespace="production",
    )
    deployments = objects(docs, "Deployment")
    consumer = env_of(deployments["consumer"])
    assert consumer["DATABASE_HOST"] == "orders.cluster-x.us-west-2.rds.amazonaws.com"
    assert consumer["DATABASE_PORT"] == "5432"
    assert consumer["DATABASE_SSLMODE"] == "verify-full"
    assert consumer["DATABASE_PASSWORD"] == {"name": "go-coffee-postgres", "key": "password"}
    assert consumer["DATABASE_USER"] == {"name": "go-coffee-postgres", "key": "username"}
    assert consumer["REDIS_ADDR"] == "orders.x.cache.amazonaws.com:6379"
    assert consumer["REDIS_AUTH_TOKEN"] == {"name": "go-coffee-redis", "key": "auth-token"}
    assert consumer["KAFKA_BROKERS"] == "b-1.msk:9094,b-2.msk:9094"
    producer = env_of(deployments["producer"])
    assert "REDIS_ADDR" not in producer  # the producer does not use Redis
    assert "DATABASE_HOST" not in env_of(deployments["api-gateway"])

    auth = env_of(deployments["auth-service"])
    assert auth["AUTH_SIGNING_KEY"] == {"name": "go-coffee-auth", "key": "signing-key"}
    assert auth["AUTH_USERS"] == {"name": "go-coffee-auth", "key": "users"}
    # No Secret objects: credentials are created outside the chart.
    assert not objects(docs, "Secret")


# ---- network policies -----------------------------------------------------------------


def test_network_policies_let_in_only_the_callers(helm: str) -> None:
    docs = render(helm, settings=canary_settings())
    policies = objects(docs, "NetworkPolicy")
    deployments = objects(docs, "Deployment")

    def sources(name: str) -> list[Any]:
        return [peer for rule in policies[name]["spec"]["ingress"] for peer in rule["from"]]

    for name in SERVICES:
        spec = policies[name]["spec"]
        assert spec["policyTypes"] == ["Ingress"]
        # One policy covers both tracks of a service.
        for pod_of in (name, f"{name}-canary"):
            if pod_of in deployments:
                labels = deployments[pod_of]["spec"]["template"]["metadata"]["labels"]
                assert selects(spec["podSelector"]["matchLabels"], labels), pod_of
        for rule in spec["ingress"]:
            assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]

    def namespace(name: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    monitoring = namespace("monitoring")
    ingress_nginx = namespace("ingress-nginx")
    gateway_pods = {
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/instance": "go-coffee"},
            "matchExpressions": [
                {"key": "app.kubernetes.io/name", "operator": "In", "values": ["api-gateway"]}
            ],
        }
    }
    assert sources("api-gateway") == [ingress_nginx, monitoring]
    for name in ("producer", "consumer", "auth-service"):
        assert sources(name) == [gateway_pods, monitoring], name


# ---- Trivy ----------------------------------------------------------------------------


def trivy_findings(trivy: str, command: str, target: Path, tmp_path: Path) -> list[Manifest]:
    """Run `trivy <command>` offline with JSON output; return the results after checking
    that Trivy really ran its Kubernetes checks (it passes silently on nothing)."""
    argv = [trivy, command]
    if command == "fs":
        argv += ["--scanners", "secret,misconfig"]
    argv += [
        "--skip-check-update",
        "--quiet",
        "--cache-dir",
        str(tmp_path / "trivy-cache"),
        "--format",
        "json",
        "--exit-code",
        "0",
        str(target),
    ]
    result = run(argv)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout).get("Results") or []
    checked = sum((r.get("MisconfSummary") or {}).get("Successes", 0) for r in results)
    assert checked > 50, f"trivy ran almost no checks on {target}: {results}"
    return results


def blocking(results: list[Manifest]) -> list[str]:
    found = []
    for result in results:
        for finding in result.get("Misconfigurations") or []:
            if finding["Severity"] in TRIVY_BLOCKING and finding.get("Status") == "FAIL":
                found.append(f"{result['Target']}: {finding['ID']} {finding['Message']}")
        for secret in result.get("Secrets") or []:
            found.append(f"{result['Target']}: secret {secret['RuleID']} at {secret['StartLine']}")
    return found


def test_trivy_finds_nothing_high_in_the_chart_folder(trivy: str, tmp_path: Path) -> None:
    # Exactly what the release's scan stage runs on helm/ (install-helm.py included).
    results = trivy_findings(trivy, "fs", CHART.parent, tmp_path)
    assert any(r["Target"].endswith("templates/deployments.yaml") for r in results)
    assert blocking(results) == []


def test_trivy_finds_nothing_high_in_the_rendered_manifests(
    helm: str, trivy: str, tmp_path: Path
) -> None:
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    for environment in ENVIRONMENTS:
        (rendered / f"{environment}.yaml").write_text(render_text(helm, environment))
        (rendered / f"{environment}-canary.yaml").write_text(
            render_text(helm, environment, canary_settings())
        )
    results = trivy_findings(trivy, "config", rendered, tmp_path)
    assert sorted(r["Target"] for r in results) == sorted(p.name for p in rendered.iterdir())
    assert blocking(results) == []


def test_trivy_flags_a_weakened_deployment(helm: str, trivy: str, tmp_path: Path) -> None:
    """The control: the same scan does fail a privileged, root, writable container."""
    docs = render(helm)
    deployment = objects(docs, "Deployment")["producer"]
    del deployment["spec"]["template"]["spec"]["securityContext"]
    container(deployment)["securityContext"] = {
        "privileged": True,
        "allowPrivilegeEscalation": True,
        "readOnlyRootFilesystem": False,
    }
    weakened = tmp_path / "weakened"
    weakened.mkdir()
    (weakened / "producer.yaml").write_text(yaml.safe_dump(deployment))
    found = blocking(trivy_findings(trivy, "config", weakened, tmp_path))
    assert any("KSV-0017" in line or "privileged" in line.lower() for line in found), found


# ---- Kubernetes schemas ---------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_rendered_objects_match_the_kubernetes_schemas(helm: str, environment: str) -> None:
    """Offline validation against the OpenAPI schemas of Kubernetes 1.31 (EKS), strict:
    an unknown or misplaced field is an error, as `kubectl apply` would make it."""
    import kubernetes_validate  # the dev extra; see helm/README.md

    docs = render(helm, environment, canary_settings())
    for doc in docs:
        kubernetes_validate.validate(doc, "1.31.0", strict=True)
    assert len(docs) >= 20


def test_kubernetes_schemas_reject_a_misplaced_field(helm: str) -> None:
    import kubernetes_validate

    deployment = objects(render(helm), "Deployment")["producer"]
    container(deployment)["readinesProbe"] = container(deployment).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.31.0", strict=True)
