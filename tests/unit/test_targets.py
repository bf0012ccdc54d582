"""One Target type: a host as Ansible would reach it, read from its merged variables."""

from __future__ import annotations

from pathlib import Path

from provision.model.inventory.targets import Minimum, Target


def test_a_host_without_connection_variables_is_reached_by_name_as_the_automation_account() -> None:
    target = Target.from_hostvars("pc1", {}, user="provision", key=Path("/k/id"))
    assert target == Target("pc1", "pc1", 22, "provision", Path("/k/id"), "", "-", None)


def test_ansible_s_connection_variables_win() -> None:
    values = {
        "ansible_host": "10.0.0.5",
        "ansible_port": "2222",
        "ansible_user": "admin",
        "ansible_ssh_private_key_file": "~/keys/pc1",
        "provision_role": "lab_pc",
        "provision_district": "Gazipur",
    }
    minimum = Minimum(2, 3500, 100, "HW-001")
    target = Target.from_hostvars(
        "pc1", values, user="provision", key=Path("/k/id"), minimum=minimum
    )
    assert (target.address, target.port, target.user) == ("10.0.0.5", 2222, "admin")
    assert target.key == Path("~/keys/pc1").expanduser()
    assert (target.role, target.district, target.minimum) == ("lab_pc", "Gazipur", minimum)


def test_the_older_key_variable_counts_too() -> None:
    values = {"ansible_private_key_file": "/etc/keys/pc1"}
    target = Target.from_hostvars("pc1", values, user="provision", key=Path("/k/id"))
    assert target.key == Path("/etc/keys/pc1")
