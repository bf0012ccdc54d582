"""`provision preflight`: a fast SSH sweep of the selected hosts, and past sweeps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option, selection_argument
from provision.errors import ExitStatus
from provision.model.words import plural

if TYPE_CHECKING:  # imported when a command runs: `provision --help` stays quick
    from provision.access.preflight import PreflightResult
    from provision.infra.store.preflight_records import SweepInfo
    from provision.model.preflight import HostPreflight

# The defaults of provision.access.preflight, repeated so that --help needs no import.
DEFAULT_CONCURRENCY = 50
DEFAULT_TIMEOUT = 5.0


class PreflightGroup(click.Group):
    """`preflight` sweeps by default: a first argument that is not `show`/`list` is
    the selection (or an option of the sweep), so `provision preflight
    district:gazipur` sweeps and `provision preflight show 3` shows sweep 3."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["sweep", *args]
        return super().parse_args(ctx, args)


@click.group(cls=PreflightGroup)
def preflight() -> None:
    """Sweep hosts over SSH: reachable or why not, latency, OS, CPU, RAM, disk.

    `provision preflight [SELECTION] [options]` sweeps (see `provision preflight
    sweep --help` for its options): one SSH connection per host, many at once,
    as Ansible would log in (user, key, address from the inventory; host keys
    strictly from inventories/ENV/.ssh/known_hosts). Each host is compared with
    the equipment minimum the standards set for its role (the hardware controls,
    HW-001…, with inventory overrides). Every sweep is recorded in the state
    store as hosts answer; `show` and `list` read them back.

    Exit status of a sweep: 0 all reachable, 5 some unreachable, 3 a host key changed.

    \b
    Example:
      provision preflight
      provision preflight 'district:gazipur' --timeout 10 --hosts
      provision preflight 'role:lab_pc' --json > sweep.json
      provision preflight show              # the last sweep of this env
      provision preflight show 12 --hosts
      provision preflight list
    """


@preflight.command("sweep")
@selection_argument(missing=None)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Hosts swept at once (each one SSH connection).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.2, 300),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds a host has to answer.",
)
@click.option("--hosts", "show_hosts", is_flag=True, help="List every host, not only problems.")
@click.option("--json", "as_json", is_flag=True, help="Print every host and district as JSON.")
@env_option
@pass_app
def sweep(
    app: AppContext,
    selection: str | None,
    concurrency: int,
    timeout: float,
    show_hosts: bool,
    as_json: bool,
) -> None:
    """Sweep SELECTION (all hosts when none); the default command of `preflight`.

    Prints a summary per district and the hosts with a problem (all with
    --hosts), and records the sweep in the state store.

    \b
    Example:
      provision preflight 'district:gazipur' --timeout 10 --hosts
      provision preflight sweep 'role:lab_pc' --json
    """
    from provision.access import preflight as service

    try:
        result = service.sweep(app.settings, selection, concurrency=concurrency, timeout=timeout)
    except KeyboardInterrupt:
        # The hosts that answered are in the store; the boundary exits 130.
        console.err.print(
            "sweep interrupted; the hosts that answered are recorded: provision preflight show",
            markup=False,
        )
        raise
    _print(result, show_hosts, as_json)
    if result.exit_status != ExitStatus.SUCCESS:
        raise click.exceptions.Exit(int(result.exit_status))


@preflight.command("show")
@click.argument("sweep_id", metavar="[SWEEP]", type=int, required=False)
@click.option("--hosts", "show_hosts", is_flag=True, help="List every host, not only problems.")
@click.option("--json", "as_json", is_flag=True, help="Print every host and district as JSON.")
@env_option
@pass_app
def show(app: AppContext, sweep_id: int | None, show_hosts: bool, as_json: bool) -> None:
    """Show a recorded sweep (the last one of this env when SWEEP is not given).

    \b
    Example:
      provision preflight show
      provision preflight show 12 --hosts
      provision preflight show --json | jq '.hosts[] | select(.meets_minimum == false)'
    """
    from provision.access import preflight as service

    _print(service.recorded(app.settings, sweep_id), show_hosts, as_json)


