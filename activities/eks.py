"""Credentials for an EKS cluster, with boto3, kept in memory.

- `describe_cluster` gives the API server's endpoint and CA certificate (not secrets).
- `eks_token` makes the bearer token exactly as `aws eks get-token` does: a presigned
  STS GetCallerIdentity URL (valid 60 s to sign in, the token lives ~15 min) with the
  signed header `x-k8s-aws-id: <cluster>`, as "k8s-aws-v1." + base64url without padding.
- `EksAccess.configuration` is a kubernetes client `Configuration` that renews the token
  before it expires (`refresh_api_key_hook`); nothing is written to disk.
- helm needs a kubeconfig file: `EksAccess.write_kubeconfig` writes one with the server
  and CA only and an `exec` user running `python -m activities.eks token ...`, which
  prints an ExecCredential. The token is never in the file.

Endpoint overrides (a moto server in tests, a VPC endpoint) come in through the
constructor, never through globals.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import yaml
from kubernetes import client as k8s

from brewline.platform import REPO_ROOT

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 (a format prefix, not a secret)
CLUSTER_ID_HEADER = "x-k8s-aws-id"
PRESIGN_SECONDS = 60  # what aws eks get-token signs with; EKS accepts the token ~15 min
TOKEN_LIFETIME = timedelta(minutes=14)  # what aws eks get-token reports as its expiry
REFRESH_MARGIN = timedelta(minutes=1)  # renew this long before the reported expiry
EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


@dataclass(frozen=True)
class ClusterInfo:
    """What a kubeconfig needs of a cluster: its name, API endpoint and CA (PEM)."""

    name: str
    region: str
    endpoint: str
    ca_pem: bytes
    arn: str = ""


@dataclass(frozen=True)
class EksToken:
    token: str
    expires_at: datetime  # UTC


def _client_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    # Moves the cluster name out of the API parameters into the request context.
    if CLUSTER_ID_HEADER in params:
        context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)


def _inject_header(request: Any, **_: Any) -> None:
    # Before signing, so the header is one of the presigned URL's X-Amz-SignedHeaders.
    if CLUSTER_ID_HEADER in request.context:
        request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]


def eks_token(sts_client: Any, cluster: str, *, now: datetime | None = None) -> EksToken:
    """A bearer token for `cluster` from an STS client, as `aws eks get-token` makes it."""
    events = sts_client.meta.events
    events.register("provide-client-params.sts.GetCallerIdentity", _client_params)
    events.register("before-sign.sts.GetCallerIdentity", _inject_header)
    try:
        url = sts_client.generate_presigned_url(
            "get_caller_identity",
            Params={CLUSTER_ID_HEADER: cluster},
            ExpiresIn=PRESIGN_SECONDS,
            HttpMethod="GET",
        )
    finally:
        events.unregister("provide-client-params.sts.GetCallerIdentity", _client_params)
        events.unregister("before-sign.sts.GetCallerIdentity", _inject_header)
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    issued = now or datetime.now(UTC)
    return EksToken(TOKEN_PREFIX + encoded, issued + TOKEN_LIFETIME)


def exec_credential(token: EksToken) -> dict[str, Any]:
    """The ExecCredential a kubeconfig `exec` user prints (what kubectl and helm read)."""
    return {
        "kind": "ExecCredential",
        "apiVersion": EXEC_API_VERSION,
        "spec": {},
        "status": {
            "expirationTimestamp": token.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "token": token.token,
        },
    }


class EksAccess:
    """Kubernetes clients and helm kubeconfigs for EKS clusters (see module doc).

    `session` defaults to boto3's default session (environment, profile, instance role);
    `eks_endpoint_url` and `sts_endpoint_url` point at other endpoints (a moto server).
    `kubeconfig_dir` is where kubeconfigs for helm go (no secret in them).
    """

    def __init__(
        self,
        kubeconfig_dir: Path,
        *,
        session: boto3.Session | None = None,
        eks_endpoint_url: str | None = None,
        sts_endpoint_url: str | None = None,
        python: str | None = None,
    ) -> None:
        self.kubeconfig_dir = kubeconfig_dir
        self.session = session or boto3.Session()
        self.eks_endpoint_url = eks_endpoint_url
        self.sts_endpoint_url = sts_endpoint_url
        self.python = python or sys.executable
        self._clusters: dict[tuple[str, str], ClusterInfo] = {}
        self._lock = threading.Lock()

    # ---- AWS -----------------------------------------------------------------------------
    def describe_cluster(self, cluster: str, region: str) -> ClusterInfo:
        """Endpoint and CA of `cluster` (cached: neither changes while the cluster lives)."""
        key = (cluster, region)
        with self._lock:
            if key in self._clusters:
                return self._clusters[key]
        eks = self.session.client("eks", region_name=region, endpoint_url=self.eks_endpoint_url)
        found = eks.describe_cluster(name=cluster)["cluster"]
        endpoint = found.get("endpoint") or ""
        ca_data = (found.get("certificateAuthority") or {}).get("data") or ""
        if not endpoint:
            raise RuntimeError(
                f"EKS cluster {cluster} in {region} has no endpoint yet (status "
                f"{found.get('status', '?')}); wait until it is ACTIVE"
            )
        info = ClusterInfo(
            name=cluster,
            region=region,
            endpoint=endpoint,
            ca_pem=base64.b64decode(ca_data) if ca_data else b"",
            arn=found.get("arn", ""),
        )
        with self._lock:
            self._clusters[key] = info
        return info

    def token(self, cluster: str, region: str) -> EksToken:
        sts = self.session.client("sts", region_name=region, endpoint_url=self.sts_endpoint_url)
        return eks_token(sts, cluster)

    # ---- kubernetes client ---------------------------------------------------------------
    def configuration(self, cluster: str, region: str) -> k8s.Configuration:
        """A client configuration for `cluster`, its token renewed before it expires."""
        info = self.describe_cluster(cluster, region)
        config = k8s.Configuration(host=info.endpoint)
        if info.ca_pem:
            # ssl reads str as PEM and bytes as DER; EKS hands out PEM
            pem = info.ca_pem.startswith(b"-----BEGIN")
            config.ca_cert_data = info.ca_pem.decode() if pem else info.ca_pem
        config.verify_ssl = True
        state: dict[str, EksToken] = {}

        def refresh(conf: k8s.Configuration) -> None:
            current = state.get("token")
            if current is None or datetime.now(UTC) >= current.expires_at - REFRESH_MARGIN:
                current = self.token(cluster, region)
                state["token"] = current
            conf.api_key["authorization"] = current.token

        config.api_key_prefix["authorization"] = "Bearer"
        config.refresh_api_key_hook = refresh  # type: ignore[assignment]
        refresh(config)
        return config

    def api_client(self, cluster: str, region: str) -> k8s.ApiClient:
        return k8s.ApiClient(self.configuration(cluster, region))

    # ---- kubeconfig for helm -------------------------------------------------------------
    def exec_args(self, cluster: str, region: str) -> list[str]:
        args = ["-m", "activities.eks", "token", "--cluster", cluster, "--region", region]
        if self.sts_endpoint_url:
            args += ["--sts-endpoint-url", self.sts_endpoint_url]
        return args

    def kubeconfig(self, cluster: str, region: str) -> dict[str, Any]:
        """A kubeconfig without any secret: server, CA, and an `exec` user."""
        info = self.describe_cluster(cluster, region)
        name = info.arn or f"eks-{region}-{cluster}"
        cluster_entry: dict[str, Any] = {"server": info.endpoint}
        if info.ca_pem:
            cluster_entry["certificate-authority-data"] = base64.b64encode(info.ca_pem).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": cluster_entry}],
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": EXEC_API_VERSION,
                            "command": self.python,
                            "args": self.exec_args(cluster, region),
                            # the module must import from any working directory helm has
                            "env": [{"name": "PYTHONPATH", "value": str(REPO_ROOT)}],
                            "interactiveMode": "Never",
                            "provideClusterInfo": False,
                        }
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
        }

    def write_kubeconfig(self, cluster: str, region: str) -> Path:
        """Write (atomically) and return the kubeconfig file of `cluster` for helm."""
        self.kubeconfig_dir.mkdir(parents=True, exist_ok=True)
        path = self.kubeconfig_dir / f"{region}-{cluster}.kubeconfig"
        tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
        tmp.write_text(yaml.safe_dump(self.kubeconfig(cluster, region), sort_keys=False))
        tmp.chmod(0o600)
        tmp.replace(path)
        return path


def main(argv: list[str] | None = None) -> int:
    """`python -m activities.eks token --cluster C --region R`: print an ExecCredential."""
    parser = argparse.ArgumentParser(prog="python -m activities.eks")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print an ExecCredential for a kubeconfig exec user")
    token.add_argument("--cluster", required=True)
    token.add_argument("--region", required=True)
    token.add_argument("--sts-endpoint-url", default=None)
    args = parser.parse_args(argv)
    sts = boto3.Session().client("sts", region_name=args.region, endpoint_url=args.sts_endpoint_url)
    credential = exec_credential(eks_token(sts, args.cluster))
    sys.stdout.write(json.dumps(credential) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
