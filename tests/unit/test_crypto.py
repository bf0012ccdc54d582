"""Key material and Ansible Vault, checked against the real ansible-vault and ssh-keygen."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from provision.infra import crypto
from provision.infra.runner import tool_path

PLAIN = b"installer_password: s3cret\nportal_db_password: 'p@ss word'\n\xe0\xa6\xac\xe0\xa6\xbe\n"


def _ansible_vault(*args: str, password_file: Path) -> subprocess.CompletedProcess[bytes]:
    binary = tool_path("ansible-vault")
    assert binary is not None, "ansible-vault is part of ansible-core, a dependency"
    return subprocess.run(
        [str(binary), *args, "--vault-password-file", str(password_file)],
        capture_output=True,
        check=False,
    )


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text("correct horse battery\n")
    return path


@pytest.mark.parametrize("label", [None, "prod"])
def test_ansible_vault_opens_what_we_encrypt(
    tmp_path: Path, password_file: Path, label: str | None
) -> None:
    target = tmp_path / "secret.yml"
    target.write_bytes(crypto.vault_encrypt(PLAIN, "correct horse battery", label))
    header = target.read_text().splitlines()[0]
    assert header == ("$ANSIBLE_VAULT;1.2;AES256;prod" if label else "$ANSIBLE_VAULT;1.1;AES256")
    proc = _ansible_vault("view", str(target), password_file=password_file)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == PLAIN


def test_we_open_what_ansible_vault_encrypts(tmp_path: Path, password_file: Path) -> None:
    target = tmp_path / "secret.yml"
    target.write_bytes(PLAIN)
    proc = _ansible_vault("encrypt", str(target), password_file=password_file)
    assert proc.returncode == 0, proc.stderr
    assert crypto.is_vault(target.read_bytes())
    assert crypto.vault_decrypt(target.read_bytes(), "correct horse battery") == PLAIN


def test_wrong_password_and_damaged_files_are_refused() -> None:
    sealed = crypto.vault_encrypt(PLAIN, "right")
    with pytest.raises(crypto.VaultError, match="password is wrong"):
        crypto.vault_decrypt(sealed, "wrong")
    with pytest.raises(crypto.VaultError, match="not an ansible-vault file"):
        crypto.vault_decrypt(b"plain: text\n", "right")
    damaged = sealed.replace(b"\n3", b"\nZ", 1)
    with pytest.raises(crypto.VaultError):
        crypto.vault_decrypt(damaged if damaged != sealed else sealed[:-20], "right")


def test_every_encryption_is_salted_afresh() -> None:
    assert crypto.vault_encrypt(PLAIN, "pw") != crypto.vault_encrypt(PLAIN, "pw")


def test_key_pair_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    key = tmp_path / "id"
    crypto.write_private_key(key, crypto.new_ed25519(), comment="test")
    assert key.stat().st_mode & 0o777 == 0o600
    line = crypto.load_public_key_line(key)
    assert line.startswith("ssh-ed25519 ")
    if shutil.which("ssh-keygen"):
        shown = subprocess.run(
            ["ssh-keygen", "-lf", str(key.with_name("id.pub"))],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[1]
        assert crypto.fingerprint(line) == shown


def test_unreadable_key_is_a_value_error(tmp_path: Path) -> None:
    bogus = tmp_path / "id"
    bogus.write_text("not a key\n")
    with pytest.raises(ValueError, match="not an unencrypted OpenSSH or PEM private key"):
        crypto.load_public_key_line(bogus)


@pytest.mark.parametrize("writer", ["write_private_key", "write_secret"])
def test_a_leftover_temporary_does_not_make_a_key_readable(tmp_path: Path, writer: str) -> None:
    """A crash can leave the old fixed-name temporary (`<key>.tmp`) behind, readable by
    all; the next write must not reuse it and hand its mode to the private key."""
    key = tmp_path / "id"
    leftover = key.with_name("id.tmp")
    leftover.write_text("from a crashed run")
    leftover.chmod(0o644)
    if writer == "write_private_key":
        crypto.write_private_key(key, crypto.new_ed25519())
    else:
        crypto.write_secret(key, b"-----BEGIN PRIVATE KEY-----\n")
    assert key.stat().st_mode & 0o777 == 0o600
