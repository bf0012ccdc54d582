"""Compliance reports: one run's results as JSON, JUnit XML, CSV or HTML.

`write_report` is the entry point for data in hand; `provision.reports.service`
writes a recorded run's reports from the store (what the commands call). Every
format reads the host reports as a stream, once: JSON, JUnit and CSV write each
host as it comes and keep only the roll-up counters; HTML keeps the roll-ups and
the detail of a bounded number of hosts (the worst first, see
`html.DETAIL_LIMIT`). JSON, JUnit and CSV can go through gzip on their way
to the file (`compress`); a large run's HTML is a folder of pages
(`html_pages`). Files are written to a temporary file (a folder, to a
temporary folder) beside `out` and renamed into place, so a reader never sees
half a report and a failed write leaves the old one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from provision.errors import InputError
from provision.model.compliance.model import ComplianceRunInfo, HostReport
from provision.model.scoring import DEFAULT_FRESHNESS
from provision.model.standards.model import Standard
from provision.model.waivers import WaiverSet
from provision.reports.common import (
    COMPRESSIBLE,
    FORMAT_VERSION,
    FORMATS,
    LARGE_RUN_HOSTS,
    ReportInput,
    RunPoint,
    check_by,
    check_standard,
    place_group,
    within,
)

if TYPE_CHECKING:  # the HTML modules pull in Jinja2; a JSON report never imports them
    from provision.reports.html_summary import StoredRun

__all__ = [
    "COMPRESSIBLE",
    "DEFAULT_FRESHNESS",
    "FORMATS",
    "FORMAT_VERSION",
    "LARGE_RUN_HOSTS",
    "RunPoint",
    "default_name",
    "write_report",
    "write_summary",
]


def write_report(
    run: ComplianceRunInfo,
    reports: Iterable[HostReport],
    fmt: str,
    out: Path,
    *,
    by: str = "district",
    standard: Standard | None = None,
    history: Sequence[RunPoint] = (),
    now: datetime | None = None,
    freshness: timedelta = DEFAULT_FRESHNESS,
    waivers: WaiverSet | None = None,
    compress: bool = False,
    place: str | None = None,
    pages: bool = False,
    stored: StoredRun | None = None,
) -> Path:
    """Write the report of `run` in `fmt` (json, junit, csv, html) to `out`; returns `out`.

    `reports` are the run's host reports, consumed once as a stream. `by` is the
    level of the tree the HTML page and the JSON roll-ups are grouped by
    (division, district, upazila, union, site). `standard`, when given, supplies
    control titles and must be the run's standard (id, version and digest).
    `history` holds summaries of earlier runs for the HTML trend chart.
    `now` (default: the current time) and `freshness` decide coverage: a host is
    covered when its evidence is younger than `freshness`. `waivers`, when given,
    lets the HTML page show each waiver's approver and expiry. `compress`
    writes JSON, JUnit or CSV gzip-compressed (the caller names the file,
    usually with ``.gz``). `place`, a place group (``district_gazipur``) or
    a selection's place term (``district:gazipur``, ``upazila:gazipur/kaliganj``),
    limits the report to the hosts of that subtree. `pages` writes HTML as a
    folder `out` (index.html and one page per place at `by`, see
    `html_pages`) instead of one page. `stored`, what the store keeps of the
    run beside its results, gives a folder its roll-ups and summary without
    the pass over `reports` counting them (the same folder; not with `place`).
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown report format {fmt!r}", hint="formats: " + ", ".join(FORMATS))
    check_by(by)
    check_standard(run, standard)
    if compress and fmt not in COMPRESSIBLE:
        raise InputError(
            f"a {fmt} report is not written compressed",
            hint="--gzip applies to " + ", ".join(COMPRESSIBLE) + "; a browser opens HTML as is",
        )
    if pages and fmt != "html":
        raise InputError(f"a {fmt} report is one file, not a folder of pages")
    if pages:
        from provision.reports.html_pages import check_page_level

        check_page_level(by)
    if stored is not None and (not pages or place is not None):
        raise ValueError("a run's stored figures serve a whole run's folder of pages only")
    if place is not None:
        place = place_group(place)
        reports = within(run, reports, place)
    data = ReportInput(
        run=run,
        by=by,
        standard=standard,
        history=tuple(history),
        now=now or datetime.now(UTC),
        freshness=freshness,
        waivers=waivers,
        compress=compress,
        place=place,
    )
    if pages:
        from provision.reports.html_pages import write_html_pages

        write_html_pages(data, reports, out, stored)
    else:
        _writer(fmt)(data, reports, out)
    return out


def write_summary(
    run: ComplianceRunInfo,
    stored: StoredRun,
    out: Path,
    *,
    by: str = "district",
    standard: Standard | None = None,
    history: Sequence[RunPoint] = (),
    now: datetime | None = None,
    freshness: timedelta = DEFAULT_FRESHNESS,
    waivers: WaiverSet | None = None,
) -> Path:
    """Write the national summary of a folder report (its index.html) alone to `out`.

    From `stored` only, what the store keeps of the run beside its hosts'
    results; the arguments are `write_report`'s. Returns `out`.
    """
    from provision.reports.html_pages import check_page_level, write_html_summary

    check_by(by)
    check_page_level(by)
    check_standard(run, standard)
    data = ReportInput(
        run=run,
        by=by,
        standard=standard,
        history=tuple(history),
        now=now or datetime.now(UTC),
        freshness=freshness,
        waivers=waivers,
    )
    write_html_summary(data, stored, out)
    return out


def _writer(fmt: str) -> Callable[[ReportInput, Iterable[HostReport], Path], None]:
    # Each writer is imported only when used: the HTML one pulls in Jinja2.
    if fmt == "json":
        from provision.reports.json_report import write_json

        return write_json
    if fmt == "junit":
        from provision.reports.junit import write_junit

        return write_junit
    if fmt == "csv":
        from provision.reports.csv_report import write_csv

        return write_csv
    from provision.reports.html import write_html

    return write_html


def default_name(run: ComplianceRunInfo, fmt: str, *, compress: bool = False) -> str:
    """The file name a report gets when none is asked for: compliance-<env>-run<id>.<ext>.

    A compressed file gets ``.gz`` after its extension.
    """
    ext = {"junit": "xml"}.get(fmt, fmt)
    return f"compliance-{run.env}-run{run.id}.{ext}" + (".gz" if compress else "")
