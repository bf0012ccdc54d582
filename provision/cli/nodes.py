"""`provision nodes`: the execution nodes (field servers that run their sites' share)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option
from provision.errors import ExitStatus

if TYPE_CHECKING:
    from provision.nodes.check import NodeCheck


@click.group()
def nodes() -> None:
    """Manage the execution nodes: field servers that run the share of a rollout or
    audit of the hosts they serve.

    The nodes are kept in inventories/ENV/nodes.yml (under version control, beside
    hosts.yml). A host served by no node runs from the control node, as do the
    nodes' own hosts; the most specific node wins (docs/nodes.md).

    \b
    Example:
      provision nodes add gazipur --host gaz-001-fs01 --serves district:gazipur
      provision nodes setup gazipur --yes
      provision nodes check
      provision nodes list
    """


@nodes.command()
@click.argument("name")
@click.option("--host", required=True, help="The inventory host the node runs on.")
@click.option(
    "--serves", required=True, metavar="SELECTION", help="The hosts it serves: district:NAME."
)
@click.option("--json", "as_json", is_flag=True, help="Print the new node as JSON.")
@env_option
@pass_app
def add(app: AppContext, name: str, host: str, serves: str, as_json: bool) -> None:
    """Add node NAME on HOST, serving SELECTION (nothing is written if any rule breaks).

    Refused: a host not in the inventory, a selection that overlaps another
    node's at the same level, a node that would serve only itself.

    \b
    Example:
      provision nodes add gazipur --host gaz-001-fs01 --serves district:gazipur
    """
    from provision.nodes.service import add_node

    entry = add_node(app.settings, name, host, serves)
    if as_json:
        console.print_json(
            {
                "name": name,
                "host": entry.node.host,
                "serves": entry.node.serves,
                "served": entry.served,
            }
        )
        return
    console.out.print(
        f"added node {name} on {entry.node.host}, serving {entry.node.serves} "
        f"({entry.served} hosts); set it up with: provision nodes setup {name}",
        markup=False,
    )


@nodes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@env_option
@pass_app
def list_command(app: AppContext, as_json: bool) -> None:
    """List the nodes, how many hosts each serves and how many it runs (checks nodes.yml too).

    A host served by two nodes is run by the more specific; the nodes' own hosts
    run from the control node.

    \b
    Example:
      provision nodes list --json
    """
    from provision.nodes.service import list_nodes

    found = list_nodes(app.settings)
    if as_json:
        console.print_json(
            [
                {
                    "name": e.node.name,
                    "host": e.node.host,
                    "serves": e.node.serves,
                    "served": e.served,
                    "runs": e.runs,
                }
                for e in found
            ]
        )
        return
    table = Table(title=f"nodes ({len(found)})")
    for column in ("name", "host", "serves", "hosts served", "hosts it runs"):
        table.add_column(column)
    for e in found:
        table.add_row(e.node.name, e.node.host, e.node.serves, str(e.served), str(e.runs))
    console.out.print(table)


@nodes.command()
@click.argument("name")
@env_option
@pass_app
def remove(app: AppContext, name: str) -> None:
    """Remove node NAME: its hosts run from the control node again (the node is not touched).

    \b
    Example:
      provision nodes remove gazipur
    """
    from provision.nodes.service import remove_node

    node = remove_node(app.settings, name)
    console.out.print(f"removed node {node.name} ({node.host})", markup=False)


def _fast_line(check: NodeCheck) -> str:
    from provision.nodes.check import fast_versions

    ours = fast_versions().get("mitogen")
    if check.fast(ours):
        return f"strategy: fast (mitogen {check.mitogen}, as the control node)"
    if not ours:
        return "strategy: plain (the control node has no mitogen)"
    have = f"mitogen {check.mitogen}" if check.mitogen else "no mitogen"
    return (
        f"strategy: plain (the node has {have}, the control node {ours}: "
        f"provision nodes setup {check.name} installs it)"
    )


def _check_line(check: NodeCheck, control: dict[str, str]) -> list[str]:
    if not check.reachable:
        return [f"{check.name} ({check.host}): unreachable: {check.message}"]
    lines = [f"{check.name} ({check.host}):"]
    if check.worker:
        skew = check.skew(control)
        versions = f"ansible-core {check.ansible_core}, ansible-runner {check.ansible_runner}"
        lines.append(
            f"  worker: {versions}"
            + (f"  VERSION SKEW: {'; '.join(skew)}" if skew else " (same as the control node)")
        )
        lines.append(f"  worker uuid: {check.worker_info.get('uuid', '?')}")
        lines.append("  " + _fast_line(check))
    else:
        lines.append(f"  worker: not set up{': ' + check.message if check.message else ''}")
    lines.append(
        f"  cpu {check.cpu_cores}, memory {check.memory_mb} MB, free disk {check.disk_free_mb} MB"
    )
    reached = sum(s.ok for s in check.sites)
    lines.append(
        f"  serves {check.served} hosts; sample reached from the node: {reached}/{len(check.sites)}"
    )
    for site in check.sites:
        if not site.ok:
            lines.append(f"    {site.host}: not reached: {site.message or 'no answer'}")
    return lines


@nodes.command()
@click.argument("name", required=False)
@click.option(
    "--sample",
    "sample_size",
    type=click.IntRange(0),
    default=5,
    show_default=True,
    help="How many served hosts to try reaching from each node.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@env_option
@pass_app
def check(app: AppContext, name: str | None, sample_size: int, as_json: bool) -> None:
    """Ask node NAME (every node when left out) over SSH what it runs.

    Reports the worker (ansible-runner worker --worker-info), ansible-core and
    ansible-runner against the control node's, the strategy its shards run
    (fast: the node has the control node's mitogen), CPU, memory, free disk, and
    whether a sample of the hosts it serves answer SSH from the node. Exit 5 when
    a node or a sampled host is unreachable, 3 when a node is not ready
    (no worker, or other versions).

    \b
    Example:
      provision nodes check
      provision nodes check gazipur --json
    """
    from provision.nodes.check import control_versions
    from provision.nodes.service import check as check_service

    control = control_versions()
    results = check_service(app.settings, name, sample_size=sample_size)
    if as_json:
        console.print_json({"control": control, "nodes": [r.as_dict(control) for r in results]})
    else:
        for result in results:
            for line in _check_line(result, control):
                console.out.print(line, markup=False, highlight=False)
    if any(not r.reachable or not all(s.ok for s in r.sites) for r in results):
        raise click.exceptions.Exit(int(ExitStatus.HOSTS_UNREACHABLE))
    if any(not r.worker or r.skew(control) for r in results):
        raise click.exceptions.Exit(int(ExitStatus.BAD_INPUT))


@nodes.command()
@click.argument("name")
@click.option("--check", is_flag=True, help="Report what would change; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@env_option
@pass_app
def setup(app: AppContext, name: str, check: bool, yes: bool, as_json: bool) -> None:
    """Make node NAME's host an execution node: run playbooks/execution_node.yml.

    Builds a wheelhouse on this control node of ansible-core and ansible-runner
    (and mitogen, when installed here, so that shards run the fast strategy on
    the node) at its own versions (the node needs no internet), makes the node's own key and
    authorises it on the hosts the node serves (from the node's address only),
    then runs the role as a rollout recorded in the store (provision runs).
    Run it again after upgrading Ansible on the control node.

    \b
    Example:
      provision nodes setup gazipur --check
      provision nodes setup gazipur --yes
    """
    from provision.cli.rollout import _confirm, _drive
    from provision.nodes.setup import plan_setup, prepare_setup
    from provision.rollout import run_rollout

    planned = plan_setup(app.settings, name, check=check)
    console.err.print(
        f"node {planned.node.name} on {planned.node.host} (python {planned.platform.python}), "
        f"authorising its key on {len(planned.sites)} hosts it serves",
        markup=False,
    )
    _confirm(planned.plan, yes)
    prepare_setup(app.settings, planned, lambda step: console.err.print(step, markup=False))
    _drive(
        app,
        len(planned.plan.hosts),
        as_json,
        lambda display, stop: run_rollout(
            app.settings, planned.plan, on_progress=display, stop=stop
        ),
    )
