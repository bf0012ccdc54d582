"""Compliance detail over SQL: ingest's writes, per-run aggregates, queries, prune.

The functions take a SQLAlchemy connection (the caller's transaction) and the
run's id; `compliance_records.ComplianceRecords` calls them. Tables are in
`compliance_detail_tables` (what is stored, and why) and `compliance_tables`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from provision.infra.store.compliance_codec import (
    COUNT_COLUMNS,
    FINDING_COLUMNS,
    ControlTallies,
    decode_results,
    host_rows,
)
from provision.infra.store.compliance_detail_tables import (
    compliance_control_totals,
    compliance_findings,
    compliance_place_totals,
    compliance_run_detail,
)
from provision.infra.store.compliance_tables import compliance_hosts, compliance_runs
from provision.model.compliance.model import (
    ERROR,
    FAIL,
    PLACE_LEVELS,
    STATUSES,
    HostReport,
)
from provision.model.scoring import (
    DEFAULT_FRESHNESS,
    ROLLUP_LEVELS,
    UNPLACED,
    ControlTally,
    PlaceCounts,
    Rollup,
    host_kind,
)

#: Rows per executemany within ingest's one transaction.
BATCH = 5000
#: Worst controls kept per place (what a roll-up shows).
WORST = 10


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# -- ingest -------------------------------------------------------------------------


def _upsert_totals(conn: Connection, run_id: int, counted: ControlTallies) -> None:
    """Add a batch's per-control status counts to the run's control totals."""
    tallies = counted.by_control()
    if not tallies:
        return
    table = compliance_control_totals
    existing = set(
        conn.execute(
            sa.select(table.c.control).where(
                table.c.run_id == run_id, table.c.control.in_(list(tallies))
            )
        ).scalars()
    )
    new: list[dict[str, Any]] = []
    old: list[dict[str, Any]] = []
    for control, (severity, counts) in tallies.items():
        if control in existing:
            row = {"b_run": run_id, "b_control": control}
            row.update({f"b_{COUNT_COLUMNS[s]}": n for s, n in zip(STATUSES, counts, strict=True)})
            old.append(row)
        else:
            row = {"run_id": run_id, "control": control, "severity": severity}
            row.update({COUNT_COLUMNS[s]: n for s, n in zip(STATUSES, counts, strict=True)})
            new.append(row)
    if new:
        conn.execute(table.insert(), new)
    if old:
        added = {c: table.c[c] + sa.bindparam(f"b_{c}") for c in COUNT_COLUMNS.values()}
        where = sa.and_(
            table.c.run_id == sa.bindparam("b_run"), table.c.control == sa.bindparam("b_control")
        )
        conn.execute(table.update().where(where).values(**added), old)


#: PostgreSQL's names for the types SQLAlchemy spells otherwise in DDL.
_PG_TYPES = {"float": "float8", "timestamp with time zone": "timestamptz"}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


_BINARY_FIXES: dict[str, Callable[[Any], Any]] = {"timestamptz": _utc, "float8": float}


def _copy_type(ddl: str) -> str:
    """A column's type as psycopg's binary COPY names it: `VARCHAR(255)` -> `varchar`."""
    name = ddl.split("(", 1)[0].strip().lower()
    return _PG_TYPES.get(name, name)


def insert_many(
    conn: Connection, table: sa.Table, names: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """The driver's own bulk write of `rows` (values in `names` order) into `table`:
    executemany on SQLite, binary COPY on PostgreSQL (whose executemany is a
    statement per row, five times slower here).

    SQLAlchemy's executemany builds a parameter dict per row, which at five
    million results is a third of ingest; this hands the driver plain tuples,
    converted by each column type's own bind processor where it has one (how
    SQLite stores a time, say), so the rows read back exactly as if SQLAlchemy
    had written them.
    """
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(n) for n in names)
    if dialect.name == "postgresql":
        # COPY in PostgreSQL's binary format: its own bulk path, and no text to escape
        # or parse (a blob goes as its bytes, not as hex). psycopg packs each value by
        # the column's type. Names from the schema only; every value goes through the driver.
        types = [_copy_type(table.c[n].type.compile(dialect)) for n in names]
        # Binary packing is strict where binding is lenient: a naive time is UTC (as
        # every time in the store), an int in a float column a float.
        fixes = [(i, _BINARY_FIXES[t]) for i, t in enumerate(types) if t in _BINARY_FIXES]
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        sql = f"COPY {quote(table.name)} ({columns}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(sql) as copy:
            copy.set_types(types)
            for row in rows:
                if fixes:
                    values = list(row)
                    for i, fix in fixes:
                        if values[i] is not None:
                            values[i] = fix(values[i])
                    row = tuple(values)
                copy.write_row(row)
        return
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    marks = ", ".join([mark] * len(names))
    # Names from the schema only; every value is bound by the driver.
    sql = f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})"  # noqa: S608
    processors = [
        (i, process)
        for i, name in enumerate(names)
        if (process := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    if processors:
        converted = []
        for row in rows:
            values = list(row)
            for i, process in processors:
                if values[i] is not None:
                    values[i] = process(values[i])
            converted.append(tuple(values))
        rows = converted
    conn.exec_driver_sql(sql, rows)


def write_reports(conn: Connection, run_id: int, reports: Iterable[HostReport]) -> int:
    """Write host reports, their findings and control tallies in the caller's transaction.

    A host already in the run is replaced: its old row, findings and tallies go
    first. Returns how many host rows were written.
    """
    written = 0
    tallies = ControlTallies()
    hosts: list[dict[str, Any]] = []
    findings: list[tuple[Any, ...]] = []
    host_columns = [c.name for c in compliance_hosts.c]

    def flush() -> None:
        nonlocal written
        if not hosts:
            return
        names = [h["host"] for h in hosts]
        replaced = _forget_hosts(conn, run_id, names)
        insert_many(
            conn, compliance_hosts, host_columns, [tuple(map(h.get, host_columns)) for h in hosts]
        )
        if findings:
            insert_many(conn, compliance_findings, FINDING_COLUMNS, findings)
        conn.execute(
            compliance_runs.update()
            .where(compliance_runs.c.id == run_id)
            .values(hosts=compliance_runs.c.hosts + len(hosts) - replaced)
        )
        written += len(hosts)
        hosts.clear()
        findings.clear()

    seen: set[str] = set()
    for report in reports:
        if report.host in seen:  # twice in one call: the later report wins
            flush()
            seen.clear()
        seen.add(report.host)
        row, found = host_rows(run_id, report, tallies)
        hosts.append(row)
        findings.extend(found)
        if len(hosts) >= BATCH:
            flush()
            seen.clear()
    flush()
    _upsert_totals(conn, run_id, tallies)
    if written:  # aggregates of a run that grows are out of date
        conn.execute(
            compliance_run_detail.update()
            .where(compliance_run_detail.c.run_id == run_id)
            .values(aggregated_at=None)
        )
    return written


def _forget_hosts(conn: Connection, run_id: int, names: Sequence[str]) -> int:
    """Remove hosts' earlier reports in the run (and their tallies); how many there were."""
    old = conn.execute(
        sa.select(compliance_hosts.c.host, compliance_hosts.c.results).where(
            compliance_hosts.c.run_id == run_id, compliance_hosts.c.host.in_(list(names))
        )
    ).all()
    if not old:
        return 0
    minus = ControlTallies()
    for _, blob in old:
        for r in decode_results(blob):
            minus.counts[(r.control, r.status)] -= 1
            minus.severity.setdefault(r.control, r.severity)
    gone = [h for h, _ in old]
    conn.execute(
        compliance_findings.delete().where(
            compliance_findings.c.run_id == run_id, compliance_findings.c.host.in_(gone)
        )
    )
    conn.execute(
        compliance_hosts.delete().where(
            compliance_hosts.c.run_id == run_id, compliance_hosts.c.host.in_(gone)
        )
    )
    _upsert_totals(conn, run_id, minus)
    return len(old)


