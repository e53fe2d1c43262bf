"""Amazon ECR through boto3: parse a repository URL, get push credentials, look up a tag.

ECR is two things: an AWS API (repositories, image metadata, authorization tokens), used
here through boto3, and a registry speaking the registry HTTP API v2 (the bytes), which
buildah pushes to and `activities.registry.RegistryClient` reads from, both with the
token as HTTP basic credentials `AWS:<password>`.

Blocking boto3 calls run in `asyncio.to_thread`. Errors are sorted for Temporal: a tag
that does not exist is `None`; a missing repository, denied access, missing credentials
or a bad request raise a non-retryable `ApplicationError`; throttling, AWS server errors,
network failures and expired credentials raise `EcrUnavailable` (the activity retries).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
from temporalio.exceptions import ApplicationError

from activities.redact import register_secret

# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<name>, as Terraform's
# aws_ecr_repository.repository_url and the console write it
_ECR_HOST = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9])"
    r"\.amazonaws\.com(?:\.cn)?$"
)
# ECR's own rule for repository names: lowercase components separated by '/'
_ECR_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_EXAMPLE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/go-coffee/api-gateway"

# ClientError codes that retrying cannot fix
_NOT_RETRYABLE = {
    "AccessDeniedException": "EcrAccessDenied",
    "AccessDenied": "EcrAccessDenied",
    "UnrecognizedClientException": "EcrAccessDenied",
    "InvalidClientTokenId": "EcrAccessDenied",
    "InvalidSignatureException": "EcrAccessDenied",
    "SignatureDoesNotMatch": "EcrAccessDenied",
    "RepositoryNotFoundException": "EcrRepositoryNotFound",
    "RegistryPolicyNotFoundException": "EcrRepositoryNotFound",
    "InvalidParameterException": "EcrRequestInvalid",
    "ValidationException": "EcrRequestInvalid",
}


class EcrUnavailable(Exception):
    """ECR did not answer, throttled or failed on its side (or the credentials expired
    and will be refreshed). Transient: the activity retries."""


@dataclass(frozen=True)
class EcrRepository:
    """An ECR repository, parsed from its URL (see `parse_ecr_repository`)."""

    account: str  # the registry id
    region: str
    registry: str  # the registry host, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com
    name: str  # the repository name inside the registry, e.g. go-coffee/api-gateway

    @property
    def url(self) -> str:
        return f"{self.registry}/{self.name}"


@dataclass(frozen=True)
class EcrAuthorization:
    """Registry credentials from `GetAuthorizationToken`: basic auth `user:password`.

    The password never appears in a repr (so not in logs or tracebacks either).
    """

    user: str
    password: str = field(repr=False)
    proxy_endpoint: str  # https://<account>.dkr.ecr.<region>.amazonaws.com
    expires_at: datetime | None = None


def is_ecr_repository(repository: str) -> bool:
    """Whether `repository` names an ECR registry (and must then parse as one)."""
    host = repository.split("/", 1)[0].lower()
    return ".dkr.ecr" in host or host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def parse_ecr_repository(repository: str) -> EcrRepository:
    """Split an ECR repository URL into account, region, registry host and name.

    Raises a non-retryable `ApplicationError` (type `InvalidConfig`) naming the value.
    """

    def invalid(why: str) -> ApplicationError:
        return ApplicationError(
            f"repository {repository!r} is not an ECR repository URL: {why}; write it as "
            f"<account>.dkr.ecr.<region>.amazonaws.com/<name>, e.g. {_EXAMPLE} (Terraform's "
            "aws_ecr_repository repository_url)",
            type="InvalidConfig",
            non_retryable=True,
        )

    if "://" in repository:
        raise invalid("it has a scheme; give the host and name only")
    host, slash, name = repository.partition("/")
    if not slash or not name:
        raise invalid("no repository name after the registry host")
    found = _ECR_HOST.match(host)
    if found is None:
        raise invalid(f"the host {host!r} is not <12-digit account>.dkr.ecr.<region>.amazonaws.com")
    if "@" in name or ":" in name:
        raise invalid("it carries a tag or digest; the version is the tag, give the repository")
    if not 2 <= len(name) <= 256 or not _ECR_NAME.match(name):
        raise invalid(
            f"the name {name!r} is not a valid ECR repository name (lowercase letters, digits, "
            "components separated by '/' and inside by '.', '_' or '-'; 2 to 256 characters)"
        )
    return EcrRepository(account=found["account"], region=found["region"], registry=host, name=name)


def decode_authorization_token(token: str) -> tuple[str, str]:
    """`base64("AWS:<password>")` -> ("AWS", "<password>")."""
    try:
        decoded = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as err:
        raise EcrUnavailable(
            f"ECR returned an authorization token that is not base64: {err}"
        ) from err
    user, colon, password = decoded.partition(":")
    if not colon or not user or not password:
        raise EcrUnavailable("ECR returned an authorization token that is not user:password")
    return user, password


class EcrClient:
    """The ECR API calls the build stage needs, one boto3 client per region.

    `endpoint_url` replaces AWS's endpoint (tests: a moto server); `session` supplies the
    credentials (default: boto3's chain: environment, profile, instance or pod role).
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        *,
        session: boto3.Session | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.endpoint_url = endpoint_url
        self._session = session
        self._config = botocore.config.Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"mode": "standard", "max_attempts": 3},
        )
        self._clients: dict[str, Any] = {}
        # boto3 sessions are not thread-safe; clients are, once made
        self._lock = threading.Lock()

    async def get_authorization_token(self, repository: EcrRepository) -> EcrAuthorization:
        """Credentials to push to and pull from `repository`'s registry (valid 12 hours)."""
        answer = await asyncio.to_thread(
            self._call, repository, "get_authorization_token", "get an authorization token"
        )
        data = answer.get("authorizationData") or []
        if not data:
            raise EcrUnavailable(
                f"ECR in {repository.region} returned no authorization data for {repository.url}"
            )
        user, password = decode_authorization_token(data[0]["authorizationToken"])
        # masked from now on in every log line and heartbeat of this worker (the runner)
        register_secret(password)
        register_secret(data[0]["authorizationToken"])
        return EcrAuthorization(
            user=user,
            password=password,
            proxy_endpoint=data[0].get("proxyEndpoint", f"https://{repository.registry}"),
            expires_at=data[0].get("expiresAt"),
        )

    async def describe_images(self, repository: EcrRepository, tag: str) -> str | None:
        """The manifest digest `repository:tag` points at, or None if the tag is unknown."""
        try:
            answer = await asyncio.to_thread(
                self._call,
                repository,
                "describe_images",
                f"look up tag {tag}",
                registryId=repository.account,
                repositoryName=repository.name,
                imageIds=[{"imageTag": tag}],
            )
        except _ImageNotFound:
            return None
        details = answer.get("imageDetails") or []
        if not details:
            return None
        digest: str = details[0]["imageDigest"]
        return digest

    # ---- boto3 -----------------------------------------------------------------------
    def _client(self, region: str) -> Any:
        with self._lock:
            if region not in self._clients:
                session = self._session or boto3.Session()
                self._clients[region] = session.client(
                    "ecr", region_name=region, endpoint_url=self.endpoint_url, config=self._config
                )
            return self._clients[region]

    def _call(
        self, repository: EcrRepository, operation: str, what: str, **kwargs: Any
    ) -> dict[str, Any]:
        """Call one ECR operation, sorting its errors into retryable or not."""
        where = f"ECR ({repository.region}{', ' + self.endpoint_url if self.endpoint_url else ''})"
        try:
            answer: dict[str, Any] = getattr(self._client(repository.region), operation)(**kwargs)
            return answer
        except botocore.exceptions.ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            message = err.response.get("Error", {}).get("Message", str(err))
            if code == "ImageNotFoundException":
                raise _ImageNotFound() from err
            kind = _NOT_RETRYABLE.get(code)
            if kind is None:
                # throttling, ServerException, ExpiredToken (refreshed on retry), 5xx...
                raise EcrUnavailable(
                    f"{where} could not {what} for {repository.url} ({code}: {message}); "
                    "the activity retries"
                ) from err
            raise ApplicationError(
                f"{where} refused to {what} for {repository.url} ({code}: {message}); "
                + _ADVICE[kind],
                type=kind,
                non_retryable=True,
            ) from err
        except (
            botocore.exceptions.NoCredentialsError,
            botocore.exceptions.PartialCredentialsError,
        ) as err:
            raise ApplicationError(
                f"no AWS credentials to {what} for {repository.url} in {where} ({err}); give "
                "the worker credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "or an instance or pod role)",
                type="AwsCredentialsMissing",
                non_retryable=True,
            ) from err
        except botocore.exceptions.ParamValidationError as err:
            raise ApplicationError(
                f"bad request to {what} for {repository.url}: {err}",
                type="EcrRequestInvalid",
                non_retryable=True,
            ) from err
        except botocore.exceptions.BotoCoreError as err:
            # endpoint unreachable, connect or read timeouts, connection reset
            raise EcrUnavailable(
                f"{where} is not answering to {what} for {repository.url} ({err}); "
                "the activity retries"
            ) from err


class _ImageNotFound(Exception):
    pass


_ADVICE = {
    "EcrAccessDenied": "check the worker's AWS credentials and that its role may call "
    "ecr:GetAuthorizationToken, ecr:DescribeImages and push to this repository",
    "EcrRepositoryNotFound": "create it (the infra stage's Terraform creates the ECR "
    "repositories) or fix the repository given to the build",
    "EcrRequestInvalid": "check the repository name and the version tag",
}
