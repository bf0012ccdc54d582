"""Files only their owner may read: the state directory and the state database.

The state directory holds the store (every run's hosts and messages), the
automation key, the department CA and every run's artifacts, so it is 0700 and
the SQLite database in it 0600. A workspace made by an older provision (0755 and
0644 under a usual umask) is tightened when it is next opened.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner can enter: created 0700, or tightened to it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """`path` as a file only its owner can read: created empty 0600, or tightened to it."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    _tighten(path, 0o600)
    return path


def _tighten(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & ~mode:
            path.chmod(current & mode)
    except PermissionError:
        pass  # another user's folder (a shared state dir): theirs to set, not ours
