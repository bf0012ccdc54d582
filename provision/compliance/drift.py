"""Drift: what changed per host and control since that host's own last evidence.

`compare_hosts` is pure: two host reports in, the changes out. `drift` takes a
run (the latest of the environment by default) and compares each of its hosts
with that host's newest earlier report that holds evidence, from any finished
run of the same environment and standard whatever its selection: a one-host
audit between two fleet audits neither hides the other hosts' drift nor is
compared with hosts it did not audit. `--since RUN|DATE` moves the point
compared with (each host's last evidence as of that run or date). The run's
hosts are read in host order and their baselines fetched a batch at a time, so
memory stays bounded whatever the fleet's size.

A change has a direction: `worse` (into fail, error or no_report from anything
else: new drift, what `--fail-on-drift`, `compliance drift`'s exit 6 and the
notices' "newly failing" count), `repaired` (from fail, error or no_report to
pass), or `other` (a status that moved sideways, such as pass to unreachable or
fail to error, or the same status with another actual value). A repair alone is
not drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from provision.errors import InputError, StateError
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.model import (
    ERROR,
    FAIL,
    NO_REPORT,
    PASS,
    ComplianceRunInfo,
    HostReport,
)
from provision.settings import Settings

#: Statuses whose actual values are evidence worth comparing.
_EVALUATED = frozenset({"pass", "fail", "error", "waived"})
#: A change into one of these is new drift (what `--fail-on-drift` and timers act on).
BAD = frozenset({FAIL, ERROR, NO_REPORT})
#: Directions of a change.
WORSE, REPAIRED, OTHER = "worse", "repaired", "other"
#: Hosts whose earlier evidence is fetched per query.
BASELINE_BATCH = 500


@dataclass(frozen=True)
class Change:
    """One control on one host that is not what it was."""

    host: str
    control: str
    severity: str
    #: status: the status changed; actual: same status, different actual value.
    kind: str
    before: str
    after: str
    before_actual: Any = None
    after_actual: Any = None
    message: str = ""
    #: The run the host was compared with (its last evidence).
    since_run: int | None = None

    @property
    def is_new_drift(self) -> bool:
        """A control that got worse: into fail, error or no_report."""
        return self.kind == "status" and self.after in BAD and self.before not in BAD

    @property
    def is_repaired(self) -> bool:
        """A control that was failing (fail, error, no_report) and passes now."""
        return self.kind == "status" and self.before in BAD and self.after == PASS

    @property
    def direction(self) -> str:
        if self.is_new_drift:
            return WORSE
        return REPAIRED if self.is_repaired else OTHER

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "control": self.control,
            "severity": self.severity,
            "kind": self.kind,
            "before": self.before,
            "after": self.after,
            "before_actual": self.before_actual,
            "after_actual": self.after_actual,
            "message": self.message,
            "new_drift": self.is_new_drift,
            "direction": self.direction,
            "since_run": self.since_run,
        }


@dataclass(frozen=True)
class DriftReport:
    run: ComplianceRunInfo
    #: The newest run a host was compared with (the whole of it, for two-run drift).
    since: ComplianceRunInfo
    changes: tuple[Change, ...]
    #: Hosts of `run` with no earlier evidence.
    added_hosts: tuple[str, ...] = ()
    #: Hosts of the previous run of the same selection that `run` no longer has.
    removed_hosts: tuple[str, ...] = ()
    #: Every run some host was compared with, oldest first.
    compared_with: tuple[int, ...] = ()

    @property
    def new_drift(self) -> list[Change]:
        return [c for c in self.changes if c.is_new_drift]

    @property
    def repaired(self) -> list[Change]:
        return [c for c in self.changes if c.is_repaired]

    def hosts(self) -> list[str]:
        return sorted({c.host for c in self.changes})

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.id,
            "since": self.since.id,
            "run_started_at": self.run.started_at.isoformat(),
            "since_started_at": self.since.started_at.isoformat(),
            "compared_with": list(self.compared_with),
            "changes": [c.as_dict() for c in self.changes],
            "new_drift": len(self.new_drift),
            "repaired": len(self.repaired),
            "added_hosts": list(self.added_hosts),
            "removed_hosts": list(self.removed_hosts),
        }


def compare_hosts(
    before: HostReport, after: HostReport, since_run: int | None = None
) -> list[Change]:
    """The controls whose status or actual value differ between two reports of one host."""
    old = {r.control: r for r in before.results}
    changes: list[Change] = []
    for new in after.results:
        was = old.get(new.control)
        if was is None:
            continue
        if was.status != new.status:
            kind = "status"
        elif new.status in _EVALUATED and was.actual != new.actual:
            kind = "actual"
        else:
            continue
        changes.append(
            Change(
                host=after.host,
                control=new.control,
                severity=new.severity,
                kind=kind,
                before=was.status,
                after=new.status,
                before_actual=was.actual,
                after_actual=new.actual,
                message=new.message,
                since_run=since_run,
            )
        )
    return changes


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")


def parse_since(text: str) -> int | datetime:
    """A run id, or a date/time (YYYY-MM-DD, or ISO 8601; UTC unless it says)."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    if _DATE.match(value):
        try:
            if len(value) == 10:
                return datetime.combine(datetime.fromisoformat(value).date(), time(), UTC)
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise InputError(
        f"--since {text!r} is neither a run id nor a date",
        hint="give a compliance run id (provision compliance runs) or a date: 2026-11-27",
    )


