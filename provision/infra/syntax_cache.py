"""Remember which playbooks parsed, by a fingerprint of everything the parse read.

Ansible's `--syntax-check` is a whole ansible-playbook start (a second or more of
CPU) before every rollout, for content that rarely changes between runs. A
fingerprint of the content it reads (the playbook's folder and the workspace's
playbooks/ with its roles, ansible.cfg, the ansible-core version, which vault
password file is named) is kept under the state directory once a check passed;
the next run with the same fingerprint skips the check. Any edit changes the
fingerprint, so a broken playbook is always checked (and refused) again.

The fingerprint holds no secret: the vault password file enters by its path,
size and modification time, never by its content.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from pathlib import Path

from provision.infra.private import private_dir

#: How many passing fingerprints are kept (oldest removed first).
KEEP = 32
_SKIPPED_DIRS = {".git", "__pycache__", ".provision"}


def _files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        found += [Path(root) / f for f in sorted(files) if not f.endswith((".retry", ".pyc"))]
    return found


def fingerprint(playbook: Path, *, workspace: Path, vault_password_file: Path | None) -> str:
    """A digest of what `ansible-playbook --syntax-check playbook` reads."""
    digest = hashlib.sha256()

    def add(*parts: object) -> None:
        for part in parts:
            data = part if isinstance(part, bytes) else str(part).encode()
            digest.update(len(data).to_bytes(8, "big") + data)

    try:
        add("ansible-core", importlib.metadata.version("ansible-core"))
    except importlib.metadata.PackageNotFoundError:
        add("ansible-core", "")
    playbook = playbook.resolve()
    add("playbook", playbook)
    folders = sorted({playbook.parent, (workspace / "playbooks").resolve()})
    for path in [workspace / "ansible.cfg", *(f for d in folders for f in _files(d))]:
        try:
            add(path, path.read_bytes())
        except OSError:
            add(path, "unreadable")
    if vault_password_file is not None:
        try:
            info = vault_password_file.stat()
            add("vault", vault_password_file.resolve(), info.st_size, info.st_mtime_ns)
        except OSError:
            add("vault", vault_password_file, "missing")
    return digest.hexdigest()


def _folder(state_path: Path) -> Path:
    return state_path / "syntax-ok"


def passed(state_path: Path, print_: str) -> bool:
    """Whether a syntax check with this fingerprint passed before."""
    return (_folder(state_path) / print_).is_file()


def remember(state_path: Path, print_: str) -> None:
    """Record a passing check; keep only the newest KEEP."""
    folder = _folder(state_path)
    private_dir(state_path)
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / print_).touch()
    entries = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    for old in entries[: max(0, len(entries) - KEEP)]:
        old.unlink(missing_ok=True)
