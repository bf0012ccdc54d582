"""Keep the state directory from growing without bound: old rollout run dirs go.

Each wave runs in a private data dir of its own (`<state>/runs/<time>-rollout-…`)
holding Ansible's stdout for that wave, useful to read a failure right after a
run. The store keeps the results for good; the folders are pruned to the newest
`keep`, oldest first (their names start with the UTC time, so they sort by age).
"""

from __future__ import annotations

import shutil
from pathlib import Path


def prune_run_dirs(state_path: Path, keep: int, label: str = "-rollout-") -> list[Path]:
    folder = state_path / "runs"
    if not folder.is_dir():
        return []
    ours = sorted(p for p in folder.iterdir() if p.is_dir() and label in p.name)
    removed = ours[: max(0, len(ours) - keep)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
