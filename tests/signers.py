"""SSH keys made on the spot with the real ssh-keygen, and decisions signed with them."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from brewline import signing

ALLOWED_SIGNERS = "policy/allowed_signers"


@dataclass
class Signer:
    name: str
    key: Path  # private key file (no passphrase)

    @property
    def public(self) -> str:
        return self.key.with_suffix(".pub").read_text().strip()


def make_signer(folder: Path, name: str) -> Signer:
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / f"{name}_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
        check=True,
    )
    return Signer(name, key)


def write_allowed_signers(source: Path, *signers: Signer) -> Path:
    """<source>/policy/allowed_signers listing each signer under its own name."""
    path = source / ALLOWED_SIGNERS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(f'{s.name} namespaces="{signing.NAMESPACE}" {s.public}\n' for s in signers)
    )
    return path


def sign(signer: Signer, text: str, namespace: str = signing.NAMESPACE) -> str:
    """ssh-keygen -Y sign over `text`, as an approver does (armored signature)."""
    folder = signer.key.parent
    message = folder / "statement"
    message.write_text(text)
    sig = folder / "statement.sig"
    sig.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(signer.key), "-n", namespace, str(message)],
        check=True,
        capture_output=True,
    )
    return sig.read_text()


def signed(
    signer: Signer,
    release_id: str,
    stage: str,
    version: str,
    decision: str,
    now: datetime,
    *,
    approver: str = "",
    plan_sha256: str = "",
    issued_ago: timedelta = timedelta(0),
    validity: timedelta = signing.DEFAULT_VALIDITY,
) -> tuple[str, str]:
    """(statement text, signature): a statement for `approver` (default: the signer's
    name), issued `issued_ago` before `now`, signed with the signer's key."""
    text = signing.statement(
        release_id,
        stage,
        version,
        decision,
        approver or signer.name,
        now - issued_ago,
        plan_sha256=plan_sha256,
        validity=validity,
    ).to_text()
    return text, sign(signer, text)