def _merge(
    before: Iterator[HostReport], after: Iterator[HostReport]
) -> Iterator[tuple[HostReport | None, HostReport | None]]:
    """Pairs of reports of the same host from two host-ordered streams."""
    a, b = next(before, None), next(after, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a.host < b.host):
            yield a, None
            a = next(before, None)
        elif a is None or b.host < a.host:
            yield None, b
            b = next(after, None)
        else:
            yield a, b
            a, b = next(before, None), next(after, None)


def drift_between(records: ComplianceRecords, since: int, run: int) -> DriftReport:
    """The changes from run `since` to run `run`."""
    old, new = records.get_run(since), records.get_run(run)
    changes: list[Change] = []
    added: list[str] = []
    removed: list[str] = []
    for a, b in _merge(records.host_reports(since), records.host_reports(run)):
        if a is None and b is not None:
            added.append(b.host)
        elif b is None and a is not None:
            removed.append(a.host)
        elif a is not None and b is not None:
            changes.extend(compare_hosts(a, b, since))
    return DriftReport(new, old, tuple(changes), tuple(added), tuple(removed), (since,))


def drift_from_evidence(
    records: ComplianceRecords,
    run: ComplianceRunInfo,
    *,
    before: datetime,
    until_run: int | None = None,
) -> DriftReport:
    """Each host of `run` against its own last evidence before `before` (or in `until_run`).

    Raises StateError when the environment has no earlier finished run of the
    standard at all (nothing to compare with).
    """
    previous = records.latest_run(run.env, before=before, standard_id=run.standard_id)
    if until_run is not None:
        previous = records.get_run(until_run)
    if previous is None or previous.id == run.id:
        raise StateError(
            f"there is no earlier compliance run to compare run {run.id} with",
            hint="drift needs two runs: run another audit later, or give --since RUN",
        )
    changes: list[Change] = []
    added: list[str] = []
    names: set[str] = set()
    used: set[int] = set()
    batch: list[HostReport] = []

    def compare(reports: list[HostReport]) -> None:
        found = records.last_evidence(
            run.env,
            run.standard_id,
            [r.host for r in reports],
            before=before,
            until_run=until_run,
        )
        for report in reports:
            if report.host not in found:
                added.append(report.host)
                continue
            since_run, earlier = found[report.host]
            used.add(since_run)
            changes.extend(compare_hosts(earlier, report, since_run))

    for report in records.host_reports(run.id):
        names.add(report.host)
        batch.append(report)
        if len(batch) >= BASELINE_BATCH:
            compare(batch)
            batch = []
    if batch:
        compare(batch)
    # "Gone" only means something against a run that covered the same ground.
    scope = records.latest_run(
        run.env, before=before, selection=run.selection, standard_id=run.standard_id
    )
    if until_run is not None and previous.selection == run.selection:
        scope = previous
    removed = [] if scope is None else [h for h in records.host_names(scope.id) if h not in names]
    newest = records.get_run(max(used)) if used else previous
    return DriftReport(
        run, newest, tuple(changes), tuple(added), tuple(removed), tuple(sorted(used))
    )


def drift(settings: Settings, *, since: str | None = None, run: int | None = None) -> DriftReport:
    """What changed on each host of the latest run of the environment (or `run`).

    Each host is compared with its own last evidence: its newest report with
    evidence from an earlier finished run of the same standard, whatever that
    run's selection. `since` is a run id (each host's last evidence as of that
    run: the run itself, or earlier ones for hosts it did not have) or a date
    (each host's last evidence from runs started before it).
    """
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        if run is not None:
            latest = records.get_run(run)
        else:
            found = records.latest_run(settings.env)
            if found is None:
                raise StateError(
                    f"there is no finished compliance run in env {settings.env}",
                    hint="run one with provision compliance run",
                )
            latest = found
        if since is None:
            return drift_from_evidence(records, latest, before=latest.started_at)
        wanted = parse_since(since)
        if not isinstance(wanted, int):
            return drift_from_evidence(records, latest, before=min(wanted, latest.started_at))
        earlier = records.get_run(wanted)
        if earlier.id == latest.id or earlier.started_at > latest.started_at:
            raise StateError(
                f"run {earlier.id} is not earlier than run {latest.id}",
                hint="give --since an earlier run (provision compliance runs)",
            )
        if earlier.standard_id != latest.standard_id:
            raise InputError(
                f"runs {earlier.id} and {latest.id} judged different standards "
                f"({earlier.standard_id}, {latest.standard_id})",
                hint="compare runs of one standard",
            )
        if earlier.env != latest.env:
            raise InputError(
                f"runs {earlier.id} and {latest.id} are of different environments "
                f"({earlier.env}, {latest.env})",
                hint="compare runs of one environment",
            )
        return drift_from_evidence(records, latest, before=earlier.started_at, until_run=earlier.id)
