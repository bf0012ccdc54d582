"""Key material and Ansible Vault. The only module that imports cryptography."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hmac, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provision.infra.atomic import write_atomic

# Re-exported: callers that open or write vaults find the whole format here.
from provision.infra.vault_text import VAULT_HEADER as VAULT_HEADER
from provision.infra.vault_text import VaultError as VaultError
from provision.infra.vault_text import is_vault as is_vault


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
    write_atomic(path, pair.private_openssh, mode=0o600)
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

_VAULT_ITERATIONS = 10_000


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


# -- the department's certificate authority (X.509) ----------------------------------
#
# A root CA and the certificates it issues to portals, all ECDSA P-256 (small and
# fast; every TLS client of the last decade speaks it). Keys leave this module only
# as PEM bytes for files written with mode 0600 (`write_secret`).


@dataclass(frozen=True)
class Issued:
    """A key and the certificate for it, both PEM."""

    key_pem: bytes
    cert_pem: bytes


@dataclass(frozen=True)
class CertificateInfo:
    """What a certificate says about itself."""

    subject: str
    issuer: str
    serial: int
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]
    is_ca: bool
    sha256: str  # fingerprint, hex

    def days_left(self, now: datetime | None = None) -> float:
        moment = now or datetime.now(UTC)
        return (self.not_after - moment).total_seconds() / 86400


class CertificateError(ValueError):
    """A PEM file that is not a certificate or key, or a certificate that does not fit."""


def _new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def new_root_ca(common_name: str, organisation: str, days: int) -> Issued:
    """A self-signed root CA certificate (path length 0: it signs only leaf certificates)."""
    key = _new_ec_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )
    now = datetime.now(UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def issue_server_certificate(
    ca: Issued, dns_names: list[str], days: int, *, key_pem: bytes | None = None
) -> Issued:
    """A TLS server certificate for `dns_names` (the first is its subject), signed by `ca`.

    A new key unless `key_pem` is given (a renewal may keep the key).
    """
    ca_key = _load_key(ca.key_pem)
    ca_cert = _load_cert(ca.cert_pem)
    if key_pem is not None:
        loaded = _load_key(key_pem)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise CertificateError("the portal key is not an ECDSA key")
        key = loaded
    else:
        key = _new_ec_key()
    now = datetime.now(UTC)
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def _load_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CertificateError("is not a PEM certificate") from None


def _load_key(pem: bytes) -> Any:
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CertificateError("is not an unencrypted PEM private key") from None


def certificate_info(pem: bytes) -> CertificateInfo:
    """The first certificate of a PEM file (a chain starts with its leaf)."""
    cert = _load_cert(pem)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(sans.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=cert.serial_number,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        dns_names=names,
        is_ca=is_ca,
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )


def certificate_info_der(der: bytes) -> CertificateInfo:
    """`certificate_info` of a DER certificate (what a TLS peer sends)."""
    cert = x509.load_der_x509_certificate(der)
    return certificate_info(cert.public_bytes(serialization.Encoding.PEM))


def issued_by(cert_pem: bytes, ca_cert_pem: bytes) -> bool:
    """Whether `ca_cert_pem` signed the (first) certificate of `cert_pem`."""
    cert = _load_cert(cert_pem)
    ca_cert = _load_cert(ca_cert_pem)
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def key_matches(cert_pem: bytes, key_pem: bytes) -> bool:
    """Whether `key_pem` is the private key of the (first) certificate of `cert_pem`."""
    cert = _load_cert(cert_pem)
    key = _load_key(key_pem)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(
        cert.public_key().public_bytes(serialization.Encoding.PEM, spki)
        == key.public_key().public_bytes(serialization.Encoding.PEM, spki)
    )


def write_secret(path: Path, data: bytes) -> None:
    """Write `path` with mode 0600 from the start, atomically (temp file and rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, mode=0o600)
