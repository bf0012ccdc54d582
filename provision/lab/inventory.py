"""`inventories/lab/`: what `lab up` writes so provision and plain Ansible reach the hosts.

Everything in the folder is generated (and ignored by git): the hosts with their
roles and places in the admin tree, the control key, and the hosts' real keys in
known_hosts. Connection settings use absolute paths because provision also hands
Ansible inventories built elsewhere (a slice per selection) for the same hosts.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from provision.access import keys
from provision.infra.atomic import write_atomic
from provision.inventory import COLUMNS, build_inventory, files, parse_register
from provision.lab.state import HostRecord

#: Key and known hosts live in a hidden folder: Ansible reads every other file of
#: an inventory folder as inventory, and warns about a key or a known_hosts file.
SSH_DIR = ".ssh"
KEY_NAME = f"{SSH_DIR}/lab_id_ed25519"
KNOWN_HOSTS = f"{SSH_DIR}/known_hosts"
HEADER = "# Written by `provision lab up`; rewritten whenever the lab changes. Do not edit.\n"


@dataclass(frozen=True)
class Equipment:
    cpu_cores: int
    ram_gb: int
    disk_gb: int


#: The equipment the lab declares for its hosts, by role, as a site's register does
#: for its machines. Lab hosts are containers: they see the control node's CPUs,
#: memory and disk, which are not theirs, so compliance judges a container's
#: equipment (HW-001..003) on its register row. These are the lab's figures, chosen
#: as the department buys each kind of machine; the standard's minimums stay as
#: published.
LAB_EQUIPMENT: dict[str, Equipment] = {
    "lab_pc": Equipment(cpu_cores=4, ram_gb=8, disk_gb=256),
    "digital_centre_pc": Equipment(cpu_cores=4, ram_gb=8, disk_gb=256),
    "field_server": Equipment(cpu_cores=8, ram_gb=16, disk_gb=1000),
    "portal_host": Equipment(cpu_cores=8, ram_gb=32, disk_gb=1000),
}
#: For a role the table does not know: the largest machine of the table.
DEFAULT_EQUIPMENT = Equipment(cpu_cores=8, ram_gb=32, disk_gb=1000)


def register_text(records: Iterable[HostRecord]) -> str:
    """The lab's hosts as rows of a site register, as central IT would write them.

    The lab's inventory is built by the same import as the fleet's, so groups,
    variables and selections mean the same on the lab as in production. The
    equipment columns are the lab's declared equipment (LAB_EQUIPMENT).
    """
    year = datetime.now(UTC).year
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in records:
        p = r.placement
        kit = LAB_EQUIPMENT.get(r.role, DEFAULT_EQUIPMENT)
        row = {
            **p,
            "hostname": r.name,
            "address": r.address,
            "role": r.role,
            "asset_tag": f"LAB-{r.name.upper()}",
            "model": "provision lab (systemd-nspawn)",
            "cpu_cores": kit.cpu_cores,
            "ram_gb": kit.ram_gb,
            "disk_gb": kit.disk_gb,
            "purchase_year": year,
        }
        writer.writerow([row[column] for column in COLUMNS])
    return buffer.getvalue()


def known_hosts_lines(records: Iterable[HostRecord]) -> list[str]:
    """The lab's own hosts' keys. New machines are left out: their first contact
    (bootstrap) must see an unknown key and record it itself."""
    return [f"{r.name},{r.address} {r.host_key}" for r in records if r.host_key and not r.new]


def _recorded_by_bootstrap(folder: Path, records: Iterable[HostRecord]) -> list[str]:
    """Lines that bootstrap recorded for the lab's new machines: kept across rewrites."""
    path = folder / KNOWN_HOSTS
    new = {name for r in records if r.new for name in (r.name, r.address)}
    if not new or not path.is_file():
        return []
    return [
        line
        for line in path.read_text().splitlines()
        if set(line.split(" ", 1)[0].split(",")) & new
    ]


def forget_bootstrap(folder: Path, record: HostRecord) -> None:
    """Drop what bootstrap recorded for one new machine (its key, its connection vars)."""
    path = folder / KNOWN_HOSTS
    if path.is_file():
        names = {record.name, record.address}
        kept = [
            line
            for line in path.read_text().splitlines()
            if not set(line.split(" ", 1)[0].split(",")) & names
        ]
        _write(path, "".join(line + "\n" for line in kept))
    written = keys.connection_vars_path(folder, record.name)
    written.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        written.parent.rmdir()  # only if bootstrap's file was all there was


def ssh_options(folder: Path) -> list[str]:
    """ssh(1) options that reach lab hosts with strict host key checking."""
    return [
        "-i",
        str(folder / KEY_NAME),
        "-o",
        f"UserKnownHostsFile={folder / KNOWN_HOSTS}",
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
    """Write hosts.yml (through the register import), connection vars and known_hosts."""
    records = sorted(records, key=lambda r: r.name)
    fleet = build_inventory(parse_register(register_text(records), "lab register"))
    folder.mkdir(parents=True, exist_ok=True)
    files.write_inventory(fleet, folder, source="provision lab up")
    connection = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(folder / KEY_NAME),
        "ansible_ssh_common_args": (
            f"-o UserKnownHostsFile={folder / KNOWN_HOSTS} -o StrictHostKeyChecking=yes"
        ),
    }
    (folder / "group_vars/all").mkdir(parents=True, exist_ok=True)
    (folder / SSH_DIR).mkdir(exist_ok=True)
    (folder / SSH_DIR).chmod(0o700)
    _write(
        folder / "group_vars/all/lab_connection.yml",
        HEADER
        + "# How the control node reaches lab hosts: the lab key, strict host keys.\n---\n"
        + yaml.safe_dump(connection, sort_keys=False),
    )
    lines = known_hosts_lines(records) + _recorded_by_bootstrap(folder, records)
    _write(folder / KNOWN_HOSTS, "\n".join(lines) + "\n")


def remove_inventory(folder: Path) -> None:
    """Remove what describes running hosts; the control key stays for the next `up`."""
    for name in ("hosts.yml", files.CACHE_FILE, KNOWN_HOSTS, "group_vars/all/lab_connection.yml"):
        (folder / name).unlink(missing_ok=True)
    # What bootstrap wrote for hosts that are gone with the lab.
    for written in folder.glob(f"host_vars/*/{keys.CONNECTION_VARS}"):
        written.unlink()
        with contextlib.suppress(OSError):
            written.parent.rmdir()


def _write(path: Path, text: str) -> None:
    write_atomic(path, text)


def as_dict(record: HostRecord) -> dict[str, Any]:
    return asdict(record)
