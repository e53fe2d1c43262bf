"""A small client for the registry HTTP API v2: does a tag exist, and with what labels.

Blocking (urllib, no extra dependency); activities call it through `asyncio.to_thread`.
Only the read side is here: images are pushed by buildah. The local platform's
registry speaks plain HTTP on 127.0.0.1 without authentication; others (ECR) take https
and HTTP basic credentials.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)


class RegistryUnavailable(Exception):
    """The registry did not answer or answered 5xx. Transient: retry."""


class RegistryError(Exception):
    """The registry answered with an unexpected status or body."""


@dataclass
class Manifest:
    digest: str  # sha256:... of the manifest bytes (the Docker-Content-Digest)
    media_type: str
    body: dict[str, Any]


@dataclass
class ImageInfo:
    """What a tag points at: the manifest digest and the image config's labels."""

    repository: str
    tag: str
    digest: str
    labels: dict[str, str] = field(default_factory=dict)


class RegistryClient:
    """Read manifests and config blobs from `<scheme>://<address>/v2/`.

    `auth` (user, password) is sent as HTTP basic credentials, as ECR takes its token.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float = 10.0,
        scheme: str = "http",
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.address = address
        self.base_url = f"{scheme}://{address}/v2"
        self.timeout = timeout
        self._authorization = (
            "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode() if auth else None
        )

    def ping(self) -> None:
        """Raise unless `GET /v2/` answers 200 (RegistryUnavailable when it is down)."""
        if self._get("/", accept=()) is None:
            raise RegistryError(f"{self.base_url}/ answered 404: is {self.address} a registry?")

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest of `repository:reference` (tag or digest), or None if unknown."""
        got = self._get(f"/{repository}/manifests/{reference}", accept=MANIFEST_TYPES)
        if got is None:
            return None
        body, headers = got
        computed = "sha256:" + hashlib.sha256(body).hexdigest()
        digest = headers.get("Docker-Content-Digest") or computed
        if digest != computed:
            raise RegistryError(
                f"manifest of {repository}:{reference} from {self.address} has digest "
                f"{computed} but the registry says {digest}; the registry storage may be corrupt"
            )
        document = _json(body, f"manifest of {repository}:{reference}")
        media_type = document.get("mediaType") or headers.get("Content-Type", "")
        return Manifest(digest=digest, media_type=media_type, body=document)

    def blob(self, repository: str, digest: str) -> bytes:
        got = self._get(f"/{repository}/blobs/{digest}", accept=())
        if got is None:
            raise RegistryError(
                f"blob {digest} of {repository} is missing from {self.address} although a "
                "manifest refers to it; push the image again"
            )
        body, _ = got
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise RegistryError(f"blob {digest} of {repository} does not match its digest")
        return body

    def image(
        self, repository: str, tag: str, *, os: str = "linux", architecture: str = "amd64"
    ) -> ImageInfo | None:
        """The image `repository:tag` with its labels, or None when the tag does not exist.

        For a multi-platform index the labels come from the `os/architecture` entry;
        the digest is always the one the tag points at.
        """
        top = self.manifest(repository, tag)
        if top is None:
            return None
        single = top
        if top.media_type in INDEX_TYPES:
            entries = top.body.get("manifests", [])
            chosen = next(
                (
                    m
                    for m in entries
                    if m.get("platform", {}).get("os") == os
                    and m.get("platform", {}).get("architecture") == architecture
                ),
                None,
            )
            if chosen is None:
                raise RegistryError(
                    f"{repository}:{tag} on {self.address} has no {os}/{architecture} image"
                )
            found = self.manifest(repository, chosen["digest"])
            if found is None:
                raise RegistryError(
                    f"{repository}:{tag} refers to {chosen['digest']}, which is missing"
                )
            single = found
        config_digest = single.body.get("config", {}).get("digest")
        if not config_digest:
            raise RegistryError(f"manifest of {repository}:{tag} has no config blob")
        config = _json(self.blob(repository, config_digest), f"config of {repository}:{tag}")
        labels = (config.get("config") or {}).get("Labels") or {}
        return ImageInfo(repository=repository, tag=tag, digest=top.digest, labels=dict(labels))

    # ---- HTTP ------------------------------------------------------------------------
    def _get(self, path: str, *, accept: tuple[str, ...]) -> tuple[bytes, dict[str, str]] | None:
        """GET base_url+path: (body, headers), None on 404, exceptions otherwise."""
        url = self.base_url + path
        request = urllib.request.Request(url, method="GET")  # noqa: S310 (http(s) only)
        if accept:
            request.add_header("Accept", ", ".join(accept))
        if self._authorization:
            # not forwarded on redirects: ECR sends blobs from presigned S3 URLs, which
            # refuse a second authorization
            request.add_unredirected_header("Authorization", self._authorization)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.read(), dict(response.headers.items())
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            detail = err.read()[:300].decode(errors="replace")
            if err.code >= 500:
                raise RegistryUnavailable(
                    f"registry {self.address} answered {err.code} to GET {url}: {detail}; "
                    "check its log"
                ) from err
            raise RegistryError(
                f"registry {self.address} answered {err.code} to GET {url}: {detail}"
            ) from err
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise RegistryUnavailable(
                f"registry {self.address} is not answering ({reason}) at GET {url}; start it "
                "with `python -m local.platform up` or check settings.registry_port"
            ) from err


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as err:
        raise RegistryError(f"{what} is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise RegistryError(f"{what} is not a JSON object")
    return value