def start_run(conn: Connection, run_id: int) -> None:
    conn.execute(compliance_run_detail.insert().values(run_id=run_id))


def backfill_run(conn: Connection, run_id: int, *, finished: bool, measured_at: datetime) -> None:
    """Findings and totals for a run recorded before the detail tables existed.

    Reads its host rows a few hundred at a time (never the whole run at once) and
    leaves them as they are.
    """
    start_run(conn, run_id)
    tallies = ControlTallies()
    h = compliance_hosts
    last = ""
    while True:
        rows = (
            conn.execute(
                sa.select(h)
                .where(h.c.run_id == run_id, h.c.host > last)
                .order_by(h.c.host)
                .limit(500)
            )
            .mappings()
            .all()
        )
        findings: list[tuple[Any, ...]] = []
        for row in rows:
            report = HostReport(
                host=row["host"],
                status=row["status"],
                role=row["role"],
                os_release=row["os_release"],
                place={level: str(row[level]) for level in PLACE_LEVELS if row[level]},
                collected_at=_aware(row["collected_at"]),
                evidence_digest=row["evidence_digest"],
                message=row["message"] or "",
                results=decode_results(row["results"]),
                node=row["node"],
            )
            findings.extend(host_rows(run_id, report, tallies)[1])
        if findings:
            insert_many(conn, compliance_findings, FINDING_COLUMNS, findings)
        if len(rows) < 500:
            break
        last = str(rows[-1]["host"])
    _upsert_totals(conn, run_id, tallies)
    if finished:
        aggregate(conn, run_id, measured_at)


