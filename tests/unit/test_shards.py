"""Shards: which node runs which host of a wave, and the node column of older stores."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from provision.infra.runner import PlaybookEvent
from provision.infra.store import BatchWriter, HostResult, Store, TaskRow, utcnow
from provision.infra.store.engine import migrate
from provision.infra.store.migrations import LATEST, MIGRATIONS
from provision.rollout.shards import JobBook, SeenLog, read_seen, recorded_jobs, split


def test_without_nodes_every_host_runs_from_the_control_node() -> None:
    assert split(None, ["a", "b"], None) == {None: ["a", "b"]}  # type: ignore[arg-type]
    assert split(None, [], None) == {}  # type: ignore[arg-type]


def test_an_older_store_gets_the_node_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    before = [m for m in MIGRATIONS if m[1] != "host_node"]
    with engine.begin() as conn:
        for _version, _name, step in before:
            step(conn)
        conn.execute(sa.text("DROP TABLE host_results"))
        conn.execute(sa.text("CREATE TABLE host_results (run_id INTEGER, host VARCHAR(255))"))
    engine.dispose()
    step = next(m[2] for m in MIGRATIONS if m[1] == "host_node")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        step(conn)
        step(conn)  # a store made by today's version 1 has it already: no second column
        columns = [c["name"] for c in sa.inspect(conn).get_columns("host_results")]
    assert columns.count("node") == 1


def _store_with_run(tmp_path: Path, hosts: list[str] | None = None) -> tuple[Store, int]:
    """A migrated store holding one rollout run of one wave over `hosts` (["a"])."""
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    assert migrate(store.engine) == LATEST
    run = store.create_run(
        kind="rollout",
        user="u",
        node="control",
        env="lab",
        playbook="site.yml",
        selection="",
        options={},
        git_revision=None,
        plan=[(1, "wave 1", hosts or ["a"])],
    )
    return store, run


def test_the_node_is_stored_with_the_host_result(tmp_path: Path) -> None:
    store, run = _store_with_run(tmp_path, ["a", "b"])
    store.add_host_results(
        run, [HostResult("a", 1, "ok", ok=1, node="gazipur"), HostResult("b", 1, "ok", ok=1)]
    )
    got = store.host_results(run)
    assert got["a"].node == "gazipur" and got["b"].node is None


def test_the_jobs_a_wave_started_are_read_back(tmp_path: Path) -> None:
    book = JobBook(tmp_path, {"old": "j0"})
    book.note("gazipur", "j1")
    assert recorded_jobs(str(tmp_path)) == {"old": "j0", "gazipur": "j1"}
    assert recorded_jobs(None) == {} and recorded_jobs(str(tmp_path / "none")) == {}


def test_an_attempt_that_starts_no_shard_still_carries_the_earlier_jobs(tmp_path: Path) -> None:
    JobBook(tmp_path, {"kaliganj": "j1"})  # its node down: nothing noted this time
    assert recorded_jobs(str(tmp_path)) == {"kaliganj": "j1"}


def test_an_event_is_seen_only_once_the_rows_before_it_are_committed(tmp_path: Path) -> None:
    store, run = _store_with_run(tmp_path)
    path = tmp_path / "gazipur.seen"
    seen = SeenLog(path)
    # A writer that commits only when closed: the window a crash would fall in.
    writer = BatchWriter(store, interval=3600, on_commit=seen.committed)

    def record(event: PlaybookEvent) -> None:
        if event.kind == "runner_on_ok":
            writer.put(TaskRow(run, 1, 1, event.counter, "a", "t", None, "ok", utcnow()))

    on_event = seen.recording(record, writer)
    on_event(PlaybookEvent("runner_on_ok", "a", "t", 1, {}, uuid="u1"))
    on_event(PlaybookEvent("playbook_on_task_start", None, "t2", 2, {}, uuid="u2"))
    assert read_seen(path) == set() and store.task_rows(run) == []
    writer.close()
    assert [r.counter for r in store.task_rows(run)] == [1]
    assert read_seen(path) == {(1, "u1"), (2, "u2")}
    seen.close()

    # The next attempt's log starts with what this one saw.
    again = SeenLog(tmp_path / "next.seen", earlier=path)
    assert again.known == {(1, "u1"), (2, "u2")}
    again.close()
    assert read_seen(tmp_path / "next.seen") == again.known
