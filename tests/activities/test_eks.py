"""EKS credentials: the token as `aws eks get-token` makes it, describe_cluster against a
real moto server on 127.0.0.1, the in-memory client configuration and its refresh, and a
kubeconfig for helm that holds no secret."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import yaml

from activities.eks import (
    CLUSTER_ID_HEADER,
    TOKEN_PREFIX,
    EksAccess,
    EksToken,
    eks_token,
    exec_credential,
)
from brewline.platform import REPO_ROOT, tool_path

KEY_ID = "AKIATESTKEYID0000000"
SECRET = "test-secret-access-key-do-not-leak"
REGION = "us-west-2"
CLUSTER = "go-coffee-staging"


def session() -> boto3.Session:
    return boto3.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name=REGION)


def decode(token: str) -> str:
    assert token.startswith(TOKEN_PREFIX)
    body = token[len(TOKEN_PREFIX) :]
    assert "=" not in body, "base64url without padding"
    assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def test_token_is_a_presigned_get_caller_identity_url_with_the_cluster_header() -> None:
    sts = session().client("sts", region_name=REGION)
    token = eks_token(sts, CLUSTER)
    url = urlsplit(decode(token.token))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.scheme == "https" and url.hostname == f"sts.{REGION}.amazonaws.com"
    assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-SignedHeaders"] == f"host;{CLUSTER_ID_HEADER}"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].startswith(f"{KEY_ID}/")
    assert query["X-Amz-Credential"].endswith(f"/{REGION}/sts/aws4_request")
    assert len(query["X-Amz-Signature"]) == 64
    assert SECRET not in decode(token.token)
    # ~14 minutes, as aws eks get-token reports it
    left = token.expires_at - datetime.now(UTC)
    assert timedelta(minutes=13) < left <= timedelta(minutes=14)
    # the handlers are gone again: a plain presign of the same client has no such header
    plain = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60)
    assert CLUSTER_ID_HEADER not in plain

    other = eks_token(sts, "another-cluster")
    assert other.token != token.token, "the cluster name is part of the signature"


def test_exec_credential_is_what_kubectl_reads() -> None:
    token = EksToken(TOKEN_PREFIX + "abc", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert exec_credential(token) == {
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "spec": {},
        "status": {"expirationTimestamp": "2030-01-02T03:04:05Z", "token": TOKEN_PREFIX + "abc"},
    }


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    """A real moto server on a free loopback port, stopped by PID at the end."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [tool_path("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()  # noqa: S310
                break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {url}") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def cluster(moto: str) -> dict[str, str]:
    eks = session().client("eks", endpoint_url=moto)
    created = eks.create_cluster(
        name=CLUSTER,
        roleArn="arn:aws:iam::123456789012:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-0a", "subnet-0b"]},
    )["cluster"]
    return {
        "endpoint": created["endpoint"],
        "ca": created["certificateAuthority"]["data"],
        "arn": created["arn"],
    }


def access(tmp_path: Path, moto: str) -> EksAccess:
    return EksAccess(
        tmp_path / "kube", session=session(), eks_endpoint_url=moto, sts_endpoint_url=moto
    )


def test_describe_cluster_against_moto(tmp_path: Path, moto: str, cluster: dict[str, str]) -> None:
    info = access(tmp_path, moto).describe_cluster(CLUSTER, REGION)
    assert info.endpoint == cluster["endpoint"]
    assert info.ca_pem == base64.b64decode(cluster["ca"])
    assert info.arn == cluster["arn"]


def test_describe_of_a_missing_cluster_fails(tmp_path: Path, moto: str) -> None:
    with pytest.raises(Exception, match=r"ResourceNotFoundException|not found"):
        access(tmp_path, moto).describe_cluster("no-such-cluster", REGION)


