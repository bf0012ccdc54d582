"""The lab's new machines (`@new`): spec, known_hosts, what bootstrap wrote, passwords."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from provision.access import keys
from provision.errors import InputError
from provision.lab import state
from provision.lab.inventory import (
    KNOWN_HOSTS,
    forget_bootstrap,
    known_hosts_lines,
    remove_inventory,
    write_inventory,
)
from provision.lab.spec import assign_addresses, parse_hosts_spec
from provision.lab.state import HostRecord, LabState


def test_new_suffix_marks_hosts_as_new_machines() -> None:
    hosts = parse_hosts_spec("default,lab_pc:3@new,dhk-gaz-portal01")
    new = {h.name for h in hosts if h.new}
    # dhk-kal-lab01 came with `default`; lab_pc:3@new adds three new machines after it.
    assert new == {"dhk-kal-lab02", "dhk-kal-lab03", "dhk-kal-lab04"}
    assert [h.name for h in parse_hosts_spec("dhk-kal-fs01@new") if h.new] == ["dhk-kal-fs01"]
    with pytest.raises(InputError, match="names no host"):
        parse_hosts_spec("@new")


def test_state_round_trips_the_new_flag() -> None:
    (host,) = assign_addresses(
        parse_hosts_spec("lab_pc:1@new"), ipaddress.IPv4Network("10.213.7.0/24"), {}
    )
    lab = LabState("10.213.7.0/24", "10.213.7.1", "/r", "pvlab-7")
    lab.hosts[host.name] = HostRecord.of(host)
    again = LabState.from_json(lab.to_json())
    assert again.hosts[host.name].new and again.hosts[host.name].as_host().new


def _records() -> list[HostRecord]:
    hosts = assign_addresses(
        parse_hosts_spec("dhk-kal-fs01,lab_pc:1@new"), ipaddress.IPv4Network("10.213.7.0/24"), {}
    )
    records = [HostRecord.of(h) for h in hosts]
    for record in records:
        record.host_key = f"ssh-ed25519 AAAAkey{record.name}"
    return records


def test_new_machines_keys_are_not_known_until_bootstrap_records_them(tmp_path: Path) -> None:
    records = _records()
    assert [line.split()[0] for line in known_hosts_lines(records)] == ["dhk-kal-fs01,10.213.7.10"]
    write_inventory(tmp_path, records)
    assert "dhk-kal-lab01" not in (tmp_path / KNOWN_HOSTS).read_text()
    # Bootstrap records the key it saw and writes the host's connection vars ...
    with (tmp_path / KNOWN_HOSTS).open("a") as known:
        known.write("dhk-kal-lab01,10.213.7.11 ssh-ed25519 AAAAseen\n")
    connection = keys.connection_vars_path(tmp_path, "dhk-kal-lab01")
    connection.parent.mkdir(parents=True)
    connection.write_text("ansible_user: provision\n")
    # ... which the lab keeps when it rewrites its inventory (another host reset, say),
    write_inventory(tmp_path, records)
    assert "dhk-kal-lab01,10.213.7.11 ssh-ed25519 AAAAseen" in (tmp_path / KNOWN_HOSTS).read_text()
    # forgets when that host is reset to a pristine new machine,
    forget_bootstrap(tmp_path, records[1])
    assert "dhk-kal-lab01" not in (tmp_path / KNOWN_HOSTS).read_text()
    assert not connection.exists() and not connection.parent.exists()
    # and removes with the lab.
    connection.parent.mkdir(parents=True, exist_ok=True)
    connection.write_text("ansible_user: provision\n")
    remove_inventory(tmp_path)
    assert not connection.exists() and not connection.parent.exists()


def test_installer_password_is_private_and_shared_by_one_lab(tmp_path: Path) -> None:
    first = state.installer_password(tmp_path, "dhk-kal-lab01")
    second = state.installer_password(tmp_path, "dhk-kal-lab02")
    assert first == second and len(first) >= 12
    path = tmp_path / state.INSTALLER_PASSWORDS
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == {"dhk-kal-lab01": first, "dhk-kal-lab02": first}
