"""Write a file whole or not at all.

Every file provision writes that someone else reads (inventories, waivers, the
lab's state, keys, reports, timers) goes through here: the content is written
to a temporary file beside the target, flushed to disk, given its mode, and
renamed over the target, and the folder is flushed too so the rename itself
survives a power cut. A reader sees the old file or the new one, never half of
one; a crash or a failed write leaves the old file and no temporary behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

#: The mode of a new file when the caller does not choose one and none exists yet.
DEFAULT_MODE = 0o644


def _mode_for(path: Path, mode: int | None, new_mode: int) -> int:
    """`mode` if given; else the existing file's mode (an edit keeps it); else `new_mode`."""
    if mode is not None:
        return mode
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return new_mode


@contextlib.contextmanager
def atomic_output(
    path: Path,
    *,
    mode: int | None = None,
    new_mode: int = DEFAULT_MODE,
    encoding: str = "utf-8",
    newline: str | None = "",
) -> Iterator[IO[str]]:
    """A text handle to write `path` through; the file appears only if the block ends normally.

    `mode` is the file's permission bits; without it an existing file keeps its
    mode and a new one gets `new_mode` (0600 for a file of secrets that may be
    new). The temporary is created 0600, so a secret is never readable by
    others, not even while it is being written. `encoding` and `newline` are
    open()'s (a CSV for spreadsheets is "utf-8-sig"); by default text is
    written as given.
    """
    with _temporary(path) as (fd, temporary):
        with os.fdopen(fd, "w", encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _commit(temporary, path, _mode_for(path, mode, new_mode))


@contextlib.contextmanager
def atomic_binary_output(
    path: Path, *, mode: int | None = None, new_mode: int = DEFAULT_MODE
) -> Iterator[IO[bytes]]:
    """`atomic_output` for bytes."""
    with _temporary(path) as (fd, temporary):
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _commit(temporary, path, _mode_for(path, mode, new_mode))


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[tuple[int, Path]]:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        yield fd, temporary
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _commit(temporary: Path, path: Path, mode: int) -> None:
    try:
        temporary.chmod(mode)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entries: without it a power cut can undo the rename."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # a folder we may write but not open (rare): the file itself is on disk
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename is done all the same
    finally:
        os.close(fd)


def write_atomic(
    path: Path,
    content: str | bytes,
    *,
    mode: int | None = None,
    new_mode: int = DEFAULT_MODE,
) -> None:
    """Replace `path` with `content` (text is UTF-8) in one step; see `atomic_output`."""
    if isinstance(content, bytes):
        with atomic_binary_output(path, mode=mode, new_mode=new_mode) as binary:
            binary.write(content)
    else:
        with atomic_output(path, mode=mode, new_mode=new_mode) as text:
            text.write(content)
