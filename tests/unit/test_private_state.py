"""The state directory and the SQLite store are private to their owner."""

from __future__ import annotations

import sqlite3
import stat
from dataclasses import replace
from pathlib import Path

from provision.infra import runner
from provision.infra.store import open_store
from provision.settings import Settings, load_settings
from tests.helpers.runs import record_rollout_run


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _settings(workspace: Path) -> Settings:
    return load_settings(workspace=workspace, environ={}, flags={})


def _write_a_run(settings: Settings) -> list[tuple[str, int]]:
    """Record a run; the modes of the database's files while the store is open."""
    with open_store(settings) as store:
        record_rollout_run(store)
        return [(p.name, _mode(p)) for p in sorted(settings.state_path.glob("state.db*"))]


def test_a_new_state_directory_and_database_are_private(workspace: Path) -> None:
    settings = _settings(workspace)
    assert not settings.state_path.exists()
    modes = _write_a_run(settings)
    assert _mode(settings.state_path) == 0o700
    # The WAL and its index too, which SQLite makes while the store is open.
    assert modes == [("state.db", 0o600), ("state.db-shm", 0o600), ("state.db-wal", 0o600)]


def test_an_older_workspace_is_tightened_when_opened(workspace: Path) -> None:
    """What provision made before: a 0755 state directory and a 0644 database."""
    settings = _settings(workspace)
    settings.state_path.mkdir(mode=0o755)
    settings.state_path.chmod(0o755)
    db = settings.state_path / "state.db"
    sqlite3.connect(db).close()
    db.chmod(0o644)
    (settings.state_path / "state.db-wal").write_bytes(b"")
    (settings.state_path / "state.db-wal").chmod(0o644)
    modes = _write_a_run(settings)
    assert _mode(settings.state_path) == 0o700
    assert modes == [("state.db", 0o600), ("state.db-shm", 0o600), ("state.db-wal", 0o600)]


def test_a_run_folder_makes_its_state_directory_private(workspace: Path) -> None:
    settings = replace(_settings(workspace), state_dir=workspace / "elsewhere" / "state")
    run_dir = runner.new_run_dir(settings.state_path, "x")
    assert _mode(settings.state_path) == 0o700
    assert _mode(run_dir) == 0o700
