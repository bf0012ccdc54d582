"""The auditor's questions as SQL over recorded compliance evidence.

Every answer comes from the findings, host rows and control totals of runs
already recorded (`compliance_detail_tables`), never from a new audit. Each
question is a few indexed lookups, so it stays under a second on a year of
daily 50,000-host runs (`benchmarks/compliance_scale.py --year`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping

from provision.infra.store.compliance_codec import COUNT_COLUMNS, FINDING_COLUMNS
from provision.infra.store.compliance_detail_tables import (
    compliance_control_totals,
    compliance_findings,
    compliance_run_detail,
    compliance_stretches,
    holding_run,
)
from provision.infra.store.compliance_tables import compliance_hosts, compliance_runs
from provision.model.compliance.model import ERROR, FAIL, NO_REPORT, STATUSES

#: What "failing" means to an auditor: the control did not meet the standard
#: (fail), or could not be judged, which is never a pass (error, no_report).
FAILING: tuple[str, ...] = (FAIL, ERROR, NO_REPORT)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _value(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class RunRef:
    """The run an answer comes from."""

    run_id: int
    started_at: datetime
    standard_id: str
    standard_version: str
    selection: str
    #: Its host detail was pruned: its failures are read from stretches.
    pruned: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "started_at": self.started_at.isoformat(),
            "standard_id": self.standard_id,
            "standard_version": self.standard_version,
            "selection": self.selection,
            "pruned": self.pruned,
        }


@dataclass(frozen=True)
class Finding:
    """One host's result on one control in one run that was not a pass."""

    run: RunRef
    host: str
    control: str
    status: str
    severity: str | None
    expected: Any
    actual: Any
    message: str
    waiver: str | None
    #: When the evidence was collected; for a pruned run, known only at the ends of the
    #: stretch of runs with this same result (`stretch`), else None.
    collected_at: datetime | None
    #: For a pruned run: (first run, last run, first collected, last collected) of the
    #: stretch of consecutive runs in which the host had this same result.
    stretch: tuple[int, int, datetime | None, datetime | None] | None = None

    def as_dict(self) -> dict[str, Any]:
        stretch = None
        if self.stretch is not None:
            first, last, since, until = self.stretch
            stretch = {
                "first_run": first,
                "last_run": last,
                "first_collected": since.isoformat() if since else None,
                "last_collected": until.isoformat() if until else None,
            }
        return {
            **self.run.as_dict(),
            "stretch": stretch,
            "host": self.host,
            "control": self.control,
            "status": self.status,
            "severity": self.severity,
            "expected": self.expected,
            "actual": self.actual,
            "message": self.message,
            "waiver": self.waiver,
            "collected_at": self.collected_at.isoformat() if self.collected_at else None,
        }


@dataclass(frozen=True)
class HostLine:
    """A host in one run: its verdict (None once the run's host detail was pruned)."""

    run: RunRef
    status: str | None
    score: float | None
    compliant: bool | None
    collected_at: datetime | None
    findings: tuple[Finding, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.run.as_dict(),
            "host_status": self.status,
            "score": self.score,
            "compliant": self.compliant,
            "collected_at": self.collected_at.isoformat() if self.collected_at else None,
            "findings": [
                {k: v for k, v in f.as_dict().items() if k in _FINDING_KEYS} for f in self.findings
            ],
        }


#: What a finding is built of: a kept run's findings row (the codec's row without
#: its run id), a pruned run's stretch.
_KEPT_COLUMNS = FINDING_COLUMNS[1:]
_STRETCH_COLUMNS = (
    *_KEPT_COLUMNS[:-1],
    "first_run",
    "last_run",
    "first_collected",
    "last_collected",
)
_TIMES = frozenset({"collected_at", "first_collected", "last_collected"})

_FINDING_KEYS = (
    "control",
    "status",
    "severity",
    "expected",
    "actual",
    "message",
    "waiver",
    "collected_at",
    "stretch",
)


@dataclass(frozen=True)
class ControlLine:
    """One control in one run: how many hosts had each status."""

    run: RunRef
    severity: str | None
    counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {**self.run.as_dict(), "severity": self.severity, **self.counts}


