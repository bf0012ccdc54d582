"""`provision compliance report`: write a run's results as JSON, JUnit, CSV or HTML."""

from __future__ import annotations

import click


@click.command()
def report() -> None:
    """Write a compliance run's report (JSON, JUnit XML, CSV or HTML)."""
    raise click.UsageError("not built yet")
