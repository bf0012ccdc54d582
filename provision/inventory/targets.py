"""The step every host-targeting command starts with: load an environment, select hosts."""

from __future__ import annotations

from pathlib import Path

from provision.errors import InputError, StateError
from provision.inventory.files import LoadedInventory, load_inventory
from provision.model.inventory.select import select_hosts


def load_environment(folder: Path) -> LoadedInventory:
    """The inventory of `inventories/<env>/`, or a clear error when there is none."""
    if not (folder / "hosts.yml").is_file():
        raise StateError(
            f"there is no inventory in {folder}",
            hint="import one with provision inventory import, or start the lab (provision lab up)",
        )
    return load_inventory(folder)


def select_targets(folder: Path, selection: str | None) -> tuple[LoadedInventory, list[str]]:
    """The loaded inventory and the hosts `selection` names (all hosts when None).

    A selection that matches nothing is an error: a command that would quietly do
    nothing is worse than one that says why.
    """
    loaded = load_environment(folder)
    hosts = select_hosts(loaded.inventory, selection or "all")
    if not hosts:
        raise InputError(
            f"the selection {selection!r} matches no host in {folder}",
            hint="check it with provision inventory show SELECTION",
        )
    return loaded, hosts
