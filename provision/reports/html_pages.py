"""HTML for a large run: a folder holding a national summary and one small page per place.

A 50,000-host run on one page is tens of megabytes that an office PC's browser
struggles with; as a folder it is a summary (`index.html`: the tree roll-up,
the trend, the worst places, controls and hosts) that links to one page per
place at the `by` level (`district_gazipur.html`: its upazilas and unions,
every host in one line, the worst hosts' evidence). Each page is whole on its
own (inline CSS, no script or image from elsewhere), so the folder opens
offline, from a share or a USB stick, one page at a time.

One pass over the reports: the roll-ups, and per page one short line per host
(bounded by `PAGE_HOSTS`, the worst kept) and the evidence of its worst
`PAGE_DETAIL` hosts. Memory grows with the hosts' lines, never with their results.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.infra.render import render
from provision.model.compliance.model import (
    ERROR,
    FAIL,
    HOST_REPORTED,
    PASS,
    PLACE_LEVELS,
    STATUSES,
    HostReport,
)
from provision.model.places import normalise
from provision.model.pull import PullState
from provision.model.scoring import (
    UNPLACED,
    HostScore,
    Rollup,
    RollupBuilder,
    Rollups,
    coverage,
    coverage_moment,
    is_fresh,
)
from provision.reports.common import ReportInput, atomic_folder, run_dict
from provision.reports.html import (
    STATUS_COLOURS,
    PulledEntry,
    age_text,
    badness,
    histogram,
    keep_pulled,
    pct,
    place_row,
    places_chart,
    pulled_entry,
    pulled_rows,
    result_row,
    status_bar,
    trend,
)

#: The levels a folder report can have one page per place of.
PAGE_LEVELS: tuple[str, ...] = ("division", "district", "upazila")
#: Hosts the summary lists (the worst of the whole run).
WORST_HOSTS = 50
#: Places the summary's "worst places" table lists.
WORST_PLACES = 20
#: Host lines a place page holds at most, the worst first (the rest are in JSON and CSV).
PAGE_HOSTS = 2000
#: Hosts per place page whose failing controls are shown with their evidence.
PAGE_DETAIL = 40
#: Failing controls named in a host's line.
FAILING_NAMED = 5


@dataclass(frozen=True, slots=True)
class _Line:
    """One host as a place page lists it."""

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


@dataclass(order=True)
class _Detailed:
    """A host kept for a page's evidence section; the least bad is popped first."""

    badness: tuple[float, ...]
    rank: int
    detail: dict[str, Any] = field(compare=False)


@dataclass
class _Page:
    """What one place's page collects: its hosts' lines and its worst hosts' evidence."""

    key: tuple[str, ...]
    lines: list[tuple[tuple[float, ...], int, _Line]] = field(default_factory=list)
    hosts: int = 0
    detailed: list[_Detailed] = field(default_factory=list)
    #: Its hosts in pull mode (the longest silent kept) and how many there are.
    pulled: list[PulledEntry] = field(default_factory=list)
    pulled_count: int = 0


class _Collector:
    """One pass over the reports: roll-ups, histogram, each page's lines and worst hosts."""

    def __init__(self, data: ReportInput, depth: int) -> None:
        self.data = data
        self.depth = depth
        self.builder = RollupBuilder(data.run, now=data.now, freshness=data.freshness)
        self.histogram = [0] * 11
        self.pages: dict[tuple[str, ...], _Page] = {}
        self.worst: list[tuple[tuple[float, ...], int, _Line, tuple[str, ...]]] = []
        self.seq = itertools.count()
        self.hosts = 0
        self._at = coverage_moment(data.run)
        self.fresh_at_run = 0
        #: The run's hosts in pull mode (the longest silent kept), each with its page's key.
        self.pulled: list[tuple[bool, float, str, PullState, tuple[str, ...]]] = []
        self.pulled_count = 0

    def add(self, report: HostReport) -> None:
        data = self.data
        scored = self.builder.add(report)
        self.hosts += 1
        self.fresh_at_run += is_fresh(report.collected_at, self._at, data.freshness)
        if scored.score is not None:
            self.histogram[min(int(scored.score * 10 + 1e-9), 10)] += 1
        names = tuple(report.place.get(level) or UNPLACED for level in PLACE_LEVELS)
        key = names[: self.depth]
        page = self.pages.get(key)
        if page is None:
            page = self.pages[key] = _Page(key)
        page.hosts += 1
        entry = pulled_entry(report)
        if entry is not None:
            self.pulled_count += 1
            page.pulled_count += 1
            keep_pulled(self.pulled, (*entry, key))
            keep_pulled(page.pulled, entry)
        bad = badness(report, scored)
        failing = [r.control for r in report.results if r.status in (FAIL, ERROR)]
        line = _Line(
            badness=bad,
            host=report.host,
            below=" / ".join(n for n in names[self.depth :] if n != UNPLACED),
            status=report.status,
            score=scored.score,
            compliant=scored.compliant,
            critical=tuple(scored.critical_failures),
            failing=tuple(failing[:FAILING_NAMED]),
            failing_count=len(failing),
            collected_at=report.collected_at,
        )
        # Ranked by badness, then by the order the hosts came in: among equals the
        # first stays (the key is -seq), so a host costs its detail only when it ranks.
        rank = -next(self.seq)
        _keep(page.lines, (bad, rank, line), PAGE_HOSTS)
        _keep(self.worst, (bad, rank, line, key), WORST_HOSTS)
        if len(page.detailed) < PAGE_DETAIL or page.detailed[0].badness < bad:
            item = _Detailed(bad, rank, _host_detail(data, report, scored))
            _keep(page.detailed, item, PAGE_DETAIL)


