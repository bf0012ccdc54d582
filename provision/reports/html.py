"""One self-contained HTML page for people: tree roll-up, charts, trend, host detail.

Everything is inline (CSS, a few lines of JavaScript, SVG charts): the file opens
offline, from a mail attachment or a USB stick, and fetches nothing. Every value
goes through Jinja2's autoescaping (templates/reports/compliance.html).

What a page holds for a large fleet: the roll-up of every place down to the `by`
level, and the detail of at most `DETAIL_LIMIT` hosts, the worst first
(non-compliant hosts, critical failures first, then by lowest score). For those
hosts every result that is not a pass is listed; passes are listed too when the
whole run has no more than `FULL_DETAIL_HOSTS` hosts. The JSON and CSV reports
always hold every host and control.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from provision.infra.render import render
from provision.model.compliance.model import (
    HOST_REPORTED,
    PASS,
    PLACE_LEVELS,
    STATUSES,
    ControlResult,
    HostReport,
)
from provision.model.pull import PullState
from provision.model.scoring import (
    HostScore,
    Rollup,
    RollupBuilder,
    Rollups,
    coverage,
    coverage_moment,
    is_fresh,
)
from provision.reports.common import (
    ReportInput,
    RunPoint,
    atomic_text,
    run_dict,
    value_text,
)

#: Hosts whose detail the page shows at most.
DETAIL_LIMIT = 500
#: Up to this many hosts in the run, passing controls are listed in the detail too.
FULL_DETAIL_HOSTS = 200
#: Places the bar chart shows at most (the worst).
CHART_PLACES = 40
#: Hosts in pull mode the page lists at most (the longest silent first).
PULLED_LIMIT = 500
#: Evidence text in a table cell is cut at this length (the JSON keeps it whole).
CELL_LIMIT = 300

STATUS_COLOURS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "error": "#ef6c00",
    "waived": "#6a1b9a",
    "unreachable": "#546e7a",
    "no_report": "#8d6e63",
    "not_applicable": "#bdbdbd",
}


@dataclass(order=True)
class _Kept:
    """A host kept for the detail section; ordered so that the least bad is popped first."""

    badness: tuple[float, ...]
    seq: int
    report: HostReport = field(compare=False)
    score: HostScore = field(compare=False)


def badness(status: str, scored: HostScore) -> tuple[float, ...]:
    """How bad a host of `status` scored so is: the largest first in every worst-hosts list."""
    return (
        0.0 if scored.compliant else 1.0,
        float(bool(scored.critical_failures)),
        1.0 - (scored.score if scored.score is not None else 0.0),
        float(status != HOST_REPORTED),
    )


class _Collector:
    """One pass over the reports: roll-ups, a score histogram, the worst hosts' detail."""

    def __init__(self, data: ReportInput, limit: int) -> None:
        self.builder = RollupBuilder(data.run, now=data.now, freshness=data.freshness)
        self.histogram = [0] * 11  # 0-9 %, 10-19 %, … 90-99 %, 100 %
        self.kept: list[_Kept] = []
        self.limit = limit
        self.seq = itertools.count()
        self.hosts = 0
        self.non_compliant = 0
        # The run's own coverage for its trend point, measured as the store measures
        # the earlier runs' (at the run's start), not at `now` as the summary is.
        self._at = coverage_moment(data.run)
        self._freshness = data.freshness
        self.fresh_at_run = 0
        self.now = data.now
        #: How each pulled host ranks in the pull-mode section.
        self.pulled: list[PulledEntry] = []
        self.pulled_count = 0

    def add(self, report: HostReport) -> None:
        scored = self.builder.add(report)
        self.hosts += 1
        self.fresh_at_run += is_fresh(report.collected_at, self._at, self._freshness)
        self.non_compliant += not scored.compliant
        entry = pulled_entry(report)
        if entry is not None:
            self.pulled_count += 1
            keep_pulled(self.pulled, entry)
        if scored.score is not None:
            self.histogram[min(int(scored.score * 10 + 1e-9), 10)] += 1
        item = _Kept(badness(report.status, scored), next(self.seq), report, scored)
        if len(self.kept) < self.limit:
            heapq.heappush(self.kept, item)
        elif self.limit:
            heapq.heappushpop(self.kept, item)


