"""The real `ansible-inventory` reads what provision writes, without a warning.

It also checks the slice against Ansible itself: the variables provision resolves
for a selection are the ones Ansible resolves from the full inventory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from provision.inventory import import_register, load_inventory, select_hosts, slice_inventory
from provision.inventory.slice import write_slice
from provision.inventory.validate import validate_environment
from tests.helpers.inventory import generated, write_hosts

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"


def ansible_inventory(cwd: Path, *args: str) -> tuple[dict[str, object], str]:
    environ = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_HOME": str(cwd / ".ansible"),
        "ANSIBLE_LOCAL_TEMP": str(cwd / ".ansible" / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    done = subprocess.run(
        [str(ANSIBLE_INVENTORY), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not ANSIBLE_INVENTORY.exists(), reason="ansible-inventory is not installed")
def test_ansible_reads_the_inventory_and_the_slice_without_warnings(tmp_path: Path) -> None:
    folder = tmp_path / "inventories" / "production"
    import_register(generated(tmp_path / "r.csv", 300, divisions=["Dhaka"]), folder)
    (folder / "group_vars").mkdir()
    (folder / "group_vars" / "all.yml").write_text("ntp_server: 10.0.0.1\nlevel: all\n")
    (folder / "group_vars" / "role_lab_pc.yml").write_text("level: role\nlab_image: bookworm\n")
    (folder / "host_vars").mkdir()
    loaded = load_inventory(folder)
    hosts = select_hosts(loaded.inventory, "district:gazipur")
    assert len(hosts) > 5
    (folder / "host_vars" / f"{hosts[0]}.yml").write_text("level: host\n")

    full, stderr = ansible_inventory(
        tmp_path, "-i", str(folder / "hosts.yml"), "--list", "--limit", "district_gazipur"
    )
    assert "WARNING" not in stderr and "[DEPRECATION" not in stderr, stderr
    hostvars = full["_meta"]["hostvars"]  # type: ignore[index]
    assert sorted(hostvars) == sorted(hosts)

    path = write_slice(
        slice_inventory(loaded.inventory, hosts, folder), tmp_path / "run" / "hosts.json"
    )
    sliced, stderr = ansible_inventory(tmp_path, "-i", str(path), "--list")
    assert "WARNING" not in stderr and "[DEPRECATION" not in stderr, stderr
    assert sliced["_meta"]["hostvars"] == hostvars  # type: ignore[index]
    assert hostvars[hosts[0]]["level"] == "host"
    assert host_groups(sliced) == host_groups(full)


def host_groups(listing: dict[str, object]) -> dict[str, set[str]]:
    """Host -> every group it is in (through children too), from `--list` output."""
    groups = {k: v for k, v in listing.items() if k != "_meta" and isinstance(v, dict)}

    def hosts_of(name: str) -> set[str]:
        body = groups.get(name, {})
        found = set(body.get("hosts", []))
        for child in body.get("children", []):
            found |= hosts_of(child)
        return found

    result: dict[str, set[str]] = {}
    for name in groups:
        if name in ("all", "ungrouped"):
            continue
        for host in hosts_of(name):
            result.setdefault(host, set()).add(name)
    return result


@pytest.mark.skipif(not ANSIBLE_INVENTORY.exists(), reason="ansible-inventory is not installed")
def test_validate_names_every_host_ansible_warns_about(tmp_path: Path) -> None:
    folder = tmp_path / "inventories" / "production"
    write_hosts(
        folder,
        {
            "role_lab_pc": {"all": "10.0.0.1", "ungrouped": "10.0.0.2", "web": "10.0.0.3"},
            "web": {"lab-a": "10.0.0.4"},
        },
    )
    _data, warnings = ansible_inventory(tmp_path, "-i", str(folder / "hosts.yml"), "--list")
    warned = sorted(re.findall(r"Found both group and host with same name: (\S+)", warnings))
    assert warned == ["all", "ungrouped", "web"]
    report = validate_environment(folder)
    clashes = sorted(
        (p.message.split("'")[1], p.line) for p in report.errors if "both a host" in p.message
    )
    assert clashes == [("all", 5), ("ungrouped", 7), ("web", 9)]
