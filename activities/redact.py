"""Mask secrets in text before it is written anywhere: logs, heartbeats, SARIF files.

Two kinds of secret are masked:

- what a secret scanner would flag by its shape: AWS access key ids (`AKIA...`,
  `ASIA...`), private key blocks, bearer tokens (EKS's `k8s-aws-v1.` tokens among
  them), JWTs, the password of `scheme://user:password@host` URLs, `password=...`,
  `token: ...`, `AWS_SECRET_ACCESS_KEY=...` and other secret-named pairs (also as JSON
  members), GitHub and Slack tokens and Slack webhook URLs;
- any value registered at runtime with `register_secret` (the resolved Terraform
  secret variables, registry passwords): masked wherever it appears, also in its
  JSON-escaped form.

The mask keeps the text's structure (a JSON document stays parsable, a `key=` keeps its
key) so logs can still be read and parsed; only the secret itself becomes `MASK`.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict

MASK = "[redacted]"
# Shorter values would mask ordinary words and digits all over a log.
MIN_REGISTERED_LENGTH = 4
# Registered values are kept for the worker's lifetime (a retried activity logs the same
# value again); this bounds the set when a long-lived worker resolves many tokens.
MAX_REGISTERED = 2048

_SENSITIVE_NAME = (
    r"[A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|private[_-]?key|credentials?|client[_-]?secret)[A-Za-z0-9_.-]*"
)

# Each pattern masks its group named `s` (`q`, `b`: other spellings of it), or the whole
# match when it has none. A pattern runs only on text holding one of its hints (lower
# case): most lines hold none, and a multi-MB `terraform show -json` line stays fast.
_KEY_HINTS = ("pass", "secret", "token", "key", "credential")
_PATTERNS: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    # "-----BEGIN ... PRIVATE KEY-----" ... "-----END ... PRIVATE KEY-----" (also unterminated)
    (
        ("private key",),
        re.compile(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
            r"(?P<s>.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
    ),
    # AWS access key ids (long-lived AKIA, temporary ASIA, and the rarer prefixes)
    (
        ("akia", "asia", "abia", "acca", "a3t"),
        re.compile(
            r"(?<![A-Z0-9])(?P<s>(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})(?![A-Z0-9])"
        ),
    ),
    # EKS bearer tokens (a base64url presigned STS URL), with or without "Bearer"
    (("k8s-aws-v1.",), re.compile(r"(?P<s>k8s-aws-v1\.[A-Za-z0-9_=-]+)")),
    # "Authorization: Basic <credential>" (or Bearer, Token), and "Bearer <token>" anywhere
    (
        ("authorization",),
        re.compile(
            r"(?i)\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:basic|bearer|token)\s+)?+"
            r"(?P<s>[^\s\"',{}\[\]]+)"
        ),
    ),
    (("bearer",), re.compile(r"(?i)\bbearer\s+(?P<s>[A-Za-z0-9._~+/=-]{16,})")),
    # JWTs: header.payload.signature, both JSON parts base64url ("eyJ" = '{"')
    (("eyj",), re.compile(r"(?P<s>eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*)")),
    # the password of scheme://user:password@host
    (("@",), re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:(?P<s>[^@\s/\"']+)@")),
    # GitHub tokens (classic ghp_/gho_/ghu_/ghs_/ghr_, fine-grained github_pat_)
    (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"(?P<s>\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}))"),
    ),
    # Slack tokens and incoming webhooks
    (("xox",), re.compile(r"(?P<s>\bxox[abposr]-[A-Za-z0-9-]{10,})")),
    (
        ("hooks.slack.com",),
        re.compile(r"(?i)hooks\.slack\.com/(?:services|workflows)/(?P<s>[A-Za-z0-9/_-]+)"),
    ),
    # JSON/YAML/Python members with a secret-looking name and a string value:
    # "password": "x", 'token': 'x' (only strings, so a JSON document stays valid)
    (
        _KEY_HINTS,
        re.compile(
            rf"(?i)([\"']){_SENSITIVE_NAME}\1\s*:\s*"
            r"(?:\"(?P<s>(?:[^\"\\]|\\.)+)\"|'(?P<q>[^']+)')"
        ),
    ),
    # key=value and key: value pairs with a secret-looking key, the value bare or quoted:
    # password=x, AWS_SECRET_ACCESS_KEY=x, --token=x, db_password: "x"
    (
        _KEY_HINTS,
        re.compile(
            rf"(?i)(?<![A-Za-z0-9_\"'])(?:{_SENSITIVE_NAME})\s*[:=]\s*"
            r"(?:\"(?P<s>(?:[^\"\\]|\\.)+)\"|'(?P<q>[^']+)'|(?P<b>[^\s\"'&,;{}\[\]()<>]+))"
        ),
    ),
]

_registered: OrderedDict[str, None] = OrderedDict()
_registered_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Mask `value` (and its JSON-escaped form) in everything redacted from now on.

    Values shorter than MIN_REGISTERED_LENGTH are ignored: masking them would destroy
    ordinary text, and a scanner could not tell them from it either.
    """
    global _registered_pattern
    if not isinstance(value, str) or len(value) < MIN_REGISTERED_LENGTH:
        return
    forms = {value, json.dumps(value)[1:-1]}
    with _lock:
        for form in forms:
            _registered[form] = None
            _registered.move_to_end(form)
        while len(_registered) > MAX_REGISTERED:
            _registered.popitem(last=False)
        # longest first, so a value containing another is masked whole
        alternatives = sorted(_registered, key=len, reverse=True)
        _registered_pattern = re.compile("|".join(re.escape(v) for v in alternatives))


def forget_registered_secrets() -> None:
    """Drop every registered value (for tests)."""
    global _registered_pattern
    with _lock:
        _registered.clear()
        _registered_pattern = None


def _mask_match(match: re.Match[str]) -> str:
    text = match.group(0)
    spans = [match.span(name) for name in ("s", "q", "b") if name in match.re.groupindex]
    spans = [span for span in spans if span[0] >= 0]
    if not spans:
        return MASK
    start, end = spans[0]
    offset = match.start()
    return text[: start - offset] + MASK + text[end - offset :]


def redact(text: str) -> str:
    """`text` with every registered value and every secret-shaped string masked."""
    if not text:
        return text
    pattern = _registered_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    lower = text.lower()
    for hints, secret_pattern in _PATTERNS:
        if any(hint in lower for hint in hints):
            text = secret_pattern.sub(_mask_match, text)
    return text


_BEGIN_KEY = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_END_KEY = re.compile(r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")


class LineRedactor:
    """`redact` for a stream read line by line (a subprocess's output).

    A private key block spans lines: once its BEGIN line is seen, every line up to its
    END line is masked whole.
    """

    def __init__(self) -> None:
        self._in_key = False

    def line(self, text: str) -> str:
        if self._in_key:
            end = _END_KEY.search(text)
            if end is None:
                return MASK + ("\n" if text.endswith("\n") else "")
            self._in_key = False
            return MASK + redact(text[end.start() :])
        begin = _BEGIN_KEY.search(text)
        if begin is not None and _END_KEY.search(text, begin.end()) is None:
            self._in_key = True
            newline = "\n" if text.endswith("\n") else ""
            return (
                redact(text[: begin.start()]) + text[begin.start() : begin.end()] + MASK + newline
            )
        return redact(text)
