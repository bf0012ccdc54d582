"""`provision inventory`: import the site register, check it, and select hosts by the tree."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table
from rich.tree import Tree

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option, selection_argument
from provision.errors import ExitStatus
from provision.inventory.files import load_inventory
from provision.inventory.generate import generate_rows, write_register
from provision.inventory.service import import_register
from provision.inventory.slice import slice_inventory
from provision.inventory.validate import validate_environment, validate_register
from provision.model.inventory.problems import Problem, ProblemsError
from provision.model.inventory.select import parse_selection, select_hosts
from provision.model.inventory.summary import TreeNode, count_tree
from provision.model.words import plural

F = TypeVar("F", bound=Callable[..., Any])
#: How many host names each list shows on a terminal before "and N more".
SHOWN = 20


def _json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(function)


def _print_problems(problems: Sequence[Problem]) -> None:
    console.print_problems(problems)


def _names(label: str, names: Sequence[str]) -> None:
    if not names:
        return
    shown = ", ".join(names[:SHOWN])
    more = f" … and {len(names) - SHOWN} more (--json lists all)" if len(names) > SHOWN else ""
    console.out.print(f"  {label} {len(names)}: {shown}{more}", markup=False)


@click.group()
def inventory() -> None:
    """Import the site register, check inventories, and select hosts by the tree.

    \b
    Examples:
      provision inventory import register.csv --env production
      provision inventory show 'district:gazipur,role:lab_pc' --env production
      provision inventory tree --env production --depth 2
    """


@inventory.command("import")
@click.argument("register", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and compare only; write nothing.")
@env_option
@_json_option
@pass_app
def import_(app: AppContext, register: Path, dry_run: bool, as_json: bool) -> None:
    """Write inventories/ENV/hosts.yml from the site register REGISTER (UTF-8 CSV).

    Every bad row is listed with its line and nothing is written. A re-import
    lists the hosts added, removed and changed. Your own group_vars/ and
    host_vars/ files are never touched.

    \b
    Example:
      provision inventory import inventories/sample/register.csv --env sample
    """
    settings = app.settings
    try:
        result = import_register(register, settings.inventory_path, dry_run=dry_run)
    except ProblemsError as exc:
        if as_json:
            console.print_json({"written": False, "problems": [p.as_dict() for p in exc.problems]})
        elif len(exc.problems) > 1:
            _print_problems(exc.problems)
        raise
    if as_json:
        console.print_json(result.as_dict())
        return
    verb = "would write" if dry_run else ("wrote" if result.written else "unchanged:")
    console.out.print(
        f"{register} → {verb} {result.hosts_path} "
        f"({plural(result.hosts, 'host')}, {plural(result.groups, 'group')})",
        markup=False,
    )
    diff = result.diff
    _names("added", diff.added)
    _names("removed", diff.removed)
    _names("changed", [f"{h} ({', '.join(k)})" for h, k in diff.changed.items()])


@inventory.command()
@click.argument("register", required=False, type=click.Path(path_type=Path))
@env_option
@_json_option
@pass_app
def validate(app: AppContext, register: Path | None, as_json: bool) -> None:
    """Check inventories/ENV/ (or a REGISTER file) and list every problem.

    Checks that every host has one address and exactly one place in the tree,
    names and addresses are unique, roles are known, and that nothing would be
    misread by Ansible (group_vars/host_vars files included). Exit 0 when valid,
    3 when not.

    \b
    Examples:
      provision inventory validate --env production
      provision inventory validate new-lab-pcs.csv
    """
    if register is not None:
        report = validate_register(register)
    else:
        report = validate_environment(app.settings.inventory_path)
    if as_json:
        console.print_json(report.as_dict())
    else:
        _print_problems(report.problems)
        errors, warnings = len(report.errors), len(report.problems) - len(report.errors)
        verdict = "valid" if report.ok else "not valid"
        counts = [plural(errors, "error"), plural(warnings, "warning")]
        if report.hosts is not None:  # None: it never parsed, so no host was counted
            counts.insert(0, plural(report.hosts, "host"))
        console.out.print(f"{report.path}: {verdict} ({', '.join(counts)})", markup=False)
    if not report.ok:
        raise click.exceptions.Exit(int(ExitStatus.BAD_INPUT))


@inventory.command()
@selection_argument()
@click.option(
    "--slice",
    "as_slice",
    is_flag=True,
    help="Print the inventory provision hands Ansible: the selected hosts, variables resolved.",
)
@env_option
@_json_option
@pass_app
def show(app: AppContext, selection: str, as_slice: bool, as_json: bool) -> None:
    """List the hosts that SELECTION picks (all hosts when it is left out).

    SELECTION: terms joined by ',' (and), alternatives by ';' or a space (or),
    '!' to exclude. Keys: division, district, upazila, union, site, site_type,
    role, host, group; a bare word is a host or group name or glob. Place
    names match ignoring case, spaces and punctuation, in English or Bangla;
    quote one with spaces: upazila:'Brahmanbaria Sadar'. An empty term is an
    error; 'all' (or no SELECTION) is every host.

    \b
    Examples:
      provision inventory show 'district:gazipur,role:lab_pc'
      provision inventory show 'division:khulna,!site:KHU-014' --json
      provision inventory show 'gaz-*;role:portal_host' --slice > slice.json
    """
    settings = app.settings
    parsed = parse_selection(selection)
    loaded = load_inventory(settings.inventory_path)
    hosts = select_hosts(loaded.inventory, parsed)
    if as_slice:
        console.print_json(slice_inventory(loaded.inventory, hosts, loaded.folder))
        return
    # What Ansible would see: group_vars and host_vars resolved.
    values = slice_inventory(loaded.inventory, hosts, loaded.folder)["all"]["hosts"]
    if as_json:
        console.print_json([{"host": h, **values[h]} for h in hosts])
        return
    rows = [
        (
            h,
            str(values[h].get("ansible_host", "")),
            str(values[h].get("provision_role", "")),
            str(values[h].get("provision_site_code", "")),
            " / ".join(
                str(values[h][k])
                for k in ("provision_district", "provision_upazila", "provision_union")
                if values[h].get(k)
            ),
        )
        for h in hosts
    ]
    if console.out.is_terminal:
        table = Table("host", "address", "role", "site", "place", box=None)
        for row in rows:
            table.add_row(*row)
        console.out.print(table)
    else:
        for row in rows:
            console.out.print("\t".join(row), markup=False, highlight=False)
    what = f"match '{selection}'" if selection else "in the inventory"
    console.err.print(f"{plural(len(hosts), 'host')} {what}", markup=False)


@inventory.command()
@selection_argument()
@click.option(
    "--depth",
    type=click.IntRange(1, 4),
    default=2,
    show_default=True,
    help="Levels to show: 1 division … 4 union.",
)
@env_option
@_json_option
@pass_app
def tree(app: AppContext, selection: str, depth: int, as_json: bool) -> None:
    """Print the tree (division → district → upazila → union) with host counts.

    \b
    Examples:
      provision inventory tree --env production
      provision inventory tree 'division:khulna,role:lab_pc' --depth 4 --json
    """
    settings = app.settings
    parsed = parse_selection(selection)
    loaded = load_inventory(settings.inventory_path)
    root = count_tree(loaded.inventory, select_hosts(loaded.inventory, parsed))
    if as_json:
        console.print_json(root.as_dict(depth))
        return
    view = Tree(f"all: {plural(root.hosts, 'host')}")

    def add(branch: Tree, node: TreeNode, level: int) -> None:
        for child in node.sorted_children():
            leaf = branch.add(f"{child.name} ({child.level}): {child.hosts}")
            if level < depth:
                add(leaf, child, level + 1)

    add(view, root, 1)
    console.out.print(view, markup=False, highlight=False)


@inventory.command()
@click.option("--hosts", "count", type=click.IntRange(min=1), required=True, help="How many hosts.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--division", "divisions", multiple=True, help="Only these divisions (repeatable).")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same register.")
def generate(count: int, out: Path, divisions: tuple[str, ...], seed: int) -> None:
    """Write a register of N hosts drawn from the real administrative tree.

    \b
    Example:
      provision inventory generate --hosts 50000 --out /tmp/register-50k.csv
    """
    rows = generate_rows(count, divisions=divisions, seed=seed)
    write_register(rows, out)
    console.out.print(f"wrote {out} ({plural(len(rows), 'host')})", markup=False)
