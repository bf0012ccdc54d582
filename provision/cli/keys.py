"""`provision keys`: the control node's automation key."""

from __future__ import annotations

import click

from provision.access import keys as service
from provision.cli import console
from provision.cli.context import AppContext, pass_app


@click.group()
def keys() -> None:
    """The control node's Ed25519 automation key, which bootstrap installs on hosts.

    The key lives in STATE_DIR/keys/automation_ed25519 (or the ssh_key setting),
    mode 0600 in a 0700 folder; its public half beside it with .pub.

    \b
    Example:
      provision keys generate
      provision keys show
    """


@keys.command()
@click.option(
    "--force", is_flag=True, help="Replace an existing key (hosts must be bootstrapped again)."
)
@pass_app
def generate(app: AppContext, force: bool) -> None:
    """Make the automation key pair; refuses to replace one without --force.

    \b
    Example:
      provision keys generate
    """
    info = service.generate(app.settings, force=force)
    console.out.print(f"wrote {info.path} (0600) and {info.path}.pub")
    console.out.print(f"fingerprint {info.fingerprint}")


@keys.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def show(app: AppContext, as_json: bool) -> None:
    """Show where the automation key is, its public line and fingerprint.

    \b
    Example:
      provision keys show --json
    """
    info = service.load(app.settings)
    if as_json:
        console.print_json(
            {"path": str(info.path), "public_key": info.public_key, "fingerprint": info.fingerprint}
        )
        return
    console.out.print(f"{info.path}\n{info.public_key}\n{info.fingerprint}", markup=False)
