"""The state store on SQLite: migrations, runs and results, batches, host locks."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from provision.errors import ConfigError, StateError
from provision.infra.store import (
    SCHEMA_VERSION,
    BatchWriter,
    HostResult,
    LockHolder,
    Store,
    TaskRow,
    current_version,
    utcnow,
)
from provision.infra.store.migrations import MIGRATIONS
from provision.infra.store.schema import schema_version
from tests.helpers.lock_race import check_one_winner_per_round


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'state' / 'state.db'}")


def _run(store: Store, plan: list[tuple[int, str, list[str]]] | None = None) -> int:
    return store.create_run(
        kind="rollout",
        user="rumana",
        node="ctl",
        env="lab",
        playbook="site.yml",
        selection="district:gazipur",
        options={"canary": "1"},
        git_revision="abc123",
        plan=plan or [(0, "canary", ["a"]), (1, "wave 1", ["b", "c"])],
    )


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_fresh_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "new" / "state.db"
    store = Store.open(f"sqlite:///{path}")
    assert path.is_file()  # folder created, file made
    assert current_version(store.engine) == SCHEMA_VERSION
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        tables = set(sa.inspect(conn).get_table_names())
    assert {"runs", "waves", "run_hosts", "host_results", "task_results", "host_locks"} <= tables
    store.close()
    # Opening again applies nothing twice.
    again = Store.open(f"sqlite:///{path}")
    with again.engine.connect() as conn:
        applied = conn.execute(sa.select(sa.func.count()).select_from(schema_version)).scalar()
        assert applied == len(MIGRATIONS)


def test_a_database_newer_than_this_provision_is_refused(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(schema_version.insert().values(version=99, name="future", applied_at=utcnow()))
    with pytest.raises(StateError, match="schema version 99"):
        Store.open(str(store.engine.url))


@pytest.mark.parametrize("url", ["not a url", "mysql://u@h/db"])
def test_bad_database_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        Store.open(url)


def test_runs_record_who_what_and_the_plan(store: Store) -> None:
    run_id = _run(store)
    run = store.get_run(run_id)
    assert (run.status, run.user, run.node, run.playbook, run.git_revision) == (
        "planned",
        "rumana",
        "ctl",
        "site.yml",
        "abc123",
    )
    assert run.options == {"canary": "1"} and run.planned == 3 and run.done == 0
    assert [(w.number, w.label, w.hosts) for w in store.waves(run_id)] == [
        (0, "canary", ("a",)),
        (1, "wave 1", ("b", "c")),
    ]
    assert store.start_attempt(run_id, os.getpid()) == 1
    assert store.get_run(run_id).status == "running"
    store.finish_run(run_id, "stopped", "threshold")
    assert store.start_attempt(run_id, os.getpid()) == 2
    with pytest.raises(StateError, match="no run 999"):
        store.get_run(999)


def test_each_host_has_one_final_result(store: Store) -> None:
    run_id = _run(store)
    first = HostResult("a", 0, "failed", failed=1, failed_task="t", message="m")
    assert store.add_host_results(run_id, [first]) == 1
    assert store.add_host_results(run_id, [HostResult("a", 0, "ok", ok=1)]) == 0
    results = store.host_results(run_id)
    assert results["a"].outcome == "failed" and results["a"].failed_task == "t"
    assert store.get_run(run_id).outcomes == {"failed": 1}


def test_list_runs_newest_first_and_by_status(store: Store) -> None:
    ids = [_run(store) for _ in range(3)]
    store.finish_run(ids[1], "failed")
    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.id for r in store.list_runs(status="failed")] == [ids[1]]
    assert [r.id for r in store.list_runs(limit=1)] == [ids[2]]


def test_batch_writer_commits_by_size_and_by_time(store: Store) -> None:
    run_id = _run(store)

    def row(i: int) -> TaskRow:
        return TaskRow(run_id, 1, 1, i, "b", "task", "ansible.builtin.copy", "ok", utcnow())

    writer = BatchWriter(store, batch=10, interval=0.2)
    writer.put_many([row(i) for i in range(25)])
    # Two full batches go at once; the last 5 within the interval, before close.
    deadline = time.monotonic() + 120  # the loop ends as soon as they are in
    while store.count_task_rows(run_id) < 25 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.count_task_rows(run_id) == 25
    writer.close()
    assert writer.batches == 3
    assert [r.counter for r in store.task_rows(run_id, "b")] == list(range(25))


def test_a_second_rollout_is_refused_the_hosts_of_a_live_one(store: Store) -> None:
    first, second = _run(store), _run(store, [(1, "w", ["c", "d"])])
    store.start_attempt(first, os.getpid())
    store.acquire_locks(first, ["a", "b", "c"], user="rumana", node="ctl", pid=os.getpid())
    with pytest.raises(StateError) as caught:
        store.acquire_locks(second, ["c", "d"], user="kamal", node="ctl", pid=os.getpid())
    assert "run 1 (rumana on ctl" in caught.value.message and "holds c" in caught.value.message
    assert {lock.host for lock in store.locks()} == {"a", "b", "c"}  # nothing half-taken
    store.release_locks(first)
    store.acquire_locks(second, ["c", "d"], user="kamal", node="ctl", pid=os.getpid())
    assert {lock.host for lock in store.locks()} == {"c", "d"}


def test_locks_of_a_dead_process_or_a_finished_run_are_taken_over(store: Store) -> None:
    crashed, finished, new = _run(store), _run(store), _run(store)
    store.start_attempt(crashed, 1)
    store.acquire_locks(crashed, ["a"], user="u", node="ctl", pid=_dead_pid())
    store.start_attempt(finished, os.getpid())
    store.acquire_locks(finished, ["b"], user="u", node="ctl", pid=os.getpid())
    store.finish_run(finished, "succeeded")
    store.acquire_locks(new, ["a", "b"], user="u", node="ctl", pid=os.getpid())
    assert {(lock.host, lock.run_id) for lock in store.locks()} == {("a", new), ("b", new)}


def test_a_live_lock_on_another_control_node_is_never_taken_over(store: Store) -> None:
    other, mine = _run(store), _run(store)
    store.start_attempt(other, 1)
    store.acquire_locks(other, ["a"], user="u", node="elsewhere", pid=_dead_pid())
    with pytest.raises(StateError, match="elsewhere"):
        store.acquire_locks(mine, ["a"], user="u", node="ctl", pid=os.getpid())


@pytest.mark.slow
def test_two_processes_asking_at_the_same_instant_one_wins(tmp_path: Path) -> None:
    # Real processes released by a barrier, many rounds: the check and the insert
    # are one write transaction, so the loser is told who holds the hosts (never
    # an IntegrityError, and never both winning a stale lock).
    check_one_winner_per_round(f"sqlite:///{tmp_path / 'state.db'}")


def test_a_crashed_run_resumed_by_a_live_process_is_not_taken_over(store: Store) -> None:
    run_id = _run(store)
    store.start_attempt(run_id, _dead_pid())
    store.acquire_locks(run_id, ["a"], user="u", node="ctl", pid=_dead_pid())
    store.mark_crashed(run_id)
    # One process resumes it; a second resume of the same run is refused.
    store.acquire_locks(run_id, ["a"], user="u", node="ctl", pid=os.getpid())
    with pytest.raises(StateError, match=f"run {run_id} "):
        store.acquire_locks(run_id, ["a"], user="u", node="ctl", pid=os.getppid())


def test_a_takeover_waits_for_the_stale_run_to_be_stopped(store: Store) -> None:
    crashed, new = _run(store), _run(store)
    dead = _dead_pid()
    store.start_attempt(crashed, dead)
    store.acquire_locks(crashed, ["a", "b"], user="u", node="ctl", pid=dead)
    seen: list[tuple[str, int, int]] = []

    def refuse(stale: Sequence[LockHolder]) -> None:
        seen.extend((lock.host, lock.run_id, lock.pid) for lock in stale)
        raise StateError("its processes are still running")

    with pytest.raises(StateError, match="still running"):
        store.acquire_locks(
            new, ["a"], user="u", node="ctl", pid=os.getpid(), before_takeover=refuse
        )
    assert seen == [("a", crashed, dead)]
    assert {(lock.host, lock.run_id) for lock in store.locks()} == {("a", crashed), ("b", crashed)}
    store.acquire_locks(
        new, ["a"], user="u", node="ctl", pid=os.getpid(), before_takeover=lambda _stale: None
    )
    assert {(lock.host, lock.run_id) for lock in store.locks()} == {("a", new), ("b", crashed)}


def test_a_crashed_run_is_marked_and_its_running_wave_reset(store: Store) -> None:
    run_id = _run(store)
    store.start_attempt(run_id, _dead_pid())
    store.set_wave(run_id, 0, "running")
    store.mark_crashed(run_id)
    assert store.get_run(run_id).status == "crashed"
    assert store.waves(run_id)[0].status == "pending"


def test_a_run_refused_before_it_started_leaves_nothing(store: Store) -> None:
    run_id = _run(store)
    store.delete_unstarted_run(run_id)
    assert store.list_runs() == []


def test_the_cli_offers_the_store_statuses() -> None:
    from provision.cli.runs import STATUSES
    from provision.infra.store import RUN_STATUSES

    assert STATUSES == RUN_STATUSES


def test_query_failing_critical_reads_its_index(tmp_path: Path) -> None:
    """Migration 6: the critical findings of a run are found by index, not by reading
    the run's every finding. (The stretches holding a pruned run are found by their
    length class since migration 11: tests/unit/test_compliance_stretches.py.)"""
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with store.engine.connect() as conn:
        plan = " ".join(
            row[3]
            for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT * FROM compliance_findings WHERE run_id = 3 AND "
                "severity = 'critical' AND status IN ('fail', 'error') ORDER BY host, control"
            )
        )
    store.close()
    assert "USING INDEX ix_compliance_findings_severity" in plan, plan