def _keep(heap: list[Any], item: Any, limit: int) -> None:
    """Keep the `limit` largest items of a stream in `heap`."""
    if len(heap) < limit:
        heapq.heappush(heap, item)
    else:
        heapq.heappushpop(heap, item)


def _host_detail(data: ReportInput, report: HostReport, scored: HostScore) -> dict[str, Any]:
    counts = report.counts()
    shown = (
        [r for r in report.results if r.status != PASS] if report.status == HOST_REPORTED else []
    )
    return {
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
        "passes_hidden": counts[PASS],
        "expired_waivers": sum(1 for r in report.results if r.waiver_expired),
        "results": [result_row(data, r) for r in shown],
    }


def check_page_level(by: str) -> int:
    """The depth of `by` when it is a level a folder report has pages for."""
    if by not in PAGE_LEVELS:
        raise InputError(
            f"a folder report has no page per {by}",
            hint="--by "
            + ", ".join(PAGE_LEVELS)
            + " (or --one-page for one page down to "
            + by
            + ")",
        )
    return PLACE_LEVELS.index(by) + 1


def write_html_pages(data: ReportInput, reports: Iterable[HostReport], out: Path) -> None:
    """Write the folder `out`: index.html and one page per place at `data.by`."""
    depth = check_page_level(data.by)
    collector = _Collector(data, depth)
    for report in reports:
        collector.add(report)
    rollups = collector.builder.result()
    files = _file_names(sorted(collector.pages), depth)
    head = _head(data)
    with atomic_folder(out) as folder:
        summary = _summary_context(data, rollups, collector, files)
        (folder / "index.html").write_text(
            render("reports/summary.html", page_title="Compliance summary", **head, **summary),
            encoding="utf-8",
        )
        by_key = {r.path: r for r in rollups.at(data.by)}
        for key, page in sorted(collector.pages.items()):
            context = _page_context(data, rollups, by_key[key], page, depth)
            title = f"Compliance of {data.by} {by_key[key].name}"
            (folder / files[key]).write_text(
                render("reports/place.html", page_title=title, **head, **context),
                encoding="utf-8",
            )


def _file_names(keys: Sequence[tuple[str, ...]], depth: int) -> dict[tuple[str, ...], str]:
    """One file per place, named as its inventory group (``district_gazipur.html``)."""
    level = PLACE_LEVELS[depth - 1]
    names: dict[tuple[str, ...], str] = {}
    taken: set[str] = set()
    for key in keys:
        parts = key[:1] if level == "division" else key[1:]
        stem = level + "_" + "_".join(_file_part(p) for p in parts)
        name, n = stem, 1
        while name in taken:  # two names the same once folded to ASCII
            n += 1
            name = f"{stem}_{n}"
        taken.add(name)
        names[key] = name + ".html"
    return names


def _file_part(name: str) -> str:
    """A place name in a file name: folded to ASCII, or a short digest when nothing is left.

    A name in Bangla script folds to nothing; the digest keeps its file apart
    from every other place's, and the page's title still shows the name.
    """
    return normalise(name) or "p" + hashlib.sha256(name.encode()).hexdigest()[:10]


