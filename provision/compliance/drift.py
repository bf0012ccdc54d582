"""Drift: what changed per host and control between two compliance runs.

`compare_hosts` is pure: two host reports in, the changes out. `drift` picks the
runs from the store (the latest run of the environment, and an earlier one by
id or date) and walks both runs' host reports side by side in host order, so
memory stays bounded whatever the fleet's size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from provision.compliance.model import (
    ERROR,
    FAIL,
    NO_REPORT,
    ComplianceRunInfo,
    HostReport,
)
from provision.errors import InputError, StateError
from provision.settings import Settings
from provision.store import open_store
from provision.store.compliance_records import ComplianceRecords

#: Statuses whose actual values are evidence worth comparing.
_EVALUATED = frozenset({"pass", "fail", "error", "waived"})
#: A change into one of these is new drift (what `--fail-on-drift` and timers act on).
BAD = frozenset({FAIL, ERROR, NO_REPORT})


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

    @property
    def is_new_drift(self) -> bool:
        """A control that got worse: into fail, error or no_report."""
        return self.kind == "status" and self.after in BAD and self.before not in BAD

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
        }


@dataclass(frozen=True)
class DriftReport:
    run: ComplianceRunInfo
    since: ComplianceRunInfo
    changes: tuple[Change, ...]
    #: Hosts in only one of the two runs.
    added_hosts: tuple[str, ...] = ()
    removed_hosts: tuple[str, ...] = ()

    @property
    def new_drift(self) -> list[Change]:
        return [c for c in self.changes if c.is_new_drift]

    def hosts(self) -> list[str]:
        return sorted({c.host for c in self.changes})

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.id,
            "since": self.since.id,
            "run_started_at": self.run.started_at.isoformat(),
            "since_started_at": self.since.started_at.isoformat(),
            "changes": [c.as_dict() for c in self.changes],
            "new_drift": len(self.new_drift),
            "added_hosts": list(self.added_hosts),
            "removed_hosts": list(self.removed_hosts),
        }


def compare_hosts(before: HostReport, after: HostReport) -> list[Change]:
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
            changes.extend(compare_hosts(a, b))
    return DriftReport(new, old, tuple(changes), tuple(added), tuple(removed))


def drift(settings: Settings, *, since: str | None = None, run: int | None = None) -> DriftReport:
    """What changed between the latest run of the environment (or `run`) and an earlier one.

    `since` is a run id, or a date: the newest finished run that started before
    it. Without `since`, the finished run before the latest, of the same standard.
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
            earlier = records.latest_run(
                latest.env, before=latest.started_at, standard_id=latest.standard_id
            )
        else:
            wanted = parse_since(since)
            if isinstance(wanted, int):
                earlier = records.get_run(wanted)
            else:
                earlier = records.latest_run(
                    latest.env, before=wanted, standard_id=latest.standard_id
                )
        if earlier is None or earlier.id == latest.id:
            raise StateError(
                f"there is no earlier compliance run to compare run {latest.id} with",
                hint="drift needs two runs: run another audit later, or give --since RUN",
            )
        if earlier.standard_id != latest.standard_id:
            raise InputError(
                f"runs {earlier.id} and {latest.id} judged different standards "
                f"({earlier.standard_id}, {latest.standard_id})",
                hint="compare runs of one standard",
            )
        return drift_between(records, earlier.id, latest.id)
