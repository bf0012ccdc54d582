"""Compliance at fleet scale: ingest, roll-up, reports and queries for 50,000 hosts x 100 controls.

A synthetic run (default 50,000 hosts over 8 divisions, 64 districts, 512
upazilas, 4,608 unions and 10,000 sites; 100 controls, about 3 % failing, 2 %
of hosts unreachable) goes through the real code, each stage in its own child
process so that each one's peak memory is its own:

1. reference: what the database itself can do: the same five million
   (host, control, status) rows written with plain executemany in one
   transaction, then one GROUP BY over them;
2. ingest: `ComplianceRecords.add_host_reports` (one transaction: host rows
   with their blobs, findings, control totals) and `finish_run` (place totals);
3. roll-up: `ComplianceRecords.rollups` (read from the per-run aggregates);
4. html summary: the national summary alone (`reports.service.write_run_summary`,
   the folder's index.html), from the run's aggregates and host columns;
5. html: the recorded run's report as `provision compliance report --pages`
   writes it (`reports.service.write_run_report`, read back from the store): the
   national summary and one page per place at --by, a folder; and any of json,
   csv, junit asked for with --formats, gzip-compressed as a large run's are.

The synthetic reports are generated outside the measured time: the generator's
own time is measured and taken off the stage it feeds (reference and ingest
alike); the report stages read the store, nothing is generated. Prints wall
time, hosts per second and peak RSS (the child's ru_maxrss) per stage, and the
ratio of ingest + roll-up to the reference.

With --year, a year of daily runs (365 by default) is then simulated from the
ingested run as changes from the day before (each day a host in nineteen has
no findings, as if fixed that day), in a time bounded by the rows a year holds:
the oldest pruned days are written as the stretches the store's fold leaves,
the last three pruned days are folded by the store's own code, the --keep
newest days keep their host rows and findings. Each `compliance query`
question is then timed on a pruned day and on kept ones. The store's size is
measured once the reference tables are gone: SQLite by `VACUUM INTO` a
separate file, PostgreSQL by `VACUUM FULL` of the store's tables and their
total relation size; the largest tables are named.

    .venv/bin/python benchmarks/compliance_scale.py [--hosts 50000] [--controls 100]
        [--formats html,json] [--db-url postgresql://...] [--year [--days 365 --keep 30]]

Comparable figures, no verdicts. A --db-url database is emptied of the
compliance tables' rows first and used as the store; the reference table is
made and dropped in it.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from provision.model.compliance.model import (  # noqa: E402
    HOST_REPORTED,
    HOST_UNREACHABLE,
    ControlResult,
    HostReport,
)

NOW = datetime.now(UTC).replace(microsecond=0)
SEVERITIES = ("low", "medium", "high", "critical")


def control_ids(count: int) -> list[str]:
    return [f"CTL-{i:03d}" for i in range(count)]


def _status(n: int, i: int, controls: int) -> str:
    mix = (n * 31 + i * 17) % 1000
    if i >= controls - 5 and n % 3:
        return "not_applicable"
    if n % 4 == 1:  # a quarter of the fleet is clean
        return "pass"
    if mix < 30:
        return "fail"
    if mix < 35:
        return "error"
    if mix < 45:
        return "waived"
    return "pass"


def place_of(n: int) -> dict[str, str]:
    site = n // 5
    union = site // 2
    upazila = union // 9
    district = upazila // 8
    division = district // 8
    return {
        "division": f"Division {division % 8}",
        "district": f"District {district % 64:02d}",
        "upazila": f"Upazila {upazila % 512:03d}",
        "union": f"Union {union % 4608:04d}",
        "site": f"SITE-{site:05d}",
    }


def reports(hosts: int, controls: int) -> Iterator[HostReport]:
    """A deterministic synthetic fleet, one host at a time.

    A host's results are built from one shared object per (control, status):
    results are frozen, so sharing them is safe, and it keeps the generator
    cheap and small (it is not what is measured).
    """
    ids = control_ids(controls)
    shared: dict[tuple[int, str], ControlResult] = {}

    def result(i: int, status: str) -> ControlResult:
        got = shared.get((i, status))
        if got is None:
            control = ids[i]
            expected = {"setting": f"value-{i}"}
            actual = expected if status in ("pass", "waived") else {"setting": "other"}
            got = shared[(i, status)] = ControlResult(
                control,
                status,
                SEVERITIES[i % 4],
                expected=None if status == "unreachable" else expected,
                actual=None if status == "unreachable" else actual,
                message="" if status in ("pass", "unreachable") else f"{control} is not as asked",
                waiver="W-001" if status == "waived" else None,
            )
        return got

    for n in range(hosts):
        host = f"host-{n:05d}"
        if n % 50 == 7:
            yield HostReport(
                host=host,
                status=HOST_UNREACHABLE,
                role="lab_pc",
                place=place_of(n),
                message="ssh: connect to host port 22: No route to host",
                results=tuple(result(i, "unreachable") for i in range(controls)),
            )
            continue
        yield HostReport(
            host=host,
            status=HOST_REPORTED,
            role="lab_pc",
            os_release="debian-12",
            place=place_of(n),
            collected_at=NOW - timedelta(hours=(n % 40)),
            evidence_digest=f"{n:064x}",
            results=tuple(result(i, _status(n, i, controls)) for i in range(controls)),
        )


class Timed:
    """Wraps a generator and adds up the time spent inside it (taken off the stage)."""

    def __init__(self, items: Iterator[Any]) -> None:
        self.items = items
        self.seconds = 0.0

    def __iter__(self) -> Iterator[Any]:
        clock = time.perf_counter
        while True:
            started = clock()
            try:
                item = next(self.items)
            except StopIteration:
                self.seconds += clock() - started
                return
            self.seconds += clock() - started
            yield item


def in_child(stage: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `stage` in a forked child; its result plus its wall time and peak RSS (MB).

    A stage may return "excluded" seconds (producing its input): taken off its time.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        code = 0
        try:
            started = time.perf_counter()
            result = stage()
            result["seconds"] = time.perf_counter() - started - result.get("excluded", 0.0)
        except BaseException as exc:  # report it to the parent, whatever it is
            result, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
        with os.fdopen(write, "wb") as handle:
            pickle.dump(result, handle)
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        data = handle.read()
    _, _, usage = os.wait4(pid, 0)
    result = pickle.loads(data)  # noqa: S301 (our own child's output)
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


# -- the store --------------------------------------------------------------------------


def empty_store(url: str) -> None:
    """A --db-url database without compliance rows (a fresh SQLite file needs nothing)."""
    import sqlalchemy as sa

    from provision.infra.store import Store
    from provision.infra.store.compliance_detail_tables import TABLES as DETAIL
    from provision.infra.store.compliance_tables import compliance_hosts, compliance_runs

    with Store.open(url) as store, store.engine.begin() as conn:
        for table in (*DETAIL, compliance_hosts, compliance_runs):
            conn.execute(table.delete())
        conn.execute(sa.text("DROP TABLE IF EXISTS bench_reference"))


def reference(url: str, hosts: int, controls: int) -> dict[str, Any]:
    """Five million plain rows in one transaction, then one GROUP BY."""
    import sqlalchemy as sa

    from provision.infra.store import create_engine

    engine = create_engine(url)
    table = sa.Table(
        "bench_reference",
        sa.MetaData(),
        sa.Column("host", sa.String(255)),
        sa.Column("control", sa.String(100)),
        sa.Column("status", sa.String(20)),
    )
    table.create(engine)
    ids = control_ids(controls)
    excluded = 0.0
    # The driver's own executemany on plain tuples: no SQLAlchemy between.
    insert = "INSERT INTO bench_reference (host, control, status) VALUES (?, ?, ?)"
    if engine.dialect.paramstyle != "qmark":
        insert = insert.replace("?", "%s")
    raw = engine.raw_connection()
    started = time.perf_counter()
    try:
        cursor = raw.cursor()
        batch: list[tuple[str, str, str]] = []
        for n in range(hosts):
            made = time.perf_counter()
            host = f"host-{n:05d}"
            unreachable = n % 50 == 7
            batch.extend(
                (host, ids[i], "unreachable" if unreachable else _status(n, i, controls))
                for i in range(controls)
            )
            excluded += time.perf_counter() - made
            if len(batch) >= 100_000:
                cursor.executemany(insert, batch)
                batch = []
        if batch:
            cursor.executemany(insert, batch)
        raw.commit()  # one transaction: the driver opened it at the first insert
    finally:
        raw.close()
    written = time.perf_counter() - started - excluded
    grouped = time.perf_counter()
    with engine.connect() as conn:
        groups = conn.execute(
            sa.select(table.c.control, table.c.status, sa.func.count()).group_by(
                table.c.control, table.c.status
            )
        ).all()
    grouped = time.perf_counter() - grouped
    table.drop(engine)
    engine.dispose()
    return {"excluded": excluded, "written_s": written, "group_s": grouped, "groups": len(groups)}


def reference_copy(url: str, hosts: int, controls: int) -> dict[str, Any]:
    """PostgreSQL only: the same rows by binary COPY in one transaction (how provision
    writes there), then the same GROUP BY: the database's own bulk speed."""
    import sqlalchemy as sa

    from provision.infra.store import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE bench_copy "
                "(host varchar(255), control varchar(100), status varchar(20))"
            )
        )
    ids = control_ids(controls)
    excluded = 0.0
    raw = engine.raw_connection()
    started = time.perf_counter()
    try:
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        sql = "COPY bench_copy (host, control, status) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(sql) as copy:
            copy.set_types(["varchar", "varchar", "varchar"])
            for n in range(hosts):
                made = time.perf_counter()
                host = f"host-{n:05d}"
                unreachable = n % 50 == 7
                rows = [
                    (host, ids[i], "unreachable" if unreachable else _status(n, i, controls))
                    for i in range(controls)
                ]
                excluded += time.perf_counter() - made
                for row in rows:
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()
    written = time.perf_counter() - started - excluded
    grouped = time.perf_counter()
    with engine.begin() as conn:
        groups = conn.execute(
            sa.text("SELECT control, status, count(*) FROM bench_copy GROUP BY control, status")
        ).all()
        grouped = time.perf_counter() - grouped
        conn.execute(sa.text("DROP TABLE bench_copy"))
    engine.dispose()
    return {"excluded": excluded, "written_s": written, "group_s": grouped, "groups": len(groups)}


