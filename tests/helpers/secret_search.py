"""Search the files a run left for secrets, sure of reading every one of them."""

from __future__ import annotations

from pathlib import Path

#: How often a search starts over because a file went while it was read.
_PASSES = 10


def files_under(*roots: Path, skip: Path | None = None) -> list[Path]:
    """Every regular file under `roots`, but none under `skip` (nor symlinks)."""
    return [
        p
        for root in roots
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and (skip is None or skip not in p.parents)
    ]


def assert_in_no_file(roots: list[Path], *secrets: str, skip: Path | None = None) -> None:
    """No file under `roots` (outside `skip`) holds any of `secrets`.

    A store's `-wal` file can go while it is read: the last connection to close folds it
    into `state.db`, perhaps after `state.db` was read. So a pass that sees a file vanish
    starts over on what is there now, until one pass has read every file it listed."""
    for _ in range(_PASSES):
        vanished = False
        for path in files_under(*roots, skip=skip):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                vanished = True
                continue
            for secret in secrets:
                assert secret.encode() not in data, path
        if not vanished:
            return
    raise AssertionError(f"files under {roots} kept vanishing while they were read")
