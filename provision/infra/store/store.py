"""The state store: runs, their waves and host results, and host locks.

Every method is one short transaction, so what a method returned is on disk:
a control node that dies a moment later loses nothing it was told was saved.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from provision.errors import StateError
from provision.infra.store.engine import create_engine, migrate, write_transaction
from provision.infra.store.records import (
    HostResult,
    LockHolder,
    RunInfo,
    ShardEvent,
    TaskRow,
    WaveInfo,
)
from provision.infra.store.schema import (
    host_locks,
    host_results,
    run_hosts,
    runs,
    shard_events,
    task_results,
    waves,
)

_TASK_COLUMNS = (
    "run_id",
    "wave",
    "attempt",
    "counter",
    "host",
    "task",
    "action",
    "status",
    "at",
    "duration",
    "message",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """One state database. Open with `Store.open(settings.database_url)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        engine = create_engine(url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs -------------------------------------------------------------------

    def create_run(
        self,
        *,
        kind: str,
        user: str,
        node: str,
        env: str,
        playbook: str,
        selection: str,
        options: dict[str, Any],
        git_revision: str | None,
        plan: Sequence[tuple[int, str, Sequence[str]]],
        parent_id: int | None = None,
    ) -> int:
        """Record a new run and its plan (wave number, label, hosts) in one transaction."""
        with self.engine.begin() as conn:
            run_id = conn.execute(
                runs.insert()
                .values(
                    parent_id=parent_id,
                    kind=kind,
                    status="planned",
                    user=user,
                    node=node,
                    created_at=utcnow(),
                    env=env,
                    playbook=playbook,
                    selection=selection,
                    options=json.dumps(options, sort_keys=True),
                    git_revision=git_revision,
                    attempts=0,
                )
                .returning(runs.c.id)
            ).scalar_one()
            rows: list[dict[str, Any]] = []
            position = 0
            for number, label, hosts in plan:
                conn.execute(
                    waves.insert().values(
                        run_id=run_id, number=number, label=label, status="pending"
                    )
                )
                for host in hosts:
                    rows.append(
                        {"run_id": run_id, "host": host, "wave": number, "position": position}
                    )
                    position += 1
            if rows:
                conn.execute(run_hosts.insert(), rows)
        return int(run_id)

    def start_attempt(self, run_id: int, pid: int) -> int:
        """Mark the run as driven by `pid` now; return the attempt number (1, 2, …)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(runs.c.attempts, runs.c.started_at).where(runs.c.id == run_id)
            ).one()
            attempt = int(row.attempts) + 1
            values: dict[str, Any] = {
                "attempts": attempt,
                "pid": pid,
                "status": "running",
                "stop_reason": None,
                "finished_at": None,
            }
            if row.started_at is None:
                values["started_at"] = utcnow()
            conn.execute(runs.update().where(runs.c.id == run_id).values(**values))
        return attempt

    def finish_run(self, run_id: int, status: str, stop_reason: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status=status, stop_reason=stop_reason, finished_at=utcnow(), pid=None)
            )

    def mark_crashed(self, run_id: int) -> None:
        """A run left 'running' by a process that is gone: crashed, resumable."""
        with self.engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == "running")
                .values(status="crashed", pid=None)
            )
            conn.execute(
                waves.update()
                .where(waves.c.run_id == run_id, waves.c.status == "running")
                .values(status="pending")
            )

    def delete_unstarted_run(self, run_id: int) -> None:
        """Forget a run that never started (its hosts were locked by another)."""
        with self.engine.begin() as conn:
            started = conn.execute(sa.select(runs.c.attempts).where(runs.c.id == run_id)).scalar()
            if started:
                return
            for table in (run_hosts, waves):
                conn.execute(table.delete().where(table.c.run_id == run_id))
            conn.execute(runs.delete().where(runs.c.id == run_id))

    def get_run(self, run_id: int) -> RunInfo:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                raise StateError(
                    f"there is no run {run_id}", hint="list runs with provision runs list"
                )
            return self._run_info(conn, row)

    def list_runs(self, *, limit: int = 20, status: str | None = None) -> list[RunInfo]:
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        if status:
            query = query.where(runs.c.status == status)
        with self.engine.connect() as conn:
            return [self._run_info(conn, row) for row in conn.execute(query).mappings()]

    def _run_info(self, conn: Connection, row: RowMapping) -> RunInfo:
        planned = conn.execute(
            sa.select(sa.func.count()).select_from(run_hosts).where(run_hosts.c.run_id == row["id"])
        ).scalar_one()
        outcomes = {
            str(outcome): int(count)
            for outcome, count in conn.execute(
                sa.select(host_results.c.outcome, sa.func.count())
                .where(host_results.c.run_id == row["id"])
                .group_by(host_results.c.outcome)
            )
        }
        return RunInfo(
            id=row["id"],
            parent_id=row["parent_id"],
            kind=row["kind"],
            status=row["status"],
            user=row["user"],
            node=row["node"],
            pid=row["pid"],
            created_at=_aware(row["created_at"]) or utcnow(),
            started_at=_aware(row["started_at"]),
            finished_at=_aware(row["finished_at"]),
            env=row["env"],
            playbook=row["playbook"],
            selection=row["selection"],
            options=json.loads(row["options"]),
            git_revision=row["git_revision"],
            stop_reason=row["stop_reason"],
            attempts=row["attempts"],
            planned=int(planned),
            outcomes=outcomes,
        )

    # -- waves ------------------------------------------------------------------

    def waves(self, run_id: int) -> list[WaveInfo]:
        with self.engine.connect() as conn:
            members: dict[int, list[str]] = {}
            for wave, host in conn.execute(
                sa.select(run_hosts.c.wave, run_hosts.c.host)
                .where(run_hosts.c.run_id == run_id)
                .order_by(run_hosts.c.position)
            ):
                members.setdefault(int(wave), []).append(str(host))
            return [
                WaveInfo(
                    run_id=run_id,
                    number=row.number,
                    label=row.label,
                    status=row.status,
                    hosts=tuple(members.get(row.number, [])),
                    started_at=_aware(row.started_at),
                    finished_at=_aware(row.finished_at),
                    artifacts=row.artifacts,
                )
                for row in conn.execute(
                    sa.select(waves).where(waves.c.run_id == run_id).order_by(waves.c.number)
                )
            ]

    def complete_wave(self, run_id: int, number: int) -> None:
        """Wave `number` is done and every host of it has a result.

        No resume replays its node streams again, so its event marks go with the same
        commit (they would otherwise grow with every run). A wave already done keeps
        the time it finished."""
        with self.engine.begin() as conn:
            conn.execute(
                waves.update()
                .where(waves.c.run_id == run_id, waves.c.number == number, waves.c.status != "done")
                .values(status="done", finished_at=utcnow())
            )
            conn.execute(
                shard_events.delete().where(
                    shard_events.c.run_id == run_id, shard_events.c.wave == number
                )
            )

    def set_wave(
        self, run_id: int, number: int, status: str, *, artifacts: str | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status}
        if status == "running":
            values["started_at"] = utcnow()
            values["finished_at"] = None
        elif status in ("done", "stopped"):
            values["finished_at"] = utcnow()
        if artifacts is not None:
            values["artifacts"] = artifacts
        with self.engine.begin() as conn:
            conn.execute(
                waves.update()
                .where(waves.c.run_id == run_id, waves.c.number == number)
                .values(**values)
            )

    # -- results ----------------------------------------------------------------

    def add_host_results(self, run_id: int, results: Iterable[HostResult]) -> int:
        """Record final results; a host that already has one keeps it. Returns rows added."""
        results = list(results)
        if not results:
            return 0
        with self.engine.begin() as conn:
            have = {
                str(h)
                for (h,) in conn.execute(
                    sa.select(host_results.c.host).where(
                        host_results.c.run_id == run_id,
                        host_results.c.host.in_([r.host for r in results]),
                    )
                )
            }
            rows = [
                {
                    "run_id": run_id,
                    "host": r.host,
                    "wave": r.wave,
                    "attempt": r.attempt,
                    "outcome": r.outcome,
                    "ok": r.ok,
                    "changed": r.changed,
                    "failed": r.failed,
                    "unreachable": r.unreachable,
                    "skipped": r.skipped,
                    "rescued": r.rescued,
                    "ignored": r.ignored,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at or utcnow(),
                    "failed_task": r.failed_task,
                    "message": r.message,
                    "node": r.node,
                }
                for r in results
                if r.host not in have
            ]
            if rows:
                conn.execute(host_results.insert(), rows)
        return len(rows)

    def host_results(self, run_id: int) -> dict[str, HostResult]:
        with self.engine.connect() as conn:
            return {
                row.host: HostResult(
                    host=row.host,
                    wave=row.wave,
                    outcome=row.outcome,
                    ok=row.ok,
                    changed=row.changed,
                    failed=row.failed,
                    unreachable=row.unreachable,
                    skipped=row.skipped,
                    rescued=row.rescued,
                    ignored=row.ignored,
                    started_at=_aware(row.started_at),
                    finished_at=_aware(row.finished_at),
                    failed_task=row.failed_task,
                    message=row.message,
                    attempt=row.attempt,
                    node=row.node,
                )
                for row in conn.execute(
                    sa.select(host_results)
                    .where(host_results.c.run_id == run_id)
                    .order_by(host_results.c.wave, host_results.c.host)
                )
            }

    def add_task_rows(self, rows: Sequence[TaskRow], events: Sequence[ShardEvent] = ()) -> None:
        """Insert a batch of task results in one transaction.

        This is the hot path of event ingest: rows go to the driver's own
        executemany as tuples, skipping SQLAlchemy's per-row parameter
        processing (five times faster on SQLite; see benchmarks/store_ingest.py).
        `events` (a node's shard) are the stream events the rows came from,
        marked in the same transaction: either both are in the store or neither.
        """
        if not rows:
            return
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"

        # Built only from the constant column names and the driver's placeholder.
        columns, marks = ", ".join(_TASK_COLUMNS), ", ".join([mark] * len(_TASK_COLUMNS))
        sql = f"INSERT INTO task_results ({columns}) VALUES ({marks})"  # noqa: S608
        params: Sequence[tuple[Any, ...]] = rows
        if self.engine.dialect.name == "sqlite":
            # SQLAlchemy's own SQLite DateTime text form (naive UTC), so reads parse it.
            params = [
                (*r[:8], r.at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" "), *r[9:])
                for r in rows
            ]
        with self.engine.begin() as conn:
            conn.exec_driver_sql(sql, params)
            if events:
                conn.execute(shard_events.insert(), [e._asdict() for e in events])

    def shard_events(self, run_id: int, wave: int, node: str) -> set[tuple[int, str]]:
        """The (counter, uuid) of node `node`'s events in wave `wave` whose rows are stored."""
        query = sa.select(shard_events.c.counter, shard_events.c.uuid).where(
            shard_events.c.run_id == run_id,
            shard_events.c.wave == wave,
            shard_events.c.node == node,
        )
        with self.engine.connect() as conn:
            return {(int(c), str(u)) for c, u in conn.execute(query)}

    def task_rows(self, run_id: int, host: str | None = None) -> list[TaskRow]:
        query = sa.select(task_results).where(task_results.c.run_id == run_id)
        if host is not None:
            query = query.where(task_results.c.host == host)
        query = query.order_by(task_results.c.attempt, task_results.c.wave, task_results.c.counter)
        with self.engine.connect() as conn:
            return [
                TaskRow(
                    run_id=row.run_id,
                    wave=row.wave,
                    attempt=row.attempt,
                    counter=row.counter,
                    host=row.host,
                    task=row.task,
                    action=row.action,
                    status=row.status,
                    at=_aware(row.at) or utcnow(),
                    duration=row.duration,
                    message=row.message,
                )
                for row in conn.execute(query)
            ]

    def count_task_rows(self, run_id: int | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(task_results)
        if run_id is not None:
            query = query.where(task_results.c.run_id == run_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- locks ------------------------------------------------------------------

    def acquire_locks(
        self,
        run_id: int,
        hosts: Sequence[str],
        *,
        user: str,
        node: str,
        pid: int,
        before_takeover: Callable[[Sequence[LockHolder]], None] | None = None,
    ) -> None:
        """Lock `hosts` for `run_id`, or raise StateError naming who holds which.

        A lock is taken over when the run holding it has finished, or when it was
        taken on this control node by a process that is gone (a crash). Locks of a
        live process on another node are never taken over.

        `before_takeover` is called with the stale locks of other processes before
        they are taken over, inside the same transaction: it must make sure nothing
        of those runs still acts on the hosts (or raise, and nothing is taken). It
        may read the store but not write to it: this transaction holds the write lock.

        The check and the insert are one write transaction that holds the
        database's write lock from its first statement, so two processes asking at
        the same instant are served one after the other: one takes the hosts, the
        other sees its locks and is refused.
        """
        wanted = sorted(set(hosts))
        try:
            with write_transaction(self.engine, host_locks) as conn:
                held, stale = self._lock_holders(conn, run_id, pid, wanted, node)
                if held:
                    raise StateError(_held_message(held), hint=_held_hint(held))
                others = [lock for lock in stale if (lock.run_id, lock.pid) != (run_id, pid)]
                if others and before_takeover is not None:
                    before_takeover(others)
                for chunk in _chunks([lock.host for lock in stale], 500):
                    conn.execute(host_locks.delete().where(host_locks.c.host.in_(chunk)))
                now = utcnow()
                conn.execute(
                    host_locks.insert(),
                    [
                        {
                            "host": h,
                            "run_id": run_id,
                            "user": user,
                            "node": node,
                            "pid": pid,
                            "acquired_at": now,
                        }
                        for h in wanted
                    ],
                )
        except sa.exc.IntegrityError:
            # Only a writer that does not take the write lock first (an older
            # provision on another control node) gets here: its lock won.
            with self.engine.connect() as conn:
                held, _stale = self._lock_holders(conn, run_id, pid, wanted, node)
            if not held:
                raise
            raise StateError(_held_message(held), hint=_held_hint(held)) from None

    def _lock_holders(
        self, conn: Connection, run_id: int, pid: int, hosts: Sequence[str], node: str
    ) -> tuple[list[LockHolder], list[LockHolder]]:
        """The locks on `hosts`: (held by a live run, stale and free to take over)."""
        held: list[LockHolder] = []
        stale: list[LockHolder] = []
        for chunk in _chunks(hosts, 500):
            for row in conn.execute(
                sa.select(host_locks, runs.c.status)
                .join(runs, runs.c.id == host_locks.c.run_id, isouter=True)
                .where(host_locks.c.host.in_(chunk))
            ):
                lock = LockHolder(
                    row.host,
                    row.run_id,
                    row.user,
                    row.node,
                    row.pid,
                    _aware(row.acquired_at) or utcnow(),
                )
                # A crashed run is one whose process died here: its lock is stale
                # while that pid is gone, not once another process resumed it.
                finished = row.status not in ("running", "planned", "crashed")
                dead_here = row.node == node and not pid_alive(row.pid)
                mine = row.run_id == run_id and row.pid == pid
                if mine or finished or dead_here:
                    stale.append(lock)
                else:
                    held.append(lock)
        return held, stale

    def release_locks(self, run_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(host_locks.delete().where(host_locks.c.run_id == run_id))

    def locks(self) -> list[LockHolder]:
        with self.engine.connect() as conn:
            return [
                LockHolder(
                    r.host, r.run_id, r.user, r.node, r.pid, _aware(r.acquired_at) or utcnow()
                )
                for r in conn.execute(sa.select(host_locks).order_by(host_locks.c.host))
            ]


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _held_message(held: list[LockHolder]) -> str:
    by_run: dict[int, list[LockHolder]] = {}
    for lock in held:
        by_run.setdefault(lock.run_id, []).append(lock)
    parts = []
    for run_id, locks in sorted(by_run.items()):
        first = locks[0]
        names = ", ".join(lock.host for lock in locks[:5])
        more = f" and {len(locks) - 5} more" if len(locks) > 5 else ""
        parts.append(
            f"run {run_id} ({first.user} on {first.node}, pid {first.pid}, since "
            f"{first.acquired_at:%Y-%m-%d %H:%M} UTC) holds {names}{more}"
        )
    return f"{len(held)} of the hosts are in another rollout: " + "; ".join(parts)


def _held_hint(held: list[LockHolder]) -> str:
    return (
        "wait for that rollout to finish, or leave those hosts out of the selection "
        f"(e.g. !host:{held[0].host})"
    )
