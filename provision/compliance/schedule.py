"""Compliance on a schedule: systemd service + timer units on the control node.

`install` renders a oneshot service (this virtual environment's `provision
compliance run SELECTION --report-dir <state>/reports --fail-on-drift`, or for
kind `collect` `provision reports collect SELECTION`, with `--workspace` and
`--env` spelled out) and its timer from
`templates/systemd/schedule.{service,timer}.j2`, checks both with
`systemd-analyze verify`, writes them into the unit folder (setting
`schedule_unit_dir`, default /etc/systemd/system) and enables the timer.

Enabling goes through `systemctl` when systemd runs this machine and the units
are in the system folder. Otherwise (a container or build host where systemd is
not PID 1, or a unit folder of one's own) the timer is enabled the way
`systemctl --root` does it offline: a `timers.target.wants/` link beside the
units, picked up at the next boot. The result says which.

Every unit provision writes starts with `MARKER`: `list` and `remove` touch
only those.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import ConfigError, InputError, PrerequisiteError, StateError
from provision.infra.atomic import write_atomic
from provision.infra.identity import account_name
from provision.infra.render import render
from provision.settings import Settings

MARKER = "provision-managed-unit"
PREFIX = "provision-"
#: What can be scheduled: a compliance run, or bringing pulled hosts' reports home.
KINDS = ("compliance", "collect")
#: Per kind: what the units' descriptions call it, and what its exit status means.
_WHAT = {
    "compliance": (
        "compliance run",
        "Exit 6 (new drift or below threshold) marks the run failed: see `systemctl --failed`.",
    ),
    "collect": (
        "reports collect",
        "Exit 5 (a field server unreachable) marks the run failed: see `systemctl --failed`.",
    ),
}
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
WANTS = "timers.target.wants"
DEFAULT_AT = "02:00"
DEFAULT_RANDOM_DELAY = "10min"
#: A scheduled run longer than this is stopped by systemd.
RUN_TIMEOUT = "6h"

_AT = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_SLUG = re.compile(r"[^a-z0-9]+")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")
_SPAN = re.compile(r"^\d+\s*(us|ms|s|sec|m|min|h|hr|d|w)?$")


@dataclass(frozen=True)
class Schedule:
    """A schedule as installed (or about to be): its units and what they run."""

    name: str  # the units' name without suffix: provision-compliance-<slug>
    kind: str
    env: str
    selection: str
    every: str
    on_calendar: str
    user: str
    service_path: Path
    timer_path: Path
    enabled: bool = False
    #: How it was enabled: "systemctl", "link" (offline, like systemctl --root), "".
    enabled_by: str = ""
    #: Why the link was used instead of systemctl, when it was.
    note: str = ""
    #: From systemd when it runs this machine: active state, next and last run.
    active: str = ""
    next_run: str = ""
    last_run: str = ""
    exec_start: str = field(default="", repr=False)

    @property
    def timer(self) -> str:
        return self.name + ".timer"

    @property
    def service(self) -> str:
        return self.name + ".service"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "env": self.env,
            "selection": self.selection,
            "every": self.every,
            "on_calendar": self.on_calendar,
            "user": self.user,
            "service": str(self.service_path),
            "timer": str(self.timer_path),
            "enabled": self.enabled,
            "enabled_by": self.enabled_by,
            "note": self.note,
            "active": self.active,
            "next_run": self.next_run,
            "last_run": self.last_run,
            "exec_start": self.exec_start,
        }


# -- naming and values -------------------------------------------------------------


def slug(text: str) -> str:
    """`district:gazipur,role:lab_pc` -> `district-gazipur-role-lab-pc` (at most 48 chars)."""
    return _SLUG.sub("-", text.lower()).strip("-")[:48].strip("-") or "all"


def unit_name(kind: str, env: str, selection: str, name: str | None = None) -> str:
    if name is not None:
        if not _NAME.match(name):
            raise InputError(
                f"'{name}' is not a schedule name",
                hint="use lower-case letters, digits and '-', e.g. --name gazipur-nightly",
            )
        return f"{PREFIX}{kind}-{name}"
    return f"{PREFIX}{kind}-{slug(env)}-{slug(selection or 'all')}"


def on_calendar(every: str, at: str | None) -> str:
    """The OnCalendar value for `--every` and `--at` (checked by systemd-analyze)."""
    every = every.strip()
    if not every:
        raise InputError("--every is empty", hint="daily, hourly, weekly or an OnCalendar value")
    if at is not None and every not in ("daily", "weekly"):
        raise InputError(
            f"--at goes with --every daily or weekly, not {every!r}",
            hint="write the time into the OnCalendar expression instead, e.g. 'Mon..Fri 02:00'",
        )
    if every == "hourly":
        return "*-*-* *:00:00"
    if every in ("daily", "weekly"):
        at = DEFAULT_AT if at is None else at
        match = _AT.match(at)
        if not match:
            raise InputError(f"--at {at!r} is not a time of day", hint="use HH:MM, e.g. 02:00")
        clock = f"{int(match.group(1)):02d}:{match.group(2)}:00"
        return f"{'Mon ' if every == 'weekly' else ''}*-*-* {clock}"
    if "\n" in every:
        raise InputError("--every holds a line break", hint="give one OnCalendar expression")
    return every


def check_calendar(expression: str) -> str:
    """The normalised form of an OnCalendar expression, or one clear error."""
    tool = _tool("systemd-analyze")
    proc = subprocess.run(
        [tool, "calendar", expression], capture_output=True, text=True, check=False, timeout=30
    )
    if proc.returncode != 0:
        raise InputError(
            f"--every {expression!r} is not a calendar expression systemd understands",
            hint="daily, hourly, weekly, or e.g. 'Mon..Fri *-*-* 02:30' "
            "(check one with: systemd-analyze calendar EXPR)",
        )
    for line in proc.stdout.splitlines():
        if line.strip().startswith("Normalized form:"):
            return line.split(":", 1)[1].strip()
    return expression


def check_delay(delay: str) -> str:
    if not _SPAN.match(delay.strip()):
        raise InputError(
            f"--random-delay {delay!r} is not a time span",
            hint="e.g. 0, 90s, 10min, 1h",
        )
    return delay.strip()


def check_user(user: str) -> str:
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise InputError(
            f"there is no user '{user}' on this machine to run the schedule as",
            hint="create the account, or pass --user with an existing one",
        ) from None
    return user


def provision_executable() -> Path:
    """This virtual environment's `provision` (beside its python), else the one on PATH."""
    beside = Path(sys.executable).parent / "provision"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside.absolute()
    found = shutil.which("provision")
    if found:
        return Path(found).absolute()
    raise PrerequisiteError(
        "cannot find the provision command to put into the timer",
        hint="install provision into its virtual environment (make setup)",
    )


