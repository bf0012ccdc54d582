"""The store's compliance API: runs, host reports, trends (tables in compliance_tables).

    records = ComplianceRecords(store)
    run_id = records.create_run(env="lab", selection="", standard=standard, ...)
    records.add_host_reports(run_id, reports)      # committed as they arrive
    records.finish_run(run_id, "done")
    for report in records.host_reports(run_id):    # streamed, bounded memory
        ...

One row per host per run holds the host's score, status counts and place as
columns and its control results as zlib-compressed JSON, so that ingesting
50,000 hosts x 100 controls is 50,000 row inserts in batches, and trends and
roll-ups read columns without decompressing anything.
"""

from __future__ import annotations

import json
import statistics
import zlib
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from provision.errors import StateError
from provision.infra.store.compliance_tables import TABLES, compliance_hosts, compliance_runs
from provision.infra.store.schema import metadata
from provision.infra.store.store import Store, pid_alive, utcnow
from provision.model.compliance.model import (
    HOST_REPORTED,
    PLACE_LEVELS,
    STATUSES,
    ComplianceRunInfo,
    ControlResult,
    HostReport,
)
from provision.model.scoring import (
    DEFAULT_FRESHNESS,
    coverage,
    coverage_moment,
    host_score,
    is_fresh,
)

#: Run statuses: running (being collected), done, interrupted (Ctrl-C), crashed
#: (the process that drove it is gone; what it collected is kept).
RUN_STATUSES = ("running", "done", "interrupted", "crashed")

#: Rows per INSERT batch.
BATCH = 1000

_COUNT_COLUMNS = {status: f"n_{status}" for status in STATUSES}


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class RunSummary:
    """One run's headline figures, for trend charts (scores of one standard version)."""

    run_id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    standard_version: str
    #: Hosts recorded in the run; `reported` of them gave evidence.
    hosts: int
    reported: int
    compliant: int
    #: Median of the reported hosts' scores (0.0 to 1.0), None when none scored.
    median_score: float | None
    #: Share of the hosts with evidence fresh at the run's start (0.0 to 1.0; None for
    #: a run of no host): `provision.model.scoring.coverage`, as the roll-ups count it.
    coverage: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "status": self.status,
            "standard_version": self.standard_version,
            "hosts": self.hosts,
            "reported": self.reported,
            "compliant": self.compliant,
            "median_score": self.median_score,
            "coverage": self.coverage,
        }


@dataclass(frozen=True)
class HostRow:
    """A host's line of a run without its control results (cheap to list)."""

    host: str
    status: str
    role: str | None
    place: dict[str, str]
    score: float | None
    compliant: bool
    counts: dict[str, int]
    critical_failures: tuple[str, ...]
    collected_at: datetime | None
    message: str


#: Results hold plain JSON data (no cycles): skipping the cycle check saves a fifth.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str, check_circular=False)


def encode_results(results: Iterable[ControlResult]) -> bytes:
    """The compact stored form: zlib(JSON list of [control, status, severity, expected,
    actual, message, waiver, waiver_expired])."""
    rows = [
        [r.control, r.status, r.severity, r.expected, r.actual, r.message, r.waiver]
        + ([True] if r.waiver_expired else [])
        for r in results
    ]
    return zlib.compress(_ENCODER.encode(rows).encode(), 1)


def decode_results(blob: bytes) -> tuple[ControlResult, ...]:
    """The results from their stored form.

    Built without calling the frozen dataclass's __init__ (which sets each field
    through object.__setattr__): reading a 50,000-host run decodes five million
    results, and this halves the time. The objects are the same in every way.
    """
    make = object.__new__
    results: list[ControlResult] = []
    for row in json.loads(zlib.decompress(blob)):
        result = make(ControlResult)
        result.__dict__.update(
            control=row[0],
            status=row[1],
            severity=row[2],
            expected=row[3],
            actual=row[4],
            message=row[5] or "",
            waiver=row[6],
            waiver_expired=len(row) > 7 and bool(row[7]),
        )
        results.append(result)
    return tuple(results)


