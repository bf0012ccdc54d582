"""Import a register into an environment: check it, compare, write (or only preview)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.inventory.files import (
    HOSTS_FILE,
    is_provision_written,
    load_inventory,
    write_inventory,
)
from provision.inventory.register_file import read_register
from provision.model.inventory.diff import InventoryDiff, diff_inventories
from provision.model.inventory.model import Inventory, build_inventory


@dataclass
class ImportResult:
    """What an import found and did."""

    register: Path
    hosts_path: Path
    hosts: int
    groups: int
    diff: InventoryDiff
    #: False for a dry run, or when nothing changed.
    written: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "register": str(self.register),
            "inventory": str(self.hosts_path),
            "hosts": self.hosts,
            "groups": self.groups,
            "written": self.written,
            **self.diff.as_dict(),
        }


def import_register(register: Path, folder: Path, *, dry_run: bool = False) -> ImportResult:
    """Read and check `register`, then write `folder/hosts.yml` unless `dry_run`.

    Any problem in the register raises `ProblemsError` before anything is written.
    """
    records = read_register(register)
    hosts_path = folder / HOSTS_FILE
    if not is_provision_written(hosts_path):
        raise InputError(
            "was written by hand, not by provision, and an import would replace it",
            hint="move it away (keep your variables in group_vars/ or host_vars/), import again",
            path=hosts_path,
        )
    new = build_inventory(records)
    old = load_inventory(folder).inventory if hosts_path.is_file() else Inventory()
    diff = diff_inventories(old, new)
    written = False
    if not dry_run and (not diff.empty or not hosts_path.is_file()):
        write_inventory(new, folder, source=register.name)
        written = True
    return ImportResult(register, hosts_path, len(new.hosts), len(new.groups) - 1, diff, written)
