"""Verify an approver's SSH signature over an approval statement (ssh-keygen -Y verify).

The workflow checks what the statement says (brewline/signing.py); this activity checks
who signed it: the signature must verify, in the `brewline-approval` namespace, as the
key listed for the approver in the pipeline's allowed-signers file (the format of git's
gpg.ssh.allowedSignersFile: `alice ssh-ed25519 AAAA...`). A signature that does not
verify is a result with the reason, never an exception: the workflow records it as a
refused decision. A missing or unreadable allowed-signers file is InvalidConfig.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.runner import run
from brewline.model import VerifyApprovalInput, VerifyApprovalResult
from brewline.platform import PlatformSettings
from brewline.signing import NAMESPACE

ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
_PRINCIPAL = re.compile(r"^[A-Za-z0-9_.@+][A-Za-z0-9_.@+-]{0,99}$")
_GOOD = re.compile(r'Good "[^"]*" signature for (\S+) with (.+)$')
MAX_SIGNATURE = 16 * 1024  # an armored ed25519 signature is ~300 bytes, RSA-4096 ~900


def allowed_signers_path(source: str, allowed_signers: str) -> Path:
    """`<source>/<allowed_signers>`, refused (InvalidConfig) when it is not a readable file
    inside the source tree."""
    root = Path(source).resolve()
    if not allowed_signers:
        raise ApplicationError(
            "pipeline.yaml approval.allowed_signers is not set: name the allowed-signers "
            "file (e.g. policy/allowed_signers) inside the source tree",
            type="InvalidConfig",
            non_retryable=True,
        )
    path = (root / allowed_signers).resolve()
    if not path.is_relative_to(root):
        raise ApplicationError(
            f"approval.allowed_signers {allowed_signers!r} leaves the source tree {root}",
            type="InvalidConfig",
            non_retryable=True,
        )
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ApplicationError(
            f"the allowed-signers file {path} (approval.allowed_signers) cannot be read: "
            f"{exc.strerror}; create it with one line per approver: "
            '<name> namespaces="brewline-approval" <public key>',
            type="InvalidConfig",
            non_retryable=True,
        ) from None
    if not path.is_file():
        raise ApplicationError(
            f"the allowed-signers file {path} (approval.allowed_signers) is not a file",
            type="InvalidConfig",
            non_retryable=True,
        )
    return path


class SignatureActivities:
    """ssh-keygen's signature check, with logs under the release's folder."""

    def __init__(self, settings: PlatformSettings, ssh_keygen: str = "ssh-keygen") -> None:
        self.settings = settings
        self.ssh_keygen = ssh_keygen

    @activity.defn(name="verify_approval")
    async def verify_approval(self, inp: VerifyApprovalInput) -> VerifyApprovalResult:
        signers = allowed_signers_path(inp.source, inp.allowed_signers)
        if not _PRINCIPAL.fullmatch(inp.principal):
            return VerifyApprovalResult(
                False, f"approver {inp.principal!r} cannot be an allowed-signers principal"
            )
        signature = inp.signature.strip()
        if not signature:
            return VerifyApprovalResult(False, "the decision carries no signature")
        if (
            len(signature) > MAX_SIGNATURE
            or not signature.startswith(ARMOR_BEGIN)
            or not signature.endswith(ARMOR_END)
        ):
            return VerifyApprovalResult(
                False,
                "the signature is not an armored SSH signature (ssh-keygen -Y sign output, "
                f"{ARMOR_BEGIN} ... {ARMOR_END})",
            )
        log = self.settings.release_dir(inp.release_id) / "approvals" / "verify.log"
        # The signature goes to a private file (ssh-keygen reads it by name); the
        # statement goes to stdin, byte for byte what the approver signed.
        with tempfile.TemporaryDirectory(prefix="brewline-verify-") as folder:
            sig_path = Path(folder) / "decision.sig"
            fd = os.open(sig_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(signature + "\n")
            result = await run(
                [
                    self.ssh_keygen,
                    "-Y",
                    "verify",
                    "-f",
                    str(signers),
                    "-I",
                    inp.principal,
                    "-n",
                    NAMESPACE,
                    "-s",
                    str(sig_path),
                ],
                log_path=log,
                stdin_data=inp.statement.encode(),
                timeout=30,
            )
        if result.ok:
            for line in result.tail:
                good = _GOOD.search(line)
                if good:
                    return VerifyApprovalResult(True, key=f"{good.group(1)}, {good.group(2)}")
            return VerifyApprovalResult(True, key=inp.principal)
        said = "; ".join(line for line in result.tail[-3:] if line.strip()) or "no output"
        return VerifyApprovalResult(
            False,
            f"the signature does not verify as a key of {inp.principal!r} in "
            f"{inp.allowed_signers} for namespace {NAMESPACE} (ssh-keygen: {said})",
        )
