"""`provision compliance report`: write a run's results as JSON, JUnit, CSV or HTML."""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option
from provision.model.compliance.model import PLACE_LEVELS
from provision.model.words import plural
from provision.reports.common import LARGE_RUN_HOSTS

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when the command runs
    from provision.reports.service import WrittenReports

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
    "csv: one row per host and control; html: one self-contained page (a folder of pages "
    "for a large run).",
)
@click.option(
    "--by",
    type=click.Choice(PLACE_LEVELS),
    default="district",
    show_default=True,
    help="The level of the tree the page is grouped down to; for a folder of pages, the "
    "level with one page per place (division, district or upazila).",
)
@click.option(
    "--place",
    metavar="PLACE",
    help="Limit the report to one place: a selection term (district:gazipur, "
    "upazila:gazipur/kaliganj) or the place's group (district_gazipur).",
)
@click.option(
    "--out",
    "out",
    metavar="FILE",
    help="Where to write ('-' for stdout). Default: compliance-ENV-runRUN.EXT here "
    "(.EXT.gz when compressed; a folder compliance-ENV-runRUN/ for HTML pages).",
)
@click.option(
    "--gzip/--no-gzip",
    "compress",
    default=None,
    help="Write JSON, JUnit or CSV gzip-compressed, or plain. Default: compressed when the "
    f"run has more than {LARGE_RUN_HOSTS:,} hosts or FILE ends in .gz; plain to stdout.",
)
@click.option(
    "--pages/--one-page",
    "pages",
    default=None,
    help="HTML as a folder (a summary and one page per place at --by) or as one page. "
    f"Default: a folder when the run has more than {LARGE_RUN_HOSTS:,} hosts.",
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
    place: str | None,
    out: str | None,
    compress: bool | None,
    pages: bool | None,
    freshness: int,
    history: int,
    as_json: bool,
) -> None:
    """Write a compliance run's report (JSON, JUnit XML, CSV or HTML).

    RUN is a compliance run's number (default: the latest finished run of
    --env). The HTML page opens offline (no CDN, nothing fetched) and holds the
    roll-up along the tree with red/amber/green, score charts, the trend over
    earlier runs of the same standard version and selection, and the detail of
    the worst hosts. For a run of more than 1,000 hosts it is a folder: a
    national summary (index.html) linking to one small page per place at --by.
    JSON (format provision-compliance/1) and CSV hold every host and control;
    for a large run they and JUnit are written gzip-compressed unless
    --no-gzip. See docs/reports.md.

    \b
    Examples:
      provision compliance report --format html
      provision compliance report 12 --format junit --out results.xml
      provision --env production compliance report --format csv --by upazila
      provision compliance report --format json --out - | jq '.rollups.levels.all'
      provision compliance report --by upazila --place district:gazipur
      provision compliance report --format csv --no-gzip
    """
    from provision.errors import InputError
    from provision.reports.service import write_run_report

    window = timedelta(hours=freshness)
    if out == "-" and fmt == "html" and pages:
        raise InputError("a folder of pages cannot go to stdout", hint="--out FOLDER or --one-page")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"report.{fmt}" if out == "-" else (Path(out) if out else None)
        written = write_run_report(
            app.settings,
            run_id,
            fmt,
            path,
            by=by,
            freshness=window,
            history=history,
            # stdout stays plain (a pipe to jq) and one page unless asked otherwise
            compress=bool(compress) if out == "-" else compress,
            pages=bool(pages) if out == "-" else pages,
            place=place,
        )
        _note(written)
        if out == "-":
            with written.paths[0].open("rb") as handle:
                shutil.copyfileobj(handle, sys.stdout.buffer)
            sys.stdout.flush()
            return
    run, target = written.run, written.paths[0]
    info = {
        "path": str(target),
        "format": fmt,
        "run": run.id,
        "env": run.env,
        "standard_id": run.standard_id,
        "standard_version": run.standard_version,
        "hosts": run.hosts,
        "bytes": target.stat().st_size,
        "compressed": target.name.endswith(".gz"),
        "pages": target in written.pages_by_default or (fmt == "html" and bool(pages)),
    }
    if as_json:
        console.print_json(info)
        return
    console.out.print(
        f"wrote {target} ({fmt}, run {run.id}, {plural(run.hosts, 'host')}, "
        f"{run.standard_id} {run.standard_version})",
        markup=False,
    )


def _note(written: WrittenReports) -> None:
    run = written.run
    for path in written.compressed_by_default:
        console.err.print(
            f"note: run {run.id} has {run.hosts:,} hosts (more than {LARGE_RUN_HOSTS:,}): "
            f"{path} is gzip-compressed; --no-gzip writes it plain",
            markup=False,
        )
    for path in written.pages_by_default:
        console.err.print(
            f"note: run {run.id} has {run.hosts:,} hosts (more than {LARGE_RUN_HOSTS:,}): "
            f"the HTML report is a folder of pages, open {path}; --one-page for one page",
            markup=False,
        )
    if not written.standard_found:
        console.err.print(
            f"note: standards/ no longer holds {run.standard_id} {run.standard_version} as "
            "run; the report shows control ids without titles",
            markup=False,
        )