def _head(data: ReportInput) -> dict[str, Any]:
    return {
        "run": run_dict(data.run),
        "standard_title": data.standard.title if data.standard else "",
        "generated_at": data.now.strftime("%Y-%m-%d %H:%M UTC"),
        "freshness": age_text(data.freshness),
        "by": data.by,
        "place": data.place or "",
        "colours": STATUS_COLOURS,
        "statuses": STATUSES,
    }


def _line_dict(line: _Line, page: str = "") -> dict[str, Any]:
    return {
        "host": line.host,
        "below": line.below,
        "status": line.status,
        "score": pct(line.score),
        "compliant": line.compliant,
        "critical": list(line.critical),
        "failing": list(line.failing),
        "more_failing": line.failing_count - len(line.failing),
        "collected_at": ""
        if line.collected_at is None
        else line.collected_at.strftime("%Y-%m-%d %H:%M"),
        "page": page,
    }


def _worst_first(items: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Kept (badness, rank, …) items, the worst first and among equals the first that came."""
    return sorted(items, key=lambda t: (t[0], t[1]), reverse=True)


def _summary_context(
    data: ReportInput, rollups: Rollups, collector: _Collector, files: dict[tuple[str, ...], str]
) -> dict[str, Any]:
    depth = PLACE_LEVELS.index(data.by) + 1
    levels = PLACE_LEVELS[:depth]
    total = rollups.total
    places = rollups.at(data.by)
    worst_places = sorted(
        places, key=lambda r: (r.compliant_share or 0.0, r.median_score or 0.0, r.path)
    )[:WORST_PLACES]
    return {
        "total": place_row(total),
        "tree": _tree(rollups, levels, (), files),
        "status_bar": status_bar(total),
        "histogram": histogram(collector.histogram),
        "places_chart": places_chart(places),
        "trend": trend(data, total, coverage(collector.fresh_at_run, collector.hosts)),
        "worst_places": [
            {**place_row(r), "page": files.get(r.path, ""), "of": " / ".join(r.path[:-1])}
            for r in worst_places
        ],
        "worst_controls": _controls(data, total),
        "worst_hosts": [
            {**_line_dict(line, files.get(key, "")), "place": " / ".join(key)}
            for _, _, line, key in _worst_first(collector.worst)
        ],
        "pages": len(files),
        "hosts_seen": collector.hosts,
        "pulled": _pulled_with_pages(collector, data, files),
        "pulled_total": collector.pulled_count,
    }


def _pulled_with_pages(
    collector: _Collector, data: ReportInput, files: dict[tuple[str, ...], str]
) -> list[dict[str, Any]]:
    """The summary's pulled hosts, each linked to its place's page."""
    page_of = {entry[2]: files.get(entry[4], "") for entry in collector.pulled}
    rows = pulled_rows(collector.pulled, data.now)
    return [{**row, "page": page_of[row["host"]]} for row in rows]


def _controls(data: ReportInput, r: Rollup) -> list[dict[str, Any]]:
    return [
        {"control": t.control, "title": data.title(t.control), "fail": t.fail, "error": t.error}
        for t in r.worst_controls
    ]


def _tree(
    rollups: Rollups,
    levels: Sequence[str],
    prefix: tuple[str, ...],
    files: dict[tuple[str, ...], str],
) -> list[dict[str, Any]]:
    """Nested places under `prefix` down to the last of `levels`, each linked to its page."""
    children: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for level in reversed(levels):
        for r in rollups.at(level):
            if r.path[: len(prefix)] != prefix:
                continue
            row = {**place_row(r), "page": files.get(r.path, "")}
            node = {"row": row, "children": children.pop(r.path, [])}
            children.setdefault(r.path[:-1], []).append(node)
    return children.get(prefix, [])


def _page_context(
    data: ReportInput, rollups: Rollups, here: Rollup, page: _Page, depth: int
) -> dict[str, Any]:
    below = list(PLACE_LEVELS[depth : depth + 2])
    lines = [_line_dict(t[2]) for t in _worst_first(page.lines)]
    detailed = sorted(page.detailed, reverse=True)
    return {
        "here": place_row(here),
        "path": list(here.path),
        "levels_below": below,
        "tree": _tree(rollups, below, here.path, {}) if below else [],
        "worst_controls": _controls(data, here),
        "lines": lines,
        "lines_omitted": page.hosts - len(lines),
        "detail": [d.detail for d in detailed],
        "status_bar": status_bar(here),
        "pulled": [{**row, "page": ""} for row in pulled_rows(page.pulled, data.now)],
        "pulled_total": page.pulled_count,
    }
