"""A schedule installed into a lab host's root file system, loaded by the real systemd there.

The control node of these tests has no systemd as PID 1, so `install` enables
the timer offline (a link in timers.target.wants, as `systemctl --root` does).
A lab host is a full systemd boot: written into its file system from outside,
the units must be accepted by that systemd as they are, the offline link must
make the timer enabled, the timer must get a next run, and the service's
ExecStart must come out of systemd's own parser as the argv provision meant.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import replace

import pytest

from provision.compliance import schedule
from tests.helpers.lab import Lab

pytestmark = pytest.mark.lab

HOST = "dhk-gaz-fs01"
#: A selection with what systemd would otherwise expand or split: %, $, quotes, spaces.
SELECTION = "district:gazipur,!site:'KHU 014',50%,$HOME"


def test_a_real_systemd_loads_enables_and_schedules_the_units(lab: Lab) -> None:
    unit_dir = lab.settings.state_path / "lab" / "hosts" / HOST / "root" / "etc/systemd/system"
    assert unit_dir.is_dir(), unit_dir
    settings = replace(lab.settings, schedule_unit_dir=unit_dir)
    installed = schedule.install(
        settings, "compliance", SELECTION, every="daily", at="03:15", user="root", name="labtest"
    )
    assert installed.enabled_by == "link"
    timer, service = installed.timer, installed.service
    expected = schedule.compliance_command(lab.settings, SELECTION)
    workspace = lab.settings.workspace
    try:
        lab.ssh(HOST, "systemctl daemon-reload")
        assert lab.ssh(HOST, f"systemctl is-enabled {timer}").strip() == "enabled"
        lab.ssh(HOST, f"systemctl start {timer}")
        shown = lab.ssh(
            HOST,
            f"systemctl show {timer} -p ActiveState -p NextElapseUSecRealtime -p TimersCalendar",
        )
        values = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
        assert values["ActiveState"] == "active"
        assert "OnCalendar=*-*-* 03:15:00 ; next_elapse=" in values["TimersCalendar"], values
        # The next start: 03:15 plus the random delay of up to ten minutes.
        clock = values["NextElapseUSecRealtime"].split()[2]
        assert "03:15:00" <= clock <= "03:25:00", values
        # Run the service for real, with a stand-in for provision at the same path in the
        # host that writes down the arguments systemd gave it, one per line.
        # Written from inside the host: a path under /tmp (where a CI clone may live) is
        # hidden, seen from outside, by the tmpfs the host's systemd mounts on /tmp.
        stand_in = shlex.quote(expected[0])
        script = base64.b64encode(b"#!/bin/sh\nprintf '%s\\n' \"$@\" > /root/provision-argv\n")
        lab.ssh(
            HOST,
            f"mkdir -p $(dirname {stand_in}) && echo {script.decode()} | base64 -d > {stand_in}"
            f" && chmod 0755 {stand_in}",
        )
        lab.ssh(HOST, f"mkdir -p {shlex.quote(str(workspace))}")  # its WorkingDirectory
        lab.ssh(HOST, f"systemctl start {service}")
        argv = lab.ssh(HOST, "cat /root/provision-argv").splitlines()
        assert argv == expected[1:]
        assert SELECTION in argv
        assert lab.ssh(HOST, f"systemctl show {service} -p User --value").strip() == "root"
        lab.ssh(HOST, f"systemctl stop {timer}")
    finally:
        schedule.remove(settings, installed.name)
        lab.ssh(
            HOST,
            f"rm -rf /root/provision-argv {shlex.quote(str(workspace))} {shlex.quote(expected[0])}",
        )
    lab.ssh(HOST, "systemctl daemon-reload")
    assert timer not in lab.ssh(HOST, "systemctl list-timers --all --no-legend")
    assert not (unit_dir / "timers.target.wants" / timer).exists()
