"""What a folder report's national summary shows beside the roll-ups, from either source.

The summary (`html_pages`, index.html) shows the run's score histogram, its
own coverage (fresh at the run's start), its worst hosts and its pulled
hosts. `SummaryFacts` collects them host by host: from the host reports as
they stream by (data in hand), or, for a recorded run, from what the store
keeps per host beside the results (`StoredRun`, `facts_from_store`): score,
status, place, collection time and status counts as columns, so that no
host's results are read but the few worst hosts' names of failing controls.
Both give the same facts in the same order: hosts count in the order they
come (the store's, by host name, is the order its reports are read in),
which breaks ties in badness.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from provision.infra.store.compliance_records import HostRow
from provision.model.compliance.model import ERROR, FAIL, PLACE_LEVELS
from provision.model.pull import PullState
from provision.model.scoring import (
    ROLLUP_LEVELS,
    UNPLACED,
    EvidenceAges,
    HostScore,
    Rollups,
    coverage_moment,
    is_fresh,
)
from provision.reports.common import ReportInput
from provision.reports.html import PulledEntry, badness, keep_pulled, pull_entry

#: Hosts the summary lists (the worst of the whole run).
WORST_HOSTS = 50
#: Failing controls named in a host's line.
FAILING_NAMED = 5

#: A pulled host as the summary ranks it (`html.PulledEntry`) with its page's key.
PulledAt = tuple[bool, float, str, PullState, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Line:
    """One host as the summary and its place's page list it."""

    badness: tuple[float, ...]
    host: str
    below: str
    status: str
    score: float | None
    compliant: bool
    critical: tuple[str, ...]
    failing: tuple[str, ...]
    failing_count: int
    collected_at: datetime | None


def keep(heap: list[Any], item: Any, limit: int) -> None:
    """Keep the `limit` largest items of a stream in `heap`."""
    if len(heap) < limit:
        heapq.heappush(heap, item)
    else:
        heapq.heappushpop(heap, item)


def place_names(place: Mapping[str, str]) -> tuple[str, ...]:
    """A host's place, division down, `UNPLACED` where it has no name."""
    return tuple(place.get(level) or UNPLACED for level in PLACE_LEVELS)


@dataclass
class SummaryFacts:
    """The summary's figures beside the roll-ups, counted one host at a time (`add`)."""

    run_at: datetime
    freshness: timedelta
    histogram: list[int] = field(default_factory=lambda: [0] * 11)
    #: (badness, rank, line, page key) of the worst hosts; rank is minus the arrival order.
    worst: list[tuple[tuple[float, ...], int, Line, tuple[str, ...]]] = field(default_factory=list)
    hosts: int = 0
    fresh_at_run: int = 0
    #: The run's hosts in pull mode (the longest silent kept), each with its page's key.
    pulled: list[PulledAt] = field(default_factory=list)
    pulled_count: int = 0

    @classmethod
    def of(cls, data: ReportInput) -> SummaryFacts:
        # The run's own coverage for its trend point is measured as the store measures
        # the earlier runs' (at the run's start), not at `now` as the roll-ups are.
        return cls(run_at=coverage_moment(data.run), freshness=data.freshness)

    def add(
        self,
        line: Line,
        key: tuple[str, ...],
        rank: int,
        pulled: PulledEntry | None,
    ) -> None:
        """Count one host whose line is `line`, on the page `key`, `rank` minus its arrival."""
        self.hosts += 1
        self.fresh_at_run += is_fresh(line.collected_at, self.run_at, self.freshness)
        if line.score is not None:
            self.histogram[min(int(line.score * 10 + 1e-9), 10)] += 1
        if pulled is not None:
            self.pulled_count += 1
            keep_pulled(self.pulled, (*pulled, key))
        keep(self.worst, (line.badness, rank, line, key), WORST_HOSTS)


@dataclass(frozen=True)
class StoredRun:
    """What the store keeps of a recorded run beside its hosts' results."""

    #: The run's roll-ups from its per-run aggregates (measured when it ended).
    rollups: Rollups
    #: Every host's line (columns only), in the order its reports are read in.
    rows: Callable[[], Iterable[HostRow]]
    #: The failing and erroring controls of a few hosts, in their results' order.
    failing: Callable[[Sequence[str]], Mapping[str, Sequence[str]]]
    #: The run's pulled hosts and what it knew of each.
    pulled: Mapping[str, PullState]


def rollup_levels(depth: int) -> tuple[str, ...]:
    """The roll-up levels a folder with pages at `depth` shows: down to two below its pages."""
    return ROLLUP_LEVELS[: depth + 3]


def facts_from_store(
    data: ReportInput, depth: int, stored: StoredRun
) -> tuple[Rollups, SummaryFacts]:
    """The roll-ups measured at `data.now` and the summary's facts, from the columns alone.

    The aggregates' counts, scores and worst controls hold whenever they are
    read; fresh evidence and its age are measured again here from each host's
    collection time, as a report's roll-ups measure them.
    """
    facts = SummaryFacts.of(data)
    levels = rollup_levels(depth)
    ages = EvidenceAges(now=data.now, freshness=data.freshness, levels=levels)
    for n, row in enumerate(stored.rows()):
        names = place_names(row.place)
        ages.add(names, row.collected_at)
        scored = HostScore(row.score, row.compliant, row.critical_failures)
        line = Line(
            badness=badness(row.status, scored),
            host=row.host,
            below=" / ".join(name for name in names[depth:] if name != UNPLACED),
            status=row.status,
            score=row.score,
            compliant=row.compliant,
            critical=row.critical_failures,
            failing=(),  # named below, for the worst hosts only
            failing_count=row.counts[FAIL] + row.counts[ERROR],
            collected_at=row.collected_at,
        )
        state = stored.pulled.get(row.host)
        entry = None if state is None else pull_entry(row.host, state)
        facts.add(line, names[:depth], -n, entry)
    named = stored.failing([item[2].host for item in facts.worst if item[2].failing_count])
    facts.worst = [
        (bad, rank, replace(line, failing=tuple(named.get(line.host, ())[:FAILING_NAMED])), key)
        for bad, rank, line, key in facts.worst
    ]
    return ages.measured(stored.rollups), facts


__all__ = [
    "FAILING_NAMED",
    "WORST_HOSTS",
    "Line",
    "StoredRun",
    "SummaryFacts",
    "facts_from_store",
    "keep",
    "place_names",
    "rollup_levels",
]
