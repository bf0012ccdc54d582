"""`provision compliance query` and `provision compliance prune`: recorded evidence.

Each command parses, calls one function of `provision.compliance.query` or
`provision.compliance.prune`, and renders the answer as a table, `--json` or
`--csv` (one line per finding, for a spreadsheet).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option, selection_argument
from provision.model.words import plural

if TYPE_CHECKING:
    from provision.infra.store.compliance_queries import Finding


def _short(value: Any, limit: int = 50) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _output(fmt: str | None, rows: Sequence[dict[str, Any]], data: Any, table: Table) -> None:
    if fmt == "json":
        console.print_json(data)
    elif fmt == "csv":
        buffer = io.StringIO()
        columns = list(rows[0]) if rows else []
        writer = csv.DictWriter(buffer, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: "" if v is None else json.dumps(v) if isinstance(v, dict | list) else v
                    for k, v in row.items()
                }
            )
        click.echo(buffer.getvalue(), nl=False)
    else:
        console.out.print(table)


def _format_options(function: Any) -> Any:
    function = click.option(
        "--csv", "fmt", flag_value="csv", help="Print CSV, one line per finding or run."
    )(function)
    return click.option("--json", "fmt", flag_value="json", help="Print the answer as JSON.")(
        function
    )


def _findings_table(title: str, findings: Iterable[Finding]) -> Table:
    table = Table(title=title)
    for column in ("host", "control", "severity", "status", "expected", "actual", "collected"):
        table.add_column(column)
    for f in findings:
        table.add_row(
            f.host,
            f.control,
            f.severity or "",
            f.status,
            _short(f.expected),
            _short(f.actual),
            f.collected_at.strftime("%Y-%m-%d %H:%M") if f.collected_at else "",
        )
    return table


@click.group("query")
def query() -> None:
    """Ask the recorded evidence: who failed, one host's or one control's history, drift.

    Answers come from runs already in the store, never from a new audit. "As of
    DATE" is the audit in force at the end of that day (UTC): the newest
    finished run of the environment started before then. See docs/compliance.md.

    \b
    Example:
      provision compliance query failing --control SSH-001 --as-of 2026-06-30
      provision compliance query host dhk-kal-lab01 --since 2026-06-01 --csv
      provision compliance query drifted --from 2026-06-01 --to 2026-06-30 --json
    """


@query.command("failing")
@click.option("--control", "control", metavar="ID", help="Hosts failing this control.")
@click.option("--critical", is_flag=True, help="Hosts failing any critical control.")
@click.option("--as-of", "as_of", metavar="DATE", required=True, help="The day (YYYY-MM-DD).")
@selection_argument()
@_format_options
@env_option
@pass_app
def failing_command(
    app: AppContext,
    control: str | None,
    critical: bool,
    as_of: str,
    selection: str,
    fmt: str | None,
) -> None:
    """Hosts that did not meet a control (or any critical control) on a day, and why.

    Failing means fail, error or no_report (a control that could not be judged
    is never a pass); each line has the expected and actual values, when the
    evidence was collected, and the run and standard version it comes from.

    \b
    Example:
      provision compliance query failing --control SSH-001 --as-of 2026-06-30
      provision compliance query failing --critical --as-of 2026-06-30 district:gazipur --csv
    """
    from provision.compliance.query import failing, parse_day

    answer = failing(
        app.settings,
        as_of=parse_day(as_of, "--as-of"),
        control=control,
        critical=critical,
        selection=selection,
    )
    run = answer.run
    title = (
        f"{plural(len(answer.findings), 'failure')} as of {answer.as_of} "
        f"(run {run.run_id}, {run.started_at:%Y-%m-%d %H:%M}, "
        f"{run.standard_id} {run.standard_version})"
    )
    _output(
        fmt,
        [f.as_dict() for f in answer.findings],
        answer.as_dict(),
        _findings_table(title, answer.findings),
    )


def _period_options(function: Any) -> Any:
    function = click.option("--until", metavar="DATE", help="Last day (YYYY-MM-DD), included.")(
        function
    )
    return click.option("--since", metavar="DATE", help="First day (YYYY-MM-DD).")(function)


def _days(since: str | None, until: str | None) -> dict[str, Any]:
    from provision.compliance.query import parse_day

    return {
        "since": parse_day(since, "--since") if since else None,
        "until": parse_day(until, "--until") if until else None,
    }


@query.command("host")
@click.argument("host", metavar="NAME")
@_period_options
@_format_options
@env_option
@pass_app
def host_command(
    app: AppContext, host: str, since: str | None, until: str | None, fmt: str | None
) -> None:
    """One host's audits over a period: its score and every control it did not pass.

    \b
    Example:
      provision compliance query host dhk-kal-lab01 --since 2026-06-01 --until 2026-06-30
    """
    from provision.compliance.query import host_history

    lines = host_history(app.settings, host, **_days(since, until))
    table = Table(title=f"{host}: {plural(len(lines), 'run')}")
    for column in ("run", "started", "standard", "score", "compliant", "not passed"):
        table.add_column(column)
    for line in lines:
        table.add_row(
            str(line.run.run_id),
            f"{line.run.started_at:%Y-%m-%d %H:%M}",
            line.run.standard_version,
            "" if line.score is None else f"{line.score * 100:.0f}%",
            "(pruned)" if line.compliant is None else ("yes" if line.compliant else "no"),
            ", ".join(f"{f.control} {f.status}" for f in line.findings),
        )
    rows = [f.as_dict() for line in lines for f in line.findings]
    _output(fmt, rows, [line.as_dict() for line in lines], table)


@query.command("control")
@click.argument("control", metavar="ID")
@_period_options
@_format_options
@env_option
@pass_app
def control_command(
    app: AppContext, control: str, since: str | None, until: str | None, fmt: str | None
) -> None:
    """One control over a period: how many hosts passed, failed, errored, were waived.

    \b
    Example:
      provision compliance query control SSH-001 --since 2026-01-01 --json
    """
    from provision.compliance.query import control_history

    lines = control_history(app.settings, control, **_days(since, until))
    table = Table(title=f"{control}: {plural(len(lines), 'run')}")
    columns = ("pass", "fail", "error", "waived", "no_report", "unreachable", "not_applicable")
    for column in ("run", "started", "standard", *columns):
        table.add_column(column)
    for line in lines:
        table.add_row(
            str(line.run.run_id),
            f"{line.run.started_at:%Y-%m-%d %H:%M}",
            line.run.standard_version,
            *(str(line.counts[c]) for c in columns),
        )
    data = [line.as_dict() for line in lines]
    _output(fmt, data, data, table)


@query.command("drifted")
@click.option("--from", "since", metavar="DATE", required=True, help="The earlier day.")
@click.option("--to", "until", metavar="DATE", required=True, help="The later day.")
@selection_argument()
@_format_options
@env_option
@pass_app
def drifted_command(
    app: AppContext, since: str, until: str, selection: str, fmt: str | None
) -> None:
    """What changed between the audits in force on two days: new failures, and fixed ones.

    \b
    Example:
      provision compliance query drifted --from 2026-06-01 --to 2026-06-30 district:gazipur
    """
    from provision.compliance.query import drifted, parse_day

    answer = drifted(
        app.settings,
        since=parse_day(since, "--from"),
        until=parse_day(until, "--to"),
        selection=selection,
    )
    changes = (("new", answer.new), ("fixed", answer.fixed), ("unknown", answer.unknown))
    rows = [{"change": change, **f.as_dict()} for change, found in changes for f in found]
    table = Table(
        title=f"run {answer.before.run_id} -> run {answer.after.run_id}: "
        f"{len(answer.new)} new, {len(answer.fixed)} fixed"
        + (f", {len(answer.unknown)} not known (detail pruned)" if answer.unknown else "")
    )
    for column in ("change", "host", "control", "status", "expected", "actual"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["change"],
            row["host"],
            row["control"],
            row["status"],
            _short(row["expected"]),
            _short(row["actual"]),
        )
    _output(fmt, rows, answer.as_dict(), table)


@click.command("prune")
@click.option(
    "--keep", "keep", type=int, required=True, metavar="DAYS", help="Days of detail kept."
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
@env_option
@pass_app
def prune_command(app: AppContext, keep: int, dry_run: bool, as_json: bool) -> None:
    """Remove compliance detail older than DAYS; keep totals and every host's failures.

    Runs started more than DAYS days ago lose their host rows (every result of
    every host), their waived findings and their per-site totals, in one
    transaction; each keeps its totals down to the union (what show and the trend
    read) and its fail, error and no_report findings. The audits' run folders
    older than DAYS go too.

    \b
    Example:
      provision compliance prune --keep 90 --dry-run
      provision compliance prune --keep 90
    """
    from provision.compliance.prune import prune

    result = prune(app.settings, keep, dry_run=dry_run)
    if as_json:
        console.print_json(result.as_dict())
        return
    verb = "would remove" if dry_run else "removed"
    runs = plural(len(result.runs), "compliance run")
    console.out.print(
        f"{verb} the detail of {runs} started before {result.before:%Y-%m-%d %H:%M} UTC: "
        f"{plural(result.host_rows, 'host row')}, {plural(result.findings, 'waived finding')}, "
        f"{plural(result.place_rows, 'site total')}, "
        f"{plural(len(result.folders), 'run folder')}; totals above the sites and failures kept"
    )
