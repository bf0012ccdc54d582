"""`provision secrets`: files encrypted with Ansible Vault, compatible with ansible-vault."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provision.access import secrets as service
from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.errors import InputError

_FILE = click.Path(dir_okay=False, path_type=Path)


def password_options(func: click.decorators.FC) -> click.decorators.FC:
    """--vault-password-file and --ask-vault-pass, shared by every command needing the password."""
    func = click.option(
        "--ask-vault-pass",
        is_flag=True,
        help="Ask for the vault password even if one is configured.",
    )(func)
    return click.option(
        "--vault-password-file",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help="A file holding the vault password, or an executable client script printing it. "
        "Default: the vault_password_file setting; else ask.",
    )(func)


def vault_password(
    app: AppContext, source: Path | None, ask: bool, *, confirm: bool = False, what: str = "Vault"
) -> str:
    """The password from --vault-password-file, the setting, or a prompt (never an argument)."""
    source = source or (None if ask else service.configured_source(app.settings))
    if source is not None:
        return service.read_password(source)
    if not console.is_interactive() and not sys.stdin.isatty():
        raise InputError(
            "no vault password: no vault_password_file is set and there is no terminal to ask on",
            hint="pass --vault-password-file FILE or set vault_password_file in provision.yml",
        )
    password: str = click.prompt(
        f"{what} password", hide_input=True, confirmation_prompt=confirm, err=True
    )
    if not password:
        raise InputError("the vault password is empty")
    return password


@click.group()
def secrets() -> None:
    """Encrypt, decrypt, view, edit and rekey files with Ansible Vault.

    Files are in ansible-vault's own format (1.1, AES256): a file encrypted here
    opens with ansible-vault and the reverse. The password comes from a prompt,
    a file, or a client script that prints it (--vault-password-file, or the
    vault_password_file setting); never from a command-line argument.

    \b
    Example:
      provision secrets encrypt inventories/production/group_vars/all/vault.yml
      provision secrets view inventories/production/group_vars/all/vault.yml
      provision secrets edit secrets/installer.yml --vault-password-file ~/.vault-client
    """


@secrets.command()
@click.argument("file", type=_FILE)
@click.option("--vault-id", "label", metavar="LABEL", help="Label the file (format 1.2).")
@password_options
@pass_app
def encrypt(
    app: AppContext,
    file: Path,
    label: str | None,
    vault_password_file: Path | None,
    ask_vault_pass: bool,
) -> None:
    """Encrypt a plain file in place.

    \b
    Example:
      provision secrets encrypt secrets/installer.yml
    """
    password = vault_password(app, vault_password_file, ask_vault_pass, confirm=True)
    service.encrypt_file(file, password, label)
    console.out.print(f"encrypted {file}")


@secrets.command()
@click.argument("file", type=_FILE)
@password_options
@pass_app
def decrypt(
    app: AppContext, file: Path, vault_password_file: Path | None, ask_vault_pass: bool
) -> None:
    """Decrypt a vault file in place (it is then plain text on disk).

    \b
    Example:
      provision secrets decrypt secrets/installer.yml
    """
    service.decrypt_file(file, vault_password(app, vault_password_file, ask_vault_pass))
    console.out.print(f"decrypted {file}")


@secrets.command()
@click.argument("file", type=_FILE)
@password_options
@pass_app
def view(
    app: AppContext, file: Path, vault_password_file: Path | None, ask_vault_pass: bool
) -> None:
    """Print the plaintext of a vault file; nothing is written to disk.

    \b
    Example:
      provision secrets view secrets/installer.yml | grep installer_password
    """
    plain = service.view(file, vault_password(app, vault_password_file, ask_vault_pass))
    sys.stdout.buffer.write(plain)
    sys.stdout.flush()


@secrets.command()
@click.argument("file", type=_FILE)
@password_options
@pass_app
def edit(
    app: AppContext, file: Path, vault_password_file: Path | None, ask_vault_pass: bool
) -> None:
    """Edit a vault file in $EDITOR (a new file is created).

    The plaintext lives only in a 0600 file in a private folder on a tmpfs
    (/dev/shm), removed when the editor closes; the file is encrypted again only
    if it changed.

    \b
    Example:
      EDITOR=nano provision secrets edit inventories/production/group_vars/all/vault.yml
    """
    password = vault_password(app, vault_password_file, ask_vault_pass, confirm=not file.exists())
    result = service.edit(file, password, service.editor_command())
    if result.created:
        console.out.print(f"created {file}")
    else:
        console.out.print(f"{'saved' if result.changed else 'no change to'} {file}")


@secrets.command()
@click.argument("file", type=_FILE)
@password_options
@click.option(
    "--new-vault-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The new password's file or client script. Default: ask.",
)
@pass_app
def rekey(
    app: AppContext,
    file: Path,
    vault_password_file: Path | None,
    ask_vault_pass: bool,
    new_vault_password_file: Path | None,
) -> None:
    """Encrypt a vault file again under a new password.

    \b
    Example:
      provision secrets rekey secrets/installer.yml --new-vault-password-file new-pass
    """
    old = vault_password(app, vault_password_file, ask_vault_pass)
    service.view(file, old)  # a wrong old password is said before the new one is asked
    if new_vault_password_file is not None:
        new = service.read_password(new_vault_password_file)
    elif not console.is_interactive() and not sys.stdin.isatty():
        raise InputError(
            "no new vault password: --new-vault-password-file is not given and there is "
            "no terminal to ask on",
            hint="pass --new-vault-password-file FILE (a file or a client script printing it)",
        )
    else:
        new = vault_password(app, None, True, confirm=True, what="New vault")
    service.rekey(file, old, new)
    console.out.print(f"rekeyed {file}")


@secrets.command("encrypt-string")
@click.argument("name")
@password_options
@pass_app
def encrypt_string(
    app: AppContext, name: str, vault_password_file: Path | None, ask_vault_pass: bool
) -> None:
    """Print `NAME: !vault |` with a value read from stdin (or asked), for vars files.

    Inventory variables are best encrypted one by one like this: provision
    resolves inventories itself and keeps such values encrypted until Ansible
    needs them.

    \b
    Example:
      printf %s "$DB_PASS" | provision secrets encrypt-string portal_db_password >> vault.yml
    """
    password = vault_password(app, vault_password_file, ask_vault_pass)
    if sys.stdin.isatty():
        value: str = click.prompt(f"value of {name}", hide_input=True, err=True)
    else:
        value = sys.stdin.read().rstrip("\n")
    console.out.print(service.encrypt_string(value, password, name), end="", markup=False)