class ComplianceQueries:
    """Read-only questions over one store's compliance evidence of one environment."""

    def __init__(self, engine: Engine, env: str) -> None:
        self.engine = engine
        self.env = env
        # Decoded once per distinct text or time: the same expected value, the same
        # collection time, recur across thousands of findings of one answer. The
        # decoded values are shared between findings (read-only, as findings are).
        self._values: dict[str, Any] = {}
        self._moments: dict[datetime, datetime | None] = {}
        # Times as the driver returns them (SQLite: text), each parsed once by the
        # column type's own processor: an answer's rows share a few collection times.
        dialect = engine.dialect
        self._parse = compliance_findings.c.collected_at.type.dialect_impl(
            dialect
        ).result_processor(dialect, None)
        self._raw_moments: dict[Any, datetime | None] = {}

    def _value(self, text: str | None) -> Any:
        if text is None:
            return None
        try:
            return self._values[text]
        except KeyError:
            value = self._values[text] = _value(text)
            return value

    def _moment(self, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            return self._moments[value]
        except KeyError:
            aware = self._moments[value] = _aware(value)
            return aware

    def _raw_moment(self, raw: Any) -> datetime | None:
        if raw is None:
            return None
        try:
            return self._raw_moments[raw]
        except KeyError:
            value = self._parse(raw) if self._parse is not None else raw
            aware = self._raw_moments[raw] = _aware(value)
            return aware

    def _kept_findings(self, run: RunRef, rows: Iterable[Sequence[Any]]) -> list[Finding]:
        """Findings of a kept run's rows (`_KEPT_COLUMNS` in order)."""
        moment = self._raw_moment
        return [self._built(run, row[:8], moment(row[8]), None) for row in rows]

    def _stretch_findings(self, run: RunRef, rows: Iterable[Sequence[Any]]) -> list[Finding]:
        """Findings of a pruned run's stretches (`_STRETCH_COLUMNS` in order): collected
        when the stretch began or ended on this run, else unknown."""
        moment, run_id = self._raw_moment, run.run_id
        out: list[Finding] = []
        for row in rows:
            first, last, since_raw, until_raw = row[8:]
            since, until = moment(since_raw), moment(until_raw)
            at = since if run_id == first else until if run_id == last else None
            out.append(self._built(run, row[:8], at, (int(first), int(last), since, until)))
        return out

    def _built(
        self,
        run: RunRef,
        head: Sequence[Any],
        collected_at: datetime | None,
        stretch: tuple[int, int, datetime | None, datetime | None] | None,
    ) -> Finding:
        """One finding from a row's first eight values, built without the frozen
        dataclass's __init__ (a large answer is tens of thousands), each repeated
        value decoded once."""
        host, control, status, severity, expected, actual, message, waiver = head
        finding = object.__new__(Finding)
        finding.__dict__.update(
            run=run,
            host=host,
            control=control,
            status=status,
            severity=severity,
            expected=self._value(expected),
            actual=self._value(actual),
            message=message or "",
            waiver=waiver,
            collected_at=collected_at,
            stretch=stretch,
        )
        return finding

    def _holding(
        self,
        run: RunRef,
        statuses: Collection[str],
        *,
        severity: str | None = None,
        control: str | None = None,
        keyed: bool = False,
    ) -> tuple[Any, list[Any]]:
        """The table of the run's failures and the conditions that pick them (of one
        severity, of one control, if given): its findings while kept, the stretches
        holding it once pruned.

        The stretches holding a run are found by length class (`holding_run`: a few
        bounded index ranges), unless a narrower index bounds the search already:
        one control's stretches (by control, last run), or (`keyed`) a lookup that
        also names the host and control, as drift's comparison does (one probe of
        the (env, host, control, last_run, ...) index: on SQLite a covering one,
        which also holds the status and actual value drift compares, migration 13).
        """
        if run.pruned:
            s = compliance_stretches.alias()
            where = [] if control is None else [s.c.control == control]
            if control is not None or keyed:
                where += [s.c.env == self.env, s.c.last_run >= run.run_id]
                where.append(s.c.first_run <= run.run_id)
                if severity is not None:
                    where.append(s.c.severity == severity)
            else:
                where.append(holding_run(s, self.env, run.run_id, severity))
            return s, [*where, s.c.status.in_(list(statuses))]
        f = compliance_findings.alias()
        where = [f.c.run_id == run.run_id]
        if severity is not None:
            where.append(f.c.severity == severity)
        if control is not None:
            where.append(f.c.control == control)
        return f, [*where, f.c.status.in_(list(statuses))]

    def _select(self, run: RunRef, table: Any) -> Any:
        """The columns a finding is built of (times as the driver returns them)."""
        names = _STRETCH_COLUMNS if run.pruned else _KEPT_COLUMNS
        return sa.select(
            *(sa.type_coerce(table.c[n], sa.String) if n in _TIMES else table.c[n] for n in names)
        )

    def _build(self, run: RunRef, rows: Iterable[Sequence[Any]]) -> list[Finding]:
        return self._stretch_findings(run, rows) if run.pruned else self._kept_findings(run, rows)

    def _answer(self, run: RunRef, query: Any) -> list[Finding]:
        """The findings of `query` over `run`'s failures, on a connection of its own."""
        with self.engine.connect() as conn:
            return self._build(run, conn.execute(query))

    def _both(
        self, first_run: RunRef, first: Any, second_run: RunRef, second: Any
    ) -> tuple[list[Finding], list[Finding]]:
        """Two independent questions' findings, asked at once on two connections.

        Each is a few hundred thousand index probes; both drivers step them with the
        GIL released, so on a control node of two cores or more the two sides of
        `drift` take about as long as the slower one, not as the two together. An
        engine whose connections are one and the same (an in-memory SQLite store, a
        static pool) asks them one after the other, as two threads could not share it.
        """
        if isinstance(self.engine.pool, (sa.pool.SingletonThreadPool, sa.pool.StaticPool)):
            return self._answer(first_run, first), self._answer(second_run, second)
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="drift") as pool:
            one = pool.submit(self._answer, first_run, first)
            two = pool.submit(self._answer, second_run, second)
            return one.result(), two.result()

    def drift(
        self, before: RunRef, after: RunRef, statuses: Collection[str] = FAILING
    ) -> tuple[list[Finding], list[Finding], set[str] | None]:
        """What differs between two runs' failures, compared in the database.

        Returns the later run's failures the earlier one did not have the same way
        (status and actual value), by host; the earlier run's failures the later one
        does not have at all, by host; and which of those hosts the later run
        audited (None once its host detail was pruned).

        The two sides (what appeared, what is gone) are independent questions and are
        asked at once, each on a connection of its own (`_both`), so each reads its
        own snapshot (on SQLite in WAL mode, as each statement did already: none of
        them ran in one read transaction). Both read recorded runs only, which change
        only by prune (their findings folded into stretches); whether each run is
        pruned was decided before (`RunRef.pruned`), as for any other question.
        """
        a, a_where = self._holding(after, statuses)
        b, b_where = self._holding(before, statuses)
        b2, b2_where = self._holding(before, statuses, keyed=True)
        same = sa.select(sa.literal(1)).where(
            *b2_where,
            b2.c.host == a.c.host,
            b2.c.control == a.c.control,
            b2.c.status == a.c.status,
            b2.c.actual.is_not_distinct_from(a.c.actual),
        )
        new_query = (
            self._select(after, a).where(*a_where, ~same.exists()).order_by(a.c.host, a.c.control)
        )
        a2, a2_where = self._holding(after, statuses, keyed=True)
        still = sa.select(sa.literal(1)).where(
            *a2_where, a2.c.host == b.c.host, a2.c.control == b.c.control
        )
        gone_query = (
            self._select(before, b).where(*b_where, ~still.exists()).order_by(b.c.host, b.c.control)
        )
        appeared, gone = self._both(after, new_query, before, gone_query)
        audited: set[str] | None = set()
        if gone:
            h = compliance_hosts
            with self.engine.connect() as conn:
                any_host = conn.execute(
                    sa.select(h.c.host).where(h.c.run_id == after.run_id).limit(1)
                ).first()
                if any_host is None:
                    audited = None
                else:
                    found: set[str] = set()
                    names = sorted({f.host for f in gone})
                    for start in range(0, len(names), 500):  # bounded IN lists
                        chunk = names[start : start + 500]
                        found.update(
                            conn.execute(
                                sa.select(h.c.host).where(
                                    h.c.run_id == after.run_id, h.c.host.in_(chunk)
                                )
                            ).scalars()
                        )
                    audited = found
        return appeared, gone, audited

    def _runs(self, *, since: datetime | None = None, until: datetime | None = None) -> Any:
        query = (
            sa.select(compliance_runs, compliance_run_detail.c.pruned_at)
            .outerjoin(
                compliance_run_detail, compliance_run_detail.c.run_id == compliance_runs.c.id
            )
            .where(compliance_runs.c.env == self.env, compliance_runs.c.status == "done")
        )
        if since is not None:
            query = query.where(compliance_runs.c.started_at >= since)
        if until is not None:
            query = query.where(compliance_runs.c.started_at < until)
        return query

    @staticmethod
    def _ref(row: RowMapping) -> RunRef:
        started = _aware(row["started_at"])
        assert started is not None
        return RunRef(
            run_id=int(row["id"]),
            started_at=started,
            standard_id=row["standard_id"],
            standard_version=row["standard_version"],
            selection=row["selection"],
            pruned=row["pruned_at"] is not None,
        )

    def run_as_of(self, moment: datetime, standard_id: str | None = None) -> RunRef | None:
        """The audit in force at `moment`: the newest finished run started before it."""
        query = self._runs(until=moment).order_by(
            compliance_runs.c.started_at.desc(), compliance_runs.c.id.desc()
        )
        if standard_id is not None:
            query = query.where(compliance_runs.c.standard_id == standard_id)
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).mappings().first()
        return None if row is None else self._ref(row)

    def run_refs(self, since: datetime | None, until: datetime | None) -> list[RunRef]:
        query = self._runs(since=since, until=until).order_by(compliance_runs.c.started_at)
        with self.engine.connect() as conn:
            return [self._ref(r) for r in conn.execute(query).mappings()]

    def _finding(
        self,
        run: RunRef,
        row: RowMapping,
        collected: datetime | None = None,
        stretch: tuple[int, int, datetime | None, datetime | None] | None = None,
    ) -> Finding:
        """A finding of a kept run's row, or (with `stretch`) of a pruned run's stretch,
        collected as `stretch` knows it."""
        head = [row[column] for column in _KEPT_COLUMNS[:8]]
        at = collected if stretch is not None else self._moment(row["collected_at"])
        return self._built(run, head, at, stretch)

    def _stretched(self, run: RunRef, row: RowMapping) -> Finding:
        first, last = int(row["first_run"]), int(row["last_run"])
        since, until = self._moment(row["first_collected"]), self._moment(row["last_collected"])
        collected = since if run.run_id == first else until if run.run_id == last else None
        return self._finding(run, row, collected, (first, last, since, until))

    def failing(
        self,
        run: RunRef,
        *,
        control: str | None = None,
        critical: bool = False,
        statuses: Collection[str] = FAILING,
    ) -> list[Finding]:
        """The run's hosts failing `control` (or any critical control), by host."""
        severity = "critical" if critical else None
        table, where = self._holding(run, statuses, severity=severity, control=control)
        query = self._select(run, table).where(*where).order_by(table.c.host, table.c.control)
        with self.engine.connect() as conn:
            return self._build(run, conn.execute(query))

    def _host_stretches(self, host: str, runs: list[RunRef]) -> dict[int, list[Finding]]:
        pruned = [r for r in runs if r.pruned]
        if not pruned:
            return {}
        s = compliance_stretches
        low, high = min(r.run_id for r in pruned), max(r.run_id for r in pruned)
        query = sa.select(s).where(
            s.c.host == host, s.c.env == self.env, s.c.last_run >= low, s.c.first_run <= high
        )
        found: dict[int, list[Finding]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(s.c.control)).mappings().all()
        for run in pruned:
            for row in rows:
                if row["first_run"] <= run.run_id <= row["last_run"]:
                    found.setdefault(run.run_id, []).append(self._stretched(run, row))
        return found

    def host_history(self, host: str, runs: list[RunRef]) -> list[HostLine]:
        """The host in each of `runs` it was recorded in (its findings, and its verdict
        while the run's host detail is kept)."""
        if not runs:
            return []
        by_id = {r.run_id: r for r in runs}
        ids = list(by_id)
        h, f = compliance_hosts, compliance_findings
        with self.engine.connect() as conn:
            verdicts = {
                int(row["run_id"]): row
                for row in conn.execute(
                    sa.select(
                        h.c.run_id, h.c.status, h.c.score, h.c.compliant, h.c.collected_at
                    ).where(h.c.host == host, h.c.run_id.in_(ids))
                ).mappings()
            }
            found: dict[int, list[Finding]] = {}
            for row in conn.execute(
                sa.select(f).where(f.c.host == host, f.c.run_id.in_(ids)).order_by(f.c.control)
            ).mappings():
                run_id = int(row["run_id"])
                found.setdefault(run_id, []).append(self._finding(by_id[run_id], row))
        for run_id, stretched in self._host_stretches(host, runs).items():
            found.setdefault(run_id, []).extend(stretched)
        lines: list[HostLine] = []
        for run in runs:
            verdict = verdicts.get(run.run_id)
            findings = tuple(found.get(run.run_id, ()))
            if verdict is None and not findings:
                continue  # not audited in that run (or pruned with nothing to keep)
            lines.append(
                HostLine(
                    run=run,
                    status=verdict["status"] if verdict else None,
                    score=verdict["score"] if verdict else None,
                    compliant=bool(verdict["compliant"]) if verdict else None,
                    collected_at=(
                        _aware(verdict["collected_at"])
                        if verdict
                        else findings[0].collected_at
                        if findings
                        else None
                    ),
                    findings=findings,
                )
            )
        return lines

    def control_history(self, control: str, runs: list[RunRef]) -> list[ControlLine]:
        """The control's status counts in each of `runs` (from the per-run totals)."""
        if not runs:
            return []
        by_id = {r.run_id: r for r in runs}
        t = compliance_control_totals
        with self.engine.connect() as conn:
            rows = {
                int(row["run_id"]): row
                for row in conn.execute(
                    sa.select(t).where(t.c.control == control, t.c.run_id.in_(list(by_id)))
                ).mappings()
            }
        return [
            ControlLine(
                run=run,
                severity=rows[run.run_id]["severity"],
                counts={s: int(rows[run.run_id][COUNT_COLUMNS[s]]) for s in STATUSES},
            )
            for run in runs
            if run.run_id in rows
        ]

    def hosts_in(self, run: RunRef, hosts: Collection[str]) -> set[str] | None:
        """Which of `hosts` the run recorded; None once its host detail was pruned."""
        h = compliance_hosts
        names = sorted(hosts)
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(names), 500):  # bounded IN lists
                chunk = names[start : start + 500]
                present = conn.execute(
                    sa.select(h.c.host).where(h.c.run_id == run.run_id, h.c.host.in_(chunk))
                ).scalars()
                found.update(str(x) for x in present)
            if found:
                return found
            any_host = conn.execute(
                sa.select(h.c.host).where(h.c.run_id == run.run_id).limit(1)
            ).first()
        return found if any_host is not None else None

    def knows_control(self, control: str) -> bool:
        t = compliance_control_totals
        with self.engine.connect() as conn:
            return (
                conn.execute(sa.select(t.c.run_id).where(t.c.control == control).limit(1)).first()
                is not None
            )

    def knows_host(self, host: str) -> bool:
        with self.engine.connect() as conn:
            for table in (compliance_hosts, compliance_findings, compliance_stretches):
                row = conn.execute(
                    sa.select(sa.literal(1)).select_from(table).where(table.c.host == host).limit(1)
                ).first()
                if row is not None:
                    return True
        return False


__all__ = ["FAILING", "ComplianceQueries", "ControlLine", "Finding", "HostLine", "RunRef"]
