"""Resolve secret references (brewline.secret_refs) on the worker, inside an activity.

A resolved value is registered with `activities.redact` before it is returned, so from
then on no log line, heartbeat or SARIF file written by this worker shows it. Values go
to the tool that needs them in its environment, never on argv, never into a file of the
release and never into an activity result.

Errors: a reference that names nothing (an unset or empty variable, a missing file,
secret or parameter, access denied) is a non-retryable `InvalidConfig` naming the
variable and the reference, never the value. AWS being unreachable is an ordinary
exception: Temporal retries.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
from temporalio.exceptions import ApplicationError

from activities.redact import register_secret
from brewline.secret_refs import SecretRef, parse_secret_ref

_NOT_FOUND = {"ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound"}
_REFUSED = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"}


class SecretResolver:
    """Reads secret values: the worker's environment, files, Secrets Manager and SSM.

    `environ` replaces os.environ (tests); `endpoint_url` replaces AWS's endpoint (a moto
    server; None = boto3's own, which honours AWS_ENDPOINT_URL); `session` supplies AWS
    credentials (default: boto3's chain).
    """

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        endpoint_url: str | None = None,
        session: boto3.Session | None = None,
        timeout: float = 20.0,
    ) -> None:
        self._environ = environ
        self.endpoint_url = endpoint_url
        self._session = session
        self._config = botocore.config.Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"mode": "standard", "max_attempts": 3},
        )
        self._lock = threading.Lock()  # boto3 sessions are not thread-safe

    async def resolve_all(self, references: Mapping[str, str]) -> dict[str, str]:
        """Variable name -> value for every `name: reference`; each value is registered."""
        return {name: await self.resolve(name, ref) for name, ref in sorted(references.items())}

    async def resolve(self, name: str, reference: str) -> str:
        """The value `reference` names (for variable `name`, named in errors)."""
        try:
            ref = parse_secret_ref(reference)
        except ValueError as err:
            raise _invalid(name, reference, str(err)) from None
        if ref.scheme == "env":
            environ = os.environ if self._environ is None else self._environ
            value = environ.get(ref.target, "")
            if not value:
                raise _invalid(
                    name,
                    reference,
                    f"the worker's environment has no {ref.target} (or it is empty)",
                )
        elif ref.scheme == "file":
            value = _read_file(name, reference, Path(ref.target))
        else:
            value = await asyncio.to_thread(self._aws_value, name, reference, ref)
        if not value:
            raise _invalid(name, reference, "it names an empty value")
        register_secret(value)
        return value

    # ---- AWS ---------------------------------------------------------------------------
    def _aws_value(self, name: str, reference: str, ref: SecretRef) -> str:
        service = "secretsmanager" if ref.scheme == "aws-secretsmanager" else "ssm"
        client = self._client(service, ref.region)
        try:
            if service == "ssm":
                answer = client.get_parameter(Name=ref.target, WithDecryption=True)
                value = str(answer["Parameter"]["Value"])
            else:
                answer = client.get_secret_value(SecretId=ref.target)
                if "SecretString" in answer:
                    value = str(answer["SecretString"])
                else:
                    value = bytes(answer["SecretBinary"]).decode()
        except botocore.exceptions.ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND:
                raise _invalid(name, reference, f"{service} has no such secret ({code})") from None
            if code in _REFUSED:
                raise _invalid(
                    name,
                    reference,
                    f"{service} refused the worker's credentials ({code}); grant them read "
                    "access to it",
                ) from None
            raise RuntimeError(
                f"{service} failed to read {reference} for variable {name}: {code}"
            ) from None
        except (botocore.exceptions.BotoCoreError, OSError) as err:
            # unreachable endpoint, no credentials found yet...: retried by Temporal
            raise RuntimeError(
                f"cannot read {reference} for variable {name} from {service}: {type(err).__name__}"
            ) from None
        if ref.key:
            value = _json_member(name, reference, value, ref.key)
        return value

    def _client(self, service: str, region: str) -> Any:
        with self._lock:
            session = self._session or boto3.Session()
            return session.client(
                service,
                region_name=region or session.region_name or None,
                endpoint_url=self.endpoint_url,
                config=self._config,
            )


def _read_file(name: str, reference: str, path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _invalid(name, reference, "no such file on the worker") from None
    except (OSError, UnicodeDecodeError) as err:
        raise _invalid(name, reference, f"cannot read it: {type(err).__name__}") from None
    # what `echo secret > file` and mounted secrets add; the secret itself has no newline
    return text[:-1] if text.endswith("\n") else text


def _json_member(name: str, reference: str, document: str, key: str) -> str:
    try:
        parsed = json.loads(document)
    except ValueError:
        raise _invalid(
            name, reference, "the secret is not a JSON object, so #key cannot apply"
        ) from None
    if not isinstance(parsed, dict) or key not in parsed:
        raise _invalid(name, reference, f"the secret's JSON has no member {key!r}")
    member = parsed[key]
    return member if isinstance(member, str) else json.dumps(member)


def _invalid(name: str, reference: str, why: str) -> ApplicationError:
    return ApplicationError(
        f"secret variable {name} ({reference}) has no value: {why}; fix "
        f"infra.secret_variables.{name} in pipeline.yaml or provide the secret on the worker",
        type="InvalidConfig",
        non_retryable=True,
    )
