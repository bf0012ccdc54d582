"""The department's bundle signing key, and signatures any Debian PC checks with OpenSSH.

Files, beside the CA under the state directory (never in version control):

    <state>/ca/bundle-signing.key      the Ed25519 private key (0600, never printed)
    <state>/ca/bundle-signing.key.pub  its public key
    <state>/ca/bundle-allowed-signers  the allowed-signers line PCs are given

A bundle's manifest is signed with `ssh-keygen -Y sign -n provision-bundle`: a
PC checks it with the `ssh-keygen -Y verify` it already has (openssh-client),
so nothing from a package index is needed to trust a bundle.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from provision.errors import PrerequisiteError, StateError
from provision.infra import crypto
from provision.infra.atomic import write_atomic
from provision.settings import Settings

#: The signature namespace: a signature made for bundles is no good for anything else.
NAMESPACE = "provision-bundle"
#: The signer's identity in the allowed-signers file.
IDENTITY = "provision-bundle"
KEY_FILE = "bundle-signing.key"
ALLOWED_SIGNERS_FILE = "bundle-allowed-signers"


@dataclass(frozen=True)
class KeyInfo:
    """Where the signing key is and what its public half is (never the private key)."""

    key_path: Path
    public_key: str
    fingerprint: str
    allowed_signers_path: Path


def _dir(settings: Settings) -> Path:
    return settings.state_path / "ca"


def key_path(settings: Settings) -> Path:
    return _dir(settings) / KEY_FILE


def allowed_signers_line(public_key: str) -> str:
    """The allowed-signers line that trusts `public_key` for bundles only."""
    fields = public_key.split()
    return f'{IDENTITY} namespaces="{NAMESPACE}" {fields[0]} {fields[1]}\n'


def init_key(settings: Settings) -> KeyInfo:
    """Create the signing key; refused when one exists (every PC trusts the old one)."""
    path = key_path(settings)
    if path.exists():
        raise StateError(
            f"a bundle signing key already exists: {path}",
            hint="keep it: every PC in pull mode trusts it (see provision bundle key show)",
        )
    folder = _dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    pair = crypto.new_ed25519()
    crypto.write_private_key(path, pair, comment=IDENTITY)
    write_atomic(folder / ALLOWED_SIGNERS_FILE, allowed_signers_line(pair.public_openssh))
    return key_info(settings)


def key_info(settings: Settings) -> KeyInfo:
    """The signing key, or a StateError saying how to make one."""
    path = key_path(settings)
    if not path.is_file():
        raise StateError(
            f"there is no bundle signing key in {path.parent}",
            hint="create one with provision bundle key init",
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise StateError(
            f"the bundle signing key {path} is readable by others (mode {mode:o})",
            hint=f"chmod 600 {path}",
        )
    public = crypto.public_key_of(path)
    signers = _dir(settings) / ALLOWED_SIGNERS_FILE
    if not signers.is_file():  # made again from the key: it holds nothing secret
        write_atomic(signers, allowed_signers_line(public))
    return KeyInfo(path, public, crypto.fingerprint(public), signers)


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise PrerequisiteError(
            "ssh-keygen is not installed; it signs and verifies bundles",
            hint="apt-get install openssh-client",
        )
    return found


def sign(key: Path, data: bytes) -> bytes:
    """An SSH signature (armoured text) of `data` in the bundle namespace.

    Ed25519 signatures are deterministic, so the same manifest signed twice gives
    the same bytes: a bundle built twice from the same input is the same file.
    """
    with tempfile.TemporaryDirectory(prefix="provision-sign-") as tmp:
        message = Path(tmp) / "manifest.json"
        message.write_bytes(data)
        proc = subprocess.run(
            [_ssh_keygen(), "-q", "-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(message)],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        signature = message.with_name("manifest.json.sig")
        if proc.returncode != 0 or not signature.is_file():
            raise StateError(
                f"ssh-keygen could not sign with {key}: {proc.stderr.strip()}",
                hint="check the key with provision bundle key show",
            )
        return signature.read_bytes()


def verify(allowed_signers: Path, data: bytes, signature: bytes) -> str | None:
    """None when `signature` is a good bundle signature of `data` by an allowed signer,
    else ssh-keygen's reason."""
    with tempfile.TemporaryDirectory(prefix="provision-verify-") as tmp:
        sig = Path(tmp) / "manifest.json.sig"
        sig.write_bytes(signature)
        proc = subprocess.run(
            [
                _ssh_keygen(),
                "-Y",
                "verify",
                "-f",
                str(allowed_signers),
                "-I",
                IDENTITY,
                "-n",
                NAMESPACE,
                "-s",
                str(sig),
            ],
            input=data,
            capture_output=True,
            check=False,
            timeout=60,
        )
    if proc.returncode == 0:
        return None
    reason = (proc.stderr or proc.stdout).decode(errors="replace").strip()
    return reason.splitlines()[-1] if reason else "the signature does not verify"