@preflight.command("list")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many sweeps, newest first.",
)
@click.option("--all-envs", is_flag=True, help="Sweeps of every environment, not only --env's.")
@click.option("--json", "as_json", is_flag=True, help="Print the sweeps as JSON.")
@env_option
@pass_app
def list_sweeps(app: AppContext, limit: int, all_envs: bool, as_json: bool) -> None:
    """List recorded sweeps, newest first, with how many hosts answered.

    \b
    Example:
      provision preflight list
      provision preflight list --all-envs --json
    """
    from provision.access import preflight as service

    found = service.history(app.settings, limit=limit, all_envs=all_envs)
    if as_json:
        console.print_json([s.as_dict() for s in found])
    elif not found:
        console.out.print("no preflight sweep recorded yet (run one with provision preflight)")
    else:
        console.out.print(_sweeps(found))


def _print(result: PreflightResult, show_hosts: bool, as_json: bool) -> None:
    if as_json:
        console.print_json(result.as_dict())
        return
    console.out.print(_districts(result))
    listed = [h for h in result.hosts if show_hosts or not h.reachable or h.meets_minimum is False]
    if listed:
        console.out.print(_hosts(listed))
    reachable = sum(h.reachable for h in result.hosts)
    line = f"{reachable} of {len(result.hosts)} hosts reachable in {result.seconds:.1f}s"
    info = result.sweep
    if info is not None:
        line += f"; sweep {info.id} ({info.env}, {info.started_at:%Y-%m-%d %H:%M:%S} UTC"
        line += ")" if info.status == "done" else f", {info.status})"
        if info.hosts > len(result.hosts):
            line += f"; {plural(info.hosts - len(result.hosts), 'host')} never answered"
    console.out.print(line, markup=False)


def _districts(result: PreflightResult) -> Table:
    table = Table(title="preflight by district")
    for column in ("district", "hosts", "reachable", "unreachable", "below minimum", "median ms"):
        table.add_column(column, justify="left" if column == "district" else "right")
    for d in result.districts:
        table.add_row(
            d.district,
            str(d.hosts),
            str(d.reachable),
            f"[red]{d.unreachable}[/]" if d.unreachable else "0",
            f"[yellow]{d.below_minimum}[/]" if d.below_minimum else "0",
            "-" if d.median_latency_ms is None else f"{d.median_latency_ms:.1f}",
        )
    return table


def _hosts(hosts: list[HostPreflight]) -> Table:
    table = Table(title="hosts")
    for column in ("host", "role", "status", "ms", "os", "cores", "RAM MB", "disk GB", "minimum"):
        table.add_column(column)
    for h in hosts:
        if h.meets_minimum is None:
            minimum = "-"
        elif h.meets_minimum:
            minimum = f"ok ({h.minimum_control})"
        else:
            minimum = f"[yellow]{h.minimum_control}: " + "; ".join(h.shortfalls) + "[/]"
        table.add_row(
            h.host,
            h.role,
            "reachable" if h.reachable else f"[red]{h.status}[/]: {h.message}",
            "-" if h.latency_ms is None else f"{h.latency_ms:.1f}",
            h.os_release,
            "" if h.cpu_cores is None else str(h.cpu_cores),
            "" if h.memory_mb is None else str(h.memory_mb),
            "" if h.disk_gb is None else str(h.disk_gb),
            minimum,
        )
    return table


def _sweeps(found: list[SweepInfo]) -> Table:
    table = Table(title="preflight sweeps")
    for column in ("sweep", "status", "started (UTC)", "env", "user", "selection"):
        table.add_column(column)
    for column in ("hosts", "reachable", "unreachable", "seconds"):
        table.add_column(column, justify="right")
    for s in found:
        table.add_row(
            str(s.id),
            s.status,
            f"{s.started_at:%Y-%m-%d %H:%M:%S}",
            s.env,
            s.user,
            s.selection or "all",
            str(s.hosts),
            str(s.reachable),
            str(s.answered - s.reachable),
            "-" if s.seconds is None else f"{s.seconds:.1f}",
        )
    return table
