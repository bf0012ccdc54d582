"""Finding and stopping a run's processes by the mark in their environment (real processes)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from provision.infra.processes import MARK_VARIABLE, find_run_processes, stop_run_processes


def _wait_for_count(mark: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(find_run_processes(mark)) < count:
        assert time.monotonic() < deadline, f"{find_run_processes(mark)} never reached {count}"
        time.sleep(0.1)


def test_a_marked_session_is_stopped_whole_and_nothing_else(tmp_path: Path) -> None:
    mark = str(tmp_path / "runs" / "wave-1")
    # As an Ansible worker: a marked process leading a session of its own, and a
    # child in that session that cleared its environment (found by its session).
    worker = subprocess.Popen(
        ["sh", "-c", "env -i sleep 600 & exec sleep 600"],
        env={**os.environ, MARK_VARIABLE: mark},
        start_new_session=True,
    )
    other_run = subprocess.Popen(
        ["sleep", "600"], env={**os.environ, MARK_VARIABLE: mark + "-other"}
    )
    unmarked = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        _wait_for_count(mark, 2)
        found = find_run_processes(mark)
        assert found[0].pid == worker.pid and found[0].session == worker.pid
        stopped = stop_run_processes(mark)
        assert {p.pid for p in stopped} == {p.pid for p in found}
        assert worker.wait(timeout=30) == -9
        assert find_run_processes(mark) == []
        assert other_run.poll() is None and unmarked.poll() is None  # not this run's
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)  # the worker's child too, on a failure
        for proc in (worker, other_run, unmarked):
            proc.kill()
            proc.wait(timeout=30)


def test_nothing_to_stop_is_no_error(tmp_path: Path) -> None:
    assert stop_run_processes(str(tmp_path / "never-ran")) == []