def store_bytes(url: str, folder: Path) -> tuple[int, dict[str, int]]:
    """The store's compacted size in bytes, and its largest tables' shares.

    Measured after the reference tables are dropped: SQLite by `VACUUM INTO` a
    separate file (free pages left by the dropped reference and the deleted
    template rows do not count), PostgreSQL by `VACUUM FULL` of the store's own
    tables, then their total relation sizes (heap, indexes, TOAST).
    """
    import sqlalchemy as sa

    from provision.infra.store import create_engine
    from provision.infra.store.schema import metadata

    engine = create_engine(url)
    tables = sorted(metadata.tables)
    try:
        with engine.connect() as conn:
            left = {
                name
                for name in ("bench_reference", "bench_copy")
                if sa.inspect(conn).has_table(name)
            }
        if left:
            raise RuntimeError(f"reference tables still in the store: {sorted(left)}")
        if engine.dialect.name == "sqlite":
            copy = folder / "compacted.db"
            copy.unlink(missing_ok=True)
            with engine.connect() as conn:
                conn.execute(sa.text("VACUUM INTO :path"), {"path": str(copy)})
            size = copy.stat().st_size
            shares: dict[str, int] = {}
            compacted = create_engine(f"sqlite:///{copy}")
            try:
                with compacted.connect() as conn:
                    for name, index, pages in conn.execute(
                        sa.text(
                            "SELECT s.name, m.tbl_name, sum(s.pgsize) FROM dbstat s "
                            "JOIN sqlite_master m ON m.name = s.name GROUP BY s.name"
                        )
                    ):
                        table = index or name
                        shares[table] = shares.get(table, 0) + int(pages)
            except sa.exc.OperationalError:  # an SQLite built without dbstat
                shares = {}
            finally:
                compacted.dispose()
            copy.unlink()
            return size, shares
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            present = [t for t in tables if sa.inspect(conn).has_table(t)]
            shares = {}
            for name in present:
                conn.execute(sa.text(f'VACUUM FULL "{name}"'))
                shares[name] = int(
                    conn.execute(
                        sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": name}
                    ).scalar_one()
                )
            return sum(shares.values()), shares
    finally:
        engine.dispose()


