"""ECR: URL parsing, the token, describe_images, and build_image pushing to ECR.

A real moto server plays ECR's API. moto's ECR is metadata only (no byte store), so a
real docker-registry on loopback plays ECR's registry, reached through
`ecr_registry_override`; it demands HTTP basic credentials `AWS:<password>` of moto's
token, as ECR does, so a push without the token's auth file fails. What ECR does by
itself when the bytes arrive (register the tag and digest) the tests do with `put_image`
on moto, with the manifest that was really pushed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import stat
import subprocess
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ecr import (
    EcrAuthorization,
    EcrClient,
    EcrRepository,
    EcrUnavailable,
    is_ecr_repository,
    parse_ecr_repository,
)
from activities.images import SOURCE_DIGEST_LABEL, ImageActivities, _auth_file
from activities.registry import OCI_MANIFEST, RegistryClient
from brewline.model import BuildInput
from brewline.platform import PlatformSettings, tool_path
from tests.activities.test_images import FIXTURE, build_input, free_port, unique_version

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
REGISTRY_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


def wait_until_answers(url: str, process: subprocess.Popen[bytes], deadline_s: float) -> None:
    """Poll `url` until it answers at all (any HTTP status), or fail at the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (loopback)
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto server on a free loopback port, stopped by its PID at the end."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [tool_path("moto_server", "BREWLINE_MOTO_SERVER"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(url + "/moto-api/", process, deadline_s=30)
        yield url
    finally:
        stop(process)


@pytest.fixture
def aws() -> boto3.Session:
    """Credentials of our own: moto takes any, and nothing reaches the environment's."""
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture
def moto(moto_url: str, aws: boto3.Session) -> Any:
    """A boto3 ECR client on a freshly reset moto."""
    reset = urllib.request.Request(moto_url + "/moto-api/reset", method="POST")  # noqa: S310
    urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 (loopback)
    return aws.client("ecr", endpoint_url=moto_url)


