"""verify_approval with the real ssh-keygen: good, bad and missing signatures."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.ssh_signatures import SignatureActivities
from brewline.model import VerifyApprovalInput
from brewline.platform import PlatformSettings
from tests.signers import ALLOWED_SIGNERS, Signer, make_signer, sign, write_allowed_signers

TEXT = "brewline-approval v1\nrelease-id: r\n"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[SignatureActivities, Path]:
    source = tmp_path / "source"
    keys = tmp_path / "keys"
    write_allowed_signers(source, make_signer(keys, "alice"))
    return SignatureActivities(PlatformSettings(home=str(tmp_path / "home"))), source


def inp(
    source: Path, signature: str, principal: str = "alice", text: str = TEXT
) -> VerifyApprovalInput:
    return VerifyApprovalInput(
        "release-x", str(source), ALLOWED_SIGNERS, principal, text, signature
    )


async def test_a_listed_key_verifies_and_others_do_not(
    setup: tuple[SignatureActivities, Path], tmp_path: Path
) -> None:
    acts, source = setup
    alice = make_signer(tmp_path / "keys2", "alice")  # another key under the same name
    good_signer = Signer("alice", tmp_path / "keys" / "alice_ed25519")  # the listed one
    good = await acts.verify_approval(inp(source, sign(good_signer, TEXT)))
    assert good.verified and good.key.startswith("alice, ED25519 key SHA256:")

    other = await acts.verify_approval(inp(source, sign(alice, TEXT)))
    assert not other.verified
    assert "does not verify as a key of 'alice' in policy/allowed_signers" in other.reason

    as_bob = await acts.verify_approval(inp(source, sign(good_signer, TEXT), principal="bob"))
    assert not as_bob.verified

    changed = await acts.verify_approval(inp(source, sign(good_signer, TEXT), text=TEXT + "x"))
    assert not changed.verified  # the statement is not what was signed

    other_namespace = sign(good_signer, TEXT, namespace="git")
    assert not (await acts.verify_approval(inp(source, other_namespace))).verified


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("", "carries no signature"),
        ("hello", "not an armored SSH signature"),
    ],
)
async def test_no_signature_is_a_result_with_the_reason(
    setup: tuple[SignatureActivities, Path], signature: str, reason: str
) -> None:
    acts, source = setup
    result = await acts.verify_approval(inp(source, signature))
    assert not result.verified and reason in result.reason


async def test_a_missing_allowed_signers_file_is_invalid_config(tmp_path: Path) -> None:
    acts = SignatureActivities(PlatformSettings(home=str(tmp_path / "home")))
    with pytest.raises(ApplicationError) as info:
        await acts.verify_approval(inp(tmp_path, "sig"))
    assert info.value.type == "InvalidConfig" and info.value.non_retryable
    assert f"{tmp_path}/policy/allowed_signers" in info.value.message
    assert "cannot be read" in info.value.message
    outside = VerifyApprovalInput("r", str(tmp_path), "../x", "alice", TEXT, "sig")
    with pytest.raises(ApplicationError, match="leaves the source tree"):
        await acts.verify_approval(outside)
