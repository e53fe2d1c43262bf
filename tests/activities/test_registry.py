"""RegistryClient against a real docker-registry; images are uploaded over its HTTP API."""

# ruff: noqa: S310  (urllib to the test's own loopback registry, http only)

from __future__ import annotations

import hashlib
import json
import socket
import urllib.parse
import urllib.request
import uuid

import pytest

from activities.registry import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    RegistryUnavailable,
)
from brewline.platform import PlatformSettings


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(address: str, repo: str, data: bytes) -> str:
    """Monolithic upload: POST to open an upload, PUT the bytes with their digest."""
    start = urllib.request.Request(f"http://{address}/v2/{repo}/blobs/uploads/", method="POST")
    with urllib.request.urlopen(start, timeout=10) as response:
        assert response.status == 202
        location = urllib.parse.urljoin(f"http://{address}/", response.headers["Location"])
    digest = sha256(data)
    separator = "&" if "?" in location else "?"
    put = urllib.request.Request(
        f"{location}{separator}digest={digest}",
        data=data,
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(put, timeout=10) as response:
        assert response.status == 201
    return digest


def push_manifest(address: str, repo: str, tag: str, manifest: dict, media_type: str) -> str:
    body = json.dumps(manifest).encode()
    put = urllib.request.Request(
        f"http://{address}/v2/{repo}/manifests/{tag}",
        data=body,
        method="PUT",
        headers={"Content-Type": media_type},
    )
    with urllib.request.urlopen(put, timeout=10) as response:
        assert response.status == 201
        assert response.headers["Docker-Content-Digest"] == sha256(body)
        return response.headers["Docker-Content-Digest"]


def push_image(
    address: str, repo: str, tag: str, labels: dict[str, str], *, docker: bool = False
) -> tuple[str, dict]:
    """Upload a one-layer image with `labels`; return (manifest digest, descriptor)."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [sha256(b"layer")]},
        }
    ).encode()
    config_digest = push_blob(address, repo, config)
    layer = b"layer " + uuid.uuid4().bytes
    layer_digest = push_blob(address, repo, layer)
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    config_type = (
        "application/vnd.docker.container.image.v1+json"
        if docker
        else "application/vnd.oci.image.config.v1+json"
    )
    layer_type = (
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
        if docker
        else "application/vnd.oci.image.layer.v1.tar+gzip"
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": len(layer)}],
    }
    digest = push_manifest(address, repo, tag, manifest, media_type)
    size = len(json.dumps(manifest).encode())
    return digest, {"mediaType": media_type, "digest": digest, "size": size}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def repo() -> str:
    return f"test/{uuid.uuid4().hex[:10]}"


def test_ping(registry_settings: PlatformSettings) -> None:
    RegistryClient(registry_settings.registry_address).ping()


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker-v2"])
def test_image_labels_and_digest(
    registry_settings: PlatformSettings, repo: str, docker: bool
) -> None:
    address = registry_settings.registry_address
    labels = {"io.brewline.source-digest": "sha256:abc", "io.brewline.service": "hello"}
    digest, _ = push_image(address, repo, "1.0.0", labels, docker=docker)

    image = RegistryClient(address).image(repo, "1.0.0")
    assert image is not None
    assert image.digest == digest
    assert image.labels == labels
    manifest = RegistryClient(address).manifest(repo, digest)
    assert manifest is not None and manifest.digest == digest
    assert manifest.media_type == (DOCKER_MANIFEST if docker else OCI_MANIFEST)


def test_unknown_tag_and_repository_are_none(
    registry_settings: PlatformSettings, repo: str
) -> None:
    address = registry_settings.registry_address
    push_image(address, repo, "1.0.0", {})
    client = RegistryClient(address)
    assert client.image(repo, "9.9.9") is None
    assert client.image(f"{repo}-missing", "1.0.0") is None


def test_index_picks_linux_amd64(registry_settings: PlatformSettings, repo: str) -> None:
    address = registry_settings.registry_address
    _, amd64 = push_image(address, repo, "amd64", {"arch": "amd64"})
    _, arm64 = push_image(address, repo, "arm64", {"arch": "arm64"})
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {**arm64, "platform": {"os": "linux", "architecture": "arm64"}},
            {**amd64, "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
    index_digest = push_manifest(address, repo, "multi", index, OCI_INDEX)

    image = RegistryClient(address).image(repo, "multi")
    assert image is not None
    assert image.digest == index_digest
    assert image.labels == {"arch": "amd64"}


def test_registry_down_is_a_clear_retryable_error() -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnavailable) as err:
        RegistryClient(address, timeout=2).image("go-coffee/hello", "1.0.0")
    assert address in str(err.value)
    assert "not answering" in str(err.value)
