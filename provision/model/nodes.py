"""Execution nodes: which host runs which hosts' share of a run.

A node is a host of the inventory (normally a district `field_server`) that runs
the share of a rollout or audit for the hosts it *serves*, a selection in the
language every command uses (`district:gazipur`, `upazila:gazipur/kaliganj`).
Everything else runs from the control node. The rules, in the order they apply:

1. Every node's own host runs from the control node: a node never runs work on
   itself (that work would set up, restart or audit the very worker running it),
   nor on another node (the control node reaches the nodes directly).
2. A host served by several nodes goes to the one whose selection is the most
   specific: a node serving `upazila:gazipur/kaliganj` takes Kaliganj's hosts
   from the node serving `district:gazipur`. Specificity is the deepest key of
   the selection (division < district < upazila < union < site < host).
3. Two nodes of the same specificity may not share a host: who would run it is
   then not written anywhere, so it is an error (`check_overlap`).

Pure functions over `provision.model.inventory`: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from provision.errors import InputError
from provision.model.inventory.model import Inventory
from provision.model.inventory.select import Selection, parse_selection, select_hosts
from provision.model.places import LEVELS

#: How specific each selection key is; a key not listed (role, group, a bare name) is 0.
RANKS: Mapping[str, int] = {
    **{level: depth + 1 for depth, level in enumerate(LEVELS)},
    "site": len(LEVELS) + 1,
    "host": len(LEVELS) + 2,
}
#: A node's name: what `provision nodes add NAME` accepts (it names files and run shards).
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
#: The key of the control node in `assign_hosts`' answer.
CONTROL: None = None


class NodeError(InputError):
    """A node definition that cannot be used; `node` names it (for the file's line)."""

    def __init__(self, node: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.node = node


@dataclass(frozen=True)
class Node:
    """An execution node: its name, the inventory host it runs on, what it serves."""

    name: str
    host: str
    #: A selection, e.g. ``district:gazipur``.
    serves: str


def specificity(selection: Selection | str) -> int:
    """How specific a selection is: the rank of its deepest positive key (see RANKS)."""
    parsed = selection if isinstance(selection, Selection) else parse_selection(selection)
    ranks = [
        RANKS.get(term.key or "", 0)
        for alternative in parsed.alternatives
        for term in alternative
        if not term.negate
    ]
    return max(ranks, default=0)


def check_name(name: str) -> None:
    """A node name is lower case letters, digits and '-' (it names files and shards)."""
    if not NAME.match(name):
        raise NodeError(
            name,
            f"node name {name!r} is not valid",
            hint="use lower case letters, digits and '-', starting with a letter or digit",
        )


def check_hosts_known(nodes: Iterable[Node], inventory: Inventory) -> None:
    """Every node's host is a host of the inventory."""
    for node in nodes:
        if node.host not in inventory.hosts:
            raise NodeError(
                node.name,
                f"node {node.name!r} runs on host {node.host!r}, which is not in the inventory",
                hint="give --host the name of an inventory host (provision inventory show)",
            )


def check_unique(nodes: Sequence[Node]) -> None:
    """No two nodes share a name or a host."""
    names: dict[str, Node] = {}
    hosts: dict[str, Node] = {}
    for node in nodes:
        if node.name in names:
            raise NodeError(node.name, f"there are two nodes named {node.name!r}")
        if node.host in hosts:
            other = hosts[node.host]
            raise NodeError(
                node.name,
                f"nodes {other.name!r} and {node.name!r} both run on host {node.host!r}",
                hint="one host is one node: remove one of them",
            )
        names[node.name] = hosts[node.host] = node


def served_hosts(nodes: Iterable[Node], inventory: Inventory) -> dict[str, set[str]]:
    """Node name -> the hosts its selection picks, node hosts left out (rule 1)."""
    node_list = list(nodes)
    node_hosts = {node.host for node in node_list}
    return {node.name: set(select_hosts(inventory, node.serves)) - node_hosts for node in node_list}


def check_not_self(nodes: Iterable[Node], inventory: Inventory) -> None:
    """A node serves some host other than itself and the other nodes."""
    node_list = list(nodes)
    served = served_hosts(node_list, inventory)
    for node in node_list:
        if served[node.name]:
            continue
        picked = set(select_hosts(inventory, node.serves))
        if node.host in picked:
            raise NodeError(
                node.name,
                f"node {node.name!r} serves only itself ({node.serves!r} picks no other host"
                " than node hosts)",
                hint="a node runs the work of its sites, never its own: serve the sites "
                "around it, e.g. --serves district:NAME",
            )
        raise NodeError(
            node.name,
            f"node {node.name!r} serves no host: {node.serves!r} picks none but node hosts",
            hint="check the selection with provision inventory show SELECTION",
        )


def check_overlap(nodes: Sequence[Node], inventory: Inventory) -> None:
    """Two nodes of the same specificity never serve the same host (rule 3)."""
    served = served_hosts(nodes, inventory)
    ranks = {node.name: specificity(node.serves) for node in nodes}
    for index, node in enumerate(nodes):
        for other in nodes[:index]:
            if ranks[node.name] != ranks[other.name]:
                continue
            shared = served[node.name] & served[other.name]
            if shared:
                example = next(h for h in inventory.hosts if h in shared)
                raise NodeError(
                    node.name,
                    f"nodes {other.name!r} ({other.serves}) and {node.name!r} ({node.serves})"
                    f" both serve {len(shared)} host(s), e.g. {example!r}",
                    hint="make the selections disjoint, or one more specific than the other "
                    "(e.g. upazila: inside a district:)",
                )


def validate_nodes(nodes: Sequence[Node], inventory: Inventory) -> None:
    """Every rule a set of nodes must keep against an inventory; the first broken raises."""
    for node in nodes:
        check_name(node.name)
        try:
            parse_selection(node.serves)
        except InputError as error:
            raise NodeError(
                node.name, f"node {node.name!r}: {error.message}", hint=error.hint
            ) from None
    check_unique(nodes)
    check_hosts_known(nodes, inventory)
    check_not_self(nodes, inventory)
    check_overlap(nodes, inventory)


def assign_hosts(
    nodes: Sequence[Node], hosts: Sequence[str], inventory: Inventory
) -> dict[str | None, list[str]]:
    """Node name (None: the control node) -> the hosts of `hosts` it runs, in their order.

    Every host of `hosts` appears exactly once. Only nodes with at least one host
    appear; the control node appears when it has any. `nodes` are assumed valid
    (`validate_nodes`); on a tie the first node listed wins.
    """
    served = served_hosts(nodes, inventory)
    ranked = sorted(enumerate(nodes), key=lambda item: (-specificity(item[1].serves), item[0]))
    node_hosts = {node.host for node in nodes}
    result: dict[str | None, list[str]] = {}
    for host in hosts:
        owner: str | None = CONTROL
        if host not in node_hosts:
            for _, node in ranked:
                if host in served[node.name]:
                    owner = node.name
                    break
        result.setdefault(owner, []).append(host)
    return result
