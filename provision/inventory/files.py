"""Reading and writing `inventories/<env>/` in Ansible's own layout.

    inventories/<env>/hosts.yml               written by provision (whole file)
    inventories/<env>/.inventory-cache.json   written by provision: the same data as
                                              JSON, keyed by hosts.yml's SHA-256, so
                                              provision reads 50,000 hosts in a blink
    inventories/<env>/group_vars/, host_vars/ yours: provision reads them, never writes

Each file is written whole or not at all (`provision.infra.atomic`, keeping a
file's mode), so a reader sees the old inventory or the new one, never half of one.
The cache is only used when its hash matches hosts.yml, so a hosts.yml edited or
written by hand (the lab's, say) is read from the YAML itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.infra.atomic import write_atomic
from provision.infra.yamlfile import parse_ansible
from provision.model.inventory.model import Group, Inventory
from provision.model.inventory.problems import Problem

HOSTS_FILE = "hosts.yml"
CACHE_FILE = ".inventory-cache.json"
MARKER = "# Written by provision"
CACHE_VERSION = 1
_VAR_EXTENSIONS = ("", ".yml", ".yaml", ".json")

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_YAML_WORDS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"])


# -- writing -----------------------------------------------------------------


def _key(name: str) -> str:
    """A mapping key, plain when YAML reads it back as the same string."""
    if _PLAIN_KEY.fullmatch(name) and name.lower() not in _YAML_WORDS:
        return name
    return json.dumps(name, ensure_ascii=False)


_SIMPLE = re.compile(r'[^"\\\x00-\x1f\x7f\u0085\u2028\u2029\ufeff]*')


def _value(value: Any) -> str:
    # JSON is valid YAML flow syntax: strings come back as strings, numbers as numbers.
    # The two shortcuts give what json.dumps would, only faster.
    kind = type(value)
    if kind is str and _SIMPLE.fullmatch(value):
        return f'"{value}"'
    if kind is int:
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def render_hosts_yml(inventory: Inventory, header: str = "") -> str:
    """The inventory as Ansible YAML: groups nested under their parents.

    A host's variables are written where the host first appears (its place in the
    tree, for an imported register); elsewhere it is listed by name only.
    """
    lines: list[str] = []
    if header:
        lines.extend("# " + h if h else "#" for h in header.splitlines())
    written_hosts: set[str] = set()
    written_groups: set[str] = set()

    def group(g: Group, indent: str) -> None:
        written_groups.add(g.name)
        if g.vars:
            lines.append(f"{indent}vars:")
            lines.extend(f"{indent}  {_key(k)}: {_value(v)}" for k, v in g.vars.items())
        if g.hosts:
            lines.append(f"{indent}hosts:")
            for host in g.hosts:
                values = inventory.hosts.get(host, {})
                if host in written_hosts or not values:
                    lines.append(f"{indent}  {_key(host)}:")
                    continue
                written_hosts.add(host)
                lines.append(f"{indent}  {_key(host)}:")
                lines.extend(f"{indent}    {_key(k)}: {_value(v)}" for k, v in values.items())
        if g.children:
            lines.append(f"{indent}children:")
            for child in g.children:
                lines.append(f"{indent}  {_key(child)}:")
                if child not in written_groups and child in inventory.groups:
                    group(inventory.groups[child], indent + "    ")

    lines.extend(["---", "all:"])  # yamllint: a document start after the header
    top = inventory.groups["all"]
    grouped = {h for g in inventory.groups.values() if g.name != "all" for h in g.hosts}
    ungrouped = [h for h in inventory.hosts if h not in grouped]
    group(Group("all", top.vars, ungrouped, top.children), "  ")
    return "\n".join(lines) + "\n"


def _dump_model(inventory: Inventory, digest: str) -> str:
    groups = {
        g.name: {"vars": g.vars, "hosts": g.hosts, "children": g.children}
        for g in inventory.groups.values()
    }
    data = {"version": CACHE_VERSION, "sha256": digest, "hosts": inventory.hosts, "groups": groups}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def is_provision_written(path: Path) -> bool:
    """True when hosts.yml at `path` was written by provision (or does not exist)."""
    if not path.exists():
        return True
    with path.open("rb") as stream:
        return stream.read(len(MARKER)).decode("utf-8", "replace") == MARKER


def write_inventory(inventory: Inventory, folder: Path, *, source: str = "") -> Path:
    """Write `inventory` as `folder/hosts.yml` (plus its cache), atomically.

    Only hosts.yml and the cache are written; group_vars/ and host_vars/ are never
    touched. A hosts.yml that provision did not write is refused rather than lost.
    Returns the path of hosts.yml.
    """
    hosts_path = folder / HOSTS_FILE
    if not is_provision_written(hosts_path):
        raise InputError(
            "was written by hand, not by provision, and would be replaced",
            hint="move it away (keep your variables in group_vars/ or host_vars/), import again",
            path=hosts_path,
        )
    header = (
        f"{MARKER[2:]}{' from ' + source if source else ''}: {len(inventory.hosts)} hosts.\n"
        "Do not edit: the next `provision inventory import` replaces this file.\n"
        "Put your own variables in group_vars/<group>.yml and host_vars/<host>.yml\n"
        "beside it: provision reads them and never writes there.\n"
        "Group names: see docs/inventory.md."
    )
    text = render_hosts_yml(inventory, header)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / CACHE_FILE, _dump_model(inventory, digest))
    write_atomic(hosts_path, text)
    return hosts_path


# -- reading -----------------------------------------------------------------


@dataclass
class LoadedInventory:
    """An inventory read from disk, with what is needed to point at its lines."""

    inventory: Inventory
    folder: Path
    hosts_path: Path
    #: hosts.yml's text, kept to find a host's line when a problem is reported.
    text: str
    #: Problems in the structure of hosts.yml (unknown keys, duplicate keys...).
    problems: list[Problem]

    def line_of(self, key: str, *, nested: bool = False) -> int | None:
        """The first line where `key:` starts a mapping entry, or None.

        `nested` skips the top level, where only groups stand: a host named `all`
        is then found where it is listed, not at the `all:` that opens the file.
        """
        indent = "[ \t]+" if nested else "[ \t]*"
        match = re.search(
            rf"^{indent}(?:{re.escape(key)}|{re.escape(json.dumps(key))})[ \t]*:",
            self.text,
            re.MULTILINE,
        )
        return None if match is None else self.text.count("\n", 0, match.start()) + 1


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", hint="save it as UTF-8", path=path) from None


def _from_yaml(data: Any, path: str) -> tuple[Inventory, list[Problem]]:
    """The model of Ansible's YAML inventory format, and its structural problems."""
    inventory = Inventory()
    problems: list[Problem] = []
    if data is None:
        return inventory, problems
    if not isinstance(data, dict):
        problems.append(Problem(path, 1, "must be a mapping of group names", "start with 'all:'"))
        return inventory, problems

    def walk(name: str, body: Any, parent: str | None) -> None:
        group = inventory.group(name)
        if parent is not None:
            inventory.add_child(parent, name)
        if body is None:
            return
        if not isinstance(body, dict):
            problems.append(Problem(path, None, f"group '{name}' must be a mapping"))
            return
        for key, value in body.items():
            if key == "vars" and isinstance(value, dict):
                group.vars.update(value)
            elif key == "hosts" and isinstance(value, dict):
                for host, values in value.items():
                    host = str(host)
                    if host not in group.hosts:
                        group.hosts.append(host)
                    own = inventory.hosts.setdefault(host, {})
                    if isinstance(values, dict):
                        own.update(values)
                    elif values is not None:
                        problems.append(
                            Problem(path, None, f"host '{host}' must map to its variables")
                        )
            elif key == "children" and isinstance(value, dict):
                for child, child_body in value.items():
                    walk(str(child), child_body, name)
            elif value is not None:
                problems.append(
                    Problem(
                        path,
                        None,
                        f"group '{name}' has '{key}', which Ansible ignores or misreads",
                        "a group holds only hosts:, children: and vars: mappings",
                    )
                )

    for name, body in data.items():
        walk(str(name), body, None if str(name) == "all" else "all")
    return inventory, problems


