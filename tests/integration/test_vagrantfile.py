"""The Vagrantfile: Vagrant accepts it, it defines the five machines, and it agrees
with inventories/vagrant/.

No VM is booted and nothing is downloaded: `vagrant validate` and `vagrant status`
only read the Vagrantfile. Vagrant's machine state goes to pytest's tmp_path
(VAGRANT_DOTFILE_PATH), so the repository stays clean; the automation key the
Vagrantfile generates goes there too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VAGRANTFILE = REPO / "Vagrantfile"
INVENTORY = REPO / "inventories" / "vagrant"

MANAGED = {"dhk-gaz-fs01", "dhk-kal-fs01", "dhk-kal-lab01", "dhk-gaz-portal01"}
MACHINES = MANAGED | {"control"}
PROVISION = [sys.executable, "-m", "provision"]

VAGRANT = shutil.which("vagrant")
needs_vagrant = pytest.mark.skipif(
    VAGRANT is None,
    reason="vagrant is not installed (Debian: apt-get install vagrant), so the Vagrantfile "
    "cannot be validated",
)


def _vagrant(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run vagrant in the repository root without touching the repository or the network."""
    assert VAGRANT is not None
    environ = {
        **os.environ,
        "VAGRANT_DOTFILE_PATH": str(tmp_path / ".vagrant"),
        # Never phone home for Vagrant or box updates.
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1",
        "VAGRANT_NO_COLOR": "1",
        **env,
    }
    return subprocess.run(
        [VAGRANT, *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _machine_readable(output: str) -> list[list[str]]:
    """Split `--machine-readable` lines into [timestamp, target, type, data...]."""
    return [line.split(",") for line in output.splitlines() if line.count(",") >= 2]


def _machines(output: str) -> set[str]:
    """Names of the machines Vagrant reported a provider for."""
    return {
        fields[1]
        for fields in _machine_readable(output)
        if fields[2:4] == ["metadata", "provider"] and fields[1]
    }


@pytest.fixture
def repo_stays_clean() -> Iterator[None]:
    """Fail if the test leaves a .vagrant/ in a repository that had none."""
    had_dotdir = (REPO / ".vagrant").exists()
    yield
    if not had_dotdir:
        assert not (REPO / ".vagrant").exists(), "vagrant wrote .vagrant/ into the repository"


@pytest.mark.slow
@needs_vagrant
def test_vagrantfile_validates_and_defines_five_machines(
    tmp_path: Path, repo_stays_clean: None
) -> None:
    # --ignore-provider: validates everything but the provider blocks, so this runs
    # on any machine with vagrant, even without VirtualBox or vagrant-libvirt.
    result = _vagrant(tmp_path, "validate", "--ignore-provider", "--machine-readable")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Vagrantfile validated successfully" in result.stdout
    assert _machines(result.stdout) == MACHINES


@pytest.mark.slow
@needs_vagrant
def test_vagrantfile_validates_with_the_default_provider(
    tmp_path: Path, repo_stays_clean: None
) -> None:
    status = _vagrant(tmp_path, "status", "--machine-readable")
    errors = [f for f in _machine_readable(status.stdout) if f[2] == "error-exit"]
    if any(f[3] == "Vagrant::Errors::NoDefaultProvider" for f in errors):
        pytest.skip(
            "vagrant has no usable provider here, so the provider blocks cannot be "
            "validated (install vagrant-libvirt or VirtualBox)"
        )
    assert status.returncode == 0, status.stdout + status.stderr
    assert _machines(status.stdout) == MACHINES
    states = {f[1]: f[3] for f in _machine_readable(status.stdout) if f[2] == "state"}
    assert set(states) == MACHINES

    result = _vagrant(tmp_path, "validate")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Vagrantfile validated successfully" in result.stdout


@pytest.mark.slow
@needs_vagrant
def test_vagrantfile_generates_the_automation_key_outside_the_repository(
    tmp_path: Path, repo_stays_clean: None
) -> None:
    result = _vagrant(tmp_path, "validate", "--ignore-provider")
    assert result.returncode == 0, result.stdout + result.stderr

    key = tmp_path / ".vagrant" / "provision" / "id_ed25519"
    assert key.stat().st_mode & 0o077 == 0, "the private key must be readable by its owner only"
    public = key.with_suffix(".pub").read_text()
    assert public.startswith("ssh-ed25519 ")

    # A second load keeps the key: the managed hosts already trust it.
    again = _vagrant(tmp_path, "validate", "--ignore-provider")
    assert again.returncode == 0, again.stdout + again.stderr
    assert key.with_suffix(".pub").read_text() == public


@pytest.mark.slow
@needs_vagrant
def test_vagrantfile_rejects_a_memory_override_that_is_not_a_number(tmp_path: Path) -> None:
    result = _vagrant(tmp_path, "validate", "--ignore-provider", PROVISION_VAGRANT_MEMORY="lots")

    assert result.returncode != 0
    assert 'PROVISION_VAGRANT_MEMORY="lots" is not a positive whole number' in (
        result.stdout + result.stderr
    )


def test_vagrantfile_addresses_match_the_vagrant_inventory() -> None:
    # The Vagrantfile's table rows look like { name: "dhk-gaz-fs01", ip: "192.168.56.11", ... }.
    table = dict(re.findall(r'name:\s*"([^"]+)",\s*ip:\s*"([^"]+)"', VAGRANTFILE.read_text()))
    assert set(table) == MACHINES

    inventory = yaml.safe_load((INVENTORY / "hosts.yml").read_text())
    assert _inventory_addresses(inventory["all"]) == {name: table[name] for name in MANAGED}
    assert len(set(table.values())) == len(table), "two machines share an address"


def test_vagrant_inventory_is_valid_for_provision() -> None:
    result = subprocess.run(
        [*PROVISION, "--workspace", str(REPO), "--env", "vagrant", "inventory", "validate"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 hosts" in result.stdout


def _inventory_addresses(group: dict[str, Any]) -> dict[str, str]:
    """Host -> ansible_host over a YAML inventory group and all its children."""
    found: dict[str, str] = {}
    for name, host_vars in (group.get("hosts") or {}).items():
        if host_vars and "ansible_host" in host_vars:
            found[name] = host_vars["ansible_host"]
    for child in (group.get("children") or {}).values():
        found.update(_inventory_addresses(child or {}))
    return found


def test_vagrant_environment_never_disables_host_key_checking() -> None:
    files = [VAGRANTFILE, *INVENTORY.rglob("*.yml"), *(REPO / "vagrant").iterdir()]
    for path in files:
        text = path.read_text()
        assert not re.search(r"StrictHostKeyChecking\s*=?\s*no", text, re.IGNORECASE), path
    connection = yaml.safe_load((INVENTORY / "group_vars" / "all" / "connection.yml").read_text())
    assert "StrictHostKeyChecking=yes" in connection["ansible_ssh_common_args"]
    known_hosts = "UserKnownHostsFile={{ inventory_dir }}/.ssh/known_hosts"
    assert known_hosts in connection["ansible_ssh_common_args"]
