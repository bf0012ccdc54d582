"""The git revision of the content a run used, marked when the workspace differs from it.

A run records the commit of its workspace (`git rev-parse HEAD`) so that "what
did run 12 roll out?" has an answer. A commit only answers it if it holds what
ran: a playbook edited but not committed, or one never added to git, is not in
it. So when `git status` lists anything in the workspace (modified, staged,
deleted or untracked files; ignored files and the state directory aside), the
revision is recorded as `<sha>-dirty`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

#: Appended to the commit when the workspace holds changes it does not.
DIRTY = "-dirty"
#: The store's column for the revision holds this many characters.
_COLUMN = 64


def _git(workspace: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(workspace), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_revision(workspace: Path, state_dir: Path | None = None) -> str | None:
    """The workspace's commit, `<sha>-dirty` when it has changes; None outside git."""
    head = (_git(workspace, "rev-parse", "HEAD") or "").strip()
    if not head:
        return None
    pathspec = ["--", "."]
    if state_dir is not None:
        try:
            inside = state_dir.resolve().relative_to(workspace.resolve())
        except ValueError:
            inside = None
        if inside is not None and str(inside) != ".":
            pathspec.append(f":(exclude){inside}")
    status = _git(workspace, "status", "--porcelain", "--untracked-files=normal", *pathspec)
    if status is not None and not status.strip():
        return head
    # Changes, or a status git could not give: never claim a clean commit.
    return head[: _COLUMN - len(DIRTY)] + DIRTY


def is_dirty(revision: str | None) -> bool:
    return bool(revision) and str(revision).endswith(DIRTY)