def _host_row(run_id: int, report: HostReport) -> dict[str, Any]:
    score = host_score(report)
    counts = report.counts()
    row: dict[str, Any] = {
        "run_id": run_id,
        "host": report.host,
        "status": report.status,
        "role": report.role,
        "os_release": report.os_release,
        "collected_at": report.collected_at,
        "evidence_digest": report.evidence_digest,
        "message": report.message or None,
        "score": score.score,
        "compliant": score.compliant,
        "critical_failures": ",".join(score.critical_failures) or None,
        "results": encode_results(report.results),
    }
    for level in PLACE_LEVELS:
        row[level] = report.place.get(level)
    for status, column in _COUNT_COLUMNS.items():
        row[column] = counts[status]
    return row


class ComplianceRecords:
    """Compliance runs and results in one state store (`provision.infra.store.Store`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        # A database that reached schema version 2 before these tables had columns.
        metadata.create_all(self.engine, tables=list(TABLES), checkfirst=True)

    # -- runs -----------------------------------------------------------------------

    def create_run(
        self,
        *,
        env: str,
        selection: str,
        standard_id: str,
        standard_version: str,
        standard_digest: str,
        waivers_digest: str | None,
        user: str,
        node: str,
        git_revision: str | None = None,
        pid: int | None = None,
        started_at: datetime | None = None,
    ) -> int:
        with self.engine.begin() as conn:
            run_id = conn.execute(
                compliance_runs.insert()
                .values(
                    status="running",
                    env=env,
                    selection=selection,
                    standard_id=standard_id,
                    standard_version=standard_version,
                    standard_digest=standard_digest,
                    waivers_digest=waivers_digest,
                    user=user,
                    node=node,
                    pid=pid,
                    started_at=started_at or utcnow(),
                    git_revision=git_revision,
                    hosts=0,
                )
                .returning(compliance_runs.c.id)
            ).scalar_one()
        return int(run_id)

    def add_host_reports(self, run_id: int, reports: Iterable[HostReport]) -> int:
        """Record host reports (a host reported twice keeps the later report).

        Committed in batches of `BATCH` rows as the iterable yields them, so a
        crash keeps everything written before it. Returns how many were written.
        """
        written = 0
        batch: list[dict[str, Any]] = []
        for report in reports:
            batch.append(_host_row(run_id, report))
            if len(batch) >= BATCH:
                written += self._write(run_id, batch)
                batch = []
        if batch:
            written += self._write(run_id, batch)
        return written

    def _write(self, run_id: int, rows: list[dict[str, Any]]) -> int:
        hosts = [r["host"] for r in rows]
        with self.engine.begin() as conn:
            replaced = conn.execute(
                compliance_hosts.delete().where(
                    compliance_hosts.c.run_id == run_id, compliance_hosts.c.host.in_(hosts)
                )
            ).rowcount
            conn.execute(compliance_hosts.insert(), rows)
            conn.execute(
                compliance_runs.update()
                .where(compliance_runs.c.id == run_id)
                .values(hosts=compliance_runs.c.hosts + len(rows) - (replaced or 0))
            )
        return len(rows)

    def finish_run(self, run_id: int, status: str) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown compliance run status {status!r}")
        with self.engine.begin() as conn:
            conn.execute(
                compliance_runs.update()
                .where(compliance_runs.c.id == run_id)
                .values(status=status, finished_at=utcnow(), pid=None)
            )

    def get_run(self, run_id: int) -> ComplianceRunInfo:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(compliance_runs).where(compliance_runs.c.id == run_id))
                .mappings()
                .first()
            )
        if row is None:
            raise StateError(
                f"there is no compliance run {run_id}",
                hint="list them with provision compliance runs",
            )
        return self._info(row)

    def list_runs(self, env: str | None = None, limit: int = 20) -> list[ComplianceRunInfo]:
        """The newest runs first."""
        query = sa.select(compliance_runs).order_by(compliance_runs.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(compliance_runs.c.env == env)
        with self.engine.connect() as conn:
            return [self._info(row) for row in conn.execute(query).mappings()]

    def latest_run(
        self,
        env: str,
        before: datetime | None = None,
        selection: str | None = None,
        *,
        standard_id: str | None = None,
    ) -> ComplianceRunInfo | None:
        """The newest finished (done) run of `env` started before `before`, or None."""
        query = (
            sa.select(compliance_runs)
            .where(compliance_runs.c.env == env, compliance_runs.c.status == "done")
            .order_by(compliance_runs.c.started_at.desc(), compliance_runs.c.id.desc())
            .limit(1)
        )
        if before is not None:
            query = query.where(compliance_runs.c.started_at < before)
        if selection is not None:
            query = query.where(compliance_runs.c.selection == selection)
        if standard_id is not None:
            query = query.where(compliance_runs.c.standard_id == standard_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else self._info(row)

    def _info(self, row: RowMapping) -> ComplianceRunInfo:
        status = str(row["status"])
        if status == "running" and row["pid"] and not pid_alive(int(row["pid"])):
            import socket

            if row["node"] == socket.gethostname():
                status = "crashed"
        started = _aware(row["started_at"])
        assert started is not None
        return ComplianceRunInfo(
            id=int(row["id"]),
            status=status,
            env=row["env"],
            selection=row["selection"],
            standard_id=row["standard_id"],
            standard_version=row["standard_version"],
            standard_digest=row["standard_digest"],
            waivers_digest=row["waivers_digest"],
            user=row["user"],
            node=row["node"],
            started_at=started,
            finished_at=_aware(row["finished_at"]),
            git_revision=row["git_revision"],
            hosts=int(row["hosts"] or 0),
        )

    # -- results --------------------------------------------------------------------

    def host_reports(
        self, run_id: int, hosts: Collection[str] | None = None, *, batch: int = 500
    ) -> Iterator[HostReport]:
        """The run's host reports ordered by host name, streamed `batch` rows at a time."""
        self.get_run(run_id)  # StateError for an unknown run, before the first item
        last = ""
        while True:
            query = (
                sa.select(compliance_hosts)
                .where(compliance_hosts.c.run_id == run_id, compliance_hosts.c.host > last)
                .order_by(compliance_hosts.c.host)
                .limit(batch)
            )
            if hosts is not None:
                query = query.where(compliance_hosts.c.host.in_(list(hosts)))
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            for row in rows:
                yield self._report(row)
            if len(rows) < batch:
                return
            last = str(rows[-1]["host"])

    def host_report(self, run_id: int, host: str) -> HostReport | None:
        return next(self.host_reports(run_id, [host]), None)

    def last_evidence(
        self,
        env: str,
        standard_id: str,
        hosts: Collection[str],
        *,
        before: datetime,
        until_run: int | None = None,
    ) -> dict[str, tuple[int, HostReport]]:
        """Each host's newest report that holds evidence, with its run id.

        From finished runs of `env` and `standard_id` whatever their selection,
        started before `before` (and run `until_run` itself, when given): what a
        host is compared with is its own last evidence, not whatever the previous
        run happened to audit. Hosts with no such report are left out. One query
        for the batch; callers pass hosts a few hundred at a time.
        """
        if not hosts:
            return {}
        when = compliance_runs.c.started_at < before
        if until_run is not None:
            when = sa.or_(when, compliance_runs.c.id == until_run)
        ranked = (
            sa.select(
                compliance_hosts.c.host,
                compliance_hosts.c.run_id,
                sa.func.row_number()
                .over(
                    partition_by=compliance_hosts.c.host,
                    order_by=(compliance_runs.c.started_at.desc(), compliance_runs.c.id.desc()),
                )
                .label("rank"),
            )
            .join(compliance_runs, compliance_runs.c.id == compliance_hosts.c.run_id)
            .where(
                compliance_runs.c.env == env,
                compliance_runs.c.standard_id == standard_id,
                compliance_runs.c.status == "done",
                compliance_hosts.c.status == HOST_REPORTED,
                compliance_hosts.c.host.in_(list(hosts)),
                when,
            )
            .subquery()
        )
        newest = sa.select(ranked.c.host, ranked.c.run_id).where(ranked.c.rank == 1).subquery()
        query = sa.select(compliance_hosts).join(
            newest,
            sa.and_(
                compliance_hosts.c.host == newest.c.host,
                compliance_hosts.c.run_id == newest.c.run_id,
            ),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return {str(row["host"]): (int(row["run_id"]), self._report(row)) for row in rows}

    def host_names(self, run_id: int) -> list[str]:
        """The run's host names, ordered."""
        query = (
            sa.select(compliance_hosts.c.host)
            .where(compliance_hosts.c.run_id == run_id)
            .order_by(compliance_hosts.c.host)
        )
        with self.engine.connect() as conn:
            return [str(h) for h in conn.execute(query).scalars()]

    def host_rows(self, run_id: int) -> list[HostRow]:
        """Every host's line of the run (no control results), ordered by host."""
        columns = [c for c in compliance_hosts.c if c.name != "results"]
        query = (
            sa.select(*columns)
            .where(compliance_hosts.c.run_id == run_id)
            .order_by(compliance_hosts.c.host)
        )
        with self.engine.connect() as conn:
            return [
                HostRow(
                    host=row["host"],
                    status=row["status"],
                    role=row["role"],
                    place=_place(row),
                    score=row["score"],
                    compliant=bool(row["compliant"]),
                    counts={s: int(row[c]) for s, c in _COUNT_COLUMNS.items()},
                    critical_failures=tuple(
                        filter(None, (row["critical_failures"] or "").split(","))
                    ),
                    collected_at=_aware(row["collected_at"]),
                    message=row["message"] or "",
                )
                for row in conn.execute(query).mappings()
            ]

    def _report(self, row: RowMapping) -> HostReport:
        return HostReport(
            host=row["host"],
            status=row["status"],
            role=row["role"],
            os_release=row["os_release"],
            place=_place(row),
            collected_at=_aware(row["collected_at"]),
            evidence_digest=row["evidence_digest"],
            message=row["message"] or "",
            results=decode_results(row["results"]),
        )

    def run_summaries(
        self,
        env: str,
        standard_id: str,
        standard_version: str | None = None,
        limit: int = 30,
        *,
        selection: str | None = None,
        before: ComplianceRunInfo | None = None,
        freshness: timedelta = DEFAULT_FRESHNESS,
    ) -> list[RunSummary]:
        """Up to `limit` finished runs of one standard (one version, if given), oldest first.

        With `selection`, only runs of that selection (scope): a trend that mixed a
        one-host audit into fleet audits would show the one host as the fleet. With
        `before`, only the runs before that one (in start order; not the run itself):
        the filter is part of the query, so that `limit` counts the runs it kept,
        and the trend of an old run holds the runs before it, not none.
        `freshness` is the window of each run's coverage.
        """
        order = (compliance_runs.c.started_at.desc(), compliance_runs.c.id.desc())
        query = (
            sa.select(compliance_runs)
            .where(
                compliance_runs.c.env == env,
                compliance_runs.c.standard_id == standard_id,
                compliance_runs.c.status == "done",
            )
            .order_by(*order)
            .limit(limit)
        )
        if standard_version is not None:
            query = query.where(compliance_runs.c.standard_version == standard_version)
        if selection is not None:
            query = query.where(compliance_runs.c.selection == selection)
        if before is not None:
            started, when = compliance_runs.c.started_at, before.started_at
            query = query.where(
                sa.or_(started < when, sa.and_(started == when, compliance_runs.c.id < before.id))
            )
        summaries: list[RunSummary] = []
        with self.engine.connect() as conn:
            for run in conn.execute(query).mappings().all():
                rows = conn.execute(
                    sa.select(
                        compliance_hosts.c.status,
                        compliance_hosts.c.score,
                        compliance_hosts.c.compliant,
                        compliance_hosts.c.collected_at,
                    ).where(compliance_hosts.c.run_id == run["id"])
                ).all()
                info = self._info(run)
                at = coverage_moment(info)
                reported = [r for r in rows if r.status == HOST_REPORTED]
                scores = [float(r.score) for r in reported if r.score is not None]
                fresh = sum(1 for r in rows if is_fresh(_aware(r.collected_at), at, freshness))
                summaries.append(
                    RunSummary(
                        run_id=info.id,
                        started_at=info.started_at,
                        finished_at=info.finished_at,
                        status=info.status,
                        standard_version=info.standard_version,
                        hosts=len(rows),
                        reported=len(reported),
                        compliant=sum(1 for r in reported if r.compliant),
                        median_score=statistics.median(scores) if scores else None,
                        coverage=coverage(fresh, len(rows)),
                    )
                )
        return list(reversed(summaries))


def _place(row: RowMapping) -> dict[str, str]:
    return {level: str(row[level]) for level in PLACE_LEVELS if row[level]}


__all__ = [
    "RUN_STATUSES",
    "ComplianceRecords",
    "HostRow",
    "RunSummary",
    "decode_results",
    "encode_results",
]
