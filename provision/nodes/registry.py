"""The nodes of an environment, kept in the workspace as `inventories/<env>/nodes.yml`.

The file sits beside hosts.yml because nodes are hosts of that inventory and
change with it (under version control, reviewed like the inventory). Ansible
reads every file of an inventory folder as inventory; ansible.cfg's
`[inventory] ignore_patterns` keeps it away from nodes.yml. The file::

    nodes:
      - name: gazipur
        host: gaz-001-fs01
        serves: district:gazipur

`load_nodes` reads it and reports every mistake at its line, naming the field;
`checked_nodes` also checks the nodes against the inventory (an unknown host,
overlap, a node serving itself: `provision.model.nodes`). Changes are written
atomically and only once the whole new set passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import InputError, StateError
from provision.infra.atomic import write_atomic
from provision.infra.yamlfile import load_located
from provision.inventory.files import LoadedInventory
from provision.inventory.targets import load_environment
from provision.model.located import Located
from provision.model.nodes import Node, NodeError, validate_nodes
from provision.settings import Settings

FILE = "nodes.yml"
_FIELDS = ("name", "host", "serves")
HEADER = """\
# The execution nodes of this environment: field servers that run the share of
# a rollout or audit of the hosts they serve. Edited by `provision nodes
# add|remove` (comments are not kept) or by hand; see docs/nodes.md.
"""


@dataclass
class NodeFile:
    """The nodes of one file and the line each was written on."""

    path: Path
    nodes: list[Node] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    def find(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)


def nodes_path(settings: Settings) -> Path:
    return settings.inventory_path / FILE


def _problem(located: Located, at: tuple[str | int, ...], message: str, hint: str) -> InputError:
    return InputError(message, hint=hint, path=located.path, line=located.line(at))


def _node(located: Located, item: Any, index: int) -> Node:
    at: tuple[str | int, ...] = ("nodes", index)
    if not isinstance(item, dict):
        raise _problem(
            located, at, "a node must be a mapping", "write '- name: …', 'host: …', 'serves: …'"
        )
    unknown = sorted(set(map(str, item)) - set(_FIELDS))
    if unknown:
        raise _problem(
            located,
            (*at, unknown[0]),
            f"unknown field {unknown[0]!r}",
            "a node has the fields " + ", ".join(_FIELDS),
        )
    values: dict[str, str] = {}
    for name in _FIELDS:
        value = item.get(name)
        if not isinstance(value, str) or not value.strip():
            raise _problem(
                located,
                (*at, name) if name in item else at,
                f"field {name!r} is missing or not text",
                f"give the node its {name} as text",
            )
        values[name] = value.strip()
    return Node(values["name"], values["host"], values["serves"])


def load_nodes(path: Path) -> NodeFile:
    """The nodes of `path` (none when it does not exist), or the first mistake in its form."""
    found = NodeFile(path)
    if not path.is_file():
        return found
    located = load_located(path)
    if located.duplicates:
        key, line, first = located.duplicates[0]
        raise InputError(
            f"field {key[-1]!r} is given twice (first on line {first})",
            hint="keep one of them",
            path=path,
            line=line,
        )
    data = located.data
    if data is None:
        return found
    if not isinstance(data, dict) or set(map(str, data)) - {"nodes"}:
        raise InputError(
            "must be a mapping with one key, nodes:",
            hint="start the file with 'nodes:' and list one node per item",
            path=path,
            line=1,
        )
    items = data.get("nodes") or []
    if not isinstance(items, list):
        raise _problem(located, ("nodes",), "nodes: must be a list", "write '- name: …' items")
    for index, item in enumerate(items):
        node = _node(located, item, index)
        found.nodes.append(node)
        found.lines.setdefault(node.name, located.line(("nodes", index)) or 1)
    return found


def check_against(found: NodeFile, inventory: LoadedInventory) -> None:
    """The rules of `provision.model.nodes`, an error at the line of the node that breaks one."""
    try:
        validate_nodes(found.nodes, inventory.inventory)
    except NodeError as error:
        raise InputError(
            error.message, hint=error.hint, path=found.path, line=found.lines.get(error.node)
        ) from None


def checked_nodes(settings: Settings) -> tuple[NodeFile, LoadedInventory]:
    """The environment's nodes, checked against its inventory."""
    inventory = load_environment(settings.inventory_path)
    found = load_nodes(nodes_path(settings))
    check_against(found, inventory)
    return found, inventory


def render_nodes(nodes: Sequence[Node]) -> str:
    """The file's text: fields in a fixed order, so the same nodes always write the same file."""
    lines = [HEADER.rstrip("\n"), "---", "nodes:" if nodes else "nodes: []"]
    for node in nodes:
        lines += [
            f"  - name: {_quoted(node.name)}",
            f"    host: {_quoted(node.host)}",
            f"    serves: {_quoted(node.serves)}",
        ]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    # Always double-quoted: a selection holds ':', '!', ',' and maybe quotes.
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def add_node(settings: Settings, node: Node) -> NodeFile:
    """Add `node` to the environment's nodes; the file is written only if every rule holds."""
    found, inventory = checked_nodes(settings)
    if found.find(node.name) is not None:
        raise StateError(
            f"there is a node named {node.name!r} already",
            hint=f"remove it first (provision nodes remove {node.name}) or choose another name",
        )
    changed = NodeFile(found.path, [*found.nodes, node], dict(found.lines))
    try:
        validate_nodes(changed.nodes, inventory.inventory)
    except NodeError as error:
        raise InputError(error.message, hint=error.hint) from None
    write_atomic(found.path, render_nodes(changed.nodes), mode=0o644)
    return load_nodes(found.path)


def remove_node(settings: Settings, name: str) -> Node:
    """Remove node `name`; the node itself is left as it is (its account, its worker)."""
    found = load_nodes(nodes_path(settings))
    node = found.find(name)
    if node is None:
        raise InputError(
            f"there is no node named {name!r} in {found.path}",
            hint="see the nodes with provision nodes list",
        )
    write_atomic(found.path, render_nodes([n for n in found.nodes if n.name != name]), mode=0o644)
    return node


def find_node(found: NodeFile, name: str) -> Node:
    """Node `name` of `found`, or an error listing the ones there are."""
    node = found.find(name)
    if node is None:
        known = ", ".join(n.name for n in found.nodes) or "none"
        raise InputError(
            f"there is no node named {name!r} in {found.path}",
            hint=f"nodes: {known}; add one with provision nodes add NAME --host HOST --serves SEL",
        )
    return node
