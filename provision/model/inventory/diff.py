"""What a re-import changes: hosts added, removed, and changed (with the variables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provision.model.inventory.model import Inventory


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
    """Compare two inventories host by host.

    A host has changed when its own variables, its groups, or the variables of one
    of its groups differ (a site renamed changes every host of the site).
    """
    diff = InventoryDiff()
    old_groups = _direct_groups(old)
    new_groups = _direct_groups(new)
    old_parents = old.parents()
    new_parents = new.parents()
    group_changes: dict[str, list[str]] = {}

    def changed_in(name: str) -> list[str]:
        if name not in group_changes:
            before = old.groups[name].vars if name in old.groups else {}
            after = new.groups[name].vars if name in new.groups else {}
            keys = [k for k in before.keys() | after.keys() if before.get(k) != after.get(k)]
            moved = old_parents.get(name, []) != new_parents.get(name, [])
            if name in old.groups and name in new.groups and moved:
                keys.append("groups")
            for parent in new_parents.get(name, []):
                if parent != "all":
                    keys.extend(changed_in(parent))
            group_changes[name] = keys
        return group_changes[name]

    for host, values in new.hosts.items():
        before = old.hosts.get(host)
        if before is None:
            diff.added.append(host)
            continue
        keys = {k for k in before.keys() | values.keys() if before.get(k) != values.get(k)}
        groups = new_groups.get(host, set())
        if old_groups.get(host, set()) != groups:
            keys.add("groups")
        for group in groups:
            keys.update(changed_in(group))
        if keys:
            diff.changed[host] = sorted(keys)
    diff.removed = [h for h in old.hosts if h not in new.hosts]
    return diff


def _direct_groups(inventory: Inventory) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for group in inventory.groups.values():
        for host in group.hosts:
            result.setdefault(host, set()).add(group.name)
    return result
