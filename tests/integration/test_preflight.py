"""The preflight sweep against lab hosts: what it reports is what the hosts say over SSH.

The failure cases use an inventory of their own (`inventories/sweep/`) beside the
shared lab's, pointing at the same hosts, so the lab itself is never changed: a
free address (timeout), a wrong key (auth failed) and a falsified known_hosts
line (host key mismatch).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace

import pytest
import yaml
from click.testing import CliRunner

from provision import crypto, preflight
from provision.cli.main import cli
from provision.errors import ExitStatus
from provision.lab.inventory import KEY_NAME, KNOWN_HOSTS
from tests.integration.conftest import Lab

pytestmark = pytest.mark.lab


def test_sweep_reports_what_each_host_says(lab: Lab) -> None:
    result = preflight.sweep(lab.settings, None)
    assert result.exit_status == ExitStatus.SUCCESS
    assert sorted(h.host for h in result.hosts) == sorted(h.name for h in lab.hosts)
    for host in result.hosts:
        assert host.reachable, host
        assert host.os_release == "Debian GNU/Linux 12 (bookworm)"
        # The same figures, read on the host itself over OpenSSH.
        assert host.cpu_cores == int(lab.ssh(host.host, "nproc"))
        mem_kb = int(lab.ssh(host.host, "awk '/^MemTotal:/{print $2}' /proc/meminfo"))
        assert host.memory_mb == mem_kb // 1024
        assert host.latency_ms is not None and host.latency_ms >= 0
        assert host.meets_minimum is not None
    (gazipur,) = result.districts
    assert (gazipur.district, gazipur.hosts, gazipur.reachable) == ("Gazipur", 4, 4)
    assert result.saved_to is not None
    saved = json.loads(result.saved_to.read_text())
    assert len(saved["hosts"]) == 4


def test_minimum_comes_from_the_role_and_inventory_overrides() -> None:
    low = preflight._minimum("lab_pc", {})
    assert low == preflight.Minimum(2, 3500, 100)
    raised = preflight._minimum("lab_pc", {"hardware_pc_min_memory_mb": 10**9})
    assert raised is not None and raised.memory_mb == 10**9
    assert preflight._minimum("printer", {}) is None


@pytest.fixture
def sweep_env(lab: Lab) -> Iterator[Lab]:
    """inventories/sweep/: the lab's hosts plus three that cannot be reached properly."""
    folder = lab.settings.workspace / "inventories" / "sweep"
    (folder / ".ssh").mkdir(parents=True)
    real = {h.name: h.address for h in lab.hosts}
    subnet_prefix = lab.address("dhk-kal-lab01").rsplit(".", 1)[0]
    wrong_key = folder / ".ssh" / "not_the_lab_key"
    crypto.write_private_key(wrong_key, crypto.new_ed25519())
    hosts: dict[str, dict[str, object]] = {
        name: {"ansible_host": address, "provision_role": "lab_pc", "provision_district": "Gazipur"}
        for name, address in real.items()
    }
    hosts["gone-host"] = {
        "ansible_host": f"{subnet_prefix}.250",
        "provision_role": "lab_pc",
        "provision_district": "Dhaka",
    }
    hosts["wrong-key"] = {
        "ansible_host": real["dhk-kal-lab01"],
        "ansible_ssh_private_key_file": str(wrong_key),
        "provision_role": "lab_pc",
        "provision_district": "Gazipur",
    }
    hosts["impostor"] = {
        "ansible_host": real["dhk-gaz-fs01"],
        "provision_role": "field_server",
        "provision_district": "Gazipur",
    }
    connection = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(lab.inventory / KEY_NAME),
    }
    (folder / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"hosts": hosts, "vars": connection}}, sort_keys=False)
    )
    known = (lab.inventory / KNOWN_HOSTS).read_text().splitlines()
    # "impostor" is recorded with another host's key, as if the machine had been swapped.
    portal_key = next(line for line in known if line.startswith("dhk-gaz-portal01,")).split(" ", 1)[
        1
    ]
    lines = [*known, f"impostor {portal_key}"]
    (folder / KNOWN_HOSTS).write_text("\n".join(lines) + "\n")
    try:
        yield Lab(replace(lab.settings, env="sweep"), lab.hosts)
    finally:
        shutil.rmtree(folder)


def test_each_kind_of_unreachable_is_named(sweep_env: Lab) -> None:
    result = preflight.sweep(sweep_env.settings, None, timeout=1.5, save=False)
    status = {h.host: h.status for h in result.hosts}
    assert status["gone-host"] in {"timeout", "unreachable"}
    assert status["wrong-key"] == "auth_failed"
    assert status["impostor"] == "host_key_mismatch"
    assert all(status[h.name] == "reachable" for h in sweep_env.hosts)
    # A changed host key is never just "unreachable".
    assert result.exit_status == ExitStatus.BAD_INPUT
    by_district = {d.district: d for d in result.districts}
    assert by_district["Dhaka"].unreachable == 1
    assert by_district["Gazipur"].unreachable == 2


def test_cli_prints_districts_and_exits_5_when_a_host_is_down(sweep_env: Lab) -> None:
    workspace = sweep_env.settings.workspace
    done = CliRunner().invoke(
        cli,
        [
            "--workspace",
            str(workspace),
            "--env",
            "sweep",
            "preflight",
            "!impostor",
            "--timeout",
            "1",
        ],
    )
    assert done.exit_code == ExitStatus.HOSTS_UNREACHABLE, done.output
    assert "Gazipur" in done.output and "gone-host" in done.output
    as_json = CliRunner().invoke(
        cli,
        [
            "--workspace",
            str(workspace),
            "--env",
            "sweep",
            "preflight",
            "!impostor",
            "--json",
            "--timeout",
            "1",
        ],
    )
    data = json.loads(as_json.stdout)
    assert {h["host"] for h in data["hosts"] if not h["reachable"]} == {"gone-host", "wrong-key"}
