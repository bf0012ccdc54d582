"""`provision preflight`: a fast SSH sweep of the selected hosts."""

from __future__ import annotations

import click
from rich.table import Table

from provision import preflight as service
from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.errors import ExitStatus


@click.command()
@click.argument("selection", required=False)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    default=service.DEFAULT_CONCURRENCY,
    show_default=True,
    help="Hosts swept at once (each one SSH connection).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.2, 300),
    default=service.DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds a host has to answer.",
)
@click.option("--hosts", "show_hosts", is_flag=True, help="List every host, not only problems.")
@click.option("--json", "as_json", is_flag=True, help="Print every host and district as JSON.")
@pass_app
def preflight(
    app: AppContext,
    selection: str | None,
    concurrency: int,
    timeout: float,
    show_hosts: bool,
    as_json: bool,
) -> None:
    """Sweep hosts over SSH: reachable or why not, latency, OS, CPU, RAM, disk.

    One SSH connection per host, many at once, as Ansible would log in (user,
    key, address from the inventory; host keys strictly from
    inventories/ENV/.ssh/known_hosts). Each host is compared with the equipment
    minimum of its role. Prints a summary per district and the hosts with a
    problem; saves the sweep as JSON under STATE_DIR/preflight/.

    Exit status: 0 all reachable, 5 some unreachable, 3 a host key changed.

    \b
    Example:
      provision preflight
      provision preflight 'district:gazipur' --timeout 10 --hosts
      provision preflight 'role:lab_pc' --json > sweep.json
    """
    result = service.sweep(app.settings, selection, concurrency=concurrency, timeout=timeout)
    if as_json:
        console.print_json(result.as_dict())
    else:
        console.out.print(_districts(result))
        listed = [
            h for h in result.hosts if show_hosts or not h.reachable or h.meets_minimum is False
        ]
        if listed:
            console.out.print(_hosts(listed))
        reachable = sum(h.reachable for h in result.hosts)
        console.out.print(
            f"{reachable} of {len(result.hosts)} hosts reachable in {result.seconds:.1f}s; "
            f"saved to {result.saved_to}"
        )
    if result.exit_status != ExitStatus.SUCCESS:
        raise click.exceptions.Exit(int(result.exit_status))


def _districts(result: service.PreflightResult) -> Table:
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


def _hosts(hosts: list[service.HostPreflight]) -> Table:
    table = Table(title="hosts")
    for column in ("host", "role", "status", "ms", "os", "cores", "RAM MB", "disk GB", "minimum"):
        table.add_column(column)
    for h in hosts:
        if h.meets_minimum is None:
            minimum = "-"
        else:
            minimum = "ok" if h.meets_minimum else "[yellow]" + "; ".join(h.shortfalls) + "[/]"
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
