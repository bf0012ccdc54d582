"""`provision lab`: real Debian hosts on this machine, for trying and testing."""

from __future__ import annotations

import dataclasses
import os

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.errors import ExitStatus
from provision.infra.runner import PlaybookEvent, PlaybookResult
from provision.lab import demo, service
from provision.model.words import plural

_STATE_STYLE = {"up": "green", "down": "red"}


@click.group()
def lab() -> None:
    """Boot, inspect and tear down the built-in lab of real Debian hosts.

    The lab runs Debian 12 hosts booted with systemd inside systemd-nspawn, each
    on an overlay over one cached root filesystem, on a private bridge with a
    package cache. It writes inventories/lab/ so that provision and plain
    ansible-playbook reach the hosts at once, with strict host key checking.
    Needs root, systemd-container, debootstrap and apt-cacher-ng.

    \b
    Example:
      provision lab up
      provision lab ping
      provision lab stop dhk-kal-lab01 && provision lab start dhk-kal-lab01
      provision lab down
    """


def _status_table(hosts: list[service.HostStatus]) -> Table:
    table = Table(title="lab hosts")
    for column in ("host", "role", "site", "address", "state", "systemd"):
        table.add_column(column)
    for h in hosts:
        table.add_row(
            h.name, h.role, h.site, h.address, f"[{_STATE_STYLE[h.state]}]{h.state}[/]", h.systemd
        )
    return table


@lab.command()
@click.option(
    "--hosts",
    "hosts_spec",
    metavar="SPEC",
    help="Which hosts: comma-separated names of the default hosts, 'default', "
    "or ROLE:COUNT for COUNT more hosts of a role, numbered after those named "
    "(field_server, lab_pc, portal_host, digital_centre_pc); "
    "an entry ending in @new boots as a machine arrives, to be bootstrapped "
    "(lab_pc:2@new). Default: the four default hosts.",
)
@click.option(
    "--nodes",
    "with_nodes",
    is_flag=True,
    help="Make the two field servers execution nodes (nodes.yml, then the role): "
    "dhk-gaz-fs01 serves district:gazipur, dhk-kal-fs01 upazila:gazipur/kaliganj.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the hosts as JSON.")
@pass_app
def up(app: AppContext, hosts_spec: str | None, with_nodes: bool, as_json: bool) -> None:
    """Boot the lab's hosts and write inventories/lab/.

    The first run builds a Debian root filesystem with debootstrap (about two
    minutes; cached in lab_cache and reused). If anything fails, whatever was
    started is taken down again.

    \b
    Example:
      provision lab up
      provision lab up --hosts default,lab_pc:3
      provision lab up --hosts default,lab_pc:3@new
      provision lab up --nodes
    """
    failed: list[str] = []
    with console.Steps("lab up") as steps:
        if with_nodes:
            from provision.nodes.lab import up_with_nodes

            both = up_with_nodes(app.settings, hosts_spec, steps)
            result = both.up
            failed = [name for name, run in both.setups.items() if run.exit_status != 0]
        else:
            result = service.up(app.settings, hosts_spec, steps)
    if as_json:
        console.print_json([dataclasses.asdict(h) for h in result.hosts])
        if failed:
            raise click.exceptions.Exit(int(ExitStatus.HOSTS_FAILED))
        return
    console.out.print(_status_table(result.hosts))
    console.out.print(
        f"{plural(len(result.hosts), 'host')} up in {result.seconds:.1f}s; "
        f"inventory in {result.inventory_dir}"
    )
    if with_nodes:
        console.out.print(
            "execution nodes: gazipur (dhk-gaz-fs01), kaliganj (dhk-kal-fs01); "
            "see provision nodes check"
            + (f"; setup FAILED on {', '.join(failed)} (provision runs list)" if failed else "")
        )
    if failed:
        raise click.exceptions.Exit(int(ExitStatus.HOSTS_FAILED))


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print the hosts as JSON.")
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """Show each lab host: up or down, its address and its systemd state.

    \b
    Example:
      provision lab status --json
    """
    hosts = service.status(app.settings)
    if as_json:
        console.print_json([dataclasses.asdict(h) for h in hosts])
    elif not hosts:
        console.out.print("the lab is not up (start it with provision lab up)")
    else:
        console.out.print(_status_table(hosts))


