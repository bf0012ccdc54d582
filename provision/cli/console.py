"""Where the command line writes: rich on a terminal, plain lines elsewhere.

Only the CLI prints. Services report progress through callbacks; the commands
render it here so that output on a terminal is live and output to a pipe, a
file or a timer's log stays plain and quiet.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

#: Normal output (tables, results) goes to stdout.
out = Console(highlight=False, soft_wrap=True)
#: Errors, warnings and progress go to stderr so stdout stays parseable.
err = Console(stderr=True, highlight=False, soft_wrap=True)


def is_interactive() -> bool:
    """True when a person is watching: show bars and live tables."""
    return sys.stderr.isatty()


def print_json(data: Any) -> None:
    """Machine-readable output for `--json`; always plain, whatever stdout is."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
