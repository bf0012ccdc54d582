"""`provision compliance`: audit hosts against the standards, drift, reports, fixes."""

from __future__ import annotations

import click


@click.group()
def compliance() -> None:
    """Check hosts against the published standards: audit, drift, reports, fixes."""


def _add_subcommands() -> None:
    # The report writer lives in its own module: it is the largest subcommand.
    from provision.cli.compliance_report import report

    compliance.add_command(report)


_add_subcommands()
