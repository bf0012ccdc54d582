"""Writing what the image commands make: whole or not at all.

Every output is first written under a temporary name beside its final place
and renamed into place only when it is complete, so an error or Ctrl-C never
leaves a half-written seed folder or image under the name the user asked for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from provision.errors import InputError
from provision.infra.atomic import write_atomic

#: Temporary names start with this, so leftovers of a killed run are recognisable.
TEMP_PREFIX = ".provision-tmp-"


def check_target(path: Path, *, force: bool, what: str) -> Path:
    """The absolute output path, refused if it exists and `force` was not given."""
    path = path.expanduser().absolute()
    if (path.exists() or path.is_symlink()) and not force:
        raise InputError(
            f"{what} {path} exists already",
            hint="choose another path, or pass --force to replace it",
        )
    if not path.parent.is_dir():
        raise InputError(
            f"the folder {path.parent} for the {what} does not exist",
            hint="create it first, or choose another path",
        )
    return path


def check_folder_target(path: Path, *, force: bool, what: str) -> Path:
    """`check_target` for an output that is a folder: `force` replaces a folder, never
    a file or a symlink in its place (that is more likely a wrong path than an old
    output, and a folder cannot be renamed over it anyway)."""
    path = check_target(path, force=force, what=what)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        kind = "a symlink" if path.is_symlink() else "a file"
        raise InputError(
            f"{what} {path} is {kind}, not a folder; --force replaces only a folder",
            hint="give --out a folder path (it is created), or remove what is there first",
        )
    return path


def temp_path(target: Path) -> Path:
    """A fresh temporary name in `target`'s folder (same filesystem: renames are atomic)."""
    return target.parent / f"{TEMP_PREFIX}{target.name}.{os.getpid()}.{os.urandom(3).hex()}"


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def replace_into(temp: Path, target: Path) -> None:
    """Move `temp` to `target`, replacing what is there (a file or a folder)."""
    if target.is_dir() and not target.is_symlink():
        old = temp_path(target)
        target.rename(old)
        try:
            temp.rename(target)
        except BaseException:
            old.rename(target)
            raise
        remove(old)
    else:
        temp.replace(target)


@contextlib.contextmanager
def building(target: Path) -> Iterator[Path]:
    """A temporary path for `target` that becomes `target` only if the block succeeds."""
    temp = temp_path(target)
    try:
        yield temp
        replace_into(temp, target)
    finally:
        if temp.exists() or temp.is_symlink():
            remove(temp)


def write_folder(target: Path, files: Mapping[str, tuple[str, int]], *, force: bool) -> None:
    """Write `files` (name -> (text, mode)) as the folder `target`, atomically."""
    check_folder_target(target, force=force, what="output folder")
    with building(target) as temp:
        temp.mkdir(mode=0o755)
        for name, (text, mode) in files.items():
            fd = os.open(temp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write one text file under a temporary name, then rename it into place."""
    write_atomic(path, text, mode=mode)
