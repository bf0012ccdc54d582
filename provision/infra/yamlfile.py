"""YAML that remembers where each value came from, and one way to report its errors.

`load_located` / `parse_located` build the plain Python value from PyYAML's
node tree ourselves and keep, beside it, the line of every path
(`("controls", 3, "severity")` -> 57). Duplicate keys, which YAML silently
collapses to the last one, are reported instead of lost. With
`dates_as_text=True` a date stays the text it was written as, so a bad date
(2027-02-31) becomes one problem at its line in the caller's checks.

`parse_ansible` is the fast path for Ansible's own files (an inventory of 50,000
hosts, group_vars): PyYAML's constructor builds the value, only duplicate keys
keep their line, and Ansible's inline tags (`!vault`, `!unsafe`) are read.

A syntax error is reported the same way everywhere (`syntax_error`): the file,
the line, and what to do.

PyYAML gives two marks. `problem_mark` is where it gave up, which for a token
that never ended (a key without its ':', a quote or a '[' never closed) is the
line after it, or the end of the file; `context_mark` is where that token began,
the line a person has to fix. When the parser was inside a block mapping or list,
the context is only the start of that block (maybe far above), so the problem
mark is the one to show. The line itself is shown too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from provision.errors import InputError, ProvisionError
from provision.model.located import Located, PathKey

#: Safe YAML loading, in C where PyYAML has libyaml (about ten times faster).
SafeLoader: Any = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader


class _DatesAsTextLoader(SafeLoader):  # type: ignore[misc]
    """YAML with dates kept as text: a bad date (2027-02-31) is then one problem at its line."""


_DatesAsTextLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _DatesAsTextLoader.construct_yaml_str
)


class _AnsibleLoader(SafeLoader):  # type: ignore[misc]
    """Safe YAML loading that also notes duplicate keys (YAML keeps only the last)."""

    duplicates: list[tuple[str, int]]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            key = key_node.value
            if key in seen:
                self.duplicates.append((str(key), key_node.start_mark.line + 1))
            seen.add(key)
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


def _vault(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, str]:
    # Inline `!vault` values travel as Ansible's JSON form of an encrypted string.
    return {"__ansible_vault": str(loader.construct_scalar(node))}  # type: ignore[arg-type]


_AnsibleLoader.add_constructor("!vault", _vault)
_AnsibleLoader.add_constructor("!unsafe", _AnsibleLoader.construct_scalar)

#: Contexts whose mark is the start of the unfinished token, not of an outer block.
_TOKEN_CONTEXTS = (
    "while scanning a simple key",
    "while scanning a quoted scalar",
    "while scanning a block scalar",
    "while scanning an anchor",
    "while scanning an alias",
    "while scanning a tag",
    "while scanning a directive",
    "while parsing a flow",
)
_SHOWN = 80


def error_line(exc: yaml.YAMLError) -> tuple[int | None, str | None]:
    """(0-based line the error is at, the context that line starts) for `exc`."""
    problem = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    context = getattr(exc, "context", None) or ""
    if context_mark is not None and context.startswith(_TOKEN_CONTEXTS):
        return context_mark.line, context
    return (None if problem is None else problem.line), None


def syntax_error(
    exc: yaml.YAMLError,
    path: Path | str,
    kind: type[ProvisionError],
    text: str | None = None,
) -> ProvisionError:
    """A `kind` error naming the line to fix (1-based) and showing it, for `raise … from None`.

    `text` is the document that was parsed: the offending line is quoted from it.
    """
    line, context = error_line(exc)
    problem = getattr(exc, "problem", None) or str(exc)
    message = f"is not valid YAML: {problem}"
    if context:
        message += f" ({context.removeprefix('while ')} that starts on this line)"
    if line is not None and text is not None:
        lines = text.splitlines()
        if line < len(lines) and lines[line].strip():
            shown = lines[line].strip()
            shown = shown if len(shown) <= _SHOWN else shown[: _SHOWN - 1] + "…"
            message += f": {shown}"
    return kind(
        message,
        hint="fix the YAML syntax at that line",
        path=path,
        line=None if line is None else line + 1,
    )


def load_located(path: Path, *, dates_as_text: bool = False) -> Located:
    """Read one YAML file; raise `InputError` (with the line) if it is not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path} does not exist", hint="check the file name") from None
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", hint="save it as UTF-8", path=path) from None
    return parse_located(text, path, dates_as_text=dates_as_text)


def parse_located(text: str, path: Path, *, dates_as_text: bool = False) -> Located:
    """Parse `text` (read from `path`); a YAML syntax error names its line."""
    loader = (_DatesAsTextLoader if dates_as_text else SafeLoader)(text)
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


def parse_ansible(text: str, path: Path | str) -> tuple[Any, list[tuple[str, int]]]:
    """Parse an Ansible YAML file's `text`: the data and its duplicate keys (key, line)."""
    loader = _AnsibleLoader(text)
    loader.duplicates = []
    try:
        return loader.get_single_data(), loader.duplicates
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
