"""One way to report a YAML syntax error: the file, the line, and what to do.

PyYAML gives two marks. `problem_mark` is where it gave up, which for a token
that never ended (a key without its ':', a quote or a '[' never closed) is the
line after it, or the end of the file; `context_mark` is where that token began,
the line a person has to fix. When the parser was inside a block mapping or list,
the context is only the start of that block (maybe far above), so the problem
mark is the one to show. The line itself is shown too.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from provision.errors import ProvisionError

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
