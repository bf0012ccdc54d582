"""A recorded compliance run's reports, read back from the store: what both commands write.

    formats = parse_formats("json,html")                 # before anything runs
    written = write_run_reports(settings, run_id, Path("reports"), formats)
    one = write_run_report(settings, None, "html", Path("page.html"), by="upazila")

`compliance run --report-dir` (what the schedule timer runs) and `compliance
report` both come here, so a scheduled report and one asked for by hand are the
same file: the run and its host reports from the store, the standard from
standards/ when it is the exact text the run was judged by (titles), waivers.yml
when it is the exact file the run read (each waiver's approver, expiry and
justification), and the trend from the store's summaries of the runs before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from provision.errors import InputError, ProvisionError, StateError
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.infra.store.pull_records import PullRecords
from provision.model.compliance.model import ComplianceRunInfo, HostReport
from provision.model.pull import PullState
from provision.model.scoring import DEFAULT_FRESHNESS
from provision.model.standards.model import Standard
from provision.model.waivers import WaiverSet
from provision.reports import (
    COMPRESSIBLE,
    FORMATS,
    LARGE_RUN_HOSTS,
    RunPoint,
    default_name,
    write_report,
)
from provision.settings import Settings
from provision.standards.service import pick_standard
from provision.standards.waivers import load_waivers, waivers_digest

if TYPE_CHECKING:
    from provision.reports.html_summary import StoredRun

#: Earlier runs in a report's trend unless the caller says otherwise.
DEFAULT_HISTORY = 30


@dataclass(frozen=True)
class WrittenReports:
    """What was written for one run."""

    run: ComplianceRunInfo
    #: (format, file) in the order asked for.
    files: tuple[tuple[str, Path], ...]
    #: False when standards/ no longer holds the exact standard the run was judged by:
    #: the reports then show control ids without titles (and no waiver detail).
    standard_found: bool
    #: Files written gzip-compressed because the run is large, not because they were asked so.
    compressed_by_default: tuple[Path, ...] = ()
    #: HTML written as a folder of pages (index.html first) because the run is large.
    pages_by_default: tuple[Path, ...] = ()

    @property
    def paths(self) -> list[Path]:
        return [path for _, path in self.files]


def parse_formats(text: str) -> tuple[str, ...]:
    """The formats of a comma-separated `--format`, checked: call it before any work starts."""
    wanted = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        raise InputError(
            f"--format {text!r}: unknown format {', '.join(bad) or '(none)'}",
            hint="formats: " + ", ".join(FORMATS),
        )
    return wanted


def write_run_reports(
    settings: Settings,
    run: int | ComplianceRunInfo | None,
    folder: Path,
    formats: str | Sequence[str],
    *,
    by: str = "district",
    freshness: timedelta = DEFAULT_FRESHNESS,
    history: int = DEFAULT_HISTORY,
    now: datetime | None = None,
    compress: bool | None = None,
    pages: bool | None = None,
    place: str | None = None,
) -> WrittenReports:
    """Write `run`'s reports in each of `formats` into `folder` (created), default names.

    `run` is a run id, a run, or None for the latest finished run of
    `settings.env`. `formats` is a list or comma-separated text (see
    `parse_formats`). `compress` applies to the formats that can be
    compressed (HTML never is). See `write_run_report` for the rest.
    """
    wanted = parse_formats(formats if isinstance(formats, str) else ",".join(formats))
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        info = _run(records, settings.env, run)
        targets = [
            _target(info, fmt, None, folder, compress if fmt in COMPRESSIBLE else False, pages)
            for fmt in wanted
        ]
        folder.mkdir(parents=True, exist_ok=True)
        options = _Options(by, freshness, history, now, place)
        return _write(settings, records, info, targets, options)


def write_run_report(
    settings: Settings,
    run: int | ComplianceRunInfo | None,
    fmt: str,
    out: Path | None = None,
    *,
    by: str = "district",
    freshness: timedelta = DEFAULT_FRESHNESS,
    history: int = DEFAULT_HISTORY,
    now: datetime | None = None,
    compress: bool | None = None,
    pages: bool | None = None,
    place: str | None = None,
) -> WrittenReports:
    """Write `run`'s report in `fmt` to `out` (default: its default name in the current folder).

    `by` is the level the roll-ups are grouped by (for HTML pages: the level
    with one page per place); evidence younger than `freshness` at `now`
    (default: the current time) counts as coverage; the trend holds up to
    `history` earlier runs of the same standard version and selection.

    `compress` True or False writes JSON, JUnit or CSV gzip-compressed or
    plain; None (the default) compresses when `out` ends in ``.gz`` or the
    run has more than `LARGE_RUN_HOSTS` hosts (then ``.gz`` is added to the
    name and `WrittenReports.compressed_by_default` says so). `pages` True
    writes HTML as a folder (a summary, index.html, and one page per place at
    `by`), False as one page; None: a folder when the run is large. `place`, a
    place group such as ``district_gazipur``, limits the report to that subtree.
    """
    (wanted,) = parse_formats(fmt)
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        info = _run(records, settings.env, run)
        target = _target(info, wanted, out, Path(), compress, pages)
        return _write(
            settings, records, info, [target], _Options(by, freshness, history, now, place)
        )


@dataclass(frozen=True)
class _Target:
    fmt: str
    #: The file written; for HTML pages, the folder's index.html.
    path: Path
    compress: bool = False
    pages: bool = False
    #: Compressed, or written as pages, because the run is large (not because asked).
    by_default: bool = False


@dataclass(frozen=True)
class _Options:
    by: str
    freshness: timedelta
    history: int
    now: datetime | None
    place: str | None


def is_large(run: ComplianceRunInfo) -> bool:
    """A run whose reports are compressed, and whose HTML is a folder, unless told otherwise."""
    return run.hosts > LARGE_RUN_HOSTS


def _target(
    run: ComplianceRunInfo,
    fmt: str,
    out: Path | None,
    folder: Path,
    compress: bool | None,
    pages: bool | None,
) -> _Target:
    if fmt == "html":
        if compress:
            raise InputError(
                "an html report is not written compressed",
                hint="--gzip applies to "
                + ", ".join(COMPRESSIBLE)
                + "; a browser opens HTML as is",
            )
        as_pages = is_large(run) if pages is None else pages
        if not as_pages:
            return _Target(fmt, out if out is not None else folder / default_name(run, fmt))
        # A folder named as the page would be, without .html; the CLI shows its index.
        base = out if out is not None else folder / default_name(run, fmt)
        base = base.with_suffix("") if base.suffix == ".html" else base
        return _Target(fmt, base / "index.html", pages=True, by_default=pages is None)
    if out is not None and compress is None and out.name.endswith(".gz"):
        return _Target(fmt, out, compress=True)
    packed = is_large(run) if compress is None else compress
    path = out if out is not None else folder / default_name(run, fmt)
    if packed and not path.name.endswith(".gz"):
        path = path.with_name(path.name + ".gz")
    return _Target(fmt, path, compress=packed, by_default=packed and compress is None)


def _write(
    settings: Settings,
    records: ComplianceRecords,
    run: ComplianceRunInfo,
    targets: Sequence[_Target],
    options: _Options,
) -> WrittenReports:
    standard = run_standard(settings, run)
    waivers = run_waivers(settings, run, standard)
    points = trend_points(records, run, options.history, freshness=options.freshness)
    when = options.now or datetime.now(UTC)
    pulled = PullRecords(records.store).compliance_pull(run.id)
    for target in targets:
        stored = None
        if target.pages and options.place is None:
            stored = stored_run(records, run, options.by, pulled)
        write_report(
            run,
            with_pull(records.host_reports(run.id), pulled),
            target.fmt,
            target.path.parent if target.pages else target.path,
            by=options.by,
            standard=standard,
            history=points,
            now=when,
            freshness=options.freshness,
            waivers=waivers,
            compress=target.compress,
            pages=target.pages,
            place=options.place,
            stored=stored,
        )
    return WrittenReports(
        run,
        tuple((t.fmt, t.path) for t in targets),
        standard is not None,
        compressed_by_default=tuple(t.path for t in targets if t.compress and t.by_default),
        pages_by_default=tuple(t.path for t in targets if t.pages and t.by_default),
    )


def stored_run(
    records: ComplianceRecords, run: ComplianceRunInfo, by: str, pulled: Mapping[str, PullState]
) -> StoredRun | None:
    """What the store keeps of `run` beside its results, for a folder's summary by `by`.

    None for a run still running (its aggregates would be behind the hosts
    read after them: the folder then counts everything in its one pass over
    the reports) or a level with no pages (the writer says why).
    """
    from provision.reports.html_pages import PAGE_LEVELS, check_page_level
    from provision.reports.html_summary import StoredRun, rollup_levels

    if run.status == "running" or by not in PAGE_LEVELS:
        return None
    return StoredRun(
        rollups=records.rollups(run.id, rollup_levels(check_page_level(by))),
        rows=lambda: records.host_lines(run.id),
        failing=lambda hosts: records.failing_controls(run.id, hosts),
        pulled=pulled,
    )


def write_run_summary(
    settings: Settings,
    run: int | ComplianceRunInfo | None,
    out: Path,
    *,
    by: str = "district",
    freshness: timedelta = DEFAULT_FRESHNESS,
    history: int = DEFAULT_HISTORY,
    now: datetime | None = None,
) -> Path:
    """Write `run`'s national summary alone (a folder report's index.html) to `out`.

    From the store's per-run aggregates and host columns: no host's results
    are read but the worst few hosts' failing controls, so it takes a small
    part of the whole folder's time. The arguments are `write_run_report`'s.
    """
    from provision.reports import write_summary
    from provision.reports.html_pages import check_page_level

    check_page_level(by)
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        info = _run(records, settings.env, run)
        stored = stored_run(records, info, by, PullRecords(store).compliance_pull(info.id))
        if stored is None:
            raise StateError(
                f"compliance run {info.id} is still running; its summary is written once it ends",
                hint="provision compliance report writes the whole folder of what it has so far",
            )
        standard = run_standard(settings, info)
        return write_summary(
            info,
            stored,
            out,
            by=by,
            standard=standard,
            history=trend_points(records, info, history, freshness=freshness),
            now=now or datetime.now(UTC),
            freshness=freshness,
            waivers=run_waivers(settings, info, standard),
        )


def with_pull(
    reports: Iterable[HostReport], pulled: Mapping[str, PullState]
) -> Iterator[HostReport]:
    """The reports, each pulled host's with what the run knew of its pull state."""
    for report in reports:
        state = pulled.get(report.host)
        yield report if state is None else replace(report, pull=state)


