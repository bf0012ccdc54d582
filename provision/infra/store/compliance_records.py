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

import statistics
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from provision.errors import InputError, StateError
from provision.infra.store import compliance_detail as detail
from provision.infra.store import compliance_retention as retention
from provision.infra.store.compliance_codec import COUNT_COLUMNS, decode_results, encode_results
from provision.infra.store.compliance_detail_tables import compliance_run_detail
from provision.infra.store.compliance_tables import TABLES, compliance_hosts, compliance_runs
from provision.infra.store.schema import metadata
from provision.infra.store.store import Store, pid_alive, utcnow
from provision.model.compliance.model import (
    ERROR,
    FAIL,
    HOST_REPORTED,
    PLACE_LEVELS,
    STATUSES,
    ComplianceRunInfo,
    HostReport,
)
from provision.model.scoring import (
    DEFAULT_FRESHNESS,
    ROLLUP_LEVELS,
    Rollup,
    Rollups,
    coverage,
    coverage_moment,
    is_fresh,
)

#: Run statuses: running (being collected), done, interrupted (Ctrl-C), crashed
#: (the process that drove it is gone; what it collected is kept).
RUN_STATUSES = ("running", "done", "interrupted", "crashed")

_COUNT_COLUMNS = COUNT_COLUMNS


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
    #: The execution node that ran the host's audit (None: the control node).
    node: str | None = None


