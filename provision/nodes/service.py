"""The `provision nodes` services: edit and read the nodes, check them over SSH.

Setting a node up (`setup.py`) is a recorded rollout of playbooks/execution_node.yml;
what a run sends to a node is the streaming side's (docs/nodes.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from provision.errors import InputError
from provision.model.nodes import Node, assign_hosts, check_name, served_hosts
from provision.nodes import registry
from provision.nodes.check import SAMPLE, NodeCheck, check_nodes
from provision.settings import Settings


@dataclass(frozen=True)
class NodeEntry:
    """A node as `nodes list` shows it: how many hosts it serves, and runs (rule 2 applied)."""

    node: Node
    served: int
    runs: int = 0
    line: int | None = None


def list_nodes(settings: Settings) -> list[NodeEntry]:
    """The environment's nodes, checked against its inventory."""
    found, loaded = registry.checked_nodes(settings)
    served = served_hosts(found.nodes, loaded.inventory)
    runs = assign_hosts(found.nodes, list(loaded.inventory.hosts), loaded.inventory)
    return [
        NodeEntry(
            node,
            len(served[node.name]),
            len(runs.get(node.name, [])),
            found.lines.get(node.name),
        )
        for node in found.nodes
    ]


def add_node(settings: Settings, name: str, host: str, serves: str) -> NodeEntry:
    """Add a node (the file is written only if the whole new set keeps every rule)."""
    check_name(name)
    if not serves.strip():
        raise InputError("--serves is empty", hint="give a selection, e.g. district:gazipur")
    registry.add_node(settings, Node(name, host.strip(), serves.strip()))
    return next(e for e in list_nodes(settings) if e.node.name == name)


def remove_node(settings: Settings, name: str) -> Node:
    return registry.remove_node(settings, name)


def check(
    settings: Settings,
    name: str | None = None,
    *,
    sample_size: int = SAMPLE,
    on_node: Callable[[NodeCheck], None] | None = None,
) -> list[NodeCheck]:
    """Ask node `name` (every node when None) what it runs and whether its hosts answer."""
    found, loaded = registry.checked_nodes(settings)
    if not found.nodes:
        raise InputError(
            f"there are no nodes in {found.path}",
            hint="add one with provision nodes add NAME --host HOST --serves SELECTION",
        )
    chosen = [registry.find_node(found, name)] if name else found.nodes
    return check_nodes(
        settings, loaded, chosen, found.nodes, sample_size=sample_size, on_node=on_node
    )
