"""Key material. The only module that imports cryptography."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair in OpenSSH formats."""

    private_openssh: bytes
    public_openssh: str  # "ssh-ed25519 AAAA…" without a comment


def new_ed25519() -> KeyPair:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return KeyPair(private_openssh=private, public_openssh=public.decode())


def write_private_key(path: Path, pair: KeyPair, comment: str = "") -> None:
    """Write `path` (mode 0600) and `path.pub`, never leaving a readable private key.

    The file is created with 0600 from the start (not chmod-ed afterwards) so
    there is no moment in which another user could read it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pair.private_openssh)
    tmp.replace(path)
    public = pair.public_openssh + (f" {comment}" if comment else "") + "\n"
    path.with_name(path.name + ".pub").write_text(public)


def public_key_of(path: Path) -> str:
    """The OpenSSH public key line of a private key file."""
    key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
