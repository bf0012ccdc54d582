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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from provision.errors import InputError, ProvisionError, StateError
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.model import ComplianceRunInfo
from provision.model.scoring import DEFAULT_FRESHNESS
from provision.model.standards.model import Standard
from provision.model.waivers import WaiverSet
from provision.reports import FORMATS, RunPoint, default_name, write_report
from provision.settings import Settings
from provision.standards.service import pick_standard
from provision.standards.waivers import load_waivers, waivers_digest

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
) -> WrittenReports:
    """Write `run`'s reports in each of `formats` into `folder` (created), default names.

    `run` is a run id, a run, or None for the latest finished run of
    `settings.env`. `formats` is a list or comma-separated text (see
    `parse_formats`). See `write_run_report` for the rest.
    """
    wanted = parse_formats(formats if isinstance(formats, str) else ",".join(formats))
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        info = _run(records, settings.env, run)
        targets = [(fmt, folder / default_name(info, fmt)) for fmt in wanted]
        folder.mkdir(parents=True, exist_ok=True)
        return _write(settings, records, info, targets, by, freshness, history, now)


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
) -> WrittenReports:
    """Write `run`'s report in `fmt` to `out` (default: its default name in the current folder).

    `by` is the level the roll-ups are grouped by; evidence younger than
    `freshness` at `now` (default: the current time) counts as coverage; the
    trend holds up to `history` earlier runs of the same standard version and
    selection.
    """
    (wanted,) = parse_formats(fmt)
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        info = _run(records, settings.env, run)
        target = out if out is not None else Path(default_name(info, wanted))
        return _write(settings, records, info, [(wanted, target)], by, freshness, history, now)


def _write(
    settings: Settings,
    records: ComplianceRecords,
    run: ComplianceRunInfo,
    targets: Sequence[tuple[str, Path]],
    by: str,
    freshness: timedelta,
    history: int,
    now: datetime | None,
) -> WrittenReports:
    standard = run_standard(settings, run)
    waivers = run_waivers(settings, run, standard)
    points = trend_points(records, run, history, freshness=freshness)
    when = now or datetime.now(UTC)
    for fmt, path in targets:
        write_report(
            run,
            records.host_reports(run.id),
            fmt,
            path,
            by=by,
            standard=standard,
            history=points,
            now=when,
            freshness=freshness,
            waivers=waivers,
        )
    return WrittenReports(run, tuple(targets), standard is not None)


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
