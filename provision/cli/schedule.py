"""`provision schedule`: compliance runs and report collection on systemd timers here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option, selection_argument

if TYPE_CHECKING:
    from provision.compliance.schedule import Schedule
    from provision.settings import Settings


def _unit_dir_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--unit-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where the units go (setting schedule_unit_dir; default /etc/systemd/system).",
    )(func)


def _settings(app: AppContext, unit_dir: Path | None) -> Settings:
    from dataclasses import replace

    settings = app.settings
    if unit_dir is None:
        return settings
    return replace(settings, schedule_unit_dir=unit_dir.absolute())  # relative to here


@click.group()
def schedule() -> None:
    """Run compliance (and report collection) on a schedule with systemd timers here.

    `install compliance` writes a service and a timer
    (provision-compliance-NAME.service and .timer) that run `provision
    compliance run SELECTION --report-dir STATE_DIR/reports --fail-on-drift` in
    this workspace, checks them with `systemd-analyze verify`, and enables the
    timer. A run that finds new drift exits 6, so the service shows as failed
    (`systemctl --failed`); configured notifications (webhook, email) go out
    from the run itself. `install collect` does the same for `provision reports
    collect SELECTION` (provision-collect-NAME): the pulled hosts' results
    brought home, best shortly before the compliance run.

    \b
    Example:
      provision schedule install compliance --every daily --at 02:00 district:gazipur
      provision schedule install collect --every hourly
      provision schedule install compliance --every 'Mon..Fri *-*-* 06:30' role:portal_host
      provision schedule list
      provision schedule remove provision-compliance-lab-district-gazipur
    """


@schedule.command("install")
@click.argument("kind", type=click.Choice(["compliance", "collect"]))
@selection_argument()
@click.option(
    "--every",
    default="daily",
    show_default=True,
    metavar="daily|hourly|weekly|ONCALENDAR",
    help="How often: a shorthand, or any systemd OnCalendar expression.",
)
@click.option(
    "--at", metavar="HH:MM", help="Time of day for daily and weekly runs (default 02:00)."
)
@click.option(
    "--random-delay",
    default="10min",
    show_default=True,
    metavar="SPAN",
    help="Start up to this much later, at random (RandomizedDelaySec), so that many "
    "control nodes do not start at once; 0 for none.",
)
@click.option(
    "--user",
    metavar="USER",
    help="The account the run executes as (default: you). It must be able to read the "
    "workspace and write its state directory.",
)
@click.option("--name", metavar="NAME", help="Name the units provision-KIND-NAME.")
@click.option("--replace", is_flag=True, help="Overwrite a schedule of the same name.")
@click.option("--no-enable", is_flag=True, help="Write and check the units, do not enable them.")
@_unit_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
@env_option
@pass_app
def install(
    app: AppContext,
    kind: str,
    selection: str,
    every: str,
    at: str | None,
    random_delay: str,
    user: str | None,
    name: str | None,
    replace: bool,
    no_enable: bool,
    unit_dir: Path | None,
    as_json: bool,
) -> None:
    """Write, check and enable a timer that runs KIND over SELECTION (all hosts when none).

    The units run this virtual environment's provision with --workspace and
    --env spelled out, so they do not depend on the current folder. Missed
    runs (the control node was off) start at the next boot (Persistent=true).
    Where systemd is not running this machine, or with --unit-dir, the timer is
    enabled by a link in timers.target.wants/ (as `systemctl --root` does).

    \b
    Example:
      provision schedule install compliance --every daily --at 02:00 district:gazipur
      provision schedule install compliance --every hourly 'role:portal_host' --name portals
      provision --env production schedule install compliance --every weekly --user provision
      provision schedule install collect --every daily --at 01:30
    """
    from provision.compliance import schedule as service

    installed = service.install(
        _settings(app, unit_dir),
        kind,
        selection,
        every=every,
        at=at,
        user=user,
        random_delay=random_delay,
        name=name,
        enable=not no_enable,
        replace=replace,
    )
    if as_json:
        console.print_json(installed.as_dict())
        return
    console.out.print(f"wrote {installed.service_path}", markup=False)
    console.out.print(f"wrote {installed.timer_path}", markup=False)
    console.out.print(f"  runs: {installed.exec_start}", markup=False)
    console.out.print(f"  when: {installed.on_calendar} (OnCalendar)", markup=False)
    if not installed.enabled:
        console.out.print(f"not enabled; enable with: systemctl enable --now {installed.timer}")
    elif installed.enabled_by == "systemctl":
        console.out.print(f"enabled and started {installed.timer}", markup=False)
    else:
        console.out.print(f"enabled {installed.timer}: {installed.note}", markup=False)


@schedule.command("list")
@_unit_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the schedules as JSON.")
@pass_app
def list_schedules(app: AppContext, unit_dir: Path | None, as_json: bool) -> None:
    """List the schedules provision installed, with what they run and when.

    \b
    Example:
      provision schedule list
      provision schedule list --json
    """
    from provision.compliance import schedule as service

    found = service.list_schedules(_settings(app, unit_dir))
    if as_json:
        console.print_json([s.as_dict() for s in found])
    elif not found:
        console.out.print(
            "no schedule installed (add one with: provision schedule install compliance)"
        )
    else:
        console.out.print(_table(found))


@schedule.command("remove")
@click.argument("name")
@_unit_dir_option
@pass_app
def remove(app: AppContext, name: str, unit_dir: Path | None) -> None:
    """Disable a schedule's timer and delete its units (NAME as `schedule list` shows it).

    \b
    Example:
      provision schedule remove provision-compliance-lab-district-gazipur
    """
    from provision.compliance import schedule as service

    removed = service.remove(_settings(app, unit_dir), name)
    console.out.print(
        f"removed {removed.name} ({removed.timer_path.name}, {removed.service_path.name})",
        markup=False,
    )


def _table(found: list[Schedule]) -> Table:
    table = Table(title="schedules")
    for column in ("name", "env", "selection", "every", "user", "enabled", "next run"):
        table.add_column(column)
    for s in found:
        table.add_row(
            s.name,
            s.env,
            s.selection or "all",
            s.every or s.on_calendar,
            s.user,
            ("yes" + (" (link)" if s.enabled_by == "link" else "")) if s.enabled else "no",
            s.next_run or "-",
        )
    return table
