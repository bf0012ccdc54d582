"""The `provision` command group and the one error boundary every command goes through."""

from __future__ import annotations

import importlib
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

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module_name, attribute = COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module_name), attribute), cmd_name)
        return self.commands.get(cmd_name)

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


#: Each subcommand and the module:attribute that defines it. Loaded only when a
#: command is run (or --help lists them), so `provision rollout` does not pay
#: for importing paramiko, SQLAlchemy or Jinja2 it does not use.
COMMANDS: dict[str, str] = {
    "doctor": "provision.cli.doctor:doctor",
    "lab": "provision.cli.lab:lab",
    "inventory": "provision.cli.inventory:inventory",
    "keys": "provision.cli.keys:keys",
    "bootstrap": "provision.cli.bootstrap:bootstrap",
    "preflight": "provision.cli.preflight:preflight",
    "rollout": "provision.cli.rollout:rollout",
    "runs": "provision.cli.runs:runs",
    "secrets": "provision.cli.secrets:secrets",
    "standards": "provision.cli.standards:standards",
    "compliance": "provision.cli.compliance:compliance",
    "waivers": "provision.cli.waivers:waivers",
    "schedule": "provision.cli.schedule:schedule",
    "portal": "provision.cli.portal:portal",
    "nodes": "provision.cli.nodes:nodes",
    "ca": "provision.cli.ca:ca",
    "image": "provision.cli.image:image",
    "bundle": "provision.cli.bundle:bundle",
    "reports": "provision.cli.reports:reports",
}


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="provision", auto_envvar_prefix="PROVISION")