def test_client_configuration_is_in_memory_and_renews_the_token(
    tmp_path: Path, moto: str, cluster: dict[str, str]
) -> None:
    class Counting(EksAccess):
        """Hands out tokens expiring `lifetime` from now, counting them."""

        lifetime = timedelta(minutes=14)
        issued = 0

        def token(self, cluster: str, region: str) -> EksToken:
            Counting.issued += 1
            token = super().token(cluster, region)
            return EksToken(f"{token.token}#{Counting.issued}", datetime.now(UTC) + self.lifetime)

    eks = Counting(
        tmp_path / "kube", session=session(), eks_endpoint_url=moto, sts_endpoint_url=moto
    )
    config = eks.configuration(CLUSTER, REGION)
    assert config.host == cluster["endpoint"]
    assert config.ca_cert_data == base64.b64decode(cluster["ca"])  # moto's CA is not PEM
    assert config.ssl_ca_cert is None, "the CA is passed as data, not a file"
    # what the client puts in the Authorization header of every request
    first = config.auth_settings()["BearerToken"]["value"]
    assert first.startswith("Bearer " + TOKEN_PREFIX)
    assert config.auth_settings()["BearerToken"]["value"] == first, "renewed too early"
    assert Counting.issued == 1
    # a token inside the renewal margin is replaced before the next request
    Counting.lifetime = timedelta(seconds=30)
    short = eks.configuration(CLUSTER, REGION)
    issued = Counting.issued
    renewed = short.auth_settings()["BearerToken"]["value"]
    assert Counting.issued == issued + 1
    assert renewed.endswith(f"#{issued + 1}")
    assert not list((tmp_path / "kube").glob("*")), "nothing written for the client"


def test_kubeconfig_for_helm_has_no_secret_and_its_exec_user_prints_a_token(
    tmp_path: Path, moto: str, cluster: dict[str, str]
) -> None:
    path = access(tmp_path, moto).write_kubeconfig(CLUSTER, REGION)
    text = path.read_text()
    for secret in (TOKEN_PREFIX, "token:", SECRET, KEY_ID, "X-Amz-Signature"):
        assert secret not in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    config = yaml.safe_load(text)
    assert config["clusters"][0]["cluster"]["server"] == cluster["endpoint"]
    assert config["clusters"][0]["cluster"]["certificate-authority-data"] == cluster["ca"]
    exec_user = config["users"][0]["user"]["exec"]
    assert exec_user["command"] == sys.executable
    assert exec_user["args"][:2] == ["-m", "activities.eks"]
    assert exec_user["args"][3:5] == ["--cluster", CLUSTER]

    # run the exec user the way kubectl and helm do: its env, AWS credentials from ours
    env = {
        **os.environ,
        **{e["name"]: e["value"] for e in exec_user["env"]},
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    printed = subprocess.run(
        [exec_user["command"], *exec_user["args"]],
        env=env,
        cwd=tmp_path,  # any working directory
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    credential = json.loads(printed)
    assert credential["kind"] == "ExecCredential"
    url = decode(credential["status"]["token"])
    assert url.startswith(moto + "/?Action=GetCallerIdentity")
    assert "X-Amz-Expires=60" in url
    assert str(REPO_ROOT) in {e["value"] for e in exec_user["env"]}


def test_kubernetes_target_uses_eks_credentials_by_default(
    tmp_path: Path, moto: str, cluster: dict[str, str]
) -> None:
    from activities.kubernetes_target import KubernetesTarget
    from brewline.model import KubernetesSpec
    from brewline.platform import PlatformSettings

    target = KubernetesTarget(PlatformSettings(home=str(tmp_path)), eks=access(tmp_path, moto))
    spec = KubernetesSpec(namespace="staging", cluster=CLUSTER, region=REGION)
    api = target.api_client(spec)
    assert api.configuration.host == cluster["endpoint"]
    assert target.api_client(spec) is api, "one client per cluster"
    helm = target.helm(spec, tmp_path / "helm.log")
    assert helm.kubeconfig is not None
    kubeconfig = yaml.safe_load(helm.kubeconfig.read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == cluster["endpoint"]
    assert "exec" in kubeconfig["users"][0]["user"]
    assert "token" not in kubeconfig["users"][0]["user"]