def _from_cache(text: str, digest: str) -> Inventory | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return None
    if data.get("sha256") != digest:
        return None
    groups = {
        name: Group(name, body["vars"], body["hosts"], body["children"])
        for name, body in data["groups"].items()
    }
    return Inventory(hosts=data["hosts"], groups=groups)


def load_inventory(folder: Path) -> LoadedInventory:
    """Read `folder/hosts.yml` (through the cache when it matches)."""
    hosts_path = folder / HOSTS_FILE
    if not hosts_path.is_file():
        raise InputError(
            f"no inventory: {hosts_path} does not exist",
            hint="import a register first: provision inventory import REGISTER.csv --env "
            + folder.name,
        )
    raw = hosts_path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", hint="save it as UTF-8", path=hosts_path) from None
    digest = hashlib.sha256(raw).hexdigest()
    cache = folder / CACHE_FILE
    inventory = None
    if cache.is_file():
        inventory = _from_cache(cache.read_text(encoding="utf-8"), digest)
    problems: list[Problem] = []
    if inventory is None:
        data, duplicates = parse_ansible(text, hosts_path)
        inventory, problems = _from_yaml(data, str(hosts_path))
        problems.extend(
            Problem(
                str(hosts_path),
                line,
                f"'{key}' appears twice in one mapping; YAML keeps only the last",
                "merge the two entries",
            )
            for key, line in duplicates
        )
    loaded = LoadedInventory(inventory, folder, hosts_path, text, problems)
    located = [
        Problem(p.path, p.line or _locate(loaded, p.message), p.message, p.hint, p.severity)
        for p in problems
    ]
    loaded.problems = located
    return loaded


