"""`provision standards`: check the standards' files and list the controls they hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option
from provision.errors import ExitStatus, InputError
from provision.inventory.files import load_inventory
from provision.model.words import plural
from provision.standards import (
    Control,
    Standard,
    control_parameters,
    host_layers,
    resolve_parameters,
)
from provision.standards.service import pick_standard, standard_paths, validate_standard


@click.group()
def standards() -> None:
    """Check the published standards (standards/*.yml) and list their controls.

    A standard is versioned data: each control has an id, a severity, the roles
    and OS releases it applies to, parameters, a declarative check and the role
    and tag that enforce it. See docs/standards.md.

    \b
    Examples:
      provision standards validate
      provision standards show --role lab_pc
      provision standards show --host dhk-kal-lab01 --json
    """


@standards.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
def validate(app: AppContext, files: tuple[Path, ...], as_json: bool) -> None:
    """Check FILES (default: every standard in standards/) and list every problem.

    Checks the format (known keys, check types and their fields, severities,
    parameter types and defaults, unique control ids, parameter references) and
    that the roles in playbooks/roles/ agree: each enforcing role exists, has a
    task tagged with the control id, and holds the same parameter defaults.
    Exit 0 when valid, 3 when not.

    \b
    Examples:
      provision standards validate
      provision standards validate standards/bd-ict-baseline.yml
    """
    settings = app.settings
    paths = standard_paths(settings.standards_path, files)
    results = [validate_standard(p, settings.playbooks_path / "roles") for p in paths]
    if as_json:
        console.print_json(
            {"ok": all(r.ok for r in results), "standards": [r.as_dict() for r in results]}
        )
    else:
        for result in results:
            console.print_problems(result.problems)
            if result.standard is not None and result.ok:
                s = result.standard
                console.out.print(
                    f"{result.path}: {s.id} {s.version}, {len(s.controls)} controls, valid",
                    markup=False,
                )
    bad = [r for r in results if not r.ok]
    if bad:
        count = sum(len(r.problems) for r in bad)
        if as_json:  # the problems are in the JSON already
            raise click.exceptions.Exit(int(ExitStatus.BAD_INPUT))
        raise InputError(
            f"{plural(count, 'problem')} in {plural(len(bad), 'standard file')}",
            hint="fix each line listed above and run again",
        )


@standards.command()
@click.option("--role", metavar="ROLE", help="Only controls that apply to hosts of ROLE.")
@click.option(
    "--os", "os_release", metavar="RELEASE", help="Only controls for RELEASE (debian-12)."
)
@click.option(
    "--host",
    metavar="HOST",
    help="Controls for HOST's role, with its parameter values from inventories/ENV/.",
)
@click.option("--standard", "wanted", metavar="ID|FILE", help="Which standard, if several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@env_option
@pass_app
def show(
    app: AppContext,
    role: str | None,
    os_release: str | None,
    host: str | None,
    wanted: str | None,
    as_json: bool,
) -> None:
    """List the controls of the standard, for a role or for one host.

    With --host, the role comes from the host's provision_role and each
    parameter shows the value the host gets: the standard's default, or the
    inventory variable (group_vars/host_vars) that overrides it.

    \b
    Examples:
      provision standards show
      provision standards show --role field_server
      provision standards show --host dhk-kal-lab01 --env lab
      provision standards show --role lab_pc --json
    """
    settings = app.settings
    standard = pick_standard(settings.standards_path, wanted)
    values: dict[str, Any] = {}
    if host is not None:
        loaded = load_inventory(settings.inventory_path)
        layers = host_layers(loaded, host)
        role = role or _host_role(layers)
        resolved = resolve_parameters(standard, layers)
        values = {n: {"value": r.value, "source": r.source} for n, r in resolved.items()}
    if role is not None and role not in standard.roles:
        raise InputError(
            f"role '{role}' is not covered by {standard.id}",
            hint="roles: " + ", ".join(standard.roles),
        )
    controls = standard.applicable(role, os_release)
    if as_json:
        console.print_json(_as_json(standard, controls, role, host, values))
        return
    _print_table(standard, controls, role, host, values)


def _host_role(layers: list[Any]) -> str | None:
    role = None
    for layer in layers:
        role = layer.values.get("provision_role", role)
    return None if role is None else str(role)


def _as_json(
    standard: Standard,
    controls: list[Control],
    role: str | None,
    host: str | None,
    values: dict[str, Any],
) -> dict[str, Any]:
    rows = []
    for control in controls:
        row = control.as_dict()
        if values:
            row["values"] = {n: values[n] for n in control_parameters(control)}
        rows.append(row)
    return {
        "standard": {"id": standard.id, "version": standard.version, "digest": standard.digest},
        "role": role,
        "host": host,
        "controls": rows,
    }


def _print_table(
    standard: Standard,
    controls: list[Control],
    role: str | None,
    host: str | None,
    values: dict[str, Any],
) -> None:
    scope = f" for host {host}" if host else (f" for role {role}" if role else "")
    console.out.print(
        f"{standard.title} ({standard.id} {standard.version}): {len(controls)} controls{scope}",
        markup=False,
    )
    table = Table(show_edge=False, pad_edge=False)
    for column in ("control", "severity", "title", "enforced by", "checks"):
        table.add_column(column, overflow="fold")
    if values:
        table.add_column("parameters", overflow="fold")
    for control in controls:
        enforce = (
            f"{control.enforce.role} --tags {control.enforce.tag}"
            if control.enforce
            else "(checked only)"
        )
        row = [
            control.id,
            control.severity,
            control.title,
            enforce,
            ", ".join(c.type for c in control.checks),
        ]
        if values:
            row.append(
                "\n".join(
                    f"{n}={values[n]['value']!r}"
                    + ("" if values[n]["source"] == "default" else f" ({values[n]['source']})")
                    for n in control_parameters(control)
                )
            )
        table.add_row(*row)
    console.out.print(table)