def systemd_quote(argument: str) -> str:
    """One ExecStart argument, quoted for systemd: no word splitting, no expansions."""
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def _ini(value: str) -> str:
    """A value for a unit file line: no specifier expansion, on one line."""
    if "\n" in value or "\r" in value:
        raise InputError("a line break cannot go into a unit file", hint="remove it")
    return value.replace("%", "%%")


def _unini(value: str) -> str:
    return value.replace("%%", "%")


def compliance_command(settings: Settings, selection: str) -> list[str]:
    """The command the service runs: compliance over `selection`, report, exit 6 on drift."""
    return [
        *_provision_command(settings, "compliance", "run", selection),
        *("--report-dir", str(settings.state_path / "reports"), "--fail-on-drift"),
    ]


def collect_command(settings: Settings, selection: str) -> list[str]:
    """The command a `collect` service runs: pulled hosts' results brought home."""
    return _provision_command(settings, "reports", "collect", selection)


def _provision_command(settings: Settings, noun: str, verb: str, selection: str) -> list[str]:
    """`provision --workspace W --env E NOUN VERB [SELECTION]`, as a unit runs it."""
    command = [
        str(provision_executable()),
        *("--workspace", str(settings.workspace), "--env", settings.env, noun, verb),
    ]
    return [*command, selection] if selection else command


# -- systemd -------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise PrerequisiteError(
            f"{name} is not installed", hint="schedules need systemd: apt-get install systemd"
        )
    return found


def systemd_running() -> bool:
    """Is systemd this machine's init (sd_booted: /run/systemd/system exists)?"""
    return Path("/run/systemd/system").is_dir()


