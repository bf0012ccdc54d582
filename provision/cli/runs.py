"""`provision runs`: the rollout history in the state store."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when a command runs, not at start-up
    from provision.infra.store import HostResult, RunInfo, WaveInfo

#: Run statuses (provision.infra.store.RUN_STATUSES; a unit test keeps the two equal).
STATUSES = ("planned", "running", "succeeded", "failed", "stopped", "crashed")

_STYLE = {
    "ok": "green",
    "changed": "yellow",
    "failed": "bold red",
    "unreachable": "magenta",
    "skipped": "dim",
    "succeeded": "green",
    "running": "cyan",
    "stopped": "yellow",
    "crashed": "bold red",
    "planned": "dim",
}


def styled(word: str) -> str:
    style = _STYLE.get(word)
    return f"[{style}]{word}[/]" if style else word


def shown_status(run: RunInfo) -> str:
    """The status, flagging a run still marked running whose process on this node is gone."""
    import socket

    from provision.infra.store import pid_alive

    if run.status == "running" and run.node == socket.gethostname() and not pid_alive(run.pid):
        return styled("running") + " [bold red]crashed?[/]"
    return styled(run.status)


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


def run_json(run: RunInfo, waves: list[WaveInfo], results: dict[str, HostResult]) -> dict[str, Any]:
    return {
        "run": dataclasses.asdict(run),
        "waves": [dataclasses.asdict(w) for w in waves],
        "hosts": [{**dataclasses.asdict(r), "seconds": r.seconds} for r in results.values()],
        "pending": [h for w in waves for h in w.hosts if h not in results],
    }


def runs_table(found: list[RunInfo]) -> Table:
    table = Table(title="runs")
    for column in ("run", "status", "kind", "created (UTC)", "user", "playbook", "selection"):
        table.add_column(column)
    for column in ("hosts", "ok", "changed", "failed", "unreach.", "skipped", "pending"):
        table.add_column(column, justify="right")
    for run in found:
        o = run.outcomes
        table.add_row(
            str(run.id) + (f" (of {run.parent_id})" if run.parent_id else ""),
            shown_status(run),
            run.kind,
            _when(run.created_at),
            run.user,
            run.playbook,
            run.selection or "(all)",
            str(run.planned),
            str(o.get("ok", 0)),
            str(o.get("changed", 0)),
            str(o.get("failed", 0)),
            str(o.get("unreachable", 0)),
            str(o.get("skipped", 0)),
            str(run.planned - run.done),
        )
    return table


def results_table(waves: list[WaveInfo], results: dict[str, HostResult]) -> Table:
    table = Table(title="hosts")
    for column in ("wave", "host", "result"):
        table.add_column(column)
    for column in ("ok", "changed", "failed", "unreach.", "skipped", "seconds"):
        table.add_column(column, justify="right")
    table.add_column("ran on")
    for wave in waves:
        for host in wave.hosts:
            r = results.get(host)
            if r is None:
                table.add_row(str(wave.number), host, "[dim]pending[/]", *[""] * 7)
                continue
            table.add_row(
                str(wave.number),
                host,
                styled(r.outcome),
                str(r.ok),
                str(r.changed),
                str(r.failed),
                str(r.unreachable),
                str(r.skipped),
                f"{r.seconds:.1f}" if r.seconds is not None else "-",
                f"node {r.node}" if r.node else "control node",
            )
    return table


def shown_revision(revision: str | None) -> str:
    from provision.rollout.revision import is_dirty

    if not revision:
        return "(not a git repository)"
    if is_dirty(revision):
        return f"{revision} (the workspace had changes this commit does not hold)"
    return revision


def print_run(run: RunInfo, waves: list[WaveInfo], results: dict[str, HostResult]) -> None:
    out = console.out
    out.print(
        f"[bold]run {run.id}[/] {shown_status(run)}  ({run.kind}"
        + (f" of run {run.parent_id}" if run.parent_id else "")
        + ")"
    )
    opts = ", ".join(
        f"{k}={v}" for k, v in sorted(run.options.items()) if v not in (None, False, [])
    )
    for label, value in (
        ("playbook", run.playbook),
        ("selection", run.selection or "(all hosts)"),
        ("env", run.env),
        ("options", opts or "-"),
        ("by", f"{run.user} on {run.node}"),
        ("created", _when(run.created_at) + " UTC"),
        ("started", _when(run.started_at)),
        ("finished", _when(run.finished_at)),
        ("attempts", str(run.attempts)),
        ("git revision", shown_revision(run.git_revision)),
    ):
        out.print(f"  {label:<13}{value}", markup=False)
    if run.stop_reason:
        out.print(f"  {'why':<13}{run.stop_reason}", markup=False)
    wave_table = Table(title="waves")
    for column in ("wave", "label", "status", "hosts", "started", "finished"):
        wave_table.add_column(column)
    for w in waves:
        wave_table.add_row(
            str(w.number),
            w.label,
            w.status,
            str(len(w.hosts)),
            _when(w.started_at),
            _when(w.finished_at),
        )
    out.print(wave_table)
    out.print(results_table(waves, results))
    failures = [r for r in results.values() if r.outcome in ("failed", "unreachable")]
    if failures:
        out.print("[bold]failures[/]")
        for r in failures:
            out.print(
                f"  {r.host}: {r.outcome} at task {r.failed_task or '?'!r}: {r.message or ''}",
                markup=False,
            )


@click.group()
def runs() -> None:
    """List and inspect recorded runs: who ran what, where, and how each host fared.

    Every rollout is recorded in the state store (SQLite in the state dir, or
    PostgreSQL by db_url / PROVISION_DB_URL) with its waves and one result per
    host, committed while it runs.

    \b
    Example:
      provision runs list --status failed
      provision runs show 12
      provision runs show 12 --json | jq '.hosts[] | select(.outcome == "failed")'
    """


@runs.command("list")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many runs, newest first.",
)
@click.option("--status", type=click.Choice(STATUSES), help="Only runs with this status.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@pass_app
def list_runs(app: AppContext, limit: int, status: str | None, as_json: bool) -> None:
    """List recent runs, newest first, with their host counts.

    \b
    Example:
      provision runs list
      provision runs list --status stopped --limit 5
    """
    from provision.infra.store import open_store

    with open_store(app.settings) as store:
        found = store.list_runs(limit=limit, status=status)
    if as_json:
        console.print_json([dataclasses.asdict(r) for r in found])
    elif not found:
        console.out.print("no runs recorded yet (start one with provision rollout)")
    else:
        console.out.print(runs_table(found))


@runs.command("show")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@pass_app
def show(app: AppContext, run_id: int, as_json: bool) -> None:
    """Show one run: what, who, when, its waves, every host's result and the failures.

    \b
    Example:
      provision runs show 12
    """
    from provision.infra.store import open_store

    with open_store(app.settings) as store:
        run = store.get_run(run_id)
        waves = store.waves(run_id)
        results = store.host_results(run_id)
    if as_json:
        console.print_json(run_json(run, waves, results))
    else:
        print_run(run, waves, results)
