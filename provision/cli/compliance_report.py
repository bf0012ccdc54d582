"""`provision compliance report`: write a run's results as JSON, JUnit, CSV or HTML."""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option
from provision.errors import ProvisionError, StateError
from provision.model.compliance.model import PLACE_LEVELS
from provision.model.words import plural

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when the command runs
    from provision.infra.store.compliance_records import ComplianceRecords
    from provision.model.compliance.model import ComplianceRunInfo
    from provision.model.standards.model import Standard
    from provision.model.waivers import WaiverSet
    from provision.reports import RunPoint
    from provision.settings import Settings

FORMATS = ("json", "junit", "csv", "html")


@click.command()
@click.argument("run_id", metavar="[RUN]", required=False, type=click.IntRange(min=1))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="html",
    show_default=True,
    help="json: the canonical, versioned record; junit: one test suite per host; "
    "csv: one row per host and control; html: one self-contained page.",
)
@click.option(
    "--by",
    type=click.Choice(PLACE_LEVELS),
    default="district",
    show_default=True,
    help="The level of the tree the page is grouped down to.",
)
@click.option(
    "--out",
    "out",
    metavar="FILE",
    help="Where to write ('-' for stdout). Default: compliance-ENV-runRUN.EXT here.",
)
@click.option(
    "--freshness",
    type=click.IntRange(min=1),
    default=24,
    show_default=True,
    metavar="HOURS",
    help="Evidence younger than this counts as coverage.",
)
@click.option(
    "--history",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    metavar="RUNS",
    help="Earlier runs of the same standard version and selection in the trend.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@env_option
@pass_app
def report(
    app: AppContext,
    run_id: int | None,
    fmt: str,
    by: str,
    out: str | None,
    freshness: int,
    history: int,
    as_json: bool,
) -> None:
    """Write a compliance run's report (JSON, JUnit XML, CSV or HTML).

    RUN is a compliance run's number (default: the latest finished run of
    --env). The HTML page opens offline (no CDN, nothing fetched) and holds the
    roll-up along the tree with red/amber/green, score charts, the trend over
    earlier runs of the same standard version and selection, and the detail of
    the worst hosts. JSON (format provision-compliance/1) and CSV hold every host and
    control. See docs/reports.md.

    \b
    Examples:
      provision compliance report --format html
      provision compliance report 12 --format junit --out results.xml
      provision --env production compliance report --format csv --by upazila
      provision compliance report --format json --out - | jq '.rollups.levels.all'
    """
    from provision.infra.store import open_store
    from provision.infra.store.compliance_records import ComplianceRecords
    from provision.reports import default_name, write_report

    settings = app.settings
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run = _pick_run(records, settings.env, run_id)
        standard = _standard(settings, run)
        points = history_points(records, run, history)
        waivers = _waivers(settings, run, standard)
        target = Path(out) if out and out != "-" else Path(default_name(run, fmt))
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / target.name if out == "-" else target
            write_report(
                run,
                records.host_reports(run.id),
                fmt,
                path,
                by=by,
                standard=standard,
                history=points,
                now=datetime.now(UTC),
                freshness=timedelta(hours=freshness),
                waivers=waivers,
            )
            if out == "-":
                with path.open("rb") as handle:
                    shutil.copyfileobj(handle, sys.stdout.buffer)
                sys.stdout.flush()
                return
    info = {
        "path": str(target),
        "format": fmt,
        "run": run.id,
        "env": run.env,
        "standard_id": run.standard_id,
        "standard_version": run.standard_version,
        "hosts": run.hosts,
        "bytes": target.stat().st_size,
    }
    if as_json:
        console.print_json(info)
        return
    console.out.print(
        f"wrote {target} ({fmt}, run {run.id}, {plural(run.hosts, 'host')}, "
        f"{run.standard_id} {run.standard_version})",
        markup=False,
    )


def _pick_run(records: ComplianceRecords, env: str, run_id: int | None) -> ComplianceRunInfo:
    if run_id is not None:
        return records.get_run(run_id)
    run = records.latest_run(env)
    if run is None:
        raise StateError(
            f"there is no finished compliance run for {env}",
            hint="run one first: provision compliance run",
        )
    return run


def _standard(settings: Settings, run: ComplianceRunInfo) -> Standard | None:
    """The workspace's standard when it is the exact text the run was judged by."""
    from provision.standards.service import pick_standard

    try:
        standard = pick_standard(settings.workspace / "standards", run.standard_id)
    except ProvisionError:
        standard = None
    if standard is None or standard.digest != run.standard_digest:
        console.err.print(
            f"note: standards/ no longer holds {run.standard_id} {run.standard_version} as "
            "run; the report shows control ids without titles",
            markup=False,
        )
        return None
    return standard


def history_points(
    records: ComplianceRecords, run: ComplianceRunInfo, limit: int = 30
) -> list[RunPoint]:
    """Up to `limit` earlier runs of the same standard version and selection, for the trend.

    Only runs of the same selection: a one-host audit between fleet audits is no
    point of the fleet's trend (and the fleet's runs are none of the one host's).
    """
    from provision.reports import RunPoint

    if limit == 0:
        return []
    summaries = records.run_summaries(
        run.env, run.standard_id, run.standard_version, limit=limit + 1, selection=run.selection
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
        if s.started_at <= run.started_at and s.run_id != run.id
    ][-limit:]


def _waivers(
    settings: Settings, run: ComplianceRunInfo, standard: Standard | None
) -> WaiverSet | None:
    """waivers.yml as the run read it (same digest), to show approvers and expiries."""
    from provision.standards.waivers import load_waivers, waivers_digest

    path = settings.workspace / "waivers.yml"
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