def _shares(shares: dict[str, int]) -> str:
    top = sorted(shares.items(), key=lambda kv: -kv[1])[:4]
    return ", ".join(f"{name} {size / 1e6:,.0f} MB" for name, size in top)


# -- a year of daily runs -----------------------------------------------------------------

#: A host is absent from the findings one day in ABSENT (as if fixed that day and broken
#: again the next): the days differ and each host's stretches break every ABSENT days.
ABSENT = 19
#: Pruned days folded by the store's own code (`fold`, as `compliance prune` does); the
#: older ones are written as what those folds leave (the stretches), in bulk.
FOLDED_DAYS = 3


def _absent(number: int, day: int) -> bool:
    return (number + day) % ABSENT == 0


def _stretches(number: int, days: int) -> Iterator[tuple[int, int]]:
    """The (first, last) days, within 0..days-1, on which host `number` keeps its findings."""
    start: int | None = None
    for day in range(days):
        if _absent(number, day):
            if start is not None:
                yield start, day - 1
                start = None
        elif start is None:
            start = day
    if start is not None:
        yield start, days - 1


def simulate_year(url: str, days: int, keep: int) -> dict[str, Any]:
    """Days 2..`days` made from run 1 as changes from the day before; the old ones pruned.

    Day by day a host's findings are those of run 1, except on the days it is absent
    (one in ABSENT): a change from the previous day, as the store records it. Runs
    older than `keep` days are pruned: the last FOLDED_DAYS of those by the store's
    own code (`compliance_retention.fold`, one day at a time, timed); the older ones
    are written directly as the stretches those folds would have left (one row per
    host, control and unbroken series of days), with the store's bulk insert. Kept
    days get their findings and host rows by INSERT ... SELECT. Control and place
    totals of every day are copied from run 1 in one statement each. The time is
    bounded by the rows a year holds, not by folding every day.
    """
    import sqlalchemy as sa

    from provision.infra.store import Store
    from provision.infra.store import compliance_retention as detail
    from provision.infra.store.compliance_detail import insert_many
    from provision.infra.store.compliance_detail_tables import (
        KEPT_STATUSES,
        compliance_control_totals,
        compliance_findings,
        compliance_place_totals,
        compliance_run_detail,
        compliance_stretches,
        span_bucket,
    )
    from provision.infra.store.compliance_records import ComplianceRecords
    from provision.infra.store.compliance_tables import compliance_hosts, compliance_runs

    first = NOW - timedelta(days=days - 1)
    f, h, s, r = compliance_findings, compliance_hosts, compliance_stretches, compliance_runs
    pruned = max(days - keep, 0)
    folded_days = min(FOLDED_DAYS, pruned)
    bulk_days = pruned - folded_days
    number = sa.cast(sa.func.substr(f.c.host, 6), sa.Integer)

    def new_run(records: ComplianceRecords, env: str, started: datetime) -> int:
        return records.create_run(
            env=env,
            selection="all",
            standard_id="synthetic",
            standard_version="1",
            standard_digest="0" * 64,
            waivers_digest=None,
            user="bench",
            node="bench",
            started_at=started,
        )

    def copy(conn: Any, table: sa.Table, source: int, target: int, *where: Any) -> None:
        rest = [c for c in table.c if c.name != "run_id"]
        conn.execute(
            table.insert().from_select(
                ["run_id", *(c.name for c in rest)],
                sa.select(sa.literal(target), *rest).where(table.c.run_id == source, *where),
            )
        )

    def present(column: Any, day: int) -> Any:
        return (column + day) % ABSENT != 0

    timings: dict[str, float] = {}

    def stage(name: str, began: float) -> None:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - began

    with Store.open(url) as store:
        records = ComplianceRecords(store)
        engine = store.engine
        began = time.perf_counter()
        with engine.begin() as conn:
            run1 = conn.execute(sa.select(sa.func.min(r.c.id))).scalar_one()
            hosts = conn.execute(sa.select(r.c.hosts).where(r.c.id == run1)).scalar_one()
            conn.execute(
                r.update()
                .where(r.c.id == run1)
                .values(started_at=first, finished_at=first + timedelta(minutes=20))
            )
        # What every day is copied from, outside the environment the queries ask.
        template = new_run(records, "bench-template", first)
        with engine.begin() as conn:
            for table in (f, h):
                copy(conn, table, run1, template)
        run_of = {0: run1}
        for day in range(1, days):
            run_of[day] = new_run(records, "bench", first + timedelta(days=day))
        with engine.begin() as conn:
            for day, run_id in run_of.items():
                started = first + timedelta(days=day)
                conn.execute(
                    r.update()
                    .where(r.c.id == run_id)
                    .values(status="done", finished_at=started + timedelta(minutes=20), hosts=hosts)
                )
                conn.execute(
                    compliance_run_detail.update()
                    .where(compliance_run_detail.c.run_id == run_id)
                    .values(
                        aggregated_at=started,
                        measured_at=started,
                        pruned_at=NOW if day < pruned else None,
                    )
                )
            # Every day's totals, copied from run 1 in one statement per table; the
            # days pruned by the bulk write lose their finest place totals, as prune does.
            others = sa.select(r.c.id).where(r.c.env == "bench", r.c.id != run1).subquery()
            bulk_pruned = run_of[bulk_days] if bulk_days else 0
            for table in (compliance_control_totals, compliance_place_totals):
                rest = [c for c in table.c if c.name != "run_id"]
                where = [table.c.run_id == run1]
                if table is compliance_place_totals:
                    where.append(
                        sa.or_(
                            others.c.id >= bulk_pruned,
                            table.c.level.not_in(detail.PRUNED_LEVELS),
                        )
                    )
                conn.execute(
                    table.insert().from_select(
                        ["run_id", *(c.name for c in rest)],
                        sa.select(others.c.id, *rest)
                        .select_from(table.join(others, sa.true()))
                        .where(*where),
                    )
                )
            if bulk_days:  # run 1 is day 0, pruned too
                detail.drop_fine_totals(conn, [run1])
            # Run 1's own detail goes: its day is rebuilt like every other day's.
            conn.execute(f.delete().where(f.c.run_id == run1))
            conn.execute(h.delete().where(h.c.run_id == run1))
        stage("runs and totals", began)

        # The oldest days, as the folds of those days leave them: stretches.
        began = time.perf_counter()
        written = 0
        if bulk_days:
            with engine.begin() as conn:
                kept = conn.execute(
                    sa.select(
                        f.c.host,
                        f.c.control,
                        f.c.status,
                        f.c.severity,
                        f.c.expected,
                        f.c.actual,
                        f.c.message,
                        f.c.waiver,
                        f.c.collected_at,
                    )
                    .where(f.c.run_id == template, f.c.status.in_(KEPT_STATUSES))
                    .order_by(f.c.host)
                ).all()
                names = [c.name for c in s.c if c.name != "id"]
                rows: list[tuple[Any, ...]] = []
                spans: dict[str, list[tuple[int, int]]] = {}
                for host, control, status, severity, exp, act, msg, waiver, at in kept:
                    series = spans.get(host)
                    if series is None:
                        spans.clear()
                        series = spans[host] = list(_stretches(int(host[5:]), bulk_days))
                    for one, last in series:
                        value = (status, severity, exp, act, msg, waiver)
                        ids = (run_of[one], run_of[last])
                        span = (*ids, at, at, span_bucket(ids[1] - ids[0] + 1))
                        rows.append(("bench", host, control, *value, *span))
                    if len(rows) >= 50_000:
                        insert_many(conn, s, names, rows)
                        written += len(rows)
                        rows = []
                if rows:
                    insert_many(conn, s, names, rows)
                    written += len(rows)
            if engine.dialect.name == "postgresql":
                with engine.begin() as conn:
                    conn.execute(sa.text("ANALYZE compliance_stretches"))
        stage("stretches written", began)

        # The last pruned days, folded one at a time by the store's own code.
        folds: list[float] = []
        for day in range(bulk_days, pruned):
            with engine.begin() as conn:
                began = time.perf_counter()
                copy(conn, f, template, run_of[day], present(number, day))
                stage("findings copied", began)
                began = time.perf_counter()
                env, previous = detail.previous_run(conn, run_of[day])
                detail.fold(conn, run_of[day], env, previous)
                detail.drop_fine_totals(conn, [run_of[day]])
                folds.append(time.perf_counter() - began)

        # The kept days: findings and host rows.
        began = time.perf_counter()
        for day in range(pruned, days):
            with engine.begin() as conn:
                copy(conn, f, template, run_of[day], present(number, day))
                copy(conn, h, template, run_of[day])
        stage("kept days copied", began)

        began = time.perf_counter()
        with engine.begin() as conn:
            for table in (f, h, compliance_run_detail):
                conn.execute(table.delete().where(table.c.run_id == template))
            conn.execute(r.delete().where(r.c.id == template))
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
        else:
            with engine.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
        stage("template dropped, analyzed", began)
        with engine.connect() as conn:
            stretches = conn.execute(sa.select(sa.func.count()).select_from(s)).scalar_one()
            findings = conn.execute(sa.select(sa.func.count()).select_from(f)).scalar_one()
    return {
        "fold_s": sum(folds) / len(folds) if folds else 0.0,
        "folded": len(folds),
        "bulk_days": bulk_days,
        "stretches": int(stretches),
        "findings": int(findings),
        "bulk_rows": written,
        "timings": timings,
    }