def write_html(
    data: ReportInput,
    reports: Iterable[HostReport],
    out: Path,
    *,
    limit: int = DETAIL_LIMIT,
) -> None:
    collector = _Collector(data, limit)
    for report in reports:
        collector.add(report)
    rollups = collector.builder.result()
    text = render("reports/compliance.html", **page_context(data, rollups, collector))
    with atomic_text(out) as handle:
        handle.write(text)


def page_context(data: ReportInput, rollups: Rollups, collector: _Collector) -> dict[str, Any]:
    by_depth = PLACE_LEVELS.index(data.by) + 1
    levels = PLACE_LEVELS[:by_depth]
    total = rollups.total
    kept = sorted(collector.kept, key=lambda k: (k.badness, -k.seq), reverse=True)
    full = collector.hosts <= FULL_DETAIL_HOSTS
    shown_non_compliant = sum(1 for k in kept if not k.score.compliant)
    return {
        "run": run_dict(data.run),
        "standard_title": data.standard.title if data.standard else "",
        "generated_at": data.now.strftime("%Y-%m-%d %H:%M UTC"),
        "freshness": age_text(data.freshness),
        "by": data.by,
        "levels": levels,
        "total": place_row(total),
        "tree": _tree(rollups, levels),
        "status_bar": status_bar(total),
        "histogram": histogram(collector.histogram),
        "places_chart": places_chart(rollups.at(data.by)),
        "trend": trend(data, total, coverage(collector.fresh_at_run, collector.hosts)),
        "worst_controls": [
            {
                "control": t.control,
                "title": data.title(t.control),
                "fail": t.fail,
                "error": t.error,
            }
            for t in total.worst_controls
        ],
        "groups": _detail(data, kept, by_depth, full),
        "detail_shown": len(kept),
        "omitted_non_compliant": collector.non_compliant - shown_non_compliant,
        "omitted_compliant": collector.hosts
        - len(kept)
        - (collector.non_compliant - shown_non_compliant),
        "full_detail": full,
        "pulled": _pulled(collector),
        "pulled_total": collector.pulled_count,
        "colours": STATUS_COLOURS,
        "statuses": STATUSES,
    }


#: A pulled host as the pull-mode section ranks it: (within its window, reported at as
#: a number, host, state); the smallest first.
PulledEntry = tuple[bool, float, str, PullState]
_E = TypeVar("_E", bound=Sequence[Any])


def pulled_entry(report: HostReport) -> PulledEntry | None:
    """How the pull-mode section ranks `report`'s host (None for a pushed host)."""
    return None if report.pull is None else pull_entry(report.host, report.pull)


def pull_entry(host: str, state: PullState) -> PulledEntry:
    """How the pull-mode section ranks `host`, pulled with `state`."""
    at = state.reported_at
    when = at.timestamp() if at is not None else float("-inf")
    return (state.within, when, host, state)


def _rank(entry: Sequence[Any]) -> tuple[bool, float, str]:
    return (entry[0], entry[1], entry[2])


def keep_pulled(entries: list[_E], entry: _E, limit: int = PULLED_LIMIT) -> None:
    """Add `entry` (a `PulledEntry`, perhaps with more after it) to `entries`, which keep
    at least the `limit` longest silent: bounded (at most twice `limit`), so a fleet of
    PCs costs no more than a page of them."""
    entries.append(entry)
    if len(entries) > 2 * limit:
        entries[:] = heapq.nsmallest(limit, entries, key=_rank)


