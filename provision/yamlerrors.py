"""One way to report a YAML syntax error: the file, the line, and what to do."""

from __future__ import annotations

from pathlib import Path

import yaml

from provision.errors import ProvisionError


def syntax_error(
    exc: yaml.YAMLError, path: Path | str, kind: type[ProvisionError]
) -> ProvisionError:
    """A `kind` error naming the line PyYAML stopped at (1-based), for `raise … from None`."""
    mark = getattr(exc, "problem_mark", None)
    return kind(
        f"is not valid YAML: {getattr(exc, 'problem', None) or exc}",
        hint="fix the YAML syntax at that line",
        path=path,
        line=None if mark is None else mark.line + 1,
    )
