"""brewline.signing: the canonical statement, read back, and every reason it does not fit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from brewline import signing

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
RID = "release-go-coffee-api-gateway-1.4.0"


def approval(**changes: object) -> signing.Statement:
    made = signing.statement(RID, "approval-production", "1.4.0", "approve", "alice", NOW)
    return signing.Statement(**{**made.__dict__, **changes})  # type: ignore[arg-type]


def expected(**changes: object) -> dict[str, object]:
    return {
        "release_id": RID,
        "stage": "approval-production",
        "version": "1.4.0",
        "decision": "approve",
        "approver": "alice",
        "now": NOW + timedelta(minutes=1),
        **changes,
    }


def test_the_canonical_text_and_back() -> None:
    made = approval()
    text = made.to_text()
    assert text == (
        "brewline-approval v1\n"
        f"release-id: {RID}\n"
        "stage: approval-production\n"
        "version: 1.4.0\n"
        "decision: approve\n"
        "plan-sha256: -\n"
        "approver: alice\n"
        "issued-at: 2026-03-01T09:30:00Z\n"
        "expires-at: 2026-03-01T09:45:00Z\n"
    )
    assert signing.parse(text) == made
    assert signing.mismatch(text, **expected()) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "expected_reason"),
    [
        (
            {"release_id": "release-go-coffee-api-gateway-1.3.0"},
            "for release 'release-go-coffee-api-gateway-1.3.0'",
        ),
        ({"stage": "approval-staging"}, "for stage 'approval-staging', not 'approval-production'"),
        ({"version": "1.3.9"}, "for version '1.3.9'"),
        ({"decision": "reject"}, "for decision 'reject', not 'approve'"),
        ({"approver": "bob"}, "for approver 'bob', not 'alice'"),
        ({"plan_sha256": "a" * 64}, "for Terraform plan (sha256)"),
        ({"expires_at": NOW + timedelta(seconds=30)}, "expired at 2026-03-01T09:30:30Z"),
        ({"expires_at": NOW + timedelta(hours=25)}, "longer than the 24 h allowed"),
        (
            {"issued_at": NOW + timedelta(minutes=10), "expires_at": NOW + timedelta(minutes=20)},
            "in the future",
        ),
    ],
)
def test_each_mismatch_names_what_was_signed_and_what_was_expected(
    changes: dict[str, object], expected_reason: str
) -> None:
    why = signing.mismatch(approval(**changes).to_text(), **expected())  # type: ignore[arg-type]
    assert why is not None and expected_reason in why


def test_a_small_clock_skew_is_allowed() -> None:
    ahead = approval(issued_at=NOW + timedelta(minutes=4), expires_at=NOW + timedelta(minutes=19))
    assert signing.mismatch(ahead.to_text(), **expected(now=NOW)) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "does not start with 'brewline-approval v1'"),
        ("brewline-approval v2\n", "does not start with"),
        ("brewline-approval v1\nrelease-id: x\n", "it has 1 fields; 8 are expected"),
        (approval().to_text().replace("stage: ", "stage:"), "should be 'stage: <value>'"),
        (approval().to_text().replace("stage: ", "phase: "), "should be 'stage: <value>'"),
        (approval().to_text().rstrip("\n"), "not in canonical form"),
        (approval().to_text() + "extra: 1\n", "9 fields"),
        (approval().to_text().replace("09:45:00Z", "09:45Z"), "is not a UTC time"),
        (approval().to_text().replace("alice", "alice smith"), "not one printable token"),
    ],
)
def test_statements_that_are_not_canonical_are_refused(text: str, reason: str) -> None:
    why = signing.mismatch(text, **expected())  # type: ignore[arg-type]
    assert why is not None
    assert why.startswith("the signed statement cannot be read: ")
    assert reason in why


def test_values_that_could_forge_a_line_cannot_be_signed() -> None:
    with pytest.raises(signing.StatementError, match="cannot be signed"):
        approval(version="1.4.0\ndecision: approve").to_text()
    with pytest.raises(signing.StatementError, match="at most 24 h"):
        signing.statement(RID, "s", "1", "approve", "a", NOW, validity=timedelta(hours=25))
    with pytest.raises(signing.StatementError, match="no time zone"):
        approval(issued_at=datetime(2026, 3, 1)).to_text()


def test_stage_names() -> None:
    assert signing.approval_stage("production") == "approval-production"
    assert signing.canary_stage("production", "api-gateway") == "canary-production-api-gateway"
    assert signing.PLAN_REVIEW_STAGE == "plan-review"
