"""Signed approval statements: what an approver's SSH key signs, and whether it fits.

An approval decision (a release gate, a Terraform plan review, a canary promote or abort)
carries a short canonical statement and an SSH signature over it, made the way git signs
commits (`ssh-keygen -Y sign -n brewline-approval`). The signature proves who signed
(activities/ssh_signatures.py checks it against the pipeline's allowed-signers file);
the statement proves what they signed: this release, this stage, this version, this
decision, this plan, for a short time. So a signature copied from another release,
another stage or an old decision is useless.

Pure and deterministic (the clock is passed in): safe inside the workflow sandbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

NAMESPACE = "brewline-approval"  # ssh-keygen -n: a signature for git or ssh login never fits
FORMAT = "brewline-approval v1"
DEFAULT_VALIDITY = timedelta(minutes=15)
MAX_VALIDITY = timedelta(hours=24)
# how far the signer's clock may run ahead of the workflow's before a statement is refused
CLOCK_SKEW = timedelta(minutes=5)
NO_PLAN = "-"
PLAN_REVIEW_STAGE = "plan-review"
UNSIGNED_NOTICE = "UNSIGNED APPROVALS ALLOWED (local demo only)"

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_VALUE = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces: one token a line
_FIELDS = (
    "release-id",
    "stage",
    "version",
    "decision",
    "plan-sha256",
    "approver",
    "issued-at",
    "expires-at",
)


class StatementError(ValueError):
    """A statement that cannot be written or read; the message says which field and why."""


def approval_stage(environment: str) -> str:
    """The stage of an environment's release gate, e.g. approval-production."""
    return f"approval-{environment}"


def canary_stage(environment: str, service: str) -> str:
    """The stage of a canary's controls, e.g. canary-production-api-gateway."""
    return f"canary-{environment}-{service}"


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise StatementError(f"{moment!r} has no time zone; statements use UTC")
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _time(name: str, text: str) -> datetime:
    try:
        return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise StatementError(
            f"{name} {text!r} is not a UTC time like 2025-01-31T09:30:00Z"
        ) from None


@dataclass(frozen=True)
class Statement:
    """What an approver signs: one decision on one stage of one release, for a while."""

    release_id: str
    stage: str  # approval-<env>, plan-review or canary-<env>-<service>
    version: str
    decision: str  # approve, reject, or a canary action (promote, promote-full, abort, ...)
    approver: str
    issued_at: datetime
    expires_at: datetime
    plan_sha256: str = NO_PLAN  # a plan review: the sha256 of the plan reviewed

    def to_text(self) -> str:
        """The canonical text that is signed: one `key: value` line each, in fixed order."""
        values = {
            "release-id": self.release_id,
            "stage": self.stage,
            "version": self.version,
            "decision": self.decision,
            "plan-sha256": self.plan_sha256 or NO_PLAN,
            "approver": self.approver,
            "issued-at": _stamp(self.issued_at),
            "expires-at": _stamp(self.expires_at),
        }
        for key, value in values.items():
            if not _VALUE.fullmatch(value):
                raise StatementError(
                    f"{key} {value!r} cannot be signed: it must be 1-200 printable ASCII "
                    "characters without spaces"
                )
        return FORMAT + "\n" + "".join(f"{k}: {v}\n" for k, v in values.items())


def statement(
    release_id: str,
    stage: str,
    version: str,
    decision: str,
    approver: str,
    now: datetime,
    *,
    plan_sha256: str = "",
    validity: timedelta = DEFAULT_VALIDITY,
) -> Statement:
    """A statement issued at `now`, valid for `validity` (at most 24 h)."""
    if not timedelta(0) < validity <= MAX_VALIDITY:
        raise StatementError(f"validity {validity} must be more than 0 and at most 24 h")
    return Statement(
        release_id=release_id,
        stage=stage,
        version=version,
        decision=decision,
        approver=approver.strip(),
        issued_at=now.replace(microsecond=0),
        expires_at=now.replace(microsecond=0) + validity,
        plan_sha256=plan_sha256.strip().lower() or NO_PLAN,
    )


def parse(text: str) -> Statement:
    """Read a statement back; StatementError names the first thing that is not canonical."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != FORMAT:
        first = lines[0] if lines else ""
        raise StatementError(f"it does not start with {FORMAT!r} (found {first[:60]!r})")
    body = lines[1:]
    if len(body) != len(_FIELDS):
        raise StatementError(f"it has {len(body)} fields; {len(_FIELDS)} are expected")
    values: dict[str, str] = {}
    for key, line in zip(_FIELDS, body, strict=True):
        name, sep, value = line.partition(": ")
        if name != key or not sep:
            raise StatementError(f"line {line[:60]!r} should be '{key}: <value>'")
        if not _VALUE.fullmatch(value):
            raise StatementError(f"{key} {value[:60]!r} is not one printable token")
        values[key] = value
    parsed = Statement(
        release_id=values["release-id"],
        stage=values["stage"],
        version=values["version"],
        decision=values["decision"],
        approver=values["approver"],
        issued_at=_time("issued-at", values["issued-at"]),
        expires_at=_time("expires-at", values["expires-at"]),
        plan_sha256=values["plan-sha256"],
    )
    if parsed.to_text() != text:  # e.g. a missing final newline: the signed bytes differ
        raise StatementError("it is not in canonical form (one line per field, final newline)")
    return parsed


def mismatch(
    text: str,
    *,
    release_id: str,
    stage: str,
    version: str,
    decision: str,
    approver: str,
    now: datetime,
    plan_sha256: str = "",
) -> str | None:
    """Why the signed statement `text` is not the decision the workflow waits for, or None.

    Each reason names what the statement says and what was expected, so a signature
    replayed from another release or stage is refused as exactly that.
    """
    try:
        signed = parse(text)
    except StatementError as exc:
        return f"the signed statement cannot be read: {exc}"
    plan = plan_sha256.strip().lower() or NO_PLAN
    for what, found, wanted in (
        ("release", signed.release_id, release_id),
        ("stage", signed.stage, stage),
        ("version", signed.version, version),
        ("decision", signed.decision, decision),
        ("Terraform plan (sha256)", signed.plan_sha256, plan),
        ("approver", signed.approver, approver.strip()),
    ):
        if found != wanted:
            return (
                f"the signature is for {what} {found!r}, not {wanted!r}: a signed decision "
                "holds only for the release, stage, version, decision and plan it names; "
                "sign this one (starter.py signs what the release waits for)"
            )
    if signed.expires_at - signed.issued_at > MAX_VALIDITY:
        return (
            f"the statement is valid from {_stamp(signed.issued_at)} to "
            f"{_stamp(signed.expires_at)}, longer than the 24 h allowed; sign a new one"
        )
    if signed.expires_at <= now:
        return (
            f"the signed statement expired at {_stamp(signed.expires_at)} (now "
            f"{_stamp(now)}); sign the decision again"
        )
    if signed.issued_at > now + CLOCK_SKEW:
        return (
            f"the signed statement is issued at {_stamp(signed.issued_at)}, in the future "
            f"(now {_stamp(now)}, {CLOCK_SKEW} of clock skew allowed); check the signer's clock"
        )
    return None
