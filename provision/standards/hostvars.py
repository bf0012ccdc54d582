"""The variable layers of one host, read from an inventory folder as Ansible merges them.

Lowest first: group vars written in hosts.yml (all, then groups by depth and
name), group_vars/all, group_vars/<group> (same order), the host's own vars in
hosts.yml, host_vars/<host>. `resolve_parameters` takes the last value it finds.
"""

from __future__ import annotations

from provision.errors import InputError
from provision.inventory.files import LoadedInventory, read_vars, var_files
from provision.model.standards.params import VarLayer


def host_layers(loaded: LoadedInventory, host: str) -> list[VarLayer]:
    inventory = loaded.inventory
    if host not in inventory.hosts:
        raise InputError(
            f"no host named '{host}' in {loaded.hosts_path}",
            hint="see the hosts with: provision inventory show",
        )
    depths = inventory.depths()
    groups = sorted(
        inventory.memberships([host]).get(host, set()), key=lambda g: (depths.get(g, 1), g)
    )
    ordered = ["all", *groups]
    layers: list[VarLayer] = []
    for name in ordered:
        group = inventory.groups.get(name)
        if group is not None and group.vars:
            layers.append(VarLayer(f"{loaded.hosts_path} (group {name})", group.vars))
    for name in ordered:
        for path in var_files(loaded.folder, "group_vars", name):
            layers.append(VarLayer(str(path), read_vars(path)))
    layers.append(VarLayer(f"{loaded.hosts_path} (host {host})", inventory.hosts[host]))
    for path in var_files(loaded.folder, "host_vars", host):
        layers.append(VarLayer(str(path), read_vars(path)))
    return layers
