"""Hand Ansible only what it needs: the selected hosts with their resolved variables.

Ansible takes about a minute to read a 50,000-host YAML inventory. When a command
targets a selection, provision resolves the variables of just those hosts itself and
gives ansible-runner a small inventory holding them.

Variables are merged the way Ansible merges them (with the default
``hash_behaviour = replace``), lowest first:

1. group variables written in hosts.yml: ``all``, then every other group of the
   host ordered by depth, then ``ansible_group_priority``, then name;
2. ``group_vars/all`` files, then ``group_vars/<group>`` files in that same order;
3. the host's own variables in hosts.yml, then ``host_vars/<host>`` files.

The result is in the form of Ansible's YAML/JSON inventory (the form ansible-runner
writes a dict inventory in, and the ``yaml`` inventory plugin reads from a ``.json``
file), flattened: every host sits directly in each group it belongs to, so
``group_names`` and ``groups[...]`` are what they are in the full inventory, and
each host carries its resolved variables::

    {"all": {"hosts": {"gaz-001-fs01": {"ansible_host": "10.0.3.10", ...}},
             "children": {"district_gazipur": {"hosts": {"gaz-001-fs01": null}}, ...}}}

Inline ``!vault`` values stay encrypted (as ``{"__ansible_vault": ...}``);
variables are not templated, so ``{{ ... }}`` values work as they would have.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provision.inventory.files import read_vars, var_files
from provision.model.inventory.model import Inventory


def _priority(values: dict[str, Any]) -> int:
    try:
        return int(values.get("ansible_group_priority", 1))
    except (TypeError, ValueError):
        return 1


def slice_inventory(
    inventory: Inventory, hosts: Sequence[str], folder: Path | None = None
) -> dict[str, Any]:
    """The inventory dict for `hosts` (from `select_hosts`), variables resolved.

    `folder` is the inventory folder whose group_vars/ and host_vars/ are read;
    None reads none (an inventory with no such folder).
    """
    members = inventory.memberships(hosts)
    depths = inventory.depths()
    file_vars: dict[tuple[str, str], dict[str, Any]] = {}

    def from_files(kind: str, name: str) -> dict[str, Any]:
        key = (kind, name)
        if key not in file_vars:
            merged: dict[str, Any] = {}
            if folder is not None:
                for path in var_files(folder, kind, name):
                    merged.update(read_vars(path))
            file_vars[key] = merged
        return file_vars[key]

    all_vars = inventory.groups["all"].vars
    order_cache: dict[frozenset[str], list[str]] = {}
    resolved: dict[str, dict[str, Any]] = {}
    children: dict[str, dict[str, None]] = {}
    for host in hosts:
        groups = members.get(host, set())
        key = frozenset(groups)
        ordered = order_cache.get(key)
        if ordered is None:
            ordered = order_cache[key] = sorted(
                groups,
                key=lambda g: (depths.get(g, 1), _priority(inventory.groups[g].vars), g),
            )
        values: dict[str, Any] = dict(all_vars)
        for group in ordered:
            values.update(inventory.groups[group].vars)
        values.update(from_files("group_vars", "all"))
        for group in ordered:
            values.update(from_files("group_vars", group))
        values.update(inventory.hosts.get(host, {}))
        values.update(from_files("host_vars", host))
        resolved[host] = values
        for group in ordered:
            children.setdefault(group, {})[host] = None
    tree: dict[str, Any] = {"hosts": resolved}
    if children:
        tree["children"] = {name: {"hosts": hosts_in} for name, hosts_in in children.items()}
    return {"all": tree}


def write_slice(data: dict[str, Any], path: Path) -> Path:
    """Write a slice as JSON (name it `*.json` so Ansible's yaml plugin reads it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), "utf-8")
    return path
