"""Retention of compliance detail: prune old runs, fold their failures into stretches.

`ComplianceRecords.prune` calls `prune` in one transaction; the tables and what
is kept are described in `compliance_detail_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from provision.infra.store.compliance_detail_tables import (
    KEPT_STATUSES,
    compliance_findings,
    compliance_place_totals,
    compliance_run_detail,
    compliance_stretches,
    span_bucket_sql,
)
from provision.infra.store.compliance_tables import compliance_hosts, compliance_runs
from provision.model.scoring import ROLLUP_LEVELS

#: The place totals prune removes: the finest level's (one row per site per run, nearly
#: half of a year's store). What reads a pruned run (`compliance show`, the trend) reads
#: the levels above it, which are kept.
PRUNED_LEVELS: tuple[str, ...] = (ROLLUP_LEVELS[-1],)


@dataclass(frozen=True)
class PruneCounts:
    runs: list[int]
    host_rows: int
    #: Waived findings removed.
    findings: int
    #: Fail, error and no_report findings folded into stretches.
    folded: int
    #: Place totals of the finest level (sites) removed.
    place_rows: int = 0


def fold(conn: Connection, run_id: int, env: str, previous: int | None) -> None:
    """Fold the run's kept findings into stretches and remove its findings rows.

    A finding the same as one the host had in the environment's previous run
    (`previous`, already folded) extends that stretch; any other starts one.
    """
    f, s = compliance_findings, compliance_stretches
    same = [
        f.c.run_id == run_id,
        f.c.host == s.c.host,
        f.c.control == s.c.control,
        f.c.status == s.c.status,
        f.c.severity.is_not_distinct_from(s.c.severity),
        f.c.expected.is_not_distinct_from(s.c.expected),
        f.c.actual.is_not_distinct_from(s.c.actual),
        f.c.message.is_not_distinct_from(s.c.message),
        f.c.waiver.is_not_distinct_from(s.c.waiver),
    ]
    if previous is not None:
        collected = (
            sa.select(f.c.collected_at)
            .where(f.c.run_id == run_id, f.c.host == s.c.host, f.c.control == s.c.control)
            .scalar_subquery()
        )
        conn.execute(
            s.update()
            .where(s.c.last_run == previous, s.c.env == env, sa.exists().where(*same))
            .values(
                last_run=run_id,
                last_collected=collected,
                span_bucket=span_bucket_sql(run_id - s.c.first_run + 1),
            )
        )
    extended = (
        sa.select(s.c.id)
        .where(
            s.c.last_run == run_id, s.c.host == f.c.host, s.c.control == f.c.control, s.c.env == env
        )
        .exists()
    )
    names = [
        "env",
        "host",
        "control",
        "status",
        "severity",
        "expected",
        "actual",
        "message",
        "waiver",
        "first_run",
        "last_run",
        "first_collected",
        "last_collected",
        "span_bucket",
    ]
    conn.execute(
        s.insert().from_select(
            names,
            sa.select(
                sa.literal(env),
                f.c.host,
                f.c.control,
                f.c.status,
                f.c.severity,
                f.c.expected,
                f.c.actual,
                f.c.message,
                f.c.waiver,
                sa.literal(run_id),
                sa.literal(run_id),
                f.c.collected_at,
                f.c.collected_at,
                sa.literal(1),
            ).where(f.c.run_id == run_id, f.c.status.in_(KEPT_STATUSES), ~extended),
        )
    )
    conn.execute(f.delete().where(f.c.run_id == run_id))


def previous_run(conn: Connection, run_id: int) -> tuple[str, int | None]:
    """The run's environment and the run of that environment before it (not a running one)."""
    r = compliance_runs
    env, started = conn.execute(sa.select(r.c.env, r.c.started_at).where(r.c.id == run_id)).one()
    earlier = sa.or_(r.c.started_at < started, sa.and_(r.c.started_at == started, r.c.id < run_id))
    before = conn.execute(
        sa.select(r.c.id)
        .where(r.c.env == env, r.c.status != "running", earlier)
        .order_by(r.c.started_at.desc(), r.c.id.desc())
        .limit(1)
    ).scalar()
    return str(env), None if before is None else int(before)


def drop_fine_totals(conn: Connection, run_ids: Sequence[int]) -> None:
    """Remove the runs' place totals at the finest level (`PRUNED_LEVELS`)."""
    t = compliance_place_totals
    conn.execute(t.delete().where(t.c.run_id.in_(list(run_ids)), t.c.level.in_(PRUNED_LEVELS)))


def prune(conn: Connection, run_ids: Sequence[int], *, dry_run: bool) -> PruneCounts:
    """Remove the runs' host rows (blobs) and waived findings; fold the rest into stretches.

    `run_ids` oldest first: each run's stretches continue those of the run before it.
    """
    if not run_ids:
        return PruneCounts([], 0, 0, 0)
    ids = list(run_ids)
    f = compliance_findings
    hosts_where = compliance_hosts.c.run_id.in_(ids)
    waived = sa.and_(f.c.run_id.in_(ids), f.c.status.not_in(KEPT_STATUSES))
    kept = sa.and_(f.c.run_id.in_(ids), f.c.status.in_(KEPT_STATUSES))
    n_hosts = conn.execute(sa.select(sa.func.count()).where(hosts_where)).scalar_one()
    n_waived = conn.execute(sa.select(sa.func.count()).select_from(f).where(waived)).scalar_one()
    n_kept = conn.execute(sa.select(sa.func.count()).select_from(f).where(kept)).scalar_one()
    t = compliance_place_totals
    n_places = conn.execute(
        sa.select(sa.func.count())
        .select_from(t)
        .where(t.c.run_id.in_(ids), t.c.level.in_(PRUNED_LEVELS))
    ).scalar_one()
    if not dry_run:
        for run_id in ids:
            env, previous = previous_run(conn, run_id)
            fold(conn, run_id, env, previous)
        conn.execute(compliance_hosts.delete().where(hosts_where))
        drop_fine_totals(conn, ids)
        conn.execute(
            compliance_run_detail.update()
            .where(compliance_run_detail.c.run_id.in_(ids))
            .values(pruned_at=datetime.now(UTC))
        )
    return PruneCounts(ids, int(n_hosts), int(n_waived), int(n_kept), int(n_places))


__all__ = ["PRUNED_LEVELS", "PruneCounts", "drop_fine_totals", "fold", "previous_run", "prune"]
