"""HTML for a large run: a folder holding a national summary and one small page per place.

A 50,000-host run on one page is tens of megabytes that an office PC's browser
struggles with; as a folder it is a summary (`index.html`: the tree roll-up,
the trend, the worst places, controls and hosts) that links to one page per
place at the `by` level (`district_gazipur.html`: its upazilas and unions,
every host in one line, the worst hosts' evidence). Each page is whole on its
own (inline CSS, no script or image from elsewhere), so the folder opens
offline, from a share or a USB stick, one page at a time.

One pass over the reports: per page one short line per host (bounded by
`PAGE_HOSTS`, the worst kept) and the evidence of its worst `PAGE_DETAIL`
hosts, and the roll-ups and the summary's figures (`html_summary`) unless the
store gives them: a recorded run's roll-ups come from its per-run aggregates
and its summary from its host columns (of the hosts' results only the worst
few hosts' are read), so the summary can be written on its own in a fraction
of the folder's time (`write_html_summary`). Memory grows with the hosts' lines, never with their
results.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
from provision.model.scoring import (
    UNPLACED,
    HostScore,
    Rollup,
    RollupBuilder,
    Rollups,
    coverage,
    host_score,
)
from provision.reports.common import ReportInput, atomic_folder, atomic_text, run_dict
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
from provision.reports.html_summary import (
    FAILING_NAMED,
    WORST_HOSTS,
    Line,
    StoredRun,
    SummaryFacts,
    facts_from_store,
    keep,
    place_names,
)

#: The levels a folder report can have one page per place of.
PAGE_LEVELS: tuple[str, ...] = ("division", "district", "upazila")
#: Places the summary's "worst places" table lists.
WORST_PLACES = 20
#: Host lines a place page holds at most, the worst first (the rest are in JSON and CSV).
PAGE_HOSTS = 2000
#: Hosts per place page whose failing controls are shown with their evidence.
PAGE_DETAIL = 40

__all__ = [
    "FAILING_NAMED",
    "PAGE_DETAIL",
    "PAGE_HOSTS",
    "PAGE_LEVELS",
    "WORST_HOSTS",
    "WORST_PLACES",
    "StoredRun",
    "check_page_level",
    "write_html_pages",
    "write_html_summary",
]


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
    lines: list[tuple[tuple[float, ...], int, Line]] = field(default_factory=list)
    hosts: int = 0
    detailed: list[_Detailed] = field(default_factory=list)
    #: Its hosts in pull mode (the longest silent kept) and how many there are.
    pulled: list[PulledEntry] = field(default_factory=list)
    pulled_count: int = 0


class _Collector:
    """One pass over the reports: each page's lines and worst hosts and, when `summary`
    is given (the roll-ups and summary do not come from the store), those too."""

    def __init__(self, data: ReportInput, depth: int, summary: SummaryFacts | None) -> None:
        self.data = data
        self.depth = depth
        self.summary = summary
        self.builder = (
            None
            if summary is None
            else RollupBuilder(data.run, now=data.now, freshness=data.freshness)
        )
        self.pages: dict[tuple[str, ...], _Page] = {}
        self.seq = itertools.count()

    def add(self, report: HostReport) -> None:
        scored = host_score(report) if self.builder is None else self.builder.add(report)
        names = place_names(report.place)
        key = names[: self.depth]
        page = self.pages.get(key)
        if page is None:
            page = self.pages[key] = _Page(key)
        page.hosts += 1
        entry = pulled_entry(report)
        if entry is not None:
            page.pulled_count += 1
            keep_pulled(page.pulled, entry)
        bad = badness(report.status, scored)
        failing = [r.control for r in report.results if r.status in (FAIL, ERROR)]
        line = Line(
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
        keep(page.lines, (bad, rank, line), PAGE_HOSTS)
        if self.summary is not None:
            self.summary.add(line, key, rank, entry)
        if len(page.detailed) < PAGE_DETAIL or page.detailed[0].badness < bad:
            item = _Detailed(bad, rank, _host_detail(self.data, report, scored))
            keep(page.detailed, item, PAGE_DETAIL)


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


def write_html_pages(
    data: ReportInput,
    reports: Iterable[HostReport],
    out: Path,
    stored: StoredRun | None = None,
) -> None:
    """Write the folder `out`: index.html and one page per place at `data.by`.

    With `stored` (a recorded run, as the store keeps it) the roll-ups and the
    summary come from the store's aggregates and host columns, and the pass over
    `reports` only fills the place pages; the folder is the same either way.
    """
    depth = check_page_level(data.by)
    if stored is None:
        summary = SummaryFacts.of(data)
        collector = _Collector(data, depth, summary)
        for report in reports:
            collector.add(report)
        assert collector.builder is not None
        rollups = collector.builder.result()
    else:
        rollups, summary = facts_from_store(data, depth, stored)
        collector = _Collector(data, depth, None)
        for report in reports:
            collector.add(report)
    files = _file_names(sorted(collector.pages), depth)
    head = _head(data)
    with atomic_folder(out) as folder:
        (folder / "index.html").write_text(
            _summary_page(data, rollups, summary, files, head), encoding="utf-8"
        )
        by_key = {r.path: r for r in rollups.at(data.by)}
        for key, page in sorted(collector.pages.items()):
            context = _page_context(data, rollups, by_key[key], page, depth)
            title = f"Compliance of {data.by} {by_key[key].name}"
            (folder / files[key]).write_text(
                render("reports/place.html", page_title=title, **head, **context),
                encoding="utf-8",
            )


def write_html_summary(data: ReportInput, stored: StoredRun, out: Path) -> None:
    """Write a recorded run's national summary alone (a folder's index.html) to `out`.

    From the store's aggregates and host columns only: no host's results are
    read but the worst few hosts' failing controls. It links to the place pages
    by the names `write_html_pages` gives them.
    """
    depth = check_page_level(data.by)
    rollups, summary = facts_from_store(data, depth, stored)
    files = _file_names(sorted(r.path for r in rollups.at(data.by)), depth)
    text = _summary_page(data, rollups, summary, files, _head(data))
    with atomic_text(out) as handle:
        handle.write(text)


def _summary_page(
    data: ReportInput,
    rollups: Rollups,
    summary: SummaryFacts,
    files: dict[tuple[str, ...], str],
    head: dict[str, Any],
) -> str:
    context = _summary_context(data, rollups, summary, files)
    return render("reports/summary.html", page_title="Compliance summary", **head, **context)


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


def _line_dict(line: Line, page: str = "") -> dict[str, Any]:
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
    data: ReportInput, rollups: Rollups, summary: SummaryFacts, files: dict[tuple[str, ...], str]
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
        "histogram": histogram(summary.histogram),
        "places_chart": places_chart(places),
        "trend": trend(data, total, coverage(summary.fresh_at_run, summary.hosts)),
        "worst_places": [
            {**place_row(r), "page": files.get(r.path, ""), "of": " / ".join(r.path[:-1])}
            for r in worst_places
        ],
        "worst_controls": _controls(data, total),
        "worst_hosts": [
            {**_line_dict(line, files.get(key, "")), "place": " / ".join(key)}
            for _, _, line, key in _worst_first(summary.worst)
        ],
        "pages": len(files),
        "hosts_seen": summary.hosts,
        "pulled": _pulled_with_pages(summary, data, files),
        "pulled_total": summary.pulled_count,
    }


def _pulled_with_pages(
    summary: SummaryFacts, data: ReportInput, files: dict[tuple[str, ...], str]
) -> list[dict[str, Any]]:
    """The summary's pulled hosts, each linked to its place's page."""
    page_of = {entry[2]: files.get(entry[4], "") for entry in summary.pulled}
    rows = pulled_rows(summary.pulled, data.now)
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