def _run(
    records: ComplianceRecords, env: str, run: int | ComplianceRunInfo | None
) -> ComplianceRunInfo:
    if isinstance(run, ComplianceRunInfo):
        return records.get_run(run.id)  # as recorded now: finished, with every host
    if run is not None:
        return records.get_run(run)
    latest = records.latest_run(env)
    if latest is None:
        raise StateError(
            f"there is no finished compliance run for {env}",
            hint="run one first: provision compliance run",
        )
    return latest


def run_standard(settings: Settings, run: ComplianceRunInfo) -> Standard | None:
    """The workspace's standard when it is the exact text the run was judged by, else None."""
    try:
        standard = pick_standard(settings.standards_path, run.standard_id)
    except ProvisionError:
        return None
    return standard if standard.digest == run.standard_digest else None


def run_waivers(
    settings: Settings, run: ComplianceRunInfo, standard: Standard | None
) -> WaiverSet | None:
    """waivers.yml as the run read it (same digest), for approvers, expiries and why; else None."""
    path = settings.waivers_path
    if standard is None or run.waivers_digest is None:
        return None
    if waivers_digest(path) != run.waivers_digest:
        return None
    try:
        return load_waivers(
            path, standard, known_hosts=(), known_groups=(), today=run.started_at.date()
        )
    except ProvisionError:
        return None


def trend_points(
    records: ComplianceRecords,
    run: ComplianceRunInfo,
    limit: int = DEFAULT_HISTORY,
    *,
    freshness: timedelta = DEFAULT_FRESHNESS,
) -> list[RunPoint]:
    """Up to `limit` runs before `run` of its standard version and selection, oldest first.

    Only runs of the same selection: a one-host audit between fleet audits is no
    point of the fleet's trend (and the fleet's runs are none of the one host's).
    The store keeps only the runs before `run` and then takes the newest `limit`
    of them, so an old run's trend is the runs before it.
    """
    if limit <= 0:
        return []
    summaries = records.run_summaries(
        run.env,
        run.standard_id,
        run.standard_version,
        limit=limit,
        selection=run.selection,
        before=run,
        freshness=freshness,
    )
    return [
        RunPoint(
            run_id=s.run_id,
            started_at=s.started_at,
            standard_id=run.standard_id,
            standard_version=s.standard_version,
            hosts=s.hosts,
            reported=s.reported,
            compliant=s.compliant,
            median_score=s.median_score,
            coverage=s.coverage,
        )
        for s in summaries
    ]
