"""`provision schedule`: Run compliance on a schedule with systemd timers on this control node."""

from __future__ import annotations

import click


@click.group()
def schedule() -> None:
    """Run compliance on a schedule with systemd timers on this control node."""