class ComplianceRecords:
    """Compliance runs and results in one state store (`provision.infra.store.Store`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        # A database that reached schema version 2 before these tables had columns.
        metadata.create_all(self.engine, tables=list(TABLES), checkfirst=True)
        self._backfilled = False

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
            detail.start_run(conn, int(run_id))
        return int(run_id)

    def add_host_reports(self, run_id: int, reports: Iterable[HostReport]) -> int:
        """Record host reports (a host reported twice keeps the later report).

        Everything the iterable yields is written in one transaction (executemany
        in batches), with the reports' findings and control tallies: a caller that
        must keep what arrived before a crash passes reports in small batches, as
        the audit does. Returns how many were written.
        """
        with self.engine.begin() as conn:
            return detail.write_reports(conn, run_id, reports)

    def finish_run(self, run_id: int, status: str) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown compliance run status {status!r}")
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                compliance_runs.update()
                .where(compliance_runs.c.id == run_id)
                .values(status=status, finished_at=now, pid=None)
            )
            detail.aggregate(conn, run_id, now)

    def reopen_run(self, run_id: int, *, was: ComplianceRunInfo, pid: int, node: str) -> None:
        """Mark an unfinished run `running` again, driven by `pid` on `node` (a resume).

        `was` is the run as the caller judged it resumable: the row changes only if
        its status and process are still those, so two resumes of one run cannot
        both go on (StateError for the second). Its hosts, findings and totals stay.
        """
        runs = compliance_runs
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
            # The run as it is now, judged as `was` was (a `running` row whose process
            # is dead here is crashed): a run another resume drives now is running, and
            # is refused before anything of it changes.
            changed = 0
            if row is not None and self._info(row).status == was.status:
                old_pid = row["pid"]
                same = runs.c.pid.is_(None) if old_pid is None else runs.c.pid == old_pid
                # Compare and set: of two resumes that both read the row, the second's
                # update finds the first's pid and changes nothing.
                changed = conn.execute(
                    runs.update()
                    .where(runs.c.id == run_id, runs.c.status == row["status"], same)
                    .values(status="running", pid=pid, node=node, finished_at=None)
                ).rowcount
        if changed != 1:
            raise StateError(
                f"compliance run {run_id} was taken over by another process meanwhile",
                hint="see it with provision compliance runs",
            )

    def unfinished_run(self, env: str) -> ComplianceRunInfo | None:
        """The newest run of `env` that is not done (running, interrupted, crashed), or None."""
        query = (
            sa.select(compliance_runs)
            .where(compliance_runs.c.env == env, compliance_runs.c.status != "done")
            .order_by(compliance_runs.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else self._info(row)

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

    # -- detail: aggregates, prune marks, runs recorded before the detail tables -------

    def backfill(self) -> int:
        """Give runs recorded before the detail tables existed their findings and totals.

        Done once per store, the first time something asks; returns how many runs.
        """
        if self._backfilled:
            return 0
        self._backfilled = True
        missing = (
            sa.select(compliance_runs.c.id, compliance_runs.c.status, compliance_runs.c.finished_at)
            .outerjoin(
                compliance_run_detail, compliance_run_detail.c.run_id == compliance_runs.c.id
            )
            .where(compliance_run_detail.c.run_id.is_(None))
            .order_by(compliance_runs.c.id)
        )
        with self.engine.connect() as conn:
            runs = conn.execute(missing).all()
        for run_id, status, finished in runs:
            with self.engine.begin() as conn:
                detail.backfill_run(
                    conn,
                    int(run_id),
                    finished=status != "running",
                    measured_at=_aware(finished) or utcnow(),
                )
        return len(runs)

    def pruned_at(self, run_id: int) -> datetime | None:
        """When the run's host detail was pruned (None: it was not)."""
        self.backfill()
        with self.engine.connect() as conn:
            when = conn.execute(
                sa.select(compliance_run_detail.c.pruned_at).where(
                    compliance_run_detail.c.run_id == run_id
                )
            ).scalar()
        return _aware(when)

    def rollups(self, run_id: int, levels: Sequence[str] = ROLLUP_LEVELS) -> Rollups:
        """The run's roll-ups read from its per-run aggregates (no host row is read).

        A run that never finished (or was recorded before the aggregates existed)
        gets them written first. Ages and coverage are measured when they were
        written (the run's end), with the default freshness window.
        """
        run = self.get_run(run_id)
        self.backfill()
        unknown = [level for level in levels if level not in ROLLUP_LEVELS]
        if unknown:
            raise InputError(
                f"unknown roll-up level {unknown[0]!r}", hint="levels: " + ", ".join(ROLLUP_LEVELS)
            )
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.select(compliance_run_detail.c.aggregated_at).where(
                    compliance_run_detail.c.run_id == run_id
                )
            ).scalar()
            if done is None:
                detail.aggregate(conn, run_id, run.finished_at or utcnow())
            at, levels_ = detail.place_rollups(conn, run_id, levels)
        if "all" in levels_ and not levels_["all"]:
            levels_["all"] = (_empty_rollup(),)
        return Rollups(
            run_id=run_id,
            standard_id=run.standard_id,
            standard_version=run.standard_version,
            now=at or run.started_at,
            freshness=DEFAULT_FRESHNESS,
            levels=levels_,
        )

    def prune(self, before: datetime, *, dry_run: bool = False) -> retention.PruneCounts:
        """Prune the host detail of every finished run started before `before`.

        One transaction: each run's aggregates are written first if missing, then
        its host rows (with their blobs) and its waived findings go; its run row,
        aggregates, and fail, error and no_report findings stay. Runs still
        running are never pruned; runs pruned before are not counted again.
        """
        self.backfill()
        query = (
            sa.select(compliance_runs.c.id, compliance_runs.c.finished_at)
            .join(compliance_run_detail, compliance_run_detail.c.run_id == compliance_runs.c.id)
            .where(
                compliance_runs.c.started_at < before,
                compliance_runs.c.status != "running",
                compliance_run_detail.c.pruned_at.is_(None),
            )
            .order_by(compliance_runs.c.id)
        )
        with self.engine.begin() as conn:
            runs = conn.execute(query).all()
            if not dry_run:
                for run_id, finished in runs:
                    aggregated = conn.execute(
                        sa.select(compliance_run_detail.c.aggregated_at).where(
                            compliance_run_detail.c.run_id == run_id
                        )
                    ).scalar()
                    if aggregated is None:
                        detail.aggregate(conn, int(run_id), _aware(finished) or utcnow())
            return retention.prune(conn, [int(r[0]) for r in runs], dry_run=dry_run)

    # -- results --------------------------------------------------------------------

    def host_reports(
        self, run_id: int, hosts: Collection[str] | None = None, *, batch: int = 500
    ) -> Iterator[HostReport]:
        """The run's host reports ordered by host name, streamed `batch` rows at a time.

        StateError for an unknown run or one whose host detail was pruned (before
        the first item): its totals and failures are still there, its hosts not.
        """
        for row in self._host_rows(run_id, list(compliance_hosts.c), hosts, batch):
            yield self._report(row)

    def _host_rows(
        self, run_id: int, columns: Sequence[Any], hosts: Collection[str] | None, batch: int
    ) -> Iterator[RowMapping]:
        """The run's host rows (`columns` of them) by host name, `batch` at a time, each
        batch on a connection of its own, so a slow reader holds no transaction open.

        StateError for an unknown run or one whose host detail was pruned (before
        the first row).
        """
        self.get_run(run_id)
        pruned = self._pruned(run_id)
        if pruned is not None:
            raise StateError(
                f"the host detail of compliance run {run_id} was pruned on "
                f"{pruned:%Y-%m-%d}; its totals and each host's failures are kept",
                hint=f"see them with provision compliance show {run_id} or "
                "provision compliance query",
            )
        last = ""
        while True:
            query = (
                sa.select(*columns)
                .where(compliance_hosts.c.run_id == run_id, compliance_hosts.c.host > last)
                .order_by(compliance_hosts.c.host)
                .limit(batch)
            )
            if hosts is not None:
                query = query.where(compliance_hosts.c.host.in_(list(hosts)))
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            yield from rows
            if len(rows) < batch:
                return
            last = str(rows[-1]["host"])

    def _pruned(self, run_id: int) -> datetime | None:
        with self.engine.connect() as conn:
            when = conn.execute(
                sa.select(compliance_run_detail.c.pruned_at).where(
                    compliance_run_detail.c.run_id == run_id
                )
            ).scalar()
        return _aware(when)

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
            return [_host_row(row) for row in conn.execute(query).mappings()]

    def host_lines(self, run_id: int, *, batch: int = 5000) -> Iterator[HostRow]:
        """Every host's line of the run (no control results), streamed `batch` rows at a time
        in the order `host_reports` yields the reports (by host name).

        What a summary reads instead of the reports: the columns only, so no blob
        is read or decoded. StateError, as `host_reports`, for an unknown run or
        one whose host detail was pruned.
        """
        columns = [c for c in compliance_hosts.c if c.name != "results"]
        for row in self._host_rows(run_id, columns, None, batch):
            yield _host_row(row)

    def failing_controls(self, run_id: int, hosts: Collection[str]) -> dict[str, tuple[str, ...]]:
        """The controls each of `hosts` failed or errored on, in the order of its results.

        For a few hosts (a summary's worst): `compliance_findings` holds which
        controls failed but not in what order a host's results came, so these
        hosts' own results are read, by key.
        """
        if not hosts:
            return {}
        query = sa.select(compliance_hosts.c.host, compliance_hosts.c.results).where(
            compliance_hosts.c.run_id == run_id, compliance_hosts.c.host.in_(list(hosts))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {
            str(host): tuple(r.control for r in decode_results(blob) if r.status in (FAIL, ERROR))
            for host, blob in rows
        }

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
            node=row["node"],
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
                pruned = self._pruned_summary(conn, run)
                if pruned is not None:
                    summaries.append(pruned)
                    continue
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

    def _pruned_summary(self, conn: sa.Connection, run: RowMapping) -> RunSummary | None:
        """A pruned run's trend point, from its totals (its host rows are gone): coverage
        as measured when the run finished, with the default freshness window."""
        pruned = conn.execute(
            sa.select(compliance_run_detail.c.pruned_at).where(
                compliance_run_detail.c.run_id == run["id"]
            )
        ).scalar()
        if pruned is None:
            return None
        info = self._info(run)
        _, levels = detail.place_rollups(conn, info.id, ("all",))
        total = levels["all"][0] if levels["all"] else _empty_rollup()
        return RunSummary(
            run_id=info.id,
            started_at=info.started_at,
            finished_at=info.finished_at,
            status=info.status,
            standard_version=info.standard_version,
            hosts=total.hosts,
            reported=total.reported,
            compliant=total.compliant,
            median_score=total.median_score,
            coverage=total.coverage,
        )


def _empty_rollup() -> Rollup:
    return Rollup(
        level="all",
        path=(),
        hosts=0,
        reported=0,
        unreachable=0,
        errored=0,
        no_report=0,
        compliant=0,
        critical=0,
        median_score=None,
        lowest_score=None,
        fresh=0,
        oldest_evidence=None,
        median_evidence=None,
        statuses=dict.fromkeys(STATUSES, 0),
        worst_controls=(),
    )


def _host_row(row: RowMapping) -> HostRow:
    return HostRow(
        host=row["host"],
        status=row["status"],
        role=row["role"],
        place=_place(row),
        score=row["score"],
        compliant=bool(row["compliant"]),
        counts={s: int(row[c]) for s, c in _COUNT_COLUMNS.items()},
        critical_failures=tuple(filter(None, (row["critical_failures"] or "").split(","))),
        collected_at=_aware(row["collected_at"]),
        message=row["message"] or "",
        node=row["node"],
    )


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
