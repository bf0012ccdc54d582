"""Scores from compliance results: per host here; roll-ups along the admin tree too.

Pure functions over `provision.model.compliance.model` data. A host's score is
pass / (pass + fail + error) over its applicable controls; waived, unreachable,
no_report and not_applicable results do not count in it. Any failing critical
control makes the host non-compliant whatever its score.

Coverage has one definition, here (`is_fresh`, `coverage`), used by the roll-ups
and by the store's run summaries alike: the share of a place's (or a run's)
hosts whose evidence was collected less than a freshness window before a given
moment. A report's summary measures it when the report is written; a trend
measures each run at its own start (`coverage_moment`), so that the points of
one line are one quantity whenever the report is written.
"""

from __future__ import annotations

import heapq
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from provision.errors import InputError
from provision.model.compliance.model import (
    ERROR,
    FAIL,
    HOST_NO_REPORT,
    HOST_REPORTED,
    HOST_UNREACHABLE,
    NO_REPORT,
    PASS,
    PLACE_LEVELS,
    STATUSES,
    ComplianceRunInfo,
    ControlResult,
    HostReport,
)

#: Evidence older than this does not count as coverage unless the caller says otherwise.
DEFAULT_FRESHNESS = timedelta(days=1)


def is_fresh(collected_at: datetime | None, at: datetime, freshness: timedelta) -> bool:
    """Whether evidence collected at `collected_at` counts as coverage at `at`.

    No evidence is never fresh; evidence from after `at` (a host's clock, or a run
    measured at its start) is.
    """
    return collected_at is not None and at - collected_at < freshness


def coverage(fresh: int, hosts: int) -> float | None:
    """The share of `hosts` with fresh evidence (None when there is no host to cover)."""
    return fresh / hosts if hosts else None


def coverage_moment(run: ComplianceRunInfo) -> datetime:
    """When a run's own coverage is measured for a trend: its start.

    Everything the run collected is younger than that moment plus the run's
    length, so a run's own evidence always counts, however long ago it ran.
    """
    return run.started_at


@dataclass(frozen=True)
class HostScore:
    #: pass / (pass + fail + error), from 0.0 to 1.0; None when nothing counted
    #: (an unreachable host, or one whose every control was waived).
    score: float | None
    #: True only for a reported host with no fail, error or no_report result.
    compliant: bool
    #: Ids of the critical controls that failed.
    critical_failures: tuple[str, ...] = ()


def host_score(report: HostReport) -> HostScore:
    """The score and verdict of one host's audit."""
    return _scan(report)[0]


def _scan(report: HostReport) -> tuple[HostScore, list[int], list[ControlResult]]:
    """One pass over a host's results: its score, its status counts (STATUSES order), and
    the results that failed or errored (roll-ups count them per control)."""
    counts = dict.fromkeys(STATUSES, 0)
    critical: list[str] = []
    failing: list[ControlResult] = []
    for result in report.results:
        status = result.status
        counts[status] += 1
        if status in (FAIL, ERROR):
            failing.append(result)
            if status == FAIL and result.severity == "critical":
                critical.append(result.control)
    scored = counts[PASS] + counts[FAIL] + counts[ERROR]
    compliant = (
        report.status == HOST_REPORTED
        and counts[FAIL] == 0
        and counts[ERROR] == 0
        and counts[NO_REPORT] == 0
    )
    score = HostScore(
        score=counts[PASS] / scored if scored else None,
        compliant=compliant,
        critical_failures=tuple(critical),
    )
    return score, [counts[s] for s in STATUSES], failing


# -- roll-ups along the administrative tree ----------------------------------------

#: The levels a roll-up is computed at: the whole run, then the tree top down.
ROLLUP_LEVELS: tuple[str, ...] = ("all", *PLACE_LEVELS)

#: The name a missing place takes in a roll-up (a lab host has no district).
UNPLACED = "(none)"

#: Red/amber/green thresholds on the share of reported hosts that are compliant.
GREEN_AT = 0.95
AMBER_AT = 0.80
#: Below this coverage a place is at best amber: too few hosts reported to judge.
COVERAGE_AMBER_BELOW = 0.90


class MixedStandardsError(InputError):
    """Results judged by different standards (or versions) were given to one roll-up."""


@dataclass(frozen=True)
class ControlTally:
    """How many hosts failed or errored on one control."""

    control: str
    fail: int
    error: int

    @property
    def total(self) -> int:
        return self.fail + self.error

    def as_dict(self) -> dict[str, Any]:
        return {"control": self.control, "fail": self.fail, "error": self.error}


