"""The inventory model: hosts with their own variables, and groups of hosts and groups.

It holds any Ansible inventory (the lab's hand-written one too), and
`build_inventory` makes one from register records:

* every host sits in the group of its deepest place in the tree, which sits in
  its parent's group up to the division (see `provision.inventory.names`), and in
  one `role_*`, one `site_type_*` and one `site_*` group;
* the host's own variables are `ansible_host` and the register's record, each
  prefixed `provision_` (the HOST_VARS list below);
* each tree group carries the office's portal domain and Bangla name as
  `provision_<level>_portal` and `provision_<level>_bn`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from provision.inventory.names import (
    LEVELS,
    role_group,
    site_group,
    site_type_group,
    tree_group,
)
from provision.inventory.register import Record

#: The variables every imported host carries, in the order they are written.
HOST_VARS: tuple[str, ...] = (
    "ansible_host",
    "provision_division",
    "provision_district",
    "provision_upazila",
    "provision_union",
    "provision_site_code",
    "provision_site_name",
    "provision_site_type",
    "provision_role",
    "provision_asset_tag",
    "provision_model",
    "provision_cpu_cores",
    "provision_ram_gb",
    "provision_disk_gb",
    "provision_purchase_year",
)


@dataclass
class Group:
    """A group: its own variables, the hosts directly in it, and its child groups."""

    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


@dataclass
class Inventory:
    """Hosts (name -> own variables) and groups (name -> Group), `all` included."""

    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=lambda: {"all": Group("all")})

    def group(self, name: str, parent: str = "all") -> Group:
        """The group called `name`, created (as a child of `parent`) when new."""
        found = self.groups.get(name)
        if found is None:
            found = self.groups[name] = Group(name)
            if name != "all":
                self.groups[parent].children.append(name)
        return found

    def add_child(self, parent: str, child: str) -> None:
        """Make `child` a child of `parent` (and no longer a direct child of all)."""
        self.group(parent)
        self.group(child)
        top = self.groups["all"].children
        if parent != "all" and child in top:
            top.remove(child)
        if child not in self.groups[parent].children:
            self.groups[parent].children.append(child)

    def parents(self) -> dict[str, list[str]]:
        """Group -> its parent groups."""
        result: dict[str, list[str]] = {name: [] for name in self.groups}
        for group in self.groups.values():
            for child in group.children:
                result.setdefault(child, []).append(group.name)
        return result

    def memberships(self, hosts: Iterable[str] | None = None) -> dict[str, set[str]]:
        """Host -> every group it belongs to, directly or through a child group.

        `all` is left out (every host is in it).
        """
        wanted = None if hosts is None else set(hosts)
        parents = self.parents()
        ancestors: dict[str, set[str]] = {}

        def up(name: str, trail: frozenset[str] = frozenset()) -> set[str]:
            if name not in ancestors:
                found = {name}
                for parent in parents.get(name, []):
                    if parent != "all" and parent not in trail:
                        found |= up(parent, trail | {name})
                ancestors[name] = found
            return ancestors[name]

        result: dict[str, set[str]] = {}
        for group in self.groups.values():
            if group.name == "all" or not group.hosts:
                continue
            groups = up(group.name)
            for host in group.hosts:
                if wanted is None or host in wanted:
                    result.setdefault(host, set()).update(groups)
        for host in self.hosts if wanted is None else wanted & self.hosts.keys():
            result.setdefault(host, set())
        return result

    def depths(self) -> dict[str, int]:
        """Group -> its depth below `all` (the longest path), as Ansible orders groups."""
        depth: dict[str, int] = {"all": 0}
        order = ["all"]
        while order:  # relax along children; the tree is shallow
            name = order.pop()
            for child in self.groups[name].children:
                if child in self.groups and depth.get(child, -1) < depth[name] + 1:
                    depth[child] = depth[name] + 1
                    if depth[child] <= len(self.groups):
                        order.append(child)
        for name in self.groups:
            depth.setdefault(name, 1)
        return depth


def host_vars(record: Record) -> dict[str, Any]:
    """The variables of one register record, as written for its host."""
    values: dict[str, Any] = {
        "ansible_host": record.address,
        "provision_division": record.division,
        "provision_district": record.district,
        "provision_upazila": record.upazila,
        "provision_union": record.union,
        "provision_site_code": record.site_code,
        "provision_site_name": record.site_name,
        "provision_site_type": record.site_type,
        "provision_role": record.role,
        "provision_asset_tag": record.asset_tag,
        "provision_model": record.model,
        "provision_cpu_cores": record.cpu_cores,
        "provision_ram_gb": record.ram_gb,
        "provision_disk_gb": record.disk_gb,
        "provision_purchase_year": record.purchase_year,
    }
    return {k: v for k, v in values.items() if v != ""}


def build_inventory(records: Iterable[Record]) -> Inventory:
    """The inventory of a checked register: tree, role, site type and site groups.

    Groups are created in a stable order (tree first, in register order), so the
    same register always writes the same file.
    """
    from provision.inventory.tree import load_tree

    tree = load_tree()
    inventory = Inventory()
    other: dict[str, list[str]] = {}
    for record in records:
        path = record.place.path
        parent = "all"
        for depth in range(1, len(path) + 1):
            name = tree_group(LEVELS[depth - 1], *path[:depth])
            if name not in inventory.groups:
                place = tree.find(*path[:depth])
                group = inventory.group(name, parent)
                if place is not None:
                    level = LEVELS[depth - 1]
                    group.vars[f"provision_{level}_portal"] = place.portal
                    group.vars[f"provision_{level}_bn"] = place.name_bn
            parent = name
        inventory.groups[parent].hosts.append(record.hostname)
        inventory.hosts[record.hostname] = host_vars(record)
        for name in (
            role_group(record.role),
            site_type_group(record.site_type),
            site_group(record.site_code),
        ):
            other.setdefault(name, []).append(record.hostname)
    for prefix in ("role_", "site_type_", "site_"):
        for name in sorted(n for n in other if n.startswith(prefix) and n not in inventory.groups):
            inventory.group(name).hosts.extend(other[name])
    return inventory
