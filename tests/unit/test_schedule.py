"""`provision schedule`: units rendered, checked by systemd-analyze, enabled, listed, removed.

Every test writes into a unit folder of its own (`--unit-dir`), never into
/etc/systemd/system. systemd-analyze (verify, calendar) is the real one.
"""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.compliance import schedule
from provision.errors import ConfigError, ExitStatus, InputError, StateError
from provision.infra import identity
from provision.settings import Settings, load_settings

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


@pytest.fixture
def settings(workspace: Path, tmp_path: Path) -> Settings:
    units = tmp_path / "units"
    units.mkdir()
    loaded = load_settings(workspace=workspace, environ={})
    return replace(loaded, schedule_unit_dir=units)


def _unit(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    return values


def test_install_writes_verified_units_that_run_compliance_here(settings: Settings) -> None:
    done = schedule.install(
        settings, "compliance", "district:gazipur,!site:KHU-014", every="daily", at="2:30"
    )
    assert done.name == "provision-compliance-lab-district-gazipur-site-khu-014"
    service, timer = _unit(done.service_path), _unit(done.timer_path)
    argv = shlex.split(service["ExecStart"])  # systemd's quoting is shell-like for this text
    assert Path(argv[0]).name == "provision" and Path(argv[0]).is_absolute()
    assert argv[1:] == [
        "--workspace",
        str(settings.workspace),
        "--env",
        "lab",
        "compliance",
        "run",
        "district:gazipur,!site:KHU-014",
        "--report-dir",
        str(settings.state_path / "reports"),
        "--fail-on-drift",
    ]
    assert service["Type"] == "oneshot" and service["User"] == identity.account_name()
    assert timer["OnCalendar"] == "*-*-* 02:30:00"
    assert timer["Persistent"] == "true"
    assert timer["RandomizedDelaySec"] == "10min"
    assert timer["Unit"] == done.service
    assert timer["WantedBy"] == "timers.target"
    # The files as written pass systemd's own check.
    schedule.verify_units([done.service_path, done.timer_path])


def test_install_collect_writes_units_that_bring_pulled_reports_home(settings: Settings) -> None:
    done = schedule.install(settings, "collect", "", every="daily", at="01:30")
    assert done.name == "provision-collect-lab-all"
    service, timer = _unit(done.service_path), _unit(done.timer_path)
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "provision" and Path(argv[0]).is_absolute()
    assert argv[1:] == [
        "--workspace",
        str(settings.workspace),
        "--env",
        "lab",
        "reports",
        "collect",
    ]
    assert service["Description"] == "provision reports collect of all hosts in lab"
    assert service["X-Provision-Kind"] == timer["X-Provision-Kind"] == "collect"
    assert "Exit 5" in done.service_path.read_text()
    assert timer["OnCalendar"] == "*-*-* 01:30:00" and timer["Unit"] == done.service
    schedule.verify_units([done.service_path, done.timer_path])
    (listed,) = schedule.list_schedules(settings)
    assert (listed.name, listed.kind, listed.every) == (done.name, "collect", "daily at 01:30")
    # A selection goes after the command; removing by the short name finds it too.
    gazipur = schedule.install(settings, "collect", "district:gazipur", every="hourly")
    assert shlex.split(_unit(gazipur.service_path)["ExecStart"])[-3:] == [
        "reports",
        "collect",
        "district:gazipur",
    ]
    schedule.remove(settings, "lab-district-gazipur")
    assert [s.name for s in schedule.list_schedules(settings)] == [done.name]


def test_enabling_without_systemd_links_the_timer_like_systemctl_root(settings: Settings) -> None:
    done = schedule.install(settings, "compliance", "role:lab_pc", every="weekly")
    link = settings.schedule_unit_dir / "timers.target.wants" / done.timer
    assert link.is_symlink() and link.resolve() == done.timer_path.resolve()
    assert done.enabled and done.enabled_by == "link"
    assert "linking" in done.note
    assert _unit(done.timer_path)["OnCalendar"] == "Mon *-*-* 02:00:00"


def test_no_enable_writes_without_linking(settings: Settings) -> None:
    done = schedule.install(settings, "compliance", "", every="hourly", enable=False)
    assert done.name == "provision-compliance-lab-all"
    assert not (settings.schedule_unit_dir / "timers.target.wants").exists()
    (listed,) = schedule.list_schedules(settings)
    assert not listed.enabled


def test_list_reads_back_what_was_installed_and_remove_undoes_it(settings: Settings) -> None:
    a = schedule.install(settings, "compliance", "district:gazipur", at="01:00")
    b = schedule.install(settings, "compliance", "100% of role:portal_host", every="hourly")
    foreign = settings.schedule_unit_dir / "provision-compliance-mine.timer"
    foreign.write_text("[Timer]\nOnCalendar=daily\n")  # not written by provision: left alone
    listed = {s.name: s for s in schedule.list_schedules(settings)}
    assert set(listed) == {a.name, b.name}
    assert listed[a.name].selection == "district:gazipur"
    assert listed[b.name].selection == "100% of role:portal_host"  # '%' survives the unit file
    assert listed[a.name].every == "daily at 01:00" and listed[a.name].env == "lab"
    assert all(s.enabled for s in listed.values())

    schedule.remove(settings, a.name)
    assert not a.timer_path.exists() and not a.service_path.exists()
    assert not (settings.schedule_unit_dir / "timers.target.wants" / a.timer).exists()
    assert [s.name for s in schedule.list_schedules(settings)] == [b.name]
    assert foreign.exists()
    with pytest.raises(InputError, match="no schedule named"):
        schedule.remove(settings, "provision-compliance-mine")


def test_a_second_install_of_the_same_name_is_refused_unless_replaced(settings: Settings) -> None:
    first = schedule.install(settings, "compliance", "district:gazipur", at="01:00")
    before = first.timer_path.read_text()
    with pytest.raises(StateError, match="installed already"):
        schedule.install(settings, "compliance", "district:gazipur", at="04:00")
    assert first.timer_path.read_text() == before
    again = schedule.install(settings, "compliance", "district:gazipur", at="04:00", replace=True)
    assert _unit(again.timer_path)["OnCalendar"] == "*-*-* 04:00:00"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every": "fortnightly-ish"}, "not a calendar expression"),
        ({"every": "hourly", "at": "03:00"}, "--at goes with"),
        ({"at": "25:00"}, "not a time of day"),
        ({"user": "no-such-user-here"}, "no user 'no-such-user-here'"),
        ({"random_delay": "soon"}, "not a time span"),
        ({"name": "Bad Name!"}, "not a schedule name"),
    ],
)
def test_bad_input_is_one_error_and_writes_nothing(
    settings: Settings, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        schedule.install(settings, "compliance", "district:gazipur", **kwargs)  # type: ignore[arg-type]
    assert list(settings.schedule_unit_dir.iterdir()) == []


def test_units_systemd_rejects_are_not_installed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit systemd-analyze verify refuses (here: a command that does not exist) is
    reported with systemd's reason and never reaches the unit folder."""
    monkeypatch.setattr(schedule, "provision_executable", lambda: Path("/nonexistent/provision"))
    with pytest.raises(ConfigError, match=r"systemd-analyze verify rejected.*nonexistent"):
        schedule.install(settings, "compliance", "district:gazipur")
    assert list(settings.schedule_unit_dir.iterdir()) == []


def test_odd_selections_are_quoted_for_systemd(settings: Settings) -> None:
    odd = 'site:"KHU 014",$HOME,50%'
    done = schedule.install(settings, "compliance", odd, name="odd")
    assert done.name == "provision-compliance-odd"
    exec_start = _unit(done.service_path)["ExecStart"]
    assert '"site:\\"KHU 014\\",$$HOME,50%%"' in exec_start
    assert schedule.list_schedules(settings)[0].selection == odd


def test_cli_install_list_remove(settings: Settings) -> None:
    units = str(settings.schedule_unit_dir)
    base = ["--workspace", str(settings.workspace)]
    runner = CliRunner()
    done = runner.invoke(
        cli,
        [
            *base,
            *("schedule", "install", "compliance", "district:gazipur", "--at", "02:00"),
            *("--unit-dir", units, "--random-delay", "0"),
        ],
    )
    assert done.exit_code == 0, done.output
    assert "timers.target.wants" in done.output and "systemctl --root" in done.output
    listed = runner.invoke(cli, [*base, "schedule", "list", "--unit-dir", units, "--json"])
    (entry,) = json.loads(listed.stdout)
    assert entry["selection"] == "district:gazipur" and entry["enabled"] is True
    assert entry["on_calendar"] == "*-*-* 02:00:00"
    bad = runner.invoke(
        cli, [*base, "schedule", "install", "compliance", "--every", "nope", "--unit-dir", units]
    )
    assert bad.exit_code == ExitStatus.BAD_INPUT and "Traceback" not in bad.output
    gone = runner.invoke(cli, [*base, "schedule", "remove", entry["name"], "--unit-dir", units])
    assert gone.exit_code == 0, gone.output
    empty = runner.invoke(cli, [*base, "schedule", "list", "--unit-dir", units, "--json"])
    assert json.loads(empty.stdout) == []


def test_the_unit_dir_setting_comes_from_provision_yml(workspace: Path, tmp_path: Path) -> None:
    units = tmp_path / "from-settings"
    units.mkdir()
    (workspace / "provision.yml").write_text(f"---\nenv: lab\nschedule_unit_dir: {units}\n")
    done = CliRunner().invoke(
        cli, ["--workspace", str(workspace), "schedule", "install", "compliance", "--json"]
    )
    assert done.exit_code == 0, done.output
    assert Path(json.loads(done.stdout)["timer"]).parent == units


def test_a_relative_unit_dir_setting_is_relative_to_the_workspace(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workspace / "units").mkdir()
    (workspace / "provision.yml").write_text("---\nenv: lab\nschedule_unit_dir: units\n")
    monkeypatch.chdir(tmp_path)  # not the workspace
    done = CliRunner().invoke(
        cli, ["--workspace", str(workspace), "schedule", "install", "compliance", "--json"]
    )
    assert done.exit_code == 0, done.output
    assert Path(json.loads(done.stdout)["timer"]).parent == workspace / "units"


def test_with_systemd_running_systemctl_enables_and_disables(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where systemd is PID 1 and the units are in its folder, systemctl does the
    enabling (and no link is made by hand); remove disables before deleting."""
    import subprocess

    calls: list[tuple[str, ...]] = []

    def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(["systemctl", *args], 0, "", "")

    monkeypatch.setattr(schedule, "SYSTEM_UNIT_DIR", settings.schedule_unit_dir.resolve())
    monkeypatch.setattr(schedule, "systemd_running", lambda: True)
    monkeypatch.setattr(schedule, "_systemctl", systemctl)
    done = schedule.install(settings, "compliance", "district:gazipur")
    assert done.enabled_by == "systemctl" and done.note == ""
    assert calls == [("daemon-reload",), ("enable", "--now", done.timer)]
    assert not (settings.schedule_unit_dir / "timers.target.wants").exists()
    calls.clear()
    schedule.remove(settings, done.name)
    assert ("disable", "--now", done.timer) in calls and calls[-1] == ("daemon-reload",)
    assert not done.timer_path.exists()


def test_install_without_a_name_for_this_account_asks_for_user(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A uid with no passwd entry and no USER/LOGNAME (a container): a clear error that
    asks for --user, not a KeyError from pwd."""
    import getpass
    import pwd

    def no_name() -> str:
        raise OSError("No username set in the environment")

    def no_entry(_uid: int) -> pwd.struct_passwd:
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr(getpass, "getuser", no_name)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    with pytest.raises(InputError) as caught:
        schedule.install(settings, "compliance", "", every="daily", at="2:30")
    assert "--user" in (caught.value.hint or "")
    assert not list(schedule.unit_folder(settings).iterdir())
