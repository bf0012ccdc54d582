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
4. html, and any of json, csv, junit asked for with --formats (each of those
   writes every result: about 1 GB for the default run, so off by default).

The synthetic reports are generated outside the measured time: the generator's
own time is measured and taken off the stage it feeds (reference and ingest
alike). Prints wall time, hosts per second and peak RSS (the child's
ru_maxrss) per stage, and the ratio of ingest + roll-up to the reference.

With --year, a year of daily runs is then simulated from the ingested run
(the store's own INSERT ... SELECT, a few percent of findings changing each
day; runs older than --keep days pruned as `compliance prune` does) and each
of the four `compliance query` questions is timed on it; the store's size is
measured in bytes (SQLite: `VACUUM INTO` a separate file; PostgreSQL: the
tables' total relation size).

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
    """PostgreSQL only: the same rows by COPY in one transaction (how provision writes
    there), then the same GROUP BY: the database's own bulk speed."""
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
        with cursor.copy("COPY bench_copy (host, control, status) FROM STDIN") as copy:
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


def store_bytes(url: str, folder: Path) -> int:
    """The store's real size: a compacted copy (SQLite) or the tables' total size."""
    import sqlalchemy as sa

    from provision.infra.store import create_engine

    engine = create_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            copy = folder / "compacted.db"
            copy.unlink(missing_ok=True)
            with engine.connect() as conn:
                conn.execute(sa.text("VACUUM INTO :path"), {"path": str(copy)})
            size = copy.stat().st_size
            copy.unlink()
            return size
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relkind = 'r' AND n.nspname = current_schema()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


# -- a year of daily runs -----------------------------------------------------------------


def simulate_year(url: str, days: int, keep: int) -> dict[str, Any]:
    """Runs 2..days made from run 1 by the database; those older than `keep` days pruned.

    Each day, findings of one host in nineteen differ from run 1 (they are left
    out, as if fixed that day), so that the days are not all the same and the
    stretches break. A pruned day is pruned by the store's own code
    (`compliance_detail.fold`, as `compliance prune` does, one day at a time);
    its host rows are never copied in the first place.
    """
    import sqlalchemy as sa

    from provision.infra.store import Store
    from provision.infra.store import compliance_retention as detail
    from provision.infra.store.compliance_detail_tables import (
        compliance_control_totals,
        compliance_findings,
        compliance_place_totals,
        compliance_run_detail,
    )
    from provision.infra.store.compliance_records import ComplianceRecords
    from provision.infra.store.compliance_tables import compliance_hosts, compliance_runs

    first = NOW - timedelta(days=days - 1)
    f, t, p, h = (
        compliance_findings,
        compliance_control_totals,
        compliance_place_totals,
        compliance_hosts,
    )

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

    with Store.open(url) as store:
        records = ComplianceRecords(store)
        engine = store.engine
        with engine.begin() as conn:
            run1 = conn.execute(sa.select(sa.func.min(compliance_runs.c.id))).scalar_one()
            hosts = conn.execute(
                sa.select(compliance_runs.c.hosts).where(compliance_runs.c.id == run1)
            ).scalar_one()
            conn.execute(
                compliance_runs.update()
                .where(compliance_runs.c.id == run1)
                .values(started_at=first, finished_at=first + timedelta(minutes=20))
            )
        # What every day is copied from, outside the environment the queries ask.
        template = new_run(records, "bench-template", first)
        with engine.begin() as conn:
            for table in (f, h):
                copy(conn, table, run1, template)
        number = sa.cast(sa.func.substr(f.c.host, 6), sa.Integer)
        folded = 0.0
        for day in range(days):
            started = first + timedelta(days=day)
            old = day < days - keep
            run_id = run1 if day == 0 else new_run(records, "bench", started)
            with engine.begin() as conn:
                if day:
                    copy(conn, f, template, run_id, (number + day) % 19 != 0)
                    for table in (t, p):
                        copy(conn, table, run1, run_id)
                    if not old:
                        copy(conn, h, template, run_id)
                    conn.execute(
                        compliance_runs.update()
                        .where(compliance_runs.c.id == run_id)
                        .values(
                            status="done", finished_at=started + timedelta(minutes=20), hosts=hosts
                        )
                    )
                if old:
                    began = time.perf_counter()
                    env, previous = detail.previous_run(conn, run_id)
                    detail.fold(conn, run_id, env, previous)
                    conn.execute(h.delete().where(h.c.run_id == run_id))
                    folded += time.perf_counter() - began
                if day % 10 == 1 and engine.dialect.name == "postgresql":
                    # What autovacuum would have done by now: plans need the tables' sizes.
                    conn.execute(sa.text("ANALYZE compliance_findings"))
                    conn.execute(sa.text("ANALYZE compliance_stretches"))
                conn.execute(
                    compliance_run_detail.update()
                    .where(compliance_run_detail.c.run_id == run_id)
                    .values(
                        aggregated_at=started,
                        measured_at=started,
                        pruned_at=NOW if old else None,
                    )
                )
        with engine.begin() as conn:
            for table in (f, h, compliance_run_detail):
                conn.execute(table.delete().where(table.c.run_id == template))
            conn.execute(compliance_runs.delete().where(compliance_runs.c.id == template))
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
        else:
            with engine.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
    pruned = max(days - keep, 0)
    return {"fold_s": folded / pruned if pruned else 0.0}


def time_queries(url: str, folder: Path, days: int) -> list[tuple[str, float, int]]:
    """The four `compliance query` questions through the service, each timed."""
    from provision.compliance import query
    from provision.settings import load_settings

    workspace = folder / "workspace"
    workspace.mkdir(exist_ok=True)
    (workspace / "provision.yml").write_text("---\nenv: bench\n")
    settings = load_settings(
        workspace=workspace, environ={"PROVISION_DB_URL": url, "PROVISION_ENV": "bench"}
    )
    today = NOW.date()
    middle = today - timedelta(days=days // 2)
    timings: list[tuple[str, float, int]] = []

    def timed(name: str, ask: Callable[[], int]) -> None:
        started = time.perf_counter()
        count = ask()
        timings.append((name, time.perf_counter() - started, count))

    since = today - timedelta(days=days)
    timed(
        f"failing --control CTL-003 --as-of {middle}",
        lambda: len(query.failing(settings, as_of=middle, control="CTL-003").findings),
    )
    timed(
        f"failing --critical --as-of {middle}",
        lambda: len(query.failing(settings, as_of=middle, critical=True).findings),
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
    return timings


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
    args = parser.parse_args()

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
        def write() -> dict[str, Any]:
            from provision.reports import write_report

            with Store.open(url) as store:
                records = ComplianceRecords(store)
                run = records.get_run(run_ids["run"])
                out = folder / f"report.{fmt}"
                write_report(run, records.host_reports(run.id), fmt, out, by=args.by, now=NOW)
            return {"bytes": out.stat().st_size}

        return write

    where = "PostgreSQL" if url.startswith("postgres") else f"SQLite in {folder}"
    print(f"compliance at scale: {hosts:,} hosts x {controls} controls = {results:,} results")
    print(f"store: {where}")
    base = in_child(idle)
    print(f"{'stage':<10} {'seconds':>9} {'hosts/s':>10} {'peak RSS MB':>12}  notes")
    print(f"{'start-up':<10} {'':>9} {'':>10} {base['peak_mb']:>12.0f}  a child that does nothing")
    stages: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("reference", lambda: reference(ref_url, hosts, controls)),
    ]
    if url.startswith("postgres"):
        stages.append(("ref-copy", lambda: reference_copy(ref_url, hosts, controls)))
    stages += [
        ("ingest", ingest),
        ("roll-up", rolled_up),
    ]
    stages += [(fmt, report(fmt)) for fmt in args.formats.split(",") if fmt]
    seconds_of: dict[str, float] = {}
    for name, stage in stages:
        result = in_child(stage)
        if "error" in result:
            print(f"{name:<10} failed: {result['error']}")
            return 1
        if "run" in result:
            run_ids["run"] = result["run"]
        seconds = seconds_of[name] = result["seconds"]
        notes = ""
        if "bytes" in result:
            notes = f"{result['bytes'] / 1e6:.1f} MB written"
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
                f"the same rows by COPY {result['written_s']:.1f} s + GROUP BY "
                f"{result['group_s']:.1f} s"
            )
        elif "groups" in result:
            notes = (
                f"{results:,} rows written {result['written_s']:.1f} s + GROUP BY "
                f"{result['group_s']:.1f} s ({result['groups']} groups); generating "
                f"{result['excluded']:.1f} s not counted"
            )
        rate = hosts / seconds if seconds else 0.0
        print(f"{name:<10} {seconds:>9.1f} {rate:>10,.0f} {result['peak_mb']:>12.0f}  {notes}")
    ours = seconds_of["ingest"] + seconds_of["roll-up"]
    ratio = ours / seconds_of["reference"]
    print(f"ratio: (ingest + roll-up) / reference = {ratio:.2f} (target 1.5 or less)")
    if "ref-copy" in seconds_of:
        print(
            f"ratio: (ingest + roll-up) / reference by COPY = {ours / seconds_of['ref-copy']:.2f}"
            " (PostgreSQL's executemany is a statement per row; COPY is its bulk path)"
        )
    one_run = store_bytes(url, folder)
    print(f"store after one run: {one_run / 1e6:,.0f} MB (compacted)")

    if args.year:
        days, keep = args.days, min(args.keep, args.days)
        print(f"\na year: {days} daily runs, host detail kept {keep} days (compliance prune)")
        started = time.perf_counter()
        year = simulate_year(url, days, keep)
        print(
            f"simulated in {time.perf_counter() - started:.0f} s; pruning one day's run "
            f"(folding its failures into stretches) took {year['fold_s']:.2f} s on average"
        )
        size = store_bytes(url, folder)
        print(f"store: {size / 1e9:,.2f} GB for {days} runs (compacted, reference tables gone)")
        if days < 365:
            print(f"  a full year at this rate: at most {size * 365 / days / 1e9:,.1f} GB")
        print(f"{'query':<50} {'seconds':>8} {'answers':>8}")
        for name, seconds, count in time_queries(url, folder, days):
            print(f"{name:<50} {seconds:>8.3f} {count:>8,}")
    for path in sorted(folder.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