# -- aggregates ---------------------------------------------------------------------


class _Place(PlaceCounts):
    """A place's counts and when each host's evidence was collected."""

    __slots__ = ("collected",)

    def __init__(self) -> None:
        super().__init__()
        self.collected: list[datetime] = []

    def add(self, part: PlaceCounts) -> None:
        super().add(part)
        if isinstance(part, _Place):
            self.collected.extend(part.collected)


def aggregate(conn: Connection, run_id: int, measured_at: datetime) -> None:
    """Write the run's place totals from its host columns and findings (no blob is read).

    Evidence freshness is measured at `measured_at` with the default window.
    """
    # Each host counts once, in its site (the finest place); every level above is
    # the sum of the places below it: a sixth of the work of counting each host
    # at every level, and the same figures.
    finest = ROLLUP_LEVELS[-1]
    sites: dict[tuple[str, ...], _Place] = {}
    keys_of: dict[str, tuple[str, ...]] = {}
    columns = [
        compliance_hosts.c.host,
        compliance_hosts.c.status,
        compliance_hosts.c.score,
        compliance_hosts.c.compliant,
        compliance_hosts.c.critical_failures,
        compliance_hosts.c.collected_at,
        *(compliance_hosts.c[level] for level in PLACE_LEVELS),
        *(compliance_hosts.c[COUNT_COLUMNS[s]] for s in STATUSES),
    ]
    limit = measured_at - DEFAULT_FRESHNESS
    n_places = len(PLACE_LEVELS)
    rows = conn.execute(sa.select(*columns).where(compliance_hosts.c.run_id == run_id))
    for row in rows:
        host, status, score, compliant, critical, collected = row[:6]
        names = tuple(name or UNPLACED for name in row[6 : 6 + n_places])
        counts = row[6 + n_places :]
        collected = _aware(collected)
        keys_of[host] = names
        tally = sites.get(names)
        if tally is None:
            tally = sites[names] = _Place()
        tally.hosts += 1
        kind = host_kind(status)
        setattr(tally, kind, getattr(tally, kind) + 1)
        tally.compliant += bool(compliant)
        tally.critical += bool(critical)
        if score is not None:
            tally.scores.append(float(score))
        if collected is not None:
            tally.collected.append(collected)
            tally.fresh += collected > limit
        totals = tally.statuses
        for i, n in enumerate(counts):
            totals[i] += n
    failing = conn.execute(
        sa.select(
            compliance_findings.c.host, compliance_findings.c.control, compliance_findings.c.status
        ).where(
            compliance_findings.c.run_id == run_id,
            compliance_findings.c.status.in_((FAIL, ERROR)),
        )
    )
    for host, control, status in failing:
        where = keys_of.get(host)
        if where is not None:
            site = sites[where]
            (site.fails if status == FAIL else site.errors)[control] += 1
    places: dict[str, dict[tuple[str, ...], _Place]] = {finest: sites}
    for level in reversed(ROLLUP_LEVELS[:-1]):
        depth = ROLLUP_LEVELS.index(level)
        above: dict[tuple[str, ...], _Place] = {}
        for key, part in places[ROLLUP_LEVELS[depth + 1]].items():
            whole = above.get(key[:depth])
            if whole is None:
                whole = above[key[:depth]] = _Place()
            whole.add(part)
        places[level] = above
    out: list[dict[str, Any]] = []
    for level, tallies in places.items():
        for key, t in tallies.items():
            ranked = sorted(
                t.fails.keys() | t.errors.keys(),
                key=lambda c, t=t: (-(t.fails[c] + t.errors[c]), -t.fails[c], c),  # type: ignore[misc]
            )[:WORST]
            collected_sorted = sorted(t.collected)
            out.append(
                {
                    "run_id": run_id,
                    "level": level,
                    "path": json.dumps(list(key)),
                    "hosts": t.hosts,
                    "reported": t.reported,
                    "unreachable": t.unreachable,
                    "errored": t.errored,
                    "no_report": t.no_report,
                    "compliant": t.compliant,
                    "critical": t.critical,
                    "median_score": statistics.median(t.scores) if t.scores else None,
                    "lowest_score": min(t.scores) if t.scores else None,
                    "fresh": t.fresh,
                    "oldest_collected": collected_sorted[0] if collected_sorted else None,
                    "median_collected": (
                        collected_sorted[(len(collected_sorted) - 1) // 2]
                        if collected_sorted
                        else None
                    ),
                    "statuses": json.dumps(dict(zip(STATUSES, t.statuses, strict=True))),
                    "worst": json.dumps([[c, t.fails[c], t.errors[c]] for c in ranked]),
                }
            )
    conn.execute(compliance_place_totals.delete().where(compliance_place_totals.c.run_id == run_id))
    for start in range(0, len(out), BATCH):
        conn.execute(compliance_place_totals.insert(), out[start : start + BATCH])
    conn.execute(
        compliance_run_detail.update()
        .where(compliance_run_detail.c.run_id == run_id)
        .values(aggregated_at=datetime.now(UTC), measured_at=measured_at)
    )


def place_rollups(
    conn: Connection, run_id: int, levels: Sequence[str]
) -> tuple[datetime | None, dict[str, tuple[Rollup, ...]]]:
    """The run's roll-ups at `levels` from its place totals, and the moment they measure."""
    measured = conn.execute(
        sa.select(compliance_run_detail.c.measured_at).where(
            compliance_run_detail.c.run_id == run_id
        )
    ).scalar()
    at = _aware(measured)
    table = compliance_place_totals
    result: dict[str, list[Rollup]] = {level: [] for level in levels}
    rows = conn.execute(
        sa.select(table).where(table.c.run_id == run_id, table.c.level.in_(list(levels)))
    ).mappings()
    for row in rows:
        oldest, median = _aware(row["oldest_collected"]), _aware(row["median_collected"])
        result[row["level"]].append(
            Rollup(
                level=row["level"],
                path=tuple(json.loads(row["path"])),
                hosts=row["hosts"],
                reported=row["reported"],
                unreachable=row["unreachable"],
                errored=row["errored"],
                no_report=row["no_report"],
                compliant=row["compliant"],
                critical=row["critical"],
                median_score=row["median_score"],
                lowest_score=row["lowest_score"],
                fresh=row["fresh"],
                oldest_evidence=_age(at, oldest),
                median_evidence=_age(at, median),
                statuses=json.loads(row["statuses"]),
                worst_controls=tuple(ControlTally(c, f, e) for c, f, e in json.loads(row["worst"])),
            )
        )
    ordered = {level: tuple(sorted(found, key=lambda r: r.path)) for level, found in result.items()}
    return at, ordered


def _age(at: datetime | None, when: datetime | None) -> timedelta | None:
    if at is None or when is None:
        return None
    return max(at - when, timedelta(0))


__all__ = [
    "BATCH",
    "aggregate",
    "backfill_run",
    "place_rollups",
    "start_run",
    "write_reports",
]