def bench_settings(url: str, folder: Path) -> Any:
    """Settings of a workspace whose store is `url` and whose environment is the runs'."""
    from provision.settings import load_settings

    workspace = folder / "workspace"
    workspace.mkdir(exist_ok=True)
    (workspace / "provision.yml").write_text("---\nenv: bench\n")
    return load_settings(
        workspace=workspace, environ={"PROVISION_DB_URL": url, "PROVISION_ENV": "bench"}
    )


def time_queries(url: str, folder: Path, days: int, keep: int) -> list[tuple[str, float, int]]:
    """The `compliance query` questions through the service, each timed, on a pruned
    day (the middle of the year) and on kept ones (today, yesterday): once as asked
    first (right after the size measurement read the whole store: a cold cache) and
    once again (the pages it needs in the cache)."""
    from provision.compliance import query

    settings = bench_settings(url, folder)
    today = NOW.date()
    middle = today - timedelta(days=days // 2)
    yesterday = today - timedelta(days=1)
    timings: list[tuple[str, float, int]] = []

    def timed(name: str, ask: Callable[[], int]) -> None:
        started = time.perf_counter()
        count = ask()
        timings.append((name, time.perf_counter() - started, count))
        started = time.perf_counter()  # asked again: the store's pages in the cache
        ask()
        timings.append(("  again", time.perf_counter() - started, count))

    since = today - timedelta(days=days)
    pruned = "pruned" if days // 2 >= keep else "kept"
    for day, kind in ((middle, pruned), (today, "kept")):
        timed(
            f"failing --control CTL-003 --as-of {day} ({kind})",
            lambda day=day: len(query.failing(settings, as_of=day, control="CTL-003").findings),
        )
        timed(
            f"failing --critical --as-of {day} ({kind})",
            lambda day=day: len(query.failing(settings, as_of=day, critical=True).findings),
        )
    timed(
        "host host-00042 (a year)",
        lambda: len(query.host_history(settings, "host-00042", since=since, until=today)),
    )
    timed(
        "control CTL-003 (a year)",
        lambda: len(query.control_history(settings, "CTL-003", since=since, until=today)),
    )
    timed(
        f"drifted --from {middle} --to {today}",
        lambda: _drift_count(query.drifted(settings, since=middle, until=today)),
    )
    timed(
        f"drifted --from {yesterday} --to {today}",
        lambda: _drift_count(query.drifted(settings, since=yesterday, until=today)),
    )
    return timings


def print_queries(url: str, folder: Path, days: int, keep: int) -> None:
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"{'query':<52} {'seconds':>8} {'answers':>8}  (load average {load})")
    for name, seconds, count in time_queries(url, folder, days, keep):
        print(f"{name:<52} {seconds:>8.3f} {count:>8,}")


