"""`provision doctor`."""

from __future__ import annotations

import dataclasses

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.doctor.service import run_doctor
from provision.errors import ExitStatus

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@pass_app
def doctor(app: AppContext, as_json: bool) -> None:
    """Check that this machine can be a control node, and whether it can run the lab.

    Looks at Python, ansible-core, ansible-runner, the ssh client, the
    workspace and state directory, and the lab's needs (root, systemd-nspawn,
    debootstrap, apt-cacher-ng, overlayfs). Each failed check says what to do.
    Exits 3 when a required check fails.

    \b
    Example:
      provision doctor
      provision doctor --json | jq '.checks[] | select(.status != "pass")'
    """
    report = run_doctor(app.settings)
    if as_json:
        console.print_json(
            {"healthy": report.healthy, "checks": [dataclasses.asdict(c) for c in report.checks]}
        )
    else:
        table = Table(title="provision doctor", show_lines=False)
        for column in ("check", "status", "detail", "what to do"):
            table.add_column(column)
        for check in report.checks:
            table.add_row(
                check.name, f"[{_STYLE[check.status]}]{check.status}[/]", check.detail, check.fix
            )
        console.out.print(table)
    if not report.healthy:
        raise click.exceptions.Exit(int(ExitStatus.BAD_INPUT))
