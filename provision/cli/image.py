"""`provision image`: Standard OS install seeds and images for new machines."""

from __future__ import annotations

import click


@click.group()
def image() -> None:
    """Standard OS install seeds and images for new machines."""
