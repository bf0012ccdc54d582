"""`provision compliance query`: the auditor's questions, answered from recorded evidence.

Four questions, none of which runs an audit:

* `failing`: hosts failing a control (or any critical control) as of a date;
* `host_history`: one host over a period;
* `control_history`: one control over a period;
* `drifted`: what changed between the audits in force on two dates.

"As of a date" means the audit in force at the end of that day (UTC): the
newest finished run of the environment started before then. Its findings say
what each host failed, with the expected and actual values, when the evidence
was collected and under which standard version. The answer names that run, so
a reader sees which audit (and which selection) it rests on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from provision.errors import InputError, StateError
from provision.infra.store import open_store
from provision.infra.store.compliance_queries import (
    ComplianceQueries,
    ControlLine,
    Finding,
    HostLine,
    RunRef,
)
from provision.infra.store.compliance_records import ComplianceRecords
from provision.inventory.targets import select_targets
from provision.settings import Settings


def parse_day(text: str, option: str) -> date:
    """A day given on the command line (YYYY-MM-DD); InputError naming the option."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"{option} {text!r} is not a date",
            hint=f"write it as YYYY-MM-DD, e.g. {option} 2026-06-30",
        ) from None


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def day_end(day: date) -> datetime:
    """The first moment after `day` (UTC): runs started before it count for the day."""
    return day_start(day) + timedelta(days=1)


@dataclass(frozen=True)
class FailingAnswer:
    as_of: date
    run: RunRef
    findings: tuple[Finding, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "run": self.run.as_dict(),
            "findings": [f.as_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class DriftAnswer:
    before: RunRef
    after: RunRef
    #: Failing in the later audit, not in the earlier one.
    new: tuple[Finding, ...]
    #: Failing in the earlier audit; in the later one the host passed (or, once that
    #: run's host detail is pruned, is not known to have been audited: `unknown`).
    fixed: tuple[Finding, ...]
    unknown: tuple[Finding, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.before.as_dict(),
            "to": self.after.as_dict(),
            "new": [f.as_dict() for f in self.new],
            "fixed": [f.as_dict() for f in self.fixed],
            "unknown": [f.as_dict() for f in self.unknown],
        }


def _selected(settings: Settings, selection: str) -> set[str] | None:
    if not selection or selection == "all":
        return None
    _, hosts = select_targets(settings.inventory_path, selection)
    return set(hosts)


def _queries(records: ComplianceRecords, env: str) -> ComplianceQueries:
    records.backfill()
    return ComplianceQueries(records.engine, env)


def _run_as_of(queries: ComplianceQueries, day: date, env: str) -> RunRef:
    run = queries.run_as_of(day_end(day))
    if run is None:
        raise StateError(
            f"no finished compliance run of environment {env!r} started on or before {day}",
            hint="list the runs with provision compliance runs",
        )
    return run


def _check_control(queries: ComplianceQueries, control: str) -> None:
    if not queries.knows_control(control):
        raise InputError(
            f"no recorded compliance run judged a control {control!r}",
            hint="control ids are as in standards/*.yml (e.g. SSH-001); "
            "see provision standards show",
        )


def failing(
    settings: Settings,
    *,
    as_of: date,
    control: str | None = None,
    critical: bool = False,
    selection: str = "",
) -> FailingAnswer:
    """Hosts failing `control` (or any critical control) in the audit in force on `as_of`."""
    if (control is None) == (not critical):
        raise InputError(
            "say which failures: --control ID or --critical", hint="one of the two, not both"
        )
    hosts = _selected(settings, selection)
    with open_store(settings) as store:
        queries = _queries(ComplianceRecords(store), settings.env)
        if control is not None:
            _check_control(queries, control)
        run = _run_as_of(queries, as_of, settings.env)
        found = queries.failing(run, control=control, critical=critical)
    if hosts is not None:
        found = [f for f in found if f.host in hosts]
    return FailingAnswer(as_of, run, tuple(found))


def _period(queries: ComplianceQueries, since: date | None, until: date | None) -> list[RunRef]:
    if since is not None and until is not None and until < since:
        raise InputError(
            f"--until {until} is before --since {since}", hint="give the earlier day to --since"
        )
    return queries.run_refs(day_start(since) if since else None, day_end(until) if until else None)


def host_history(
    settings: Settings, host: str, *, since: date | None = None, until: date | None = None
) -> list[HostLine]:
    with open_store(settings) as store:
        queries = _queries(ComplianceRecords(store), settings.env)
        if not queries.knows_host(host):
            raise InputError(
                f"no recorded compliance run holds a host {host!r}",
                hint="host names are as in the inventory; see provision inventory show",
            )
        return queries.host_history(host, _period(queries, since, until))


def control_history(
    settings: Settings, control: str, *, since: date | None = None, until: date | None = None
) -> list[ControlLine]:
    with open_store(settings) as store:
        queries = _queries(ComplianceRecords(store), settings.env)
        _check_control(queries, control)
        return queries.control_history(control, _period(queries, since, until))


def drifted(settings: Settings, *, since: date, until: date, selection: str = "") -> DriftAnswer:
    """What failed newly, and what stopped failing, between the audits in force on two days."""
    if until < since:
        raise InputError(
            f"--to {until} is before --from {since}", hint="give the earlier day to --from"
        )
    hosts = _selected(settings, selection)
    with open_store(settings) as store:
        queries = _queries(ComplianceRecords(store), settings.env)
        before = _run_as_of(queries, since, settings.env)
        after = _run_as_of(queries, until, settings.env)
        # Compared in the database; only what differs is read.
        appeared, gone, audited = queries.drift(before, after)
    fixed: Sequence[Finding]
    if audited is None:  # the later run's host list was pruned
        fixed, unknown = [], gone
    else:
        fixed = [f for f in gone if f.host in audited]
        unknown = [f for f in gone if f.host not in audited]
    if hosts is not None:
        appeared = [f for f in appeared if f.host in hosts]
        fixed = [f for f in fixed if f.host in hosts]
        unknown = [f for f in unknown if f.host in hosts]
    return DriftAnswer(before, after, tuple(appeared), tuple(fixed), tuple(unknown))


__all__ = [
    "DriftAnswer",
    "FailingAnswer",
    "control_history",
    "day_end",
    "day_start",
    "drifted",
    "failing",
    "host_history",
    "parse_day",
]
