"""References to secret values: what pipeline.yaml and workflow history hold instead of them.

A reference names where the worker reads the value when it needs it:

- `env:NAME`: the worker's environment variable NAME;
- `file:/absolute/path`: the content of a file on the worker (one trailing newline
  dropped), e.g. a mounted Kubernetes or Docker secret;
- `aws-secretsmanager:<secret ARN or name>[#<json key>]`: an AWS Secrets Manager
  secret; with `#key`, the secret is a JSON object and its member `key` is the value
  (RDS-managed secrets hold `{"username": ..., "password": ...}`);
- `aws-ssm:<parameter name or ARN>`: an SSM Parameter Store parameter (SecureString
  decrypted).

Only syntax is checked here (no I/O: the workflow sandbox imports this module);
`activities.secrets` resolves references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEMES = ("env", "file", "aws-secretsmanager", "aws-ssm")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRETS_MANAGER_ARN = re.compile(
    r"arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]):[0-9]{12}:secret:"
    r"[A-Za-z0-9/_+=.@-]{1,512}"
)
_SECRETS_MANAGER_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_SSM_ARN = re.compile(
    r"arn:aws[a-z-]*:ssm:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]):[0-9]{12}:parameter/"
    r"[A-Za-z0-9_./-]{1,2048}"
)
_SSM_NAME = re.compile(r"/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
_JSON_KEY = re.compile(r"[A-Za-z0-9_.-]{1,128}")
EXAMPLES = (
    "env:GO_COFFEE_DB_PASSWORD, file:/run/secrets/db_password, "
    "aws-secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf#password, "
    "aws-ssm:/go-coffee/db_password"
)


@dataclass(frozen=True)
class SecretRef:
    """A parsed reference: `scheme`, what it names (`target`), and for JSON secrets `key`."""

    scheme: str
    target: str
    key: str = ""
    region: str = ""  # from an ARN; "" = the worker's default region

    def __str__(self) -> str:
        return f"{self.scheme}:{self.target}" + (f"#{self.key}" if self.key else "")


def parse_secret_ref(text: object) -> SecretRef:
    """Parse `scheme:target`; ValueError naming the reference and the allowed forms.

    Messages start with what was wrong, to be put after the key that held the reference.
    """
    # Not a reference at all: it may be the secret itself, written here by mistake, so
    # the message does not repeat it.
    scheme, _, target = text.partition(":") if isinstance(text, str) else ("", "", "")
    if scheme not in SCHEMES:
        raise ValueError(
            "not a secret reference (the value is not repeated here: it may be the "
            f"secret itself); write scheme:target with scheme one of {', '.join(SCHEMES)}, "
            f"e.g. {EXAMPLES}"
        )
    if scheme == "env":
        if not _ENV_NAME.fullmatch(target):
            raise ValueError(f"{text!r}: {target!r} is not an environment variable name")
        return SecretRef(scheme, target)
    if scheme == "file":
        if not target.startswith("/") or "\x00" in target or "/../" in f"{target}/":
            raise ValueError(
                f"{text!r}: {target!r} must be an absolute path on the worker, without '..'"
            )
        return SecretRef(scheme, target)
    if scheme == "aws-secretsmanager":
        secret, _, key = target.partition("#")
        if key and not _JSON_KEY.fullmatch(key):
            raise ValueError(f"{text!r}: {key!r} is not a JSON member name")
        arn = _SECRETS_MANAGER_ARN.fullmatch(secret)
        if arn is None and (
            secret.startswith("arn:") or not _SECRETS_MANAGER_NAME.fullmatch(secret)
        ):
            raise ValueError(
                f"{text!r}: {secret!r} is not a Secrets Manager secret ARN "
                "(arn:aws:secretsmanager:<region>:<account>:secret:<name>) or name"
            )
        return SecretRef(scheme, secret, key=key, region=arn["region"] if arn else "")
    if scheme == "aws-ssm":
        arn = _SSM_ARN.fullmatch(target)
        if arn is None and (target.startswith("arn:") or not _SSM_NAME.fullmatch(target)):
            raise ValueError(
                f"{text!r}: {target!r} is not an SSM parameter name (/path/name) or ARN"
            )
        return SecretRef(scheme, target, region=arn["region"] if arn else "")
    raise AssertionError(scheme)  # every scheme of SCHEMES is handled above
