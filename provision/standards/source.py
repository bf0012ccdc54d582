"""YAML that remembers where each value came from.

A standard is edited by people; a mistake must be reported at its line. PyYAML's
composed node tree carries a mark for every node, so we build the plain Python
value from the nodes ourselves and keep, beside it, the line of every path
(`("controls", 3, "severity")` -> 57). Duplicate keys, which YAML silently
collapses to the last one, are reported instead of lost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provision.errors import InputError
from provision.yamlerrors import syntax_error

PathKey = tuple[str | int, ...]

_Loader = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader


@dataclass
class Located:
    """A YAML document as plain data plus the line (1-based) of every path in it."""

    data: Any
    path: Path
    lines: dict[PathKey, int] = field(default_factory=dict)
    #: (key path, line, first line) of each key that appears twice in one mapping.
    duplicates: list[tuple[PathKey, int, int]] = field(default_factory=list)
    #: sha256 of the text that was parsed.
    digest: str = ""

    def line(self, at: PathKey) -> int | None:
        """The line of `at`, or of its nearest ancestor that has one."""
        for end in range(len(at), -1, -1):
            found = self.lines.get(at[:end])
            if found is not None:
                return found
        return None


def load_located(path: Path) -> Located:
    """Read one YAML file; raise `InputError` (with the line) if it is not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path} does not exist", hint="check the file name") from None
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", hint="save it as UTF-8", path=path) from None
    return parse_located(text, path)


def parse_located(text: str, path: Path) -> Located:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        located = Located(None, path, digest=hashlib.sha256(text.encode("utf-8")).hexdigest())
        if node is not None:
            located.data = _build(loader, node, (), located)
        return located
    except yaml.YAMLError as exc:
        raise syntax_error(exc, path, InputError, text) from None
    finally:
        loader.dispose()


def _build(loader: Any, node: yaml.Node, at: PathKey, located: Located) -> Any:
    located.lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (list, dict)):
                key = str(key)
            if key in first_line:
                located.duplicates.append(((*at, key), line, first_line[key]))
            first_line[key] = line
            result[key] = _build(loader, value_node, (*at, key), located)
            # Point at the key's line: that is where a person looks for "severity:".
            located.lines[(*at, key)] = line
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*at, i), located) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:
        # A value that looks like a date or time but is not one (2027-02-31): PyYAML
        # raises a plain ValueError, not a YAMLError.
        raise InputError(
            f"'{node.value}' is not a valid value ({exc})",
            hint="write a real date as YYYY-MM-DD, or quote the value to keep it as text",
            path=located.path,
            line=node.start_mark.line + 1,
        ) from None
