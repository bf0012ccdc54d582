"""`provision ca`: The department's internal certificate authority for portal TLS."""

from __future__ import annotations

import click


@click.group()
def ca() -> None:
    """The department's internal certificate authority for portal TLS."""