@dataclass(frozen=True)
class Rollup:
    """The hosts of one place (or of the whole run, level "all"), summed up."""

    level: str
    #: Place names from the division down to this place; () for level "all".
    path: tuple[str, ...]
    hosts: int
    #: Hosts whose evidence was collected and evaluated (status reported).
    reported: int
    unreachable: int
    #: Hosts reached whose evidence could not be collected (host status error).
    errored: int
    #: Hosts in pull mode with no report within their keep-last window (host status
    #: no_report): neither reported nor errored, never a pass; they lower coverage.
    no_report: int
    #: Reported hosts with no fail, error or no_report result.
    compliant: int
    #: Hosts with at least one failing critical control.
    critical: int
    #: Median host score over the hosts that have one (None when none has).
    median_score: float | None
    lowest_score: float | None
    #: Hosts whose evidence is younger than the freshness window.
    fresh: int
    oldest_evidence: timedelta | None
    median_evidence: timedelta | None
    #: Control results by status, summed over the hosts.
    statuses: Mapping[str, int]
    #: The controls most hosts fail or error on, worst first.
    worst_controls: tuple[ControlTally, ...]

    @property
    def name(self) -> str:
        return self.path[-1] if self.path else "all"

    @property
    def coverage(self) -> float | None:
        """Share of the hosts with fresh evidence at `Rollups.now` (None for an empty place)."""
        return coverage(self.fresh, self.hosts)

    @property
    def compliant_share(self) -> float | None:
        """Share of the reported hosts that are compliant."""
        return self.compliant / self.reported if self.reported else None

    @property
    def rag(self) -> str:
        """ "green", "amber" or "red" for people; see docs/reports.md."""
        share = self.compliant_share
        if share is None or share < AMBER_AT:
            return "red"
        coverage = self.coverage or 0.0
        if share < GREEN_AT or coverage < COVERAGE_AMBER_BELOW:
            return "amber"
        return "green"

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "path": list(self.path),
            "name": self.name,
            "hosts": self.hosts,
            "reported": self.reported,
            "unreachable": self.unreachable,
            "errored": self.errored,
            "no_report": self.no_report,
            "compliant": self.compliant,
            "critical": self.critical,
            "median_score": self.median_score,
            "lowest_score": self.lowest_score,
            "fresh": self.fresh,
            "coverage": self.coverage,
            "oldest_evidence_seconds": _seconds(self.oldest_evidence),
            "median_evidence_seconds": _seconds(self.median_evidence),
            "statuses": dict(self.statuses),
            "worst_controls": [t.as_dict() for t in self.worst_controls],
            "rag": self.rag,
        }


def _seconds(age: timedelta | None) -> float | None:
    return None if age is None else age.total_seconds()


#: The PlaceCounts field each host status is counted in.
_HOST_KINDS = {
    HOST_REPORTED: "reported",
    HOST_UNREACHABLE: "unreachable",
    HOST_NO_REPORT: "no_report",
}


def host_kind(status: str) -> str:
    """The roll-up figure a host of `status` counts in: "reported", "unreachable",
    "no_report" (a pulled host silent past its window), else "errored"."""
    return _HOST_KINDS.get(status, "errored")


class PlaceCounts:
    """What one place of the tree accumulates over its hosts: counts per host status
    (reported, unreachable, errored, no_report),
    compliant and critical hosts, fresh evidence, one score per host, check statuses
    and failing or erroring controls. A place above is the sum of those below (`add`).
    Shared by the roll-up here and the store's place totals."""

    __slots__ = (
        "compliant",
        "critical",
        "errored",
        "errors",
        "fails",
        "fresh",
        "hosts",
        "no_report",
        "reported",
        "scores",
        "statuses",
        "unreachable",
    )

    def __init__(self) -> None:
        self.hosts = self.reported = self.unreachable = self.errored = self.no_report = 0
        self.compliant = self.critical = self.fresh = 0
        self.scores: list[float] = []
        self.statuses = [0] * len(STATUSES)
        self.fails: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def add(self, part: PlaceCounts) -> None:
        self.hosts += part.hosts
        self.reported += part.reported
        self.unreachable += part.unreachable
        self.errored += part.errored
        self.no_report += part.no_report
        self.compliant += part.compliant
        self.critical += part.critical
        self.fresh += part.fresh
        self.scores.extend(part.scores)
        self.statuses = [a + b for a, b in zip(self.statuses, part.statuses, strict=True)]
        self.fails.update(part.fails)
        self.errors.update(part.errors)


class _Tally(PlaceCounts):
    """A place's counts and the age of each host's evidence, in seconds."""

    __slots__ = ("ages",)

    def __init__(self) -> None:
        super().__init__()
        self.ages: list[float] = []