def verify_units(paths: Sequence[Path]) -> None:
    """`systemd-analyze verify` the units; a problem is one error naming the unit and line."""
    tool = _tool("systemd-analyze")
    proc = subprocess.run(
        [tool, "verify", "--man=no", *(str(p) for p in paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # verify also complains about units it merely loads beside ours; keep our lines.
    ours = [
        line.strip()
        for line in (proc.stderr + proc.stdout).splitlines()
        if line.strip() and any(p.name in line for p in paths)
    ]
    if proc.returncode != 0 or ours:
        problem = ours[0] if ours else (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise ConfigError(
            f"systemd-analyze verify rejected the units: {problem}",
            hint="nothing was installed; check --every, --user and the provision path",
        )


def _systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("systemctl"), *args], capture_output=True, text=True, check=False, timeout=120
    )


def _use_systemctl(unit_dir: Path) -> tuple[bool, str]:
    """Whether systemctl can enable units in `unit_dir`, and why not when it cannot."""
    if not systemd_running():
        state = "unknown"
        if shutil.which("systemctl"):
            state = _systemctl("is-system-running").stdout.strip() or state
        return False, (
            f"systemd is not running this machine (systemctl is-system-running: {state}); "
            f"the timer was enabled by linking it into {unit_dir / WANTS} "
            "(as systemctl --root does) and starts at the next boot"
        )
    if unit_dir.resolve() != SYSTEM_UNIT_DIR:
        return False, (
            f"{unit_dir} is not systemd's own unit folder; the timer was enabled by linking "
            f"it into {unit_dir / WANTS}"
        )
    return True, ""


def unit_folder(settings: Settings) -> Path:
    """The `schedule_unit_dir` setting; a relative one is relative to the workspace."""
    folder = settings.schedule_unit_dir
    return folder if folder.is_absolute() else settings.workspace / folder


def _write(path: Path, text: str) -> None:
    write_atomic(path, text, mode=0o644)


# -- install, list, remove ----------------------------------------------------------


def install(
    settings: Settings,
    kind: str,
    selection: str,
    *,
    every: str = "daily",
    at: str | None = None,
    user: str | None = None,
    random_delay: str = DEFAULT_RANDOM_DELAY,
    name: str | None = None,
    enable: bool = True,
    replace: bool = False,
) -> Schedule:
    """Write, verify and enable one schedule's service and timer.

    Everything is checked (calendar, user, delay, `systemd-analyze verify` on the
    rendered units in a scratch folder) before anything is written to the unit
    folder: bad input changes nothing.
    """
    if kind not in KINDS:
        raise InputError(f"cannot schedule '{kind}'", hint="schedulable: " + ", ".join(KINDS))
    selection = selection.strip()
    unit_dir = unit_folder(settings)
    base = unit_name(kind, settings.env, selection, name)
    calendar = on_calendar(every, at)
    check_calendar(calendar)
    user = check_user(user or account_name())
    delay = check_delay(random_delay)
    command = (
        collect_command(settings, selection)
        if kind == "collect"
        else compliance_command(settings, selection)
    )
    what, exit_note = _WHAT[kind]
    exec_start = " ".join(systemd_quote(a) for a in command)
    context: dict[str, Any] = {
        "marker": MARKER,
        "kind": kind,
        "what": what,
        "exit_note": exit_note,
        "env": _ini(settings.env),
        "selection_shown": _ini(selection or "all hosts"),
        "selection_ini": _ini(selection),
        "workspace": _ini(str(settings.workspace)),
        "user": user,
        "exec_start": exec_start,
        "timeout": RUN_TIMEOUT,
        "every": _ini(every if at is None else f"{every} at {at}"),
        "on_calendar": _ini(calendar),
        "randomized_delay": delay,
        "service": base + ".service",
    }
    service_text = render("systemd/schedule.service.j2", **context)
    timer_text = render("systemd/schedule.timer.j2", **context)
    service_path = unit_dir / f"{base}.service"
    timer_path = unit_dir / f"{base}.timer"
    if not replace and (service_path.exists() or timer_path.exists()):
        raise StateError(
            f"a schedule named {base} is installed already",
            hint=f"remove it first (provision schedule remove {base}), pass --replace, "
            "or give this one another --name",
        )
    from provision.access.secrets import private_dir  # a scratch folder removed afterwards

    with private_dir("provision-units-") as scratch:
        (scratch / service_path.name).write_text(service_text)
        (scratch / timer_path.name).write_text(timer_text)
        verify_units([scratch / service_path.name, scratch / timer_path.name])
    if not unit_dir.is_dir():
        raise ConfigError(
            f"the unit folder {unit_dir} does not exist",
            hint="set schedule_unit_dir (PROVISION_SCHEDULE_UNIT_DIR) to systemd's unit folder",
        )
    try:
        _write(service_path, service_text)
        _write(timer_path, timer_text)
    except PermissionError:
        raise PrerequisiteError(
            f"cannot write into {unit_dir}",
            hint="install schedules as root (sudo), or set schedule_unit_dir",
        ) from None
    schedule = Schedule(
        name=base,
        kind=kind,
        env=settings.env,
        selection=selection,
        every=context["every"],
        on_calendar=calendar,
        user=user,
        service_path=service_path,
        timer_path=timer_path,
        exec_start=exec_start,
    )
    if not enable:
        return schedule
    return _enable(schedule, unit_dir)


def _enable(schedule: Schedule, unit_dir: Path) -> Schedule:
    from dataclasses import replace

    use, note = _use_systemctl(unit_dir)
    if use:
        _systemctl("daemon-reload")
        proc = _systemctl("enable", "--now", schedule.timer)
        if proc.returncode != 0:
            raise StateError(
                f"systemctl enable {schedule.timer} failed: {proc.stderr.strip()}",
                hint=f"the units are in {unit_dir}; see systemctl status {schedule.timer}",
            )
        return replace(schedule, enabled=True, enabled_by="systemctl")
    wants = unit_dir / WANTS
    wants.mkdir(exist_ok=True)
    link = wants / schedule.timer
    if link.is_symlink() or link.exists():
        link.unlink()
    # Relative, so the link also holds in a unit folder of an image mounted elsewhere.
    link.symlink_to(Path("..") / schedule.timer_path.name)
    return replace(schedule, enabled=True, enabled_by="link", note=note)


def _fields(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key.strip(), value.strip())
    return values


def _managed(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return MARKER in handle.readline()
    except OSError:
        return False


def list_schedules(settings: Settings) -> list[Schedule]:
    """Every schedule provision installed in the unit folder, by name."""
    unit_dir = unit_folder(settings)
    if not unit_dir.is_dir():
        return []
    found = []
    live = systemd_running() and unit_dir.resolve() == SYSTEM_UNIT_DIR
    for timer_path in sorted(unit_dir.glob(f"{PREFIX}*.timer")):
        if not _managed(timer_path):
            continue
        name = timer_path.name.removesuffix(".timer")
        service_path = unit_dir / f"{name}.service"
        timer = _fields(timer_path)
        service = _fields(service_path) if service_path.is_file() else {}
        link = unit_dir / WANTS / timer_path.name
        schedule = Schedule(
            name=name,
            kind=timer.get("X-Provision-Kind", ""),
            env=_unini(service.get("X-Provision-Env", "")),
            selection=_unini(service.get("X-Provision-Selection", "")),
            every=_unini(timer.get("X-Provision-Every", "")),
            on_calendar=_unini(timer.get("OnCalendar", "")),
            user=service.get("User", ""),
            service_path=service_path,
            timer_path=timer_path,
            enabled=link.is_symlink() or link.exists(),
            enabled_by="link" if link.is_symlink() else "",
            exec_start=service.get("ExecStart", ""),
        )
        if live:
            schedule = _with_state(schedule)
        found.append(schedule)
    return found


def _with_state(schedule: Schedule) -> Schedule:
    from dataclasses import replace

    proc = _systemctl(
        "show",
        schedule.timer,
        "--property=ActiveState,UnitFileState,NextElapseUSecRealtime,LastTriggerUSec",
    )
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return replace(
        schedule,
        enabled=values.get("UnitFileState") == "enabled" or schedule.enabled,
        enabled_by="systemctl" if values.get("UnitFileState") == "enabled" else "",
        active=values.get("ActiveState", ""),
        next_run=values.get("NextElapseUSecRealtime", ""),
        last_run=values.get("LastTriggerUSec", ""),
    )


def remove(settings: Settings, name: str) -> Schedule:
    """Disable and delete one schedule's units (by unit name, with or without suffix)."""
    unit_dir = unit_folder(settings)
    wanted = name.removesuffix(".timer").removesuffix(".service")
    installed = {s.name: s for s in list_schedules(settings)}
    schedule = installed.get(wanted) or next(
        (installed[f"{PREFIX}{k}-{wanted}"] for k in KINDS if f"{PREFIX}{k}-{wanted}" in installed),
        None,
    )
    if schedule is None:
        raise InputError(
            f"no schedule named '{name}' in {unit_dir}",
            hint="see the installed ones with: provision schedule list",
        )
    use, _note = _use_systemctl(unit_dir)
    if use:
        _systemctl("disable", "--now", schedule.timer)
    link = unit_dir / WANTS / schedule.timer
    if link.is_symlink() or link.exists():
        link.unlink()
    for path in (schedule.timer_path, schedule.service_path):
        if path.exists() and _managed(path):
            path.unlink()
    if use:
        _systemctl("daemon-reload")
    return schedule


__all__ = [
    "KINDS",
    "MARKER",
    "Schedule",
    "collect_command",
    "install",
    "list_schedules",
    "on_calendar",
    "remove",
    "slug",
    "systemd_quote",
    "unit_name",
]
