"""The control node's automation key, and where an environment keeps its SSH trust.

    <state_dir>/keys/automation_ed25519(.pub)   the automation key (setting `ssh_key`)
    inventories/<env>/.ssh/known_hosts           host keys recorded at bootstrap
    inventories/<env>/host_vars/<host>/provision_connection.yml
                                                 how Ansible logs into a bootstrapped host

The known_hosts file and the key sit in hidden folders: Ansible reads every other
file of an inventory folder as inventory. The connection file is the one file
provision writes under host_vars/ (named so, and starting with a "Written by
provision" line); everything else there stays the user's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from provision.errors import InputError, StateError
from provision.infra import crypto
from provision.settings import Settings

DEFAULT_KEY = Path("keys/automation_ed25519")
KNOWN_HOSTS = Path(".ssh/known_hosts")
CONNECTION_VARS = "provision_connection.yml"


@dataclass(frozen=True)
class KeyInfo:
    path: Path
    public_key: str
    fingerprint: str
    created: bool


def key_path(settings: Settings) -> Path:
    """The automation key's private half (the setting `ssh_key`, else the default)."""
    if settings.ssh_key:
        path = Path(settings.ssh_key).expanduser()
        return path if path.is_absolute() else settings.workspace / path
    return settings.state_path / DEFAULT_KEY


def known_hosts_path(inventory_dir: Path) -> Path:
    return inventory_dir / KNOWN_HOSTS


def connection_vars_path(inventory_dir: Path, host: str) -> Path:
    return inventory_dir / "host_vars" / host / CONNECTION_VARS


def generate(settings: Settings, *, force: bool = False) -> KeyInfo:
    """Make the automation key pair (Ed25519), 0600 in a 0700 folder.

    Refuses to replace an existing key unless `force`: hosts bootstrapped with the
    old key would no longer let the control node in.
    """
    path = key_path(settings)
    if path.exists() and not force:
        raise StateError(
            f"the automation key {path} exists already",
            hint="keep it; or pass --force to replace it (bootstrap every host again after)",
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    comment = f"provision@{os.uname().nodename}"
    crypto.write_private_key(path, crypto.new_ed25519(), comment=comment)
    public = crypto.public_key_of(path)
    return KeyInfo(path, public, crypto.fingerprint(public), created=True)


def load(settings: Settings) -> KeyInfo:
    """The existing automation key, or one clear error saying why it cannot be used."""
    path = key_path(settings)
    if not path.exists():
        raise InputError(
            f"there is no automation key at {path}",
            hint="make one with provision keys generate",
        )
    try:
        public = crypto.load_public_key_line(path)
    except OSError as exc:
        raise InputError(f"cannot read the automation key: {exc.strerror}", path=path) from None
    except ValueError as exc:
        raise InputError(
            str(exc), hint="make a new one with provision keys generate --force", path=path
        ) from None
    mode = path.stat().st_mode & 0o077
    if mode:
        raise InputError(
            f"the automation key is readable by others (mode {path.stat().st_mode & 0o777:o})",
            hint=f"chmod 600 {path}",
            path=path,
        )
    return KeyInfo(path, public, crypto.fingerprint(public), created=False)
