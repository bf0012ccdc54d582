"""`provision waivers`: Read and validate waivers.yml: approved exceptions to controls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option
from provision.errors import ExitStatus, InputError, ProvisionError
from provision.model.inventory.problems import ProblemsError
from provision.model.standards.model import Standard
from provision.model.waivers import SCOPE_KINDS, Scope, Waiver, WaiverSet
from provision.model.words import plural
from provision.standards.waivers import add_waiver, load_waivers

_FILE_OPTION = click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The waivers file. Default: waivers.yml in the workspace.",
)
_STANDARD_OPTION = click.option(
    "--standard", "wanted", metavar="ID|FILE", help="Which standard, if several."
)


@click.group()
def waivers() -> None:
    """Read and validate waivers.yml: approved exceptions to controls.

    A waiver exempts the hosts in its scope (a host, an inventory group, or a
    site, union, upazila, district or division) from one control until its
    expiry, with a justification and an approver. Compliance runs report the
    control as waived; once the waiver has expired the control is checked again
    and the report flags the expired waiver. See docs/waivers.md.

    \b
    Examples:
      provision waivers validate
      provision waivers list --expired
      provision waivers add SSH-004 district:Gazipur --approver "Director, ICT" \\
          --justification "Legacy agent until March" --expires 2027-03-01
    """


@dataclass(frozen=True)
class _Context:
    path: Path
    standard: Standard
    hosts: frozenset[str]
    groups: frozenset[str]
    #: Why scopes could not be checked against an inventory (None when they were).
    unchecked: str | None


def _context(app: AppContext, path: Path | None, wanted: str | None) -> _Context:
    from provision.inventory.files import load_inventory
    from provision.standards.service import pick_standard

    settings = app.settings
    standard = pick_standard(settings.standards_path, wanted)
    folder = settings.inventory_path
    hosts: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    unchecked = None
    if (folder / "hosts.yml").is_file():
        inventory = load_inventory(folder).inventory
        hosts, groups = frozenset(inventory.hosts), frozenset(inventory.groups)
    else:
        unchecked = (
            f"no inventory in {folder}: host, group and place scopes were not checked "
            "(choose one with --env)"
        )
    return _Context(
        path=path or settings.waivers_path,
        standard=standard,
        hosts=hosts,
        groups=groups,
        unchecked=unchecked,
    )


def _today() -> date:
    return datetime.now(UTC).date()


def _load(ctx: _Context, today: date) -> WaiverSet:
    return load_waivers(
        ctx.path, ctx.standard, known_hosts=ctx.hosts, known_groups=ctx.groups, today=today
    )


@waivers.command()
@_FILE_OPTION
@_STANDARD_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@env_option
@pass_app
def validate(app: AppContext, path: Path | None, wanted: str | None, as_json: bool) -> None:
    """Check the waivers file and list every problem with its line.

    Checks each waiver's control (it must be in the standard), scope (the host,
    group or place must exist in inventories/ENV/), justification and approver
    (present), dates (YYYY-MM-DD; approved not in the future; expires after
    approved) and that ids are unique. A waiver whose expiry has passed is
    valid: it is listed as expired. Exit 0 when valid, 3 when not.

    \b
    Examples:
      provision waivers validate
      provision --env production waivers validate --json
    """
    ctx = _context(app, path, wanted)
    today = _today()
    try:
        found = _load(ctx, today)
    except ProblemsError as exc:
        if as_json:
            console.print_json(
                {
                    "ok": False,
                    "path": str(ctx.path),
                    "problems": [p.as_dict() for p in exc.problems],
                    "unchecked": ctx.unchecked,
                }
            )
            raise click.exceptions.Exit(int(ExitStatus.BAD_INPUT)) from None
        console.print_problems(exc.problems)
        raise InputError(
            f"{plural(len(exc.problems), 'problem')} in {ctx.path}",
            hint="fix each line listed above and run again",
        ) from None
    except ProvisionError as exc:
        if as_json:
            console.print_json({"ok": False, "path": str(ctx.path), "problems": [_error_dict(exc)]})
            raise click.exceptions.Exit(int(exc.exit_status)) from None
        raise
    active, expired = len(found.active(today)), len(found.expired(today))
    if as_json:
        console.print_json(
            {
                "ok": True,
                "path": str(ctx.path),
                "exists": ctx.path.exists(),
                "waivers": len(found),
                "active": active,
                "expired": expired,
                "problems": [],
                "unchecked": ctx.unchecked,
            }
        )
        return
    if ctx.unchecked:
        console.err.print(f"warning: {ctx.unchecked}", style="yellow", markup=False)
    if not ctx.path.exists():
        console.out.print(f"{ctx.path}: no file, no waivers", markup=False)
        return
    console.out.print(
        f"{ctx.path}: {plural(len(found), 'waiver')}, {active} active, {expired} expired; valid",
        markup=False,
    )


def _error_dict(exc: ProvisionError) -> dict[str, Any]:
    return {
        "path": None if exc.path is None else str(exc.path),
        "line": exc.line,
        "message": exc.message,
        "hint": exc.hint,
        "severity": "error",
    }


@waivers.command("list")
@_FILE_OPTION
@_STANDARD_OPTION
@click.option("--expired", "state", flag_value="expired", help="Only expired waivers.")
@click.option("--active", "state", flag_value="active", help="Only waivers in force today.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@env_option
@pass_app
def list_waivers(
    app: AppContext, path: Path | None, wanted: str | None, state: str | None, as_json: bool
) -> None:
    """List the waivers: control, scope, who approved them, when they expire.

    The auditor's view: each waiver with its approver, approval day, expiry, the
    days left (negative once expired) and its justification, soonest expiry first.

    \b
    Examples:
      provision waivers list
      provision waivers list --expired
      provision waivers list --active --json
    """
    ctx = _context(app, path, wanted)
    today = _today()
    found = _load(ctx, today)
    chosen = [
        w
        for w in sorted(found, key=lambda w: (w.expires, w.id))
        if state is None or (w.active(today) if state == "active" else w.expired(today))
    ]
    if as_json:
        console.print_json(
            {
                "path": str(ctx.path),
                "today": today.isoformat(),
                "waivers": [w.as_dict(today) for w in chosen],
            }
        )
        return
    if not chosen:
        what = {"active": "active ", "expired": "expired "}.get(state or "", "")
        console.out.print(f"no {what}waivers in {ctx.path}", markup=False)
        return
    table = Table(title=f"{ctx.path} ({today.isoformat()})", title_justify="left")
    for column in ("id", "control", "scope", "approver", "approved", "expires", "state"):
        table.add_column(column)
    table.add_column("justification", overflow="fold")
    for w in chosen:
        days = (w.expires - today).days
        if w.expired(today):
            status = f"[red]expired {-days} d ago[/]"
        elif w.active(today):
            status = f"active, {days} d left"
        else:
            status = "not yet approved"
        table.add_row(
            w.id,
            w.control,
            str(w.scope),
            w.approver,
            w.approved.isoformat(),
            w.expires.isoformat(),
            status,
            w.justification,
        )
    console.out.print(table)


@waivers.command()
@click.argument("control")
@click.argument("scope", metavar="KIND:VALUE")
@click.option("--justification", required=True, help="Why the control cannot hold there yet.")
@click.option("--approver", required=True, help="Who approved the exception.")
@click.option(
    "--expires",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The first day it no longer applies (YYYY-MM-DD); must be in the future.",
)
@click.option(
    "--approved",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The day it was approved (YYYY-MM-DD). Default: today.",
)
@click.option(
    "--id", "waiver_id", metavar="ID", help="A stable id (W-007). Default: CONTROL@SCOPE."
)
@_FILE_OPTION
@_STANDARD_OPTION
@env_option
@pass_app
def add(
    app: AppContext,
    control: str,
    scope: str,
    justification: str,
    approver: str,
    expires: datetime,
    approved: datetime | None,
    waiver_id: str | None,
    path: Path | None,
    wanted: str | None,
) -> None:
    """Add a waiver for CONTROL on the hosts in SCOPE to the waivers file.

    SCOPE is KIND:VALUE with KIND one of host, group, site, union, upazila,
    district, division (upazila:Gazipur/Kaliganj names the district too). The
    file keeps its comments; the new waiver is checked with the whole file before
    it is written, and an expiry that is not in the future is refused. Commit
    the file afterwards so the exception is reviewed.

    \b
    Examples:
      provision waivers add HW-002 site:DHK-014 --approver "Director, ICT" \\
          --justification "4 GB PCs until the 2027 refresh" --expires 2027-07-01
      provision --env production waivers add SSH-004 host:gaz-001-fs01 --id W-012 \\
          --approver "CISO" --justification "Backup agent logs in as root" --expires 2027-01-15
    """
    ctx = _context(app, path, wanted)
    today = _today()
    kind, _, value = scope.partition(":")
    if kind not in SCOPE_KINDS or not value:
        raise click.BadParameter(
            f"{scope!r}: write KIND:VALUE, KIND one of " + ", ".join(SCOPE_KINDS),
            param_hint="SCOPE",
        )
    waiver = Waiver(
        id=waiver_id or f"{control}@{kind}:{value}",
        control=control,
        scope=Scope(kind, value),
        justification=justification.strip(),
        approver=approver.strip(),
        approved=approved.date() if approved else today,
        expires=expires.date(),
    )
    found = add_waiver(
        ctx.path,
        waiver,
        ctx.standard,
        known_hosts=ctx.hosts,
        known_groups=ctx.groups,
        today=today,
    )
    if ctx.unchecked:
        console.err.print(f"warning: {ctx.unchecked}", style="yellow", markup=False)
    console.out.print(
        f"added {waiver.id} to {ctx.path} ({plural(len(found), 'waiver')}); "
        "commit the file to record it",
        markup=False,
    )