@pytest.fixture(scope="module")
def ecr_registry(
    moto_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, tuple[str, str]]]:
    """A docker-registry that, like ECR's, accepts only `AWS:<password of moto's token>`.

    Returns (host:port, (user, password)). Started and stopped (by PID) here: the shared
    registry fixture takes no credentials.
    """
    session = boto3.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name=REGION)
    token = session.client("ecr", endpoint_url=moto_url).get_authorization_token()
    user, _, password = (
        base64.b64decode(token["authorizationData"][0]["authorizationToken"])
        .decode()
        .partition(":")
    )
    folder = tmp_path_factory.mktemp("ecr-registry")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt through libxcrypt: docker-registry's htpasswd wants bcrypt

        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))  # noqa: S324 (bcrypt)
    (folder / "htpasswd").write_text(f"{user}:{hashed}\n")
    address = f"127.0.0.1:{free_port()}"
    config = {
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": str(folder / "data")}},
        "http": {"addr": address},
        "auth": {"htpasswd": {"realm": "ecr-stand-in", "path": str(folder / "htpasswd")}},
    }
    (folder / "config.yml").write_text(json.dumps(config))  # YAML is a superset of JSON
    with (folder / "registry.log").open("wb") as out:
        process = subprocess.Popen(
            [
                tool_path("docker-registry", "BREWLINE_REGISTRY"),
                "serve",
                str(folder / "config.yml"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_answers(f"http://{address}/v2/", process, deadline_s=30)
        yield address, (user, password)
    finally:
        stop(process)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A source tree of our own: the tests edit it."""
    shutil.copytree(FIXTURE, tmp_path / "src" / "buildmod")
    return tmp_path / "src"


def repository(name: str = "go-coffee/hello") -> EcrRepository:
    return parse_ecr_repository(f"{REGISTRY_HOST}/{name}")


# ---- URL parsing -------------------------------------------------------------------------
def test_parse_ecr_repository() -> None:
    parsed = parse_ecr_repository(f"{REGISTRY_HOST}/go-coffee/api-gateway")
    assert parsed == EcrRepository(
        account=ACCOUNT, region=REGION, registry=REGISTRY_HOST, name="go-coffee/api-gateway"
    )
    assert parsed.url == f"{REGISTRY_HOST}/go-coffee/api-gateway"
    fips = parse_ecr_repository("210987654321.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app")
    assert (fips.account, fips.region, fips.name) == ("210987654321", "us-gov-west-1", "app")
    china = parse_ecr_repository("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn/a/b")
    assert (china.region, china.name) == ("cn-north-1", "a/b")
    assert is_ecr_repository(f"{REGISTRY_HOST}/x")
    assert not is_ecr_repository("127.0.0.1:5000/go-coffee/hello")
    assert not is_ecr_repository("registry.example.com/go-coffee/hello")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (f"https://{REGISTRY_HOST}/go-coffee/hello", "scheme"),
        (REGISTRY_HOST, "no repository name"),
        (f"{REGISTRY_HOST}/", "no repository name"),
        ("12345.dkr.ecr.us-east-1.amazonaws.com/hello", "12-digit account"),
        ("123456789012.dkr.ecr.amazonaws.com/hello", "12-digit account"),
        (f"{REGISTRY_HOST}/go-coffee/hello:1.0.0", "tag or digest"),
        (f"{REGISTRY_HOST}/go-coffee/hello@sha256:{'0' * 64}", "tag or digest"),
        (f"{REGISTRY_HOST}/Go-Coffee/hello", "not a valid ECR repository name"),
        (f"{REGISTRY_HOST}/go-coffee//hello", "not a valid ECR repository name"),
    ],
)
def test_parse_errors_name_the_value(value: str, why: str) -> None:
    with pytest.raises(ApplicationError) as err:
        parse_ecr_repository(value)
    assert err.value.type == "InvalidConfig" and err.value.non_retryable
    assert repr(value) in str(err.value)
    assert why in str(err.value)
    assert "amazonaws.com/go-coffee/api-gateway" in str(err.value)  # the example to follow


@pytest.mark.parametrize(
    "value",
    [
        "hello",  # no host
        "go-coffee/hello",  # the first component is a path, not a host
        "http://127.0.0.1:5000/go-coffee/hello",
        "127.0.0.1:5000/go-coffee/hello:1.0.0",
        "127.0.0.1:5000/Go-Coffee/hello",
    ],
)
def test_other_repository_errors_name_the_value(tmp_path: Path, value: str) -> None:
    acts = ImageActivities(PlatformSettings(home=str(tmp_path)))
    build = BuildInput("r", "hello", "1.0.0", "src", "m", "./hello", "Containerfile", value)
    with pytest.raises(ApplicationError) as err:
        acts.push_target(build)
    assert err.value.type == "InvalidConfig" and err.value.non_retryable
    assert repr(value) in str(err.value)


def test_push_targets(tmp_path: Path) -> None:
    settings = PlatformSettings(home=str(tmp_path))

    def target(repository: str, override: str | None = None) -> tuple[str, str, str, str, bool]:
        acts = ImageActivities(settings, ecr_registry_override=override)
        build = BuildInput("r", "hello", "1", "s", "m", "./hello", "Containerfile", repository)
        found = acts.push_target(build)
        return found.repository, found.transfer, found.path, found.scheme, found.ecr is not None

    local = settings.registry_address
    assert target("") == (f"{local}/go-coffee/hello", local, "go-coffee/hello", "http", False)
    ecr = f"{REGISTRY_HOST}/go-coffee/hello"
    assert target(ecr) == (ecr, REGISTRY_HOST, "go-coffee/hello", "https", True)
    # the override moves the bytes only: images keep ECR's name
    assert target(ecr, "127.0.0.1:5999") == (ecr, "127.0.0.1:5999", "go-coffee/hello", "http", True)
    assert target("registry.example.com/a/b") == (
        "registry.example.com/a/b",
        "registry.example.com",
        "a/b",
        "https",
        False,
    )
    assert target("localhost:5000/a")[3] == "http"


# ---- the API on a real moto server -------------------------------------------------------
async def test_authorization_token_is_decoded(moto_url: str, moto: Any, aws: boto3.Session) -> None:
    raw = moto.get_authorization_token()["authorizationData"][0]
    expected = base64.b64decode(raw["authorizationToken"]).decode()

    token = await EcrClient(moto_url, session=aws).get_authorization_token(repository())

    assert f"{token.user}:{token.password}" == expected
    assert token.user == "AWS" and token.password
    assert token.proxy_endpoint == raw["proxyEndpoint"]
    assert token.password not in repr(token)


async def test_describe_images(moto_url: str, moto: Any, aws: boto3.Session) -> None:
    ecr = EcrClient(moto_url, session=aws)
    repo = repository()

    with pytest.raises(ApplicationError) as err:
        await ecr.describe_images(repo, "1.0.0")
    assert err.value.type == "EcrRepositoryNotFound" and err.value.non_retryable
    assert repo.url in str(err.value) and "Terraform" in str(err.value)

    moto.create_repository(repositoryName=repo.name, imageTagMutability="IMMUTABLE")
    assert await ecr.describe_images(repo, "1.0.0") is None

    # A real OCI manifest, registered as ECR does when a push ends: under its digest.
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
                "size": 2,
            },
            "layers": [],
        }
    )
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    moto.put_image(
        repositoryName=repo.name,
        imageManifest=manifest,
        imageManifestMediaType=OCI_MANIFEST,
        imageTag="1.0.0",
        imageDigest=digest,
    )
    assert await ecr.describe_images(repo, "1.0.0") == digest
    assert await ecr.describe_images(repo, "1.0.1") is None


async def test_unreachable_ecr_is_transient(aws: boto3.Session) -> None:
    ecr = EcrClient(f"http://127.0.0.1:{free_port()}", session=aws, timeout=2)
    with pytest.raises(EcrUnavailable) as err:
        await ecr.describe_images(repository(), "1.0.0")
    assert "not answering" in str(err.value) and "retries" in str(err.value)
    with pytest.raises(EcrUnavailable):
        await ecr.get_authorization_token(repository())


# ---- build_image to ECR ------------------------------------------------------------------
def raw_manifest(address: str, auth: tuple[str, str], path: str, reference: str) -> bytes:
    request = urllib.request.Request(f"http://{address}/v2/{path}/manifests/{reference}")
    request.add_header("Accept", OCI_MANIFEST)
    credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request.add_header("Authorization", f"Basic {credentials}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        body: bytes = response.read()
        return body


async def test_build_image_to_ecr(
    registry_settings: PlatformSettings,
    moto_url: str,
    moto: Any,
    aws: boto3.Session,
    ecr_registry: tuple[str, tuple[str, str]],
    source: Path,
) -> None:
    address, auth = ecr_registry
    repo = repository(f"go-coffee/hello-{uuid.uuid4().hex[:6]}")
    moto.create_repository(repositoryName=repo.name, imageTagMutability="IMMUTABLE")
    version = unique_version()

    def acts(buildah: str = "buildah") -> ImageActivities:
        return ImageActivities(
            registry_settings,
            buildah=buildah,
            ecr=EcrClient(moto_url, session=aws),
            ecr_registry_override=address,
        )

    def ecr_input() -> BuildInput:
        build = build_input(source, version)
        build.repository = repo.url
        return build

    # the stand-in refuses anyone without the token's credentials
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://{address}/v2/", timeout=5)
    assert refused.value.code == 401

    first = ecr_input()
    record = await ActivityEnvironment().run(acts().build_image, first)

    assert not record.skipped
    assert record.image == f"{repo.url}@{record.digest}"
    pushed = RegistryClient(address, auth=auth).image(repo.name, version)
    assert pushed is not None and pushed.digest == record.digest
    assert pushed.labels[SOURCE_DIGEST_LABEL] == record.source_digest
    # the activity registered nothing in ECR's API itself: the bytes are all it sent
    assert moto.list_images(repositoryName=repo.name)["imageIds"] == []

    # the credentials went through an auth file that is gone, and never into the log
    log = (registry_settings.release_dir(first.release_id) / "hello" / "buildah.log").read_text()
    auth_files = re.findall(r"--authfile (\S+)", log)
    assert len(auth_files) == 1
    assert not Path(auth_files[0]).exists() and not Path(auth_files[0]).parent.exists()
    assert auth[1] not in log
    assert base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode() not in log

    # What ECR does by itself when a push completes: register the tag and its digest.
    manifest = raw_manifest(address, auth, repo.name, version)
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == record.digest
    moto.put_image(
        repositoryName=repo.name,
        imageManifest=manifest.decode(),
        imageManifestMediaType=json.loads(manifest)["mediaType"],
        imageTag=version,
        imageDigest=record.digest,
    )

    # Same version, same source: skipped through describe_images; a buildah that does
    # not exist proves nothing was built or pushed.
    again_input = ecr_input()
    again = await ActivityEnvironment().run(acts("/nonexistent/buildah").build_image, again_input)
    assert again.skipped
    assert (again.digest, again.image, again.source_digest) == (
        record.digest,
        record.image,
        record.source_digest,
    )
    assert not (
        registry_settings.release_dir(again_input.release_id) / "hello" / "buildah.log"
    ).exists()

    # Changed source, same version: refused, and the message says ECR tags are immutable.
    greet = source / "buildmod" / "internal" / "greet" / "greet.go"
    greet.write_text(greet.read_text().replace('" "', '" v"'))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(acts("/nonexistent/buildah").build_image, ecr_input())
    assert err.value.type == "ImageTagConflict" and err.value.non_retryable
    assert "IMMUTABLE" in str(err.value) and "bump the version" in str(err.value)
    assert repo.url in str(err.value) and record.digest in str(err.value)


async def test_build_image_to_missing_ecr_repository(
    registry_settings: PlatformSettings, moto_url: str, moto: Any, aws: boto3.Session, source: Path
) -> None:
    build = build_input(source, unique_version())
    build.repository = f"{REGISTRY_HOST}/go-coffee/not-created"
    acts = ImageActivities(registry_settings, ecr=EcrClient(moto_url, session=aws))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(acts.build_image, build)
    assert err.value.type == "EcrRepositoryNotFound" and err.value.non_retryable
    assert build.repository in str(err.value)


def test_auth_file_is_private_and_removed() -> None:
    token = EcrAuthorization(user="AWS", password="s3cret", proxy_endpoint="https://x")
    with _auth_file("127.0.0.1:5999", token) as args:
        assert args[0] == "--authfile"
        path = Path(args[1])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        auths = json.loads(path.read_text())["auths"]
        assert base64.b64decode(auths["127.0.0.1:5999"]["auth"]) == b"AWS:s3cret"
    assert not path.exists() and not path.parent.exists()
    with _auth_file("127.0.0.1:5999", None) as args:
        assert args == []  # the local registry needs none
