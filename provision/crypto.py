"""Key material and Ansible Vault. The only module that imports cryptography."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hmac, padding, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC


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


def load_public_key_line(path: Path) -> str:
    """The public key line of a private key file, or one clear error why it cannot be read.

    Raises ValueError (with a message fit for the user) for a file that is not an
    unencrypted OpenSSH/PEM private key; OSError for one that cannot be opened.
    """
    data = path.read_bytes()
    try:
        return public_key_of(path)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("is not an unencrypted OpenSSH or PEM private key") from None
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def fingerprint(public_openssh: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line ("ssh-ed25519 AAAA… [comment]")."""
    fields = public_openssh.split()
    blob = base64.b64decode(fields[1] if len(fields) > 1 else fields[0])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


# -- Ansible Vault (format 1.1/1.2, AES256) ---------------------------------------------
#
# The format ansible-vault writes, implemented from its own description so that files
# go both ways: a 32-byte random salt; PBKDF2-HMAC-SHA256 (10,000 iterations) of the
# password gives 80 bytes: the AES-256 key, the HMAC-SHA256 key and the 16-byte CTR
# counter block. The plaintext is PKCS#7 padded (as ansible does, although CTR does
# not need it), encrypted with AES-256-CTR, and the HMAC is taken over the
# ciphertext. The body is hex(salt) "\n" hex(hmac) "\n" hex(ciphertext), hex-encoded
# once more and cut into lines of 80 characters under the header line.

VAULT_HEADER = "$ANSIBLE_VAULT"
_VAULT_ITERATIONS = 10_000


class VaultError(ValueError):
    """A vault file that is not one, or a password that does not open it."""


def is_vault(data: bytes) -> bool:
    return data.lstrip().startswith(VAULT_HEADER.encode())


def _vault_keys(password: bytes, salt: bytes) -> tuple[bytes, bytes, bytes]:
    material = PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=80, salt=salt, iterations=_VAULT_ITERATIONS
    ).derive(password)
    return material[:32], material[32:64], material[64:]


def vault_encrypt(plaintext: bytes, password: str, label: str | None = None) -> bytes:
    """Encrypt `plaintext` as ansible-vault does (1.1, or 1.2 with a vault-id `label`)."""
    if not password:
        raise VaultError("the vault password is empty")
    salt = os.urandom(32)
    key, hmac_key, counter = _vault_keys(password.encode(), salt)
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    mac = hmac.HMAC(hmac_key, hashes.SHA256())
    mac.update(ciphertext)
    body = b"\n".join(
        [binascii.hexlify(salt), mac.finalize().hex().encode(), ciphertext.hex().encode()]
    )
    hexed = binascii.hexlify(body).decode()
    header = f"{VAULT_HEADER};1.2;AES256;{label}" if label else f"{VAULT_HEADER};1.1;AES256"
    lines = [header] + [hexed[i : i + 80] for i in range(0, len(hexed), 80)]
    return ("\n".join(lines) + "\n").encode()


def vault_decrypt(data: bytes, password: str) -> bytes:
    """Decrypt an ansible-vault file (1.1 or 1.2, AES256); VaultError if it cannot."""
    text = data.decode("ascii", errors="replace").strip()
    lines = text.splitlines()
    header = lines[0].strip().split(";") if lines else []
    if len(header) < 3 or header[0] != VAULT_HEADER:
        raise VaultError("is not an ansible-vault file (no $ANSIBLE_VAULT header)")
    if header[1] not in {"1.1", "1.2"} or header[2].strip() != "AES256":
        raise VaultError(f"uses vault format {header[1]} {header[2]}; only AES256 1.1/1.2 is read")
    try:
        body = binascii.unhexlify("".join(line.strip() for line in lines[1:]))
        salt_hex, mac_hex, cipher_hex = body.split(b"\n", 2)
        salt = binascii.unhexlify(salt_hex)
        expected = binascii.unhexlify(mac_hex)
        ciphertext = binascii.unhexlify(cipher_hex)
    except (ValueError, binascii.Error):
        raise VaultError("is a damaged ansible-vault file (its body is not valid hex)") from None
    key, hmac_key, counter = _vault_keys(password.encode(), salt)
    mac = hmac.HMAC(hmac_key, hashes.SHA256())
    mac.update(ciphertext)
    try:
        mac.verify(expected)
    except InvalidSignature:
        raise VaultError("the vault password is wrong (the file's HMAC does not match)") from None
    decryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise VaultError("is a damaged ansible-vault file (bad padding)") from None
