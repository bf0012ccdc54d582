"""Where the command line writes: rich on a terminal, plain lines elsewhere.

Only the CLI prints. Services report progress through callbacks; the commands
render it here so that output on a terminal is live and output to a pipe, a
file or a timer's log stays plain and quiet.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from provision.model.words import plural

#: Off a terminal (a pipe, a log, a mail) rich would assume 80 columns and cut
#: host names short in tables; logs are read wide.
_PLAIN_WIDTH = None if sys.stdout.isatty() else 160

#: Normal output (tables, results) goes to stdout.
out = Console(highlight=False, soft_wrap=True, width=_PLAIN_WIDTH)
#: Errors, warnings and progress go to stderr so stdout stays parseable.
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_PLAIN_WIDTH)


def is_interactive() -> bool:
    """True when a person is watching: show bars and live tables."""
    return sys.stderr.isatty()


#: How many problems a terminal shows before "and N more": a broken 50,000-row
#: register must not bury the first lines (and the summary) under 41,000 more.
SHOWN_PROBLEMS = 50


def print_problems(problems: Sequence[Any], *, shown: int = SHOWN_PROBLEMS) -> None:
    """Each problem as `severity: file:line: message; hint`, the first `shown` of them."""
    for problem in problems[:shown]:
        severity = getattr(problem, "severity", "error")
        style = "red" if severity == "error" else "yellow"
        err.print(f"{severity}: {problem}", style=style, markup=False, highlight=False)
    if len(problems) > shown:
        rest = len(problems) - shown
        err.print(
            f"… and {plural(rest, 'more problem')} (--json lists them all)",
            style="red",
            markup=False,
        )


def print_json(data: Any) -> None:
    """Machine-readable output for `--json`; always plain, whatever stdout is."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


class Steps:
    """Renders a service's progress messages: a spinner on a terminal, plain lines elsewhere.

    Use as a context manager and pass the instance as the service's step callback.
    """

    def __init__(self, title: str) -> None:
        self._title = title
        self._status: Any = None

    def __enter__(self) -> Steps:
        if is_interactive():
            self._status = err.status(self._title)
            self._status.__enter__()
        else:
            err.print(self._title, markup=False)
        return self

    def __call__(self, message: str) -> None:
        if self._status is not None:
            self._status.update(f"{self._title}: {message}")
            err.print(f"  {message}", markup=False, style="dim")
        else:
            err.print(f"  {message}", markup=False)

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
