"""A YAML document as plain data plus the line of every value in it.

People edit standards, waivers and registers; a mistake must be reported at its
line. `provision.infra.yamlfile` builds a `Located` from the text; the domain's
parsers read `data` and ask `line(at)` when they report a problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PathKey = tuple[str | int, ...]


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
