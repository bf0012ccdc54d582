"""Preflight sweeps in the state store: record a sweep as its hosts answer, read it back.

Built from an open `Store` (it shares its engine and migrations):

    with open_store(settings) as store:
        records = PreflightRecords(store)
        sweep_id = records.add_sweep(env="lab", selection="all", user="ops", node="cn1", hosts=4)
        records.add_results(sweep_id, [HostPreflight(...), ...])   # as hosts answer
        records.finish_sweep(sweep_id, "done", seconds=1.2)
        records.sweep(sweep_id), records.sweep_results(sweep_id), records.list_sweeps()

Every method is one short transaction. A host's answer is
`provision.model.preflight.HostPreflight`, the type the sweep builds; the
sweep's own record is `SweepInfo`, defined here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from provision.errors import StateError
from provision.infra.store.preflight_tables import preflight_results, preflight_sweeps
from provision.infra.store.store import Store, utcnow
from provision.model.preflight import HostPreflight

#: A sweep's status: running (or its process died), done, interrupted (Ctrl-C).
SWEEP_STATUSES = ("running", "done", "interrupted")


@dataclass(frozen=True)
class SweepInfo:
    id: int
    env: str
    selection: str
    user: str
    node: str
    status: str
    hosts: int
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    #: Hosts with a stored result, per status (reachable, timeout, …).
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def reachable(self) -> int:
        return self.statuses.get("reachable", 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "env": self.env,
            "selection": self.selection,
            "user": self.user,
            "node": self.node,
            "status": self.status,
            "hosts": self.hosts,
            "answered": self.answered,
            "reachable": self.reachable,
            "statuses": dict(sorted(self.statuses.items())),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "seconds": self.seconds,
        }


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class PreflightRecords:
    """The preflight half of a state store."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def add_sweep(self, *, env: str, selection: str, user: str, node: str, hosts: int) -> int:
        """Record a sweep that starts now; return its id."""
        with self.engine.begin() as conn:
            sweep_id = conn.execute(
                preflight_sweeps.insert()
                .values(
                    env=env,
                    selection=selection,
                    user=user,
                    node=node,
                    status="running",
                    hosts=hosts,
                    started_at=utcnow(),
                )
                .returning(preflight_sweeps.c.id)
            ).scalar_one()
        return int(sweep_id)

    def add_results(self, sweep_id: int, results: Iterable[HostPreflight]) -> int:
        """Store hosts' answers (a host answered twice keeps its last); return how many."""
        now = utcnow()
        rows = [
            {
                "sweep_id": sweep_id,
                "host": r.host,
                "address": r.address,
                "role": r.role,
                "district": r.district,
                "status": r.status,
                "message": r.message,
                "latency_ms": r.latency_ms,
                "seconds": r.seconds,
                "os_release": r.os_release,
                "cpu_cores": r.cpu_cores,
                "memory_mb": r.memory_mb,
                "disk_gb": r.disk_gb,
                "meets_minimum": r.meets_minimum,
                "minimum_control": r.minimum_control,
                "shortfalls": "; ".join(r.shortfalls),
                "at": r.at or now,
            }
            for r in results
        ]
        if not rows:
            return 0
        with self.engine.begin() as conn:
            conn.execute(
                preflight_results.delete().where(
                    preflight_results.c.sweep_id == sweep_id,
                    preflight_results.c.host.in_([r["host"] for r in rows]),
                )
            )
            conn.execute(preflight_results.insert(), rows)
        return len(rows)

    def finish_sweep(self, sweep_id: int, status: str, seconds: float | None = None) -> None:
        if status not in SWEEP_STATUSES:
            raise ValueError(f"unknown sweep status {status!r}")
        with self.engine.begin() as conn:
            conn.execute(
                preflight_sweeps.update()
                .where(preflight_sweeps.c.id == sweep_id)
                .values(status=status, finished_at=utcnow(), seconds=seconds)
            )

    def sweep(self, sweep_id: int | None = None, *, env: str | None = None) -> SweepInfo:
        """One sweep, or the latest (of `env`, when given) when `sweep_id` is None."""
        query = sa.select(preflight_sweeps)
        if sweep_id is not None:
            query = query.where(preflight_sweeps.c.id == sweep_id)
        else:
            if env is not None:
                query = query.where(preflight_sweeps.c.env == env)
            query = query.order_by(preflight_sweeps.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
            if row is None:
                if sweep_id is None:
                    raise StateError(
                        "no preflight sweep has been recorded" + (f" for env {env}" if env else ""),
                        hint="sweep the hosts first: provision preflight [SELECTION]",
                    )
                raise StateError(
                    f"there is no preflight sweep {sweep_id}",
                    hint="list the sweeps with: provision preflight list",
                )
            return self._info(conn, row)

    def list_sweeps(self, *, limit: int = 20, env: str | None = None) -> list[SweepInfo]:
        """The latest sweeps first."""
        query = sa.select(preflight_sweeps).order_by(preflight_sweeps.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(preflight_sweeps.c.env == env)
        with self.engine.connect() as conn:
            return [self._info(conn, row) for row in conn.execute(query).mappings().all()]

    def sweep_results(self, sweep_id: int) -> list[HostPreflight]:
        """Every stored host answer of a sweep, by host name."""
        query = (
            sa.select(preflight_results)
            .where(preflight_results.c.sweep_id == sweep_id)
            .order_by(preflight_results.c.host)
        )
        with self.engine.connect() as conn:
            return [
                HostPreflight(
                    host=row.host,
                    address=row.address,
                    role=row.role,
                    district=row.district,
                    status=row.status,
                    message=row.message,
                    latency_ms=row.latency_ms,
                    seconds=row.seconds,
                    os_release=row.os_release,
                    cpu_cores=row.cpu_cores,
                    memory_mb=row.memory_mb,
                    disk_gb=row.disk_gb,
                    meets_minimum=row.meets_minimum,
                    minimum_control=row.minimum_control,
                    shortfalls=tuple(s for s in row.shortfalls.split("; ") if s),
                    at=_aware(row.at),
                )
                for row in conn.execute(query)
            ]

    @staticmethod
    def _info(conn: sa.Connection, row: RowMapping) -> SweepInfo:
        statuses = {
            str(status): int(count)
            for status, count in conn.execute(
                sa.select(preflight_results.c.status, sa.func.count())
                .where(preflight_results.c.sweep_id == row["id"])
                .group_by(preflight_results.c.status)
            )
        }
        return SweepInfo(
            id=row["id"],
            env=row["env"],
            selection=row["selection"],
            user=row["user"],
            node=row["node"],
            status=row["status"],
            hosts=row["hosts"],
            started_at=_aware(row["started_at"]) or utcnow(),
            finished_at=_aware(row["finished_at"]),
            seconds=row["seconds"],
            statuses=statuses,
        )


__all__ = ["SWEEP_STATUSES", "PreflightRecords", "SweepInfo"]
