"""`provision compliance`: audit hosts against the standards, drift, reports, fixes."""

from __future__ import annotations

import click


@click.group()
def compliance() -> None:
    """Check hosts against the published standards: audit, drift, reports, fixes."""
