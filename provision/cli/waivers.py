"""`provision waivers`: Read and validate waivers.yml: approved exceptions to controls."""

from __future__ import annotations

import click


@click.group()
def waivers() -> None:
    """Read and validate waivers.yml: approved exceptions to controls."""
