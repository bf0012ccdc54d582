"""Host counts along the tree, for `provision inventory tree`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from provision.model.inventory.model import Inventory
from provision.model.places import LEVELS

UNPLACED = "(no place in the tree)"


@dataclass
class TreeNode:
    """A place with the number of selected hosts at or below it."""

    name: str
    level: str
    hosts: int = 0
    children: dict[str, TreeNode] = field(default_factory=dict)

    def as_dict(self, depth: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "level": self.level, "hosts": self.hosts}
        if self.children and (depth is None or depth > 0):
            below = None if depth is None else depth - 1
            data["children"] = [c.as_dict(below) for c in self.sorted_children()]
        return data

    def sorted_children(self) -> list[TreeNode]:
        return sorted(self.children.values(), key=lambda c: (c.name == UNPLACED, c.name))


def count_tree(inventory: Inventory, hosts: Iterable[str]) -> TreeNode:
    """Count hosts per division, district, upazila and union (from the tree groups)."""
    placements = inventory.placements()
    root = TreeNode("all", "all")
    for host in hosts:
        root.hosts += 1
        node = root
        for level, name in zip(LEVELS, placements.get(host) or (UNPLACED,), strict=False):
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = TreeNode(name, level)
            child.hosts += 1
            node = child
    return root