@dataclass(frozen=True)
class Rollups:
    """The roll-ups of one run at every level asked for."""

    run_id: int | None
    standard_id: str
    standard_version: str
    now: datetime
    freshness: timedelta
    #: level -> its places' roll-ups, ordered by path ("all" holds one).
    levels: Mapping[str, tuple[Rollup, ...]]

    @property
    def total(self) -> Rollup:
        return self.levels["all"][0]

    def at(self, level: str) -> tuple[Rollup, ...]:
        if level not in self.levels:
            raise InputError(f"no roll-up by {level}", hint="levels: " + ", ".join(self.levels))
        return self.levels[level]

    def as_dict(self) -> dict[str, Any]:
        return {
            "standard_id": self.standard_id,
            "standard_version": self.standard_version,
            "now": self.now.isoformat(),
            "freshness_seconds": self.freshness.total_seconds(),
            "levels": {level: [r.as_dict() for r in rows] for level, rows in self.levels.items()},
        }


class RollupBuilder:
    """Sums host reports up as they stream by: feed `add`, then call `result`.

    Memory grows with the number of places and hosts' scores (one float per host
    per level), never with the reports themselves: a report can be dropped as soon
    as `add` returns. Every report must come from runs of one standard version.
    """

    def __init__(
        self,
        runs: ComplianceRunInfo | Sequence[ComplianceRunInfo],
        *,
        now: datetime,
        freshness: timedelta,
        levels: Sequence[str] = ROLLUP_LEVELS,
        worst: int = 10,
    ) -> None:
        many = (runs,) if isinstance(runs, ComplianceRunInfo) else tuple(runs)
        self.standard_id, self.standard_version = require_one_standard(many)
        self.run_id = many[0].id if len(many) == 1 else None
        unknown = [level for level in levels if level not in ROLLUP_LEVELS]
        if unknown:
            raise InputError(
                f"unknown roll-up level {unknown[0]!r}", hint="levels: " + ", ".join(ROLLUP_LEVELS)
            )
        self.now = now
        self.freshness = freshness
        self.levels = tuple(levels)
        self.worst = worst
        self._tallies: dict[str, dict[tuple[str, ...], _Tally]] = {lv: {} for lv in self.levels}
        self._depth = {lv: ROLLUP_LEVELS.index(lv) for lv in self.levels}

    def add(self, report: HostReport) -> HostScore:
        """Count one host's report in every place it belongs to; returns its score."""
        scored, statuses, failing = _scan(report)
        names = tuple(report.place.get(level) or UNPLACED for level in PLACE_LEVELS)
        age = _age_seconds(self.now, report.collected_at)
        fresh = is_fresh(report.collected_at, self.now, self.freshness)
        nonzero = [(i, n) for i, n in enumerate(statuses) if n]
        kind = host_kind(report.status)
        critical = bool(scored.critical_failures)
        for level, depth in self._depth.items():
            key = names[:depth]
            places = self._tallies[level]
            tally = places.get(key)
            if tally is None:
                tally = places[key] = _Tally()
            tally.hosts += 1
            setattr(tally, kind, getattr(tally, kind) + 1)
            tally.compliant += scored.compliant
            tally.critical += critical
            tally.fresh += fresh
            if scored.score is not None:
                tally.scores.append(scored.score)
            if age is not None:
                tally.ages.append(age)
            counts = tally.statuses
            for i, n in nonzero:
                counts[i] += n
            for result in failing:
                (tally.fails if result.status == FAIL else tally.errors)[result.control] += 1
        return scored

    def result(self) -> Rollups:
        levels: dict[str, tuple[Rollup, ...]] = {}
        for level in self.levels:
            tallies = self._tallies[level]
            if level == "all" and not tallies:
                tallies = {(): _Tally()}
            levels[level] = tuple(self._rollup(level, key, tallies[key]) for key in sorted(tallies))
        return Rollups(
            run_id=self.run_id,
            standard_id=self.standard_id,
            standard_version=self.standard_version,
            now=self.now,
            freshness=self.freshness,
            levels=levels,
        )

    def _rollup(self, level: str, key: tuple[str, ...], tally: _Tally) -> Rollup:
        fails, errors = tally.fails, tally.errors
        ranked = heapq.nsmallest(
            self.worst,
            ((-(fails[c] + errors[c]), -fails[c], c) for c in fails.keys() | errors.keys()),
        )
        worst = [ControlTally(c, fails[c], errors[c]) for _, _, c in ranked]
        return Rollup(
            level=level,
            path=key,
            hosts=tally.hosts,
            reported=tally.reported,
            unreachable=tally.unreachable,
            errored=tally.errored,
            no_report=tally.no_report,
            compliant=tally.compliant,
            critical=tally.critical,
            median_score=statistics.median(tally.scores) if tally.scores else None,
            lowest_score=min(tally.scores) if tally.scores else None,
            fresh=tally.fresh,
            oldest_evidence=_oldest(tally.ages),
            median_evidence=_median_age(tally.ages),
            statuses=dict(zip(STATUSES, tally.statuses, strict=True)),
            worst_controls=tuple(worst),
        )


