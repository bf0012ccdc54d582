"""`provision lab`: real Debian hosts on this machine, for trying and testing."""

from __future__ import annotations

import click


@click.group()
def lab() -> None:
    """Boot, inspect and tear down the built-in lab of real Debian hosts."""