def pulled_rows(
    entries: Iterable[Sequence[Any]], now: datetime, limit: int = PULLED_LIMIT
) -> list[dict[str, Any]]:
    """The pulled hosts to list: those past their window first, then the longest silent."""
    rows = heapq.nsmallest(limit, entries, key=_rank)
    listed = []
    for entry in rows:
        host, state = entry[2], entry[3]
        listed.append(
            {
                "host": host,
                "serial": "\u2013" if state.serial is None else str(state.serial),
                "reported_at": "never"
                if state.reported_at is None
                else state.reported_at.strftime("%Y-%m-%d %H:%M UTC"),
                "age": age_text(state.silent_for(now)),
                "keep": age_text(state.keep),
                "within": state.within,
            }
        )
    return listed


def _pulled(collector: _Collector) -> list[dict[str, Any]]:
    return pulled_rows(collector.pulled, collector.now)


def pct(value: float | None) -> str:
    return "\u2013" if value is None else f"{value * 100:.1f} %"


def age_text(age: timedelta | None) -> str:
    if age is None:
        return "\u2013"
    seconds = int(age.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def place_row(r: Rollup) -> dict[str, Any]:
    worst = r.worst_controls[0] if r.worst_controls else None
    return {
        "name": r.name,
        "level": r.level,
        "path": " / ".join(r.path),
        "hosts": r.hosts,
        "reported": r.reported,
        "unreachable": r.unreachable,
        "errored": r.errored,
        "no_report": r.no_report,
        "compliant": r.compliant,
        "compliant_pct": pct(r.compliant_share),
        "critical": r.critical,
        "median": pct(r.median_score),
        "lowest": pct(r.lowest_score),
        "coverage": pct(r.coverage),
        "oldest": age_text(r.oldest_evidence),
        "median_age": age_text(r.median_evidence),
        "worst": "" if worst is None else f"{worst.control} ({worst.total})",
        "rag": r.rag,
    }


def _tree(rollups: Rollups, levels: Sequence[str]) -> list[dict[str, Any]]:
    """Nested places: each node's row and its children one level down."""
    children: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for level in reversed(levels):
        for r in rollups.at(level):
            node = {"row": place_row(r), "children": children.pop(r.path, [])}
            children.setdefault(r.path[:-1], []).append(node)
    return children.get((), [])


def status_bar(total: Rollup) -> list[dict[str, Any]]:
    count = sum(total.statuses.values()) or 1
    x = 0.0
    parts = []
    for status in STATUSES:
        n = total.statuses.get(status, 0)
        width = 1000 * n / count
        parts.append(
            {
                "status": status,
                "n": n,
                "x": round(x, 2),
                "width": round(width, 2),
                "colour": STATUS_COLOURS[status],
            }
        )
        x += width
    return parts


def histogram(buckets: list[int]) -> dict[str, Any]:
    top = max(buckets) or 1
    labels = [f"{i * 10}-{i * 10 + 9}" for i in range(10)] + ["100"]
    bars = [
        {
            "x": 40 + i * 50,
            "height": round(160 * n / top, 2),
            "y": round(180 - 160 * n / top, 2),
            "n": n,
            "label": labels[i],
            "colour": "#2e7d32" if i == 10 else ("#ef6c00" if i >= 8 else "#c62828"),
        }
        for i, n in enumerate(buckets)
    ]
    return {"bars": bars, "top": top}


def places_chart(rows: Sequence[Rollup]) -> dict[str, Any]:
    ranked = sorted(rows, key=lambda r: (r.compliant_share or 0.0, r.path))[:CHART_PLACES]
    bars = [
        {
            "y": 10 + i * 22,
            "width": round(600 * (r.compliant_share or 0.0), 2),
            "label": r.name,
            "value": pct(r.compliant_share),
            "median": pct(r.median_score),
            "rag": r.rag,
        }
        for i, r in enumerate(ranked)
    ]
    return {"bars": bars, "height": 20 + 22 * len(bars), "shown": len(bars), "of": len(rows)}


def trend(data: ReportInput, total: Rollup, run_coverage: float | None) -> dict[str, Any]:
    """The trend chart: earlier runs of the run's standard version, then the run itself.

    Every point's coverage is its run's at that run (`scoring.coverage_moment`),
    the earlier runs' from the store and this run's counted the same way here:
    one quantity on one line, whenever the report is written.
    """
    run = data.run
    same = [
        p
        for p in data.history
        if (p.standard_id, p.standard_version) == (run.standard_id, run.standard_version)
        and p.run_id != run.id
    ]
    same.sort(key=lambda p: p.started_at)
    points = [
        *same,
        RunPoint(
            run_id=run.id,
            started_at=run.started_at,
            standard_id=run.standard_id,
            standard_version=run.standard_version,
            hosts=total.hosts,
            reported=total.reported,
            compliant=total.compliant,
            median_score=total.median_score,
            coverage=run_coverage,
        ),
    ]
    step = 700 / max(len(points) - 1, 1)

    def series(values: list[float | None]) -> str:
        return " ".join(
            f"{40 + i * step:.1f},{200 - 180 * v:.1f}"
            for i, v in enumerate(values)
            if v is not None
        )

    shares = [p.compliant_share for p in points]
    medians = [p.median_score for p in points]
    coverage = [p.coverage for p in points]
    return {
        "points": [
            {
                "x": round(40 + i * step, 1),
                "y": None if s is None else round(200 - 180 * s, 1),
                "run": p.run_id,
                "date": p.started_at.strftime("%Y-%m-%d"),
                "share": pct(s),
                "median": pct(p.median_score),
            }
            for i, (p, s) in enumerate(zip(points, shares, strict=True))
        ],
        "compliant": series(shares),
        "median": series(medians),
        "coverage": series(coverage),
        "other_versions": len(data.history)
        - len(same)
        - sum(1 for p in data.history if p.run_id == run.id),
    }


def result_row(data: ReportInput, r: ControlResult) -> dict[str, Any]:
    waiver = None
    if r.waiver:
        found = data.waivers.get(r.waiver) if data.waivers is not None else None
        waiver = {
            "id": r.waiver,
            "expired": r.waiver_expired,
            "approver": found.approver if found else "",
            "expires": found.expires.isoformat() if found else "",
            "justification": found.justification if found else "",
        }
    return {
        "control": r.control,
        "title": data.title(r.control),
        "status": r.status,
        "severity": r.severity,
        "expected": value_text(r.expected, CELL_LIMIT),
        "actual": value_text(r.actual, CELL_LIMIT),
        "message": r.message,
        "waiver": waiver,
    }


def _detail(
    data: ReportInput, kept: Sequence[_Kept], depth: int, full: bool
) -> list[dict[str, Any]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for item in kept:
        report, scored = item.report, item.score
        key = tuple(report.place.get(level) or "(none)" for level in PLACE_LEVELS[:depth])
        results = [r for r in report.results if full or r.status != PASS]
        if report.status != HOST_REPORTED:
            results = []
        counts = report.counts()
        groups.setdefault(key, []).append(
            {
                "host": report.host,
                "status": report.status,
                "role": report.role or "",
                "os_release": report.os_release or "",
                "message": report.message,
                "score": pct(scored.score),
                "compliant": scored.compliant,
                "critical": list(scored.critical_failures),
                "collected_at": ""
                if report.collected_at is None
                else report.collected_at.strftime("%Y-%m-%d %H:%M"),
                "counts": counts,
                "passes_hidden": 0 if full else counts[PASS],
                "expired_waivers": sum(1 for r in report.results if r.waiver_expired),
                "results": [result_row(data, r) for r in results],
            }
        )
    return [{"path": " / ".join(key), "hosts": groups[key]} for key in sorted(groups)]
