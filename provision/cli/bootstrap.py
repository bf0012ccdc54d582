"""`provision bootstrap`: first contact with machines as they arrive from the supplier."""

from __future__ import annotations

import dataclasses
import sys
import threading
from pathlib import Path

import click
import yaml
from rich.table import Table

from provision.access import bootstrap as service
from provision.access import keys, secrets
from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option, selection_argument
from provision.cli.secrets import password_options, vault_password
from provision.errors import ExitStatus, InputError
from provision.infra.ssh import HostKeyOffer, TrustCallback
from provision.model.words import plural

_STYLE = {"bootstrapped": "green", "unchanged": "dim", "failed": "red", "unreachable": "yellow"}


def _passwords_from_vault(path: Path, vault_pass: str) -> service.PasswordLookup:
    """`installer_password: X` and/or `installer_passwords: {host: X}` from a vault file."""
    try:
        data = yaml.safe_load(secrets.view(path, vault_pass)) or {}
    except yaml.YAMLError:
        raise InputError("is not YAML once decrypted", path=path) from None
    shared = data.get("installer_password") if isinstance(data, dict) else None
    per_host = data.get("installer_passwords") if isinstance(data, dict) else None
    if not isinstance(per_host, dict):
        per_host = {}
    if shared is None and not per_host:
        raise InputError(
            "holds neither installer_password nor installer_passwords",
            hint="e.g. installer_password: ... (or installer_passwords: {host: ...})",
            path=path,
        )

    def lookup(host: str) -> str:
        value = per_host.get(host, shared)
        if value is None:
            raise KeyError(host)
        return str(value)

    return lookup


def _prompting_trust(terminal: threading.RLock) -> TrustCallback | None:
    """Ask on the terminal about each new host key, one question at a time."""
    if not (console.is_interactive() and sys.stdin.isatty()):
        return None

    def ask(offer: HostKeyOffer) -> bool:
        with terminal:
            console.err.print(
                f"{offer.host} ({offer.address}) is new: its {offer.key_type} host key is "
                f"{offer.fingerprint}",
                markup=False,
            )
            return click.confirm("Trust this key and record it?", default=False, err=True)

    return ask


def _typed_password(login_user: str, terminal: threading.RLock) -> service.PasswordLookup:
    """The installer's password, asked once, when the first host needs it (the service
    asks in the calling thread, after every host was tried with the key): not at all
    when every host already lets the automation key in."""
    typed: list[str] = []

    def lookup(_host: str) -> str:
        with terminal:
            if not typed:
                typed.append(click.prompt(f"password of {login_user}", hide_input=True, err=True))
            return typed[0]

    return lookup


@click.command()
@selection_argument(missing=None)
@click.option(
    "--user",
    "login_user",
    required=True,
    metavar="USER",
    help="The installer's account on the new machines (root works too).",
)
@click.option(
    "--ask-pass",
    is_flag=True,
    help="Ask for the installer's password (the default without --password-vault).",
)
@click.option(
    "--password-vault",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="A vault file with installer_password (or installer_passwords: {host: ...}).",
)
@click.option(
    "--accept-new",
    is_flag=True,
    help="Trust host keys seen for the first time without asking (trusted networks only).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 500),
    default=service.DEFAULT_CONCURRENCY,
    show_default=True,
    help="Hosts bootstrapped at once.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.5, 300),
    default=10,
    show_default=True,
    help="Seconds to wait for a host to answer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@password_options
@env_option
@pass_app
def bootstrap(
    app: AppContext,
    selection: str | None,
    login_user: str,
    ask_pass: bool,
    password_vault: Path | None,
    accept_new: bool,
    concurrency: int,
    timeout: float,
    as_json: bool,
    vault_password_file: Path | None,
    ask_vault_pass: bool,
) -> None:
    """Create the automation account on new machines, with the control node's key and sudo.

    Logs in over SSH with the installer's password (asked, or from a vault file;
    never a command-line argument), creates the automation account
    (automation_user, default 'provision'), installs the public half of the
    automation key (provision keys generate) and grants sudo through a sudoers
    drop-in checked with visudo before it is moved into place. The host's key is
    recorded in inventories/ENV/.ssh/known_hosts at first contact (shown and asked,
    or --accept-new); a key that later differs is refused. Afterwards Ansible logs
    in with the key alone (host_vars/HOST/provision_connection.yml). Running it
    again changes nothing.

    The installer's password is asked only if a host does not take the key yet.

    Exit status: 0 done, 3 a wrong password (refused by SSH) or host key problem,
    4 other failures (sudo refused included), 5 some hosts unreachable.

    \b
    Example:
      provision keys generate
      provision bootstrap 'district:gazipur,role:lab_pc' --user installer
      provision bootstrap dhk-kal-lab01 --user installer --password-vault secrets/installer.yml
    """
    settings = app.settings
    keys.load(settings)  # a missing or unreadable key is said before any password is asked
    # Hosts are worked on in threads: trust questions, the password prompt and progress
    # lines take turns on the one terminal.
    terminal = threading.RLock()
    if password_vault is not None:
        lookup = _passwords_from_vault(
            password_vault, vault_password(app, vault_password_file, ask_vault_pass)
        )
    else:
        if not sys.stdin.isatty():
            raise InputError(
                "the installer password must be typed on a terminal or come from a vault file",
                hint="use --password-vault FILE (see provision secrets encrypt)",
            )
        lookup = _typed_password(login_user, terminal)

    def show(host: service.HostBootstrap) -> None:
        if not as_json:
            failed = host.outcome in {"failed", "unreachable"}
            detail = host.message if failed else ", ".join(host.changes)
            with terminal:  # never into a question another host's thread is asking
                console.err.print(f"  {host.host}: {host.outcome} {detail}".rstrip(), markup=False)

    result = service.bootstrap(
        settings,
        selection,
        login_user=login_user,
        password=lookup,
        trust=None if accept_new else _prompting_trust(terminal),
        accept_new=accept_new,
        concurrency=concurrency,
        timeout=timeout,
        on_host=show,
    )
    if as_json:
        console.print_json(
            {
                "hosts": [dataclasses.asdict(h) for h in result.hosts],
                "counts": result.counts,
                "seconds": round(result.seconds, 2),
                "known_hosts": str(result.known_hosts),
            }
        )
    else:
        console.out.print(_table(result))
        counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts.items()))
        console.out.print(f"{plural(len(result.hosts), 'host')} in {result.seconds:.1f}s: {counts}")
    if result.exit_status != ExitStatus.SUCCESS:
        raise click.exceptions.Exit(int(result.exit_status))


def _table(result: service.BootstrapResult) -> Table:
    table = Table(title="bootstrap")
    for column in ("host", "address", "outcome", "changes", "host key / problem"):
        table.add_column(column)
    for h in result.hosts:
        style = _STYLE.get(h.outcome, "")
        if h.outcome in {"failed", "unreachable"}:
            detail = h.message
        else:
            detail = h.fingerprint + (" (first contact, recorded)" if h.first_contact else "")
        changes = (
            ", ".join(h.changes) if h.changes else ("nothing" if h.outcome == "unchanged" else "")
        )
        table.add_row(h.host, h.address, f"[{style}]{h.outcome}[/]", changes, detail)
    return table
