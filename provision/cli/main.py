"""The `provision` command group and the one error boundary every command goes through."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import click

from provision import __version__
from provision.cli import console
from provision.cli.context import AppContext
from provision.errors import ExitStatus, ProvisionError

EPILOG = """\b
Examples:
  provision doctor                      check this control node
  provision lab up                      boot the built-in lab of four Debian hosts
  provision --env staging inventory tree

Settings come from, lowest first: defaults, provision.yml in the workspace,
PROVISION_* environment variables, then flags. Exit codes: 0 success,
1 internal error, 2 usage error, 3 bad input or configuration, 4 some hosts
failed, 5 some hosts unreachable, 6 compliance below threshold, 130 interrupted.
"""


class ProvisionGroup(click.Group):
    """A click group whose invoke is the error boundary of the whole program.

    A `ProvisionError` becomes one line (plus a hint) on stderr and its exit code;
    Ctrl-C becomes exit 130; anything unexpected becomes "internal error" with the
    traceback only under --debug. click's own usage errors keep click's message and
    exit 2.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProvisionError as exc:
            _report_error(exc)
            ctx.exit(int(exc.exit_status))
        except KeyboardInterrupt:
            console.err.print("interrupted", style="yellow")
            ctx.exit(int(ExitStatus.INTERRUPTED))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # the boundary: nothing unexpected escapes as a traceback
            if ctx.params.get("debug"):
                console.err.print(traceback.format_exc(), markup=False)
            console.err.print(
                f"internal error: {type(exc).__name__}: {exc}", style="bold red", markup=False
            )
            if not ctx.params.get("debug"):
                console.err.print("hint: run again with --debug to see where it happened")
            ctx.exit(int(ExitStatus.INTERNAL_ERROR))


def _report_error(exc: ProvisionError) -> None:
    console.err.print(f"error: {exc}", style="bold red", markup=False, highlight=False)
    if exc.hint:
        console.err.print(f"hint: {exc.hint}", markup=False, highlight=False)


@click.group(cls=ProvisionGroup, epilog=EPILOG, context_settings={"max_content_width": 100})
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PROVISION_WORKSPACE",
    show_envvar=True,
    help="Folder holding playbooks/, inventories/ and provision.yml. "
    "Default: the nearest folder above the current one with a provision.yml.",
)
@click.option(
    "--env",
    "env",
    metavar="ENV",
    help="Inventory environment: inventories/ENV/ (production, staging, lab…). "
    "[env var: PROVISION_ENV; default: lab]",
)
@click.option(
    "--forks",
    type=click.IntRange(min=1),
    help="Hosts Ansible works on at once. [env var: PROVISION_FORKS; default: 20]",
)
@click.option(
    "--debug",
    is_flag=True,
    default=None,
    help="Show tracebacks for unexpected errors. [env var: PROVISION_DEBUG]",
)
@click.version_option(__version__, prog_name="provision")
@click.pass_context
def cli(
    ctx: click.Context,
    workspace: Path | None,
    env: str | None,
    forks: int | None,
    debug: bool | None,
) -> None:
    """Provision and check the department's fleet of field servers, lab PCs and portal hosts.

    provision drives the Ansible content in playbooks/ over the inventories in
    inventories/ENV/, records every result, and reports compliance with the
    published standards.
    """
    ctx.obj = AppContext(workspace=workspace, flags={"env": env, "forks": forks, "debug": debug})


def _register_commands() -> None:
    # Imported here so that each subcommand module stays free of the group's wiring.
    from provision.cli import bootstrap as bootstrap_cli
    from provision.cli import ca as ca_cli
    from provision.cli import compliance as compliance_cli
    from provision.cli import doctor, inventory, lab
    from provision.cli import image as image_cli
    from provision.cli import keys as keys_cli
    from provision.cli import portal as portal_cli
    from provision.cli import preflight as preflight_cli
    from provision.cli import rollout as rollout_cli
    from provision.cli import runs as runs_cli
    from provision.cli import schedule as schedule_cli
    from provision.cli import secrets as secrets_cli
    from provision.cli import standards as standards_cli
    from provision.cli import waivers as waivers_cli

    cli.add_command(doctor.doctor)
    cli.add_command(lab.lab)
    cli.add_command(inventory.inventory)
    cli.add_command(keys_cli.keys)
    cli.add_command(bootstrap_cli.bootstrap)
    cli.add_command(preflight_cli.preflight)
    cli.add_command(rollout_cli.rollout)
    cli.add_command(runs_cli.runs)
    cli.add_command(secrets_cli.secrets)
    cli.add_command(standards_cli.standards)
    cli.add_command(compliance_cli.compliance)
    cli.add_command(waivers_cli.waivers)
    cli.add_command(schedule_cli.schedule)
    cli.add_command(portal_cli.portal)
    cli.add_command(ca_cli.ca)
    cli.add_command(image_cli.image)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="provision", auto_envvar_prefix="PROVISION")
