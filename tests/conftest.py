"""Fixtures shared by unit and integration tests, and each run's own temporary folder."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers.workspace import FIXTURES, REPO, make_workspace

__all__ = ["FIXTURES", "REPO", "make_workspace"]

#: The per-run base folder this conftest made (None when one was given or inherited).
_OWN_BASETEMP: Path | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Give this run a base temporary folder of its own, unless one was given.

    By default every pytest run of a user shares /tmp/pytest-of-USER and numbers
    its folders there, and each run deletes all but the newest three: with two
    runs at once on one machine (a developer's quick loop beside the full suite,
    two worktrees), one run deletes the folders the other's tests are working in.
    A fixed `--basetemp` in addopts would be worse: pytest empties it at start,
    so the second run would wipe the first's at once. So each run gets a fresh
    `mkdtemp` folder (unique by construction); tmp_path and tmp_path_factory
    work under it as before. An explicit `--basetemp` still wins, and an xdist
    worker keeps the folder its controller handed it. This must run before
    pytest's own tmpdir plugin reads the option in its pytest_configure, hence
    tryfirst.
    """
    global _OWN_BASETEMP
    if config.option.basetemp is not None or hasattr(config, "workerinput"):
        return
    _OWN_BASETEMP = Path(tempfile.mkdtemp(prefix="pytest-run-"))
    config.option.basetemp = str(_OWN_BASETEMP)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove this run's folder when every test passed; keep it to look into otherwise."""
    if _OWN_BASETEMP is not None and exitstatus == 0:
        shutil.rmtree(_OWN_BASETEMP, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    if _OWN_BASETEMP is not None and exitstatus != 0 and _OWN_BASETEMP.exists():
        terminalreporter.write_line(f"temporary files of this run kept in {_OWN_BASETEMP}")


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "workspace")