@lab.command(context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_app
def ssh(app: AppContext, name: str, command: tuple[str, ...]) -> None:
    """Log into a lab host as root, or run COMMAND there.

    \b
    Example:
      provision lab ssh dhk-kal-lab01
      provision lab ssh dhk-kal-lab01 -- systemctl is-system-running
    """
    argv = service.ssh_command(app.settings, name, list(command))
    os.execvp(argv[0], argv)  # noqa: S606 - replace this process with ssh, argv as a list


@lab.command()
@click.argument("name")
@pass_app
def stop(app: AppContext, name: str) -> None:
    """Power one host off, as a field machine drops off the network.

    Its disk is kept; `provision lab start NAME` brings it back.

    \b
    Example:
      provision lab stop dhk-kal-lab01
    """
    service.stop_host(app.settings, name)
    console.out.print(f"{name} is down")


@lab.command()
@click.argument("name")
@pass_app
def start(app: AppContext, name: str) -> None:
    """Boot a stopped host again, with the disk it had.

    \b
    Example:
      provision lab start dhk-kal-lab01
    """
    seconds = service.start_host(app.settings, name)
    console.out.print(f"{name} is up (answered SSH after {seconds:.1f}s)")


@lab.command()
@click.argument("name")
@pass_app
def reset(app: AppContext, name: str) -> None:
    """Put one host back to the pristine image (fresh disk and host key) and boot it.

    \b
    Example:
      provision lab reset dhk-gaz-portal01
    """
    seconds = service.reset_host(app.settings, name)
    console.out.print(f"{name} is pristine and up (answered SSH after {seconds:.1f}s)")


@lab.command()
@pass_app
def down(app: AppContext) -> None:
    """Stop every lab host and remove what the lab made. Safe to run twice.

    Stops the hosts and the package proxy by the process ids the lab recorded,
    unmounts the overlays, removes the bridge and the hosts' folders. The
    cached root filesystem and the lab key are kept for the next `lab up`.

    \b
    Example:
      provision lab down
    """
    with console.Steps("lab down") as steps:
        done = service.down(app.settings, steps)
    console.out.print("lab is down" + ("" if done else " (nothing was running)"))


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print per-host results as JSON.")
@pass_app
def ping(app: AppContext, as_json: bool) -> None:
    """Run the first playbook (playbooks/ping.yml) on every lab host.

    Reaches each host over SSH with strict host key checking and prints a
    per-host summary. Exits 4 if a host failed, 5 if one was unreachable, 130 if
    interrupted.

    \b
    Example:
      provision lab ping
    """
    with console.Steps("ping.yml on the lab") as steps:

        def on_event(event: PlaybookEvent) -> None:
            if event.kind == "playbook_on_task_start" and event.data.get("task"):
                steps(f"task: {event.data['task']}")

        result = demo.ping(app.settings, on_event)
    _render_playbook_result(result, as_json)
    if result.exit_status != ExitStatus.SUCCESS:
        raise click.exceptions.Exit(int(result.exit_status))


def _render_playbook_result(result: PlaybookResult, as_json: bool) -> None:
    if as_json:
        console.print_json(
            {
                "status": result.status,
                "rc": result.rc,
                "hosts": [dataclasses.asdict(s) for s in result.hosts.values()],
            }
        )
        return
    table = Table(title=f"playbook {result.status}")
    for column in ("host", "result", "ok", "changed", "failed", "unreachable", "skipped"):
        table.add_column(column)
    colours = {"ok": "green", "changed": "yellow", "failed": "bold red", "unreachable": "magenta"}
    for s in result.hosts.values():
        table.add_row(
            s.host,
            f"[{colours[s.outcome]}]{s.outcome}[/]",
            str(s.ok),
            str(s.changed),
            str(s.failed),
            str(s.unreachable),
            str(s.skipped),
        )
    console.out.print(table)
    console.out.print(f"artifacts: {result.private_data_dir}")


@lab.command()
@click.argument("name")
@pass_app
def cut(app: AppContext, name: str) -> None:
    """Cut one host's network link; it keeps running, as a PC whose link is down.

    `provision lab restore NAME` gives the link back.

    \b
    Example:
      provision lab cut dhk-kal-lab01
    """
    link = service.cut_host(app.settings, name)
    console.out.print(f"{name} is cut off ({link} down)", markup=False)


@lab.command()
@click.argument("name")
@pass_app
def restore(app: AppContext, name: str) -> None:
    """Give a cut host its network link back.

    \b
    Example:
      provision lab restore dhk-kal-lab01
    """
    link = service.restore_host(app.settings, name)
    console.out.print(f"{name} is back on the network ({link} up)", markup=False)