def queries_only(folder: Path, days: int, keep: int) -> int:
    """The questions timed on a year an earlier run left in `folder`; the first asking
    of each is cold only as far as the operating system's cache is."""
    store = folder / "state.db"
    if not store.is_file():
        print(f"no store in {folder}: run with --year --keep-store first")
        return 1
    url = f"sqlite:///{store}"
    print(f"the questions on the year in {store} ({days} days, {keep} kept)")
    print_queries(url, folder, days, keep)
    return 0


def _drift_count(answer: Any) -> int:
    return len(answer.new) + len(answer.fixed) + len(answer.unknown)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=50_000)
    parser.add_argument("--controls", type=int, default=100)
    parser.add_argument("--formats", default="html", help="Reports to write: html,json,csv,junit")
    parser.add_argument("--by", default="district")
    parser.add_argument("--db-url", help="A PostgreSQL (or SQLite) URL to use as the store.")
    parser.add_argument("--year", action="store_true", help="Simulate daily runs and time queries.")
    parser.add_argument("--days", type=int, default=365, help="Days of runs with --year.")
    parser.add_argument("--keep", type=int, default=30, help="Days of host detail kept (prune).")
    parser.add_argument(
        "--keep-store",
        action="store_true",
        help="Leave the SQLite store's folder in place (printed) for --queries.",
    )
    parser.add_argument(
        "--queries",
        metavar="FOLDER",
        type=Path,
        help="Only time the questions on the year kept in FOLDER by an earlier "
        "--year --keep-store run (same --days and --keep, the same UTC day).",
    )
    args = parser.parse_args()
    if args.queries is not None:
        return queries_only(args.queries, args.days, min(args.keep, args.days))

    from provision.infra.store import Store
    from provision.infra.store.compliance_records import ComplianceRecords

    folder = Path(tempfile.mkdtemp(prefix="provision-compliance-bench-"))
    url = args.db_url or f"sqlite:///{folder / 'state.db'}"
    ref_url = args.db_url or f"sqlite:///{folder / 'reference.db'}"
    hosts, controls = args.hosts, args.controls
    results = hosts * controls
    if args.db_url:
        empty_store(url)
    run_ids: dict[str, int] = {}

    def idle() -> dict[str, Any]:
        return {}

    def ingest() -> dict[str, Any]:
        with Store.open(url) as store:
            records = ComplianceRecords(store)
            run_id = records.create_run(
                env="bench",
                selection="all",
                standard_id="synthetic",
                standard_version="1",
                standard_digest="0" * 64,
                waivers_digest=None,
                user="bench",
                node="bench",
            )
            source = Timed(reports(hosts, controls))
            written = records.add_host_reports(run_id, source)
            records.finish_run(run_id, "done")
        return {"run": run_id, "written": written, "excluded": source.seconds}

    def rolled_up() -> dict[str, Any]:
        with Store.open(url) as store:
            result = ComplianceRecords(store).rollups(run_ids["run"])
        total = result.total
        return {
            "places": sum(len(rows) for rows in result.levels.values()),
            "compliant": total.compliant,
            "median": total.median_score or 0.0,
            "coverage": total.coverage or 0.0,
        }

    def report(fmt: str) -> Callable[[], dict[str, Any]]:
        """The recorded run's report as `compliance report` writes it: read back from the
        store; a large run's HTML as the national summary and a page per place at --by
        (the `--pages` folder), JSON, CSV and JUnit gzip-compressed."""

        def write() -> dict[str, Any]:
            from provision.reports.service import write_run_report

            settings = bench_settings(url, folder)
            out = folder / "reports" / f"report.{fmt}"
            out.parent.mkdir(exist_ok=True)
            pages = True if fmt == "html" else None
            written = write_run_report(
                settings, run_ids["run"], fmt, out, by=args.by, now=NOW, pages=pages
            )
            ((_, path),) = written.files
            if fmt != "html":
                return {"bytes": path.stat().st_size, "name": path.name}
            sizes = {p.name: p.stat().st_size for p in path.parent.iterdir()}
            largest = max((n for n in sizes if n != "index.html"), key=sizes.__getitem__)
            return {
                "bytes": sum(sizes.values()),
                "pages": len(sizes) - 1,
                "summary": sizes["index.html"],
                "largest": (largest, sizes[largest]),
            }

        return write

    def summary() -> dict[str, Any]:
        """The national summary on its own, as the folder's index.html is written."""
        from provision.reports.service import write_run_summary

        out = folder / "reports" / "summary.html"
        out.parent.mkdir(exist_ok=True)
        write_run_summary(bench_settings(url, folder), run_ids["run"], out, by=args.by, now=NOW)
        return {"summary_bytes": out.stat().st_size}

    where = "PostgreSQL" if url.startswith("postgres") else f"SQLite in {folder}"
    print(f"compliance at scale: {hosts:,} hosts x {controls} controls = {results:,} results")
    print(f"store: {where}")
    base = in_child(idle)
    print(f"{'stage':<12} {'seconds':>9} {'hosts/s':>10} {'peak RSS MB':>12}  notes")
    print(f"{'start-up':<12} {'':>9} {'':>10} {base['peak_mb']:>12.0f}  a child that does nothing")
    stages: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("reference", lambda: reference(ref_url, hosts, controls)),
    ]
    if url.startswith("postgres"):
        stages.append(("ref-copy", lambda: reference_copy(ref_url, hosts, controls)))
    stages += [
        ("ingest", ingest),
        ("roll-up", rolled_up),
    ]
    formats = [fmt for fmt in args.formats.split(",") if fmt]
    if "html" in formats:
        stages.append(("html summary", summary))
    stages += [(fmt, report(fmt)) for fmt in formats]
    seconds_of: dict[str, float] = {}
    for name, stage in stages:
        result = in_child(stage)
        if "error" in result:
            print(f"{name:<12} failed: {result['error']}")
            return 1
        if "run" in result:
            run_ids["run"] = result["run"]
        seconds = seconds_of[name] = result["seconds"]
        notes = ""
        if "summary_bytes" in result:
            size = result["summary_bytes"] / 1e3
            notes = f"index.html alone, {size:,.0f} kB; only the worst hosts' results read"
        elif "pages" in result:
            page, size = result["largest"]
            notes = (
                f"a folder: summary {result['summary'] / 1e3:,.0f} kB + {result['pages']} "
                f"pages, largest {page} {size / 1e3:,.0f} kB; {result['bytes'] / 1e6:.1f} MB"
            )
        elif "bytes" in result:
            notes = f"{result['name']}: {result['bytes'] / 1e6:.1f} MB written"
        elif "places" in result:
            notes = (
                f"{result['places']:,} places; {result['compliant']:,} compliant; "
                f"median {result['median']:.3f}; coverage {result['coverage']:.3f}"
            )
        elif "written" in result:
            notes = (
                f"{result['written']:,} host rows; generating them "
                f"{result['excluded']:.1f} s not counted"
            )
        elif "groups" in result and name == "ref-copy":
            notes = (
                f"the same rows by binary COPY {result['written_s']:.1f} s + GROUP BY "
                f"{result['group_s']:.1f} s"
            )
        elif "groups" in result:
            notes = (
                f"{results:,} rows written {result['written_s']:.1f} s + GROUP BY "
                f"{result['group_s']:.1f} s ({result['groups']} groups); generating "
                f"{result['excluded']:.1f} s not counted"
            )
        rate = hosts / seconds if seconds else 0.0
        print(f"{name:<12} {seconds:>9.1f} {rate:>10,.0f} {result['peak_mb']:>12.0f}  {notes}")
    if "html summary" in seconds_of and seconds_of.get("html"):
        alone = (folder / "reports" / "summary.html").read_bytes()
        same = alone == (folder / "reports" / "report" / "index.html").read_bytes()
        print(
            f"ratio: html summary / html folder = "
            f"{seconds_of['html summary'] / seconds_of['html']:.2f} "
            f"(the summary alone is the folder's index.html: {'yes' if same else 'NO'})"
        )
    ours = seconds_of["ingest"] + seconds_of["roll-up"]
    ratio = ours / seconds_of["reference"]
    print(f"ratio: (ingest + roll-up) / reference = {ratio:.2f} (target 1.5 or less)")
    if "ref-copy" in seconds_of:
        print(
            f"ratio: (ingest + roll-up) / reference by COPY = {ours / seconds_of['ref-copy']:.2f}"
            " (PostgreSQL's executemany is a statement per row; COPY is its bulk path)"
        )
    one_run, shares = store_bytes(url, folder)
    print(f"store after one run: {one_run / 1e6:,.0f} MB (compacted; {_shares(shares)})")

    if args.year:
        days, keep = args.days, min(args.keep, args.days)
        print(f"\na year: {days} daily runs, host detail kept {keep} days (compliance prune)")
        started = time.perf_counter()
        year = in_child(lambda: simulate_year(url, days, keep))
        if "error" in year:
            print(f"year failed: {year['error']}")
            return 1
        steps = "; ".join(f"{k} {v:.0f} s" for k, v in year["timings"].items())
        print(f"simulated in {time.perf_counter() - started:.0f} s ({steps})")
        print(
            f"  {year['bulk_days']} oldest days written as their stretches "
            f"({year['bulk_rows']:,} rows); the next {year['folded']} pruned by the store's "
            f"fold, {year['fold_s']:.2f} s a day; {keep} days kept whole"
        )
        print(
            f"  rows: {year['stretches']:,} stretches, {year['findings']:,} findings "
            f"of the kept days"
        )
        size, shares = store_bytes(url, folder)
        print(
            f"store: {size / 1e9:,.2f} GB for {days} runs (compacted, reference tables "
            f"gone; {_shares(shares)})"
        )
        if days < 365:
            print(f"  a full year at this rate: at most {size * 365 / days / 1e9:,.1f} GB")
        print_queries(url, folder, days, keep)
    if args.keep_store:
        print(f"store kept in {folder} (time it again with --queries {folder})")
        return 0
    for path in sorted(folder.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