def _locate(loaded: LoadedInventory, message: str) -> int | None:
    match = re.search(r"'([^']+)'", message)
    return loaded.line_of(match.group(1)) if match else None


# -- group_vars and host_vars --------------------------------------------------


def var_files(folder: Path, kind: str, name: str) -> list[Path]:
    """The files Ansible would read for one group or host, in the order it reads them.

    `kind` is "group_vars" or "host_vars": `<name>`, `<name>.yml|.yaml|.json`, and
    every such file inside a `<name>/` folder, sorted.
    """
    base = folder / kind
    found: list[Path] = []
    for extension in _VAR_EXTENSIONS:
        candidate = base / (name + extension)
        if candidate.is_file():
            found.append(candidate)
    directory = base / name
    if directory.is_dir():
        for path in sorted(directory.rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(directory).parts)
            if path.is_file() and not hidden and path.suffix in _VAR_EXTENSIONS:
                found.append(path)
    return found


def read_vars(path: Path) -> dict[str, Any]:
    """The variables in one group_vars/host_vars file."""
    text = _read_text(path)
    if text.startswith("$ANSIBLE_VAULT"):
        raise InputError(
            "is encrypted whole with ansible-vault, which provision cannot resolve",
            hint="encrypt single values instead (ansible-vault encrypt_string) so the "
            "file stays readable YAML",
            path=path,
        )
    data, _duplicates = parse_ansible(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("must be a mapping of variable: value", path=path, line=1)
    return {str(k): v for k, v in data.items()}


def vars_names(folder: Path, kind: str) -> dict[str, Path]:
    """Every group or host name that has a vars file or folder under `folder/kind`."""
    base = folder / kind
    if not base.is_dir():
        return {}
    names: dict[str, Path] = {}
    for entry in sorted(base.iterdir()):
        if entry.name.startswith("."):
            continue
        name = entry.name
        if entry.is_file():
            if entry.suffix not in _VAR_EXTENSIONS:
                continue
            name = entry.stem
        names.setdefault(name, entry)
    return names
