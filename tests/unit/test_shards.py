"""Shards: which node runs which host of a wave, the node column of older stores, and
which of a node's events the store holds (what a resume's replay skips)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from provision.infra.runner import PlaybookEvent
from provision.infra.store import BatchWriter, HostResult, ShardEvent, Store, TaskRow, utcnow
from provision.infra.store.engine import migrate
from provision.infra.store.migrations import LATEST, MIGRATIONS
from provision.infra.streaming import StreamParser
from provision.rollout.recorder import WaveRecorder
from provision.rollout.shards import JobBook, read_seen, recorded_events, recorded_jobs, split


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


#: One node's worker stream: two tasks over hosts a and b, then the recap.
_STREAM = [
    {"event": "playbook_on_task_start", "event_data": {"task": "t1"}},
    {"event": "runner_on_ok", "event_data": {"host": "a", "task": "t1"}},
    {"event": "runner_on_ok", "event_data": {"host": "b", "task": "t1"}},
    {"event": "playbook_on_task_start", "event_data": {"task": "t2"}},
    {"event": "runner_on_ok", "event_data": {"host": "a", "task": "t2"}},
    {"event": "runner_on_ok", "event_data": {"host": "b", "task": "t2"}},
    {
        "event": "playbook_on_stats",
        "event_data": {"ok": {"a": 2, "b": 2}, "processed": {"a": 1, "b": 1}},
    },
]
for _counter, _event in enumerate(_STREAM, start=1):
    _event.update(counter=_counter, uuid=f"u{_counter}")


class _Crash(Exception):
    """The control node dying: nothing after this point is done."""


def _replay(recorder: WaveRecorder, seen: frozenset[tuple[int, str]]) -> None:
    """Feed the whole stream from its start, as `resume` does, skipping `seen`."""

    def deliver(raw: dict[str, Any]) -> None:
        data = raw.get("event_data") or {}
        recorder(
            PlaybookEvent(
                raw["event"], data.get("host"), data.get("task"), raw["counter"], data, raw["uuid"]
            )
        )

    parser = StreamParser(on_event=deliver, seen=set(seen))
    parser.feed(b"".join(json.dumps(event).encode() + b"\n" for event in _STREAM))


def test_a_crash_right_after_a_commit_records_no_event_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, run = _store_with_run(tmp_path, ["a", "b"])

    commit = store.add_task_rows

    def crash(rows: Sequence[TaskRow], events: Sequence[ShardEvent] = ()) -> None:
        commit(rows, events)
        monkeypatch.setattr(store, "add_task_rows", commit)
        raise _Crash  # committed; nothing after this point is done

    # Attempt 1: the first batch (t1 on a and b) is committed, then the control node dies.
    monkeypatch.setattr(store, "add_task_rows", crash)
    writer = BatchWriter(store, batch=2, interval=3600, node="gazipur")
    recorder = WaveRecorder(
        store, writer, run_id=run, wave=1, attempt=1, hosts={"a", "b"}, node="gazipur"
    )
    with pytest.raises(_Crash):
        try:
            _replay(recorder, frozenset())
        finally:
            writer.close()
    assert [(r.counter, r.attempt) for r in store.task_rows(run)] == [(2, 1), (3, 1)]

    # Attempt 2 (resume) replays the node's stream from its start.
    seen = recorded_events(
        store, run_id=run, wave=1, node="gazipur", folder=tmp_path, earlier_folder=None
    )
    assert seen == {(2, "u2"), (3, "u3")}
    with BatchWriter(store, interval=3600, node="gazipur") as writer:
        recorder = WaveRecorder(
            store, writer, run_id=run, wave=1, attempt=2, hosts={"a", "b"}, node="gazipur"
        )
        _replay(recorder, seen)
    counters = [r.counter for r in store.task_rows(run)]
    assert sorted(counters) == [2, 3, 5, 6]  # each task result once
    results = store.host_results(run)
    assert {h: (r.outcome, r.node) for h, r in results.items()} == {
        "a": ("ok", "gazipur"),
        "b": ("ok", "gazipur"),
    }

    # A second resume skips every event of both attempts.
    again = recorded_events(
        store, run_id=run, wave=1, node="gazipur", folder=tmp_path, earlier_folder=None
    )
    assert again == {(2, "u2"), (3, "u3"), (5, "u5"), (6, "u6")}


def test_rows_and_their_events_are_committed_together_or_not_at_all(tmp_path: Path) -> None:
    store, run = _store_with_run(tmp_path)
    row = TaskRow(run, 1, 1, 2, "a", "t", None, "ok", utcnow())
    event = ShardEvent(run, 1, "gazipur", 2, "u2")
    with pytest.raises(sa.exc.IntegrityError):
        store.add_task_rows([row, row], [event, event])  # the second mark is refused
    assert store.task_rows(run) == [] and store.shard_events(run, 1, "gazipur") == set()
    store.add_task_rows([row], [event])
    assert store.shard_events(run, 1, "gazipur") == {(2, "u2")}
    assert store.shard_events(run, 1, "kaliganj") == set()
    assert store.shard_events(run, 2, "gazipur") == set()


def test_an_older_wave_folder_s_seen_list_is_still_skipped_and_carried(tmp_path: Path) -> None:
    store, run = _store_with_run(tmp_path)
    earlier, folder = tmp_path / "attempt1", tmp_path / "attempt2"
    earlier.mkdir()
    folder.mkdir()
    (earlier / "gazipur.seen").write_text("2 u2\n3 u3\n", encoding="utf-8")
    store.add_task_rows(
        [TaskRow(run, 1, 2, 5, "a", "t", None, "ok", utcnow())],
        [ShardEvent(run, 1, "gazipur", 5, "u5")],
    )
    got = recorded_events(
        store, run_id=run, wave=1, node="gazipur", folder=folder, earlier_folder=str(earlier)
    )
    assert got == {(2, "u2"), (3, "u3"), (5, "u5")}
    assert read_seen(folder / "gazipur.seen") == {(2, "u2"), (3, "u3")}  # for the next resume
    assert not (folder / "kaliganj.seen").exists()
    recorded_events(
        store, run_id=run, wave=1, node="kaliganj", folder=folder, earlier_folder=str(earlier)
    )
    assert not (folder / "kaliganj.seen").exists()


def test_an_older_store_gets_the_shard_events_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for _version, name, step in MIGRATIONS:
            if name != "shard events":
                step(conn)
        assert not sa.inspect(conn).has_table("shard_events")
    step = next(m[2] for m in MIGRATIONS if m[1] == "shard events")
    with engine.begin() as conn:
        step(conn)
        step(conn)  # IF NOT EXISTS: a second run changes nothing
        columns = {c["name"] for c in sa.inspect(conn).get_columns("shard_events")}
    assert columns == {"run_id", "wave", "node", "uuid", "counter"}


def test_a_completed_wave_s_marks_go_with_its_status(tmp_path: Path) -> None:
    store, run = _store_with_run(tmp_path)
    store.add_task_rows(
        [TaskRow(run, 1, 1, 2, "a", "t", None, "ok", utcnow())],
        [ShardEvent(run, 1, "gazipur", 2, "u2"), ShardEvent(run, 1, "kaliganj", 2, "v2")],
    )
    store.add_task_rows(
        [TaskRow(run, 2, 1, 3, "b", "t", None, "ok", utcnow())],
        [ShardEvent(run, 2, "gazipur", 3, "u3")],
    )
    store.complete_wave(run, 1)
    [wave] = store.waves(run)
    assert wave.status == "done" and wave.finished_at is not None
    assert store.shard_events(run, 1, "gazipur") == set() == store.shard_events(run, 1, "kaliganj")
    assert store.shard_events(run, 2, "gazipur") == {(3, "u3")}  # another wave keeps its own
    assert len(store.task_rows(run)) == 2  # the rows stay
    store.complete_wave(run, 1)  # again, as a resume that finds it complete does
    assert store.waves(run)[0].finished_at == wave.finished_at  # when it finished, kept
