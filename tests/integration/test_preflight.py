"""The preflight sweep against lab hosts: what it reports is what the hosts say over SSH.

The failure cases use an inventory of their own (`inventories/sweep/`) beside the
shared lab's, pointing at the same hosts, so the lab itself is never changed: a
free address (timeout), a wrong key (auth failed) and a falsified known_hosts
line (host key mismatch).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from provision.access import preflight
from provision.cli.main import cli
from provision.errors import ExitStatus, StateError
from provision.infra import crypto
from provision.infra.store import open_store
from provision.lab.inventory import KEY_NAME, KNOWN_HOSTS
from tests.helpers.lab import Lab
from tests.helpers.workspace import REPO

pytestmark = pytest.mark.lab


@pytest.fixture
def standard(lab: Lab) -> Iterator[Path]:
    """The department's standard in the lab's workspace: where the minimums come from."""
    path = lab.settings.workspace / "standards" / "bd-ict-baseline.yml"
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", path)
    try:
        yield path
    finally:
        path.unlink()


def test_sweep_reports_what_each_host_says(lab: Lab, standard: Path) -> None:
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
        assert (
            host.minimum_control
            == {
                "lab_pc": "HW-001",
                "field_server": "HW-002",
                "portal_host": "HW-003",
            }[host.role]
        )
    (gazipur,) = result.districts
    assert (gazipur.district, gazipur.hosts, gazipur.reachable) == ("Gazipur", 4, 4)
    # Recorded in the store, host by host, exactly as reported.
    assert result.sweep is not None and result.sweep.status == "done"
    assert preflight.recorded(lab.settings, result.sweep.id).hosts == result.hosts


def test_an_inventory_override_of_the_standard_decides_the_verdict(
    lab: Lab, standard: Path
) -> None:
    """The lab PC has what it has; raising its minimum above that, for its group in
    the inventory, turns the same host from meeting the standard to falling short."""
    host = "dhk-kal-lab01"
    before = preflight.sweep(lab.settings, host, save=False).hosts[0]
    assert before.memory_mb is not None
    override = lab.inventory / "host_vars" / host / "preflight-minimum.yml"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text(f"---\nhardware_pc_min_memory_mb: {before.memory_mb + 1}\n")
    try:
        after = preflight.sweep(lab.settings, host, save=False).hosts[0]
    finally:
        override.unlink()
        if not any(override.parent.iterdir()):
            override.parent.rmdir()
    assert after.meets_minimum is False
    assert after.shortfalls == (f"memory_mb {before.memory_mb} < {before.memory_mb + 1}",)


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
    # A timeout that a loaded machine's lab hosts answer well within: a host that is
    # gone or refuses is named by what it says, not by how slowly the others answer.
    result = preflight.sweep(sweep_env.settings, None, timeout=30, save=False)
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
    # The last sweep, read back from the store.
    shown = CliRunner().invoke(
        cli, ["--workspace", str(workspace), "--env", "sweep", "preflight", "show", "--json"]
    )
    assert shown.exit_code == 0, shown.output
    again = json.loads(shown.stdout)
    assert again["sweep"]["id"] == data["sweep"]["id"]
    assert {h["host"]: h["status"] for h in again["hosts"]} == {
        h["host"]: h["status"] for h in data["hosts"]
    }


@pytest.fixture
def slow_env(lab: Lab) -> Iterator[Lab]:
    """inventories/slow/: the lab's hosts plus one that accepts SSH connections and never
    greets (an sshd overloaded at the end of a bad link): a listening socket nobody
    serves, whose handshakes the kernel completes; the probe waits up to --timeout."""
    folder = lab.settings.workspace / "inventories" / "slow"
    (folder / ".ssh").mkdir(parents=True)
    with socket.create_server(("127.0.0.1", 0), backlog=16) as silent:
        hosts: dict[str, dict[str, object]] = {
            h.name: {"ansible_host": h.address, "provision_district": "Gazipur"} for h in lab.hosts
        }
        hosts["slow-host"] = {
            "ansible_host": "127.0.0.1",
            "ansible_port": silent.getsockname()[1],
            "provision_district": "Dhaka",
        }
        connection = {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(lab.inventory / KEY_NAME),
        }
        (folder / "hosts.yml").write_text(
            yaml.safe_dump({"all": {"hosts": hosts, "vars": connection}}, sort_keys=False)
        )
        shutil.copy(lab.inventory / KNOWN_HOSTS, folder / KNOWN_HOSTS)
        try:
            yield Lab(replace(lab.settings, env="slow"), lab.hosts)
        finally:
            shutil.rmtree(folder)


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def test_answers_are_stored_while_a_slow_host_is_awaited_and_ctrl_c_stops_at_once(
    slow_env: Lab,
) -> None:
    """The lab's hosts answer in about a second; the silent one would hold the sweep
    for its whole --timeout (300 s). The answers are in the store long before that,
    and Ctrl-C ends the sweep at once: exit 130, the answers kept, marked interrupted."""
    settings = slow_env.settings
    lab_hosts = {h.name for h in slow_env.hosts}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
    env.update(
        PROVISION_WORKSPACE=str(settings.workspace),
        PROVISION_STATE_DIR=str(settings.state_path),
        PROVISION_ENV="slow",
        PYTHONPATH=str(REPO),
    )
    # The store made first: its creation is not raced by the test's reads below.
    with open_store(settings):
        pass
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision", "preflight", "--timeout", "300"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def lab_hosts_stored() -> bool:
            try:
                last = preflight.recorded(settings)
            except StateError:  # the sweep has not been recorded yet
                return False
            return {h.host for h in last.hosts} == lab_hosts

        _wait_for(lab_hosts_stored, 120, "the lab hosts' answers in the store")
        running = preflight.recorded(settings)
        assert running.sweep is not None and running.sweep.status == "running"
        assert proc.poll() is None  # still waiting on the silent host

        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)  # far less than the silent host's 300 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitStatus.INTERRUPTED, output
    assert "Traceback" not in output
    assert "provision preflight show" in output
    last = preflight.recorded(settings)
    assert last.sweep is not None and last.sweep.status == "interrupted"
    assert last.sweep.hosts == len(lab_hosts) + 1
    assert {h.host for h in last.hosts} == lab_hosts
    assert all(h.reachable for h in last.hosts)
