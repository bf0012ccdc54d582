"""The inventory model: hosts with their own variables, and groups of hosts and groups.

It holds any Ansible inventory (the lab's hand-written one too), and
`build_inventory` makes one from register records. Each value is written once, at
the level it belongs to, so that hosts.yml stays small and Ansible reads it fast:

* every host sits in the group of its deepest place in the tree, which sits in
  its parent's group up to the division (see `provision.model.places`), and in
  one `role_*`, one `site_type_*` and one `site_*` group;
* a host's own variables are its address and its machine (HOST_VARS);
* each tree group carries the place's name, Bangla name and office portal domain
  (`provision_<level>`, `provision_<level>_bn`, `provision_<level>_portal`);
* each site group carries `provision_site_code`, `provision_site_name` and
  `provision_site_type`.

Ansible merges them, so every host sees all of these as its variables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from provision.model.inventory.register import Record
from provision.model.places import (
    LEVELS,
    role_group,
    site_group,
    site_type_group,
    tree_group,
)

#: The variables written on each imported host, in the order they are written.
HOST_VARS: tuple[str, ...] = (
    "ansible_host",
    "provision_role",
    "provision_asset_tag",
    "provision_model",
    "provision_cpu_cores",
    "provision_ram_gb",
    "provision_disk_gb",
    "provision_purchase_year",
)
#: The variables written on each site group.
SITE_VARS: tuple[str, ...] = ("provision_site_code", "provision_site_name", "provision_site_type")
#: The prefixes of the groups that make up the tree, top down.
TREE_PREFIXES: tuple[str, ...] = tuple(level + "_" for level in LEVELS)


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

    def placements(self) -> dict[str, tuple[str, ...]]:
        """Host -> names of its places from the division down (as far as it stands).

        Read from the tree groups (``division_*`` down to ``union_*``) and their
        ``provision_<level>`` variables, or the group name when a hand-written group
        has no such variable.
        """
        from provision.model.inventory.tree import load_tree

        tree = load_tree()
        result: dict[str, tuple[str, ...]] = {}

        def walk(
            name: str, depth: int, path: tuple[str, ...], parent: str, seen: frozenset[str]
        ) -> None:
            group = self.groups[name]
            level = LEVELS[depth]
            label = group.vars.get(f"provision_{level}")
            if not label:  # a hand-written group: take the name apart, then ask the tree
                label = name[len(level) + 1 :]
                qualifier = parent.partition("_")[2] + "_" if depth >= 2 else ""
                label = label.removeprefix(qualifier)
                place = tree.find(*path, str(label))
                label = place.name if place is not None else label
            here = (*path, str(label))
            for host in group.hosts:
                if len(result.get(host, ())) < len(here):
                    result[host] = here
            if depth + 1 < len(LEVELS):
                prefix = TREE_PREFIXES[depth + 1]
                for child in group.children:
                    if child.startswith(prefix) and child in self.groups and child not in seen:
                        walk(child, depth + 1, here, name, seen | {child})

        for name in self.groups:
            if name.startswith(TREE_PREFIXES[0]):
                walk(name, 0, (), "all", frozenset({name}))
        return result


def host_vars(record: Record) -> dict[str, Any]:
    """The variables of one register record written on its host."""
    values: dict[str, Any] = {
        "ansible_host": record.address,
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
    from provision.model.inventory.tree import load_tree

    tree = load_tree()
    inventory = Inventory()
    other: dict[str, list[str]] = {}
    site_vars: dict[str, dict[str, Any]] = {}
    for record in records:
        path = record.place.path
        parent = "all"
        for depth in range(1, len(path) + 1):
            level = LEVELS[depth - 1]
            name = tree_group(level, *path[:depth])
            if name not in inventory.groups:
                place = tree.find(*path[:depth])
                group = inventory.group(name, parent)
                group.vars[f"provision_{level}"] = path[depth - 1]
                if place is not None:
                    group.vars[f"provision_{level}_bn"] = place.name_bn
                    group.vars[f"provision_{level}_portal"] = place.portal
            parent = name
        inventory.groups[parent].hosts.append(record.hostname)
        inventory.hosts[record.hostname] = host_vars(record)
        site = site_group(record.site_code)
        site_vars.setdefault(
            site,
            {
                "provision_site_code": record.site_code,
                "provision_site_name": record.site_name,
                "provision_site_type": record.site_type,
            },
        )
        for name in (role_group(record.role), site_type_group(record.site_type), site):
            other.setdefault(name, []).append(record.hostname)
    for prefix in ("role_", "site_type_", "site_"):
        for name in sorted(n for n in other if n.startswith(prefix) and n not in inventory.groups):
            group = inventory.group(name)
            group.hosts.extend(other[name])
            group.vars.update(site_vars.get(name, {}))
    return inventory
