"""`inventories/lab/`: what `lab up` writes so provision and plain Ansible reach the hosts.

Everything in the folder is generated (and ignored by git): the hosts with their
roles and places in the admin tree, the control key, and the hosts' real keys in
known_hosts. Connection settings use absolute paths because provision also hands
Ansible inventories built elsewhere (a slice per selection) for the same hosts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from provision.lab.state import HostRecord

KEY_NAME = "lab_id_ed25519"
HEADER = "# Written by `provision lab up`; rewritten whenever the lab changes. Do not edit.\n"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def host_groups(record: HostRecord) -> list[str]:
    """The groups a lab host belongs to, named like those of imported inventories."""
    p = record.placement
    groups = [
        "lab",
        f"role_{record.role}",
        f"site_type_{p['site_type']}",
        f"site_{slug(p['site_code'])}",
    ]
    groups.append(f"division_{slug(p['division'])}")
    groups.append(f"district_{slug(p['district'])}")
    if p.get("upazila"):
        groups.append(f"upazila_{slug(p['district'])}_{slug(p['upazila'])}")
    if p.get("union"):
        groups.append(f"union_{slug(p['district'])}_{slug(p['upazila'])}_{slug(p['union'])}")
    return groups


def known_hosts_lines(records: Iterable[HostRecord]) -> list[str]:
    return [f"{r.name},{r.address} {r.host_key}" for r in records if r.host_key]


def ssh_options(folder: Path) -> list[str]:
    """ssh(1) options that reach lab hosts with strict host key checking."""
    return [
        "-i",
        str(folder / KEY_NAME),
        "-o",
        f"UserKnownHostsFile={folder / 'known_hosts'}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "LogLevel=ERROR",
    ]


def write_inventory(folder: Path, records: Iterable[HostRecord]) -> None:
    records = sorted(records, key=lambda r: r.name)
    groups: dict[str, dict[str, Any]] = {}
    for record in records:
        for group in host_groups(record):
            groups.setdefault(group, {"hosts": {}})["hosts"][record.name] = None
    hostvars = {
        r.name: {
            "ansible_host": r.address,
            "provision_role": r.role,
            **{f"provision_{k}": v for k, v in r.placement.items() if v},
        }
        for r in records
    }
    groups.setdefault("lab", {})["hosts"] = hostvars
    inventory = {"all": {"children": dict(sorted(groups.items()))}}
    connection = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(folder / KEY_NAME),
        "ansible_ssh_common_args": (
            f"-o UserKnownHostsFile={folder / 'known_hosts'} -o StrictHostKeyChecking=yes"
        ),
    }
    (folder / "group_vars/all").mkdir(parents=True, exist_ok=True)
    _write(
        folder / "hosts.yml",
        HEADER + yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False),
    )
    _write(
        folder / "group_vars/all/lab_connection.yml",
        HEADER
        + "# How the control node reaches lab hosts: the lab key, strict host keys.\n"
        + yaml.safe_dump(connection, sort_keys=False),
    )
    _write(folder / "known_hosts", "\n".join(known_hosts_lines(records)) + "\n")


def remove_inventory(folder: Path) -> None:
    """Remove what describes running hosts; the control key stays for the next `up`."""
    for name in ("hosts.yml", "known_hosts", "group_vars/all/lab_connection.yml"):
        (folder / name).unlink(missing_ok=True)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def as_dict(record: HostRecord) -> dict[str, Any]:
    return asdict(record)
