"""What a re-import changes: hosts added, removed, and changed (with the variables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provision.inventory.model import Inventory


@dataclass
class InventoryDiff:
    """Hosts added and removed, and for each changed host the variables that changed."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}


def diff_inventories(old: Inventory, new: Inventory) -> InventoryDiff:
    """Compare two inventories host by host (own variables and direct groups)."""
    diff = InventoryDiff()
    old_groups = _direct_groups(old)
    new_groups = _direct_groups(new)
    for host, values in new.hosts.items():
        before = old.hosts.get(host)
        if before is None:
            diff.added.append(host)
            continue
        keys = sorted(k for k in before.keys() | values.keys() if before.get(k) != values.get(k))
        if old_groups.get(host, set()) != new_groups.get(host, set()):
            keys.append("groups")
        if keys:
            diff.changed[host] = keys
    diff.removed = [h for h in old.hosts if h not in new.hosts]
    return diff


def _direct_groups(inventory: Inventory) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for group in inventory.groups.values():
        for host in group.hosts:
            result.setdefault(host, set()).add(group.name)
    return result