def _age_seconds(now: datetime, collected_at: datetime | None) -> float | None:
    """How old evidence collected at `collected_at` is at `now`, in seconds (never below 0)."""
    if collected_at is None:
        return None
    return max((now - collected_at).total_seconds(), 0.0)


def _oldest(ages: Sequence[float]) -> timedelta | None:
    return timedelta(seconds=max(ages)) if ages else None


def _median_age(ages: Sequence[float]) -> timedelta | None:
    return timedelta(seconds=statistics.median(ages)) if ages else None


class EvidenceAges:
    """The figures of roll-ups that depend on when they are read, measured again.

    A run's per-run aggregates measure fresh evidence and its age when the run
    ended, with the default window; a report measures them at its own `now`
    with its own window. Fed each host's place and collection time (columns a
    store keeps beside the results), `measured` gives the aggregates' roll-ups
    those three figures as `RollupBuilder` would have counted them from the
    reports: the same arithmetic, shared with it, so the two cannot drift.
    """

    def __init__(self, *, now: datetime, freshness: timedelta, levels: Sequence[str]) -> None:
        self.now = now
        self.freshness = freshness
        self._depth = {lv: ROLLUP_LEVELS.index(lv) for lv in levels}
        self._fresh: dict[str, Counter[tuple[str, ...]]] = {lv: Counter() for lv in levels}
        self._ages: dict[str, dict[tuple[str, ...], list[float]]] = {lv: {} for lv in levels}

    def add(self, names: Sequence[str], collected_at: datetime | None) -> None:
        """One host: its place's names division down (`UNPLACED` for a missing one)."""
        age = _age_seconds(self.now, collected_at)
        fresh = is_fresh(collected_at, self.now, self.freshness)
        for level, depth in self._depth.items():
            key = tuple(names[:depth])
            if fresh:
                self._fresh[level][key] += 1
            if age is not None:
                self._ages[level].setdefault(key, []).append(age)

    def measured(self, rollups: Rollups) -> Rollups:
        """`rollups` (at the levels this was made for) with fresh hosts and evidence ages
        as measured here, and this moment and window."""
        levels: dict[str, tuple[Rollup, ...]] = {}
        for level in self._depth:
            fresh, ages = self._fresh[level], self._ages[level]
            levels[level] = tuple(
                replace(
                    r,
                    fresh=fresh[r.path],
                    oldest_evidence=_oldest(ages.get(r.path, ())),
                    median_evidence=_median_age(ages.get(r.path, ())),
                )
                for r in rollups.at(level)
            )
        return replace(rollups, now=self.now, freshness=self.freshness, levels=levels)


def rollup(
    runs: ComplianceRunInfo | Sequence[ComplianceRunInfo],
    reports: Iterable[HostReport],
    *,
    now: datetime,
    freshness: timedelta,
    levels: Sequence[str] = ROLLUP_LEVELS,
    worst: int = 10,
) -> Rollups:
    """Roll the host reports of one run (one standard version) up along the tree.

    `reports` is consumed once, as a stream. A host counts as covered when its
    evidence is younger than `freshness` at `now`. Raises `MixedStandardsError`
    when `runs` were judged by different standards or versions.
    """
    builder = RollupBuilder(runs, now=now, freshness=freshness, levels=levels, worst=worst)
    for report in reports:
        builder.add(report)
    return builder.result()


def require_one_standard(runs: Iterable[ComplianceRunInfo]) -> tuple[str, str]:
    """(standard id, version) shared by every run; scores of two versions never mix."""
    seen = {(r.standard_id, r.standard_version) for r in runs}
    if not seen:
        raise InputError("no compliance run to roll up", hint="run provision compliance run first")
    if len(seen) > 1:
        listed = ", ".join(f"{sid} {version}" for sid, version in sorted(seen))
        raise MixedStandardsError(
            f"results of different standards cannot be rolled up together: {listed}",
            hint="report each standard version's runs on their own",
        )
    (only,) = seen
    return only
