"""`provision portal`: the register of office web portals; deploy, back up, restore."""

from __future__ import annotations

import click


@click.group()
def portal() -> None:
    """Manage the register of office web portals and deploy, back up and restore them."""
