"""Secrets at rest: files encrypted with Ansible Vault, and where the password comes from.

Files are in ansible-vault's own format (see `provision.infra.crypto`), so a file
encrypted here opens with `ansible-vault` and the reverse. The vault password
comes from one of three places, the same three ansible-vault knows:

* a prompt (the command line asks; never an argument, so never in `ps` or history);
* a file holding it (`vault_password_file`, first line, mode 0600 advised);
* a client script: an executable `vault_password_file` is run and prints it
  (a password manager or a keyring behind one command).

A run that needs the password hands Ansible a *file name* (the setting's file or
client script as it is, or `password_file()` for a prompted password: an
anonymous 0600 memory file named by /proc/<pid>/fd/<n>, on no file system and
closed as soon as the run ends). The password itself
never travels in an argument or an environment variable, which ansible-runner
would write into the run's artifacts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provision.errors import InputError, PrerequisiteError
from provision.infra import vault_text
from provision.infra.atomic import write_atomic
from provision.infra.masking import Masker, named_secrets
from provision.infra.yamlfile import SafeLoader
from provision.settings import Settings

#: A tmpfs every Linux has: a decrypted file for `edit` never reaches a disk there.
#: Safe to share: each use makes its own 0700 folder with mkdtemp (random name, O_EXCL).
PRIVATE_TMP_ROOTS = (
    Path("/dev/shm"),  # noqa: S108 - a private mkdtemp folder inside, see above
    Path(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent")),
)


@dataclass(frozen=True)
class EditResult:
    path: Path
    changed: bool
    created: bool


def read_password(source: Path) -> str:
    """The vault password from a file (its first line) or a client script (its output)."""
    try:
        mode = source.stat().st_mode
    except OSError as exc:
        raise InputError(
            f"cannot read the vault password file: {exc.strerror}",
            hint="set vault_password_file to an existing file or client script",
            path=source,
        ) from None
    if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        try:
            proc = subprocess.run(
                [str(source)], capture_output=True, text=True, check=False, timeout=60
            )
        except OSError as exc:
            raise InputError(
                f"the vault password client could not be run: {exc.strerror}", path=source
            ) from None
        if proc.returncode != 0:
            # Its stderr may say why; its stdout may hold a secret and is not shown.
            reason = proc.stderr.strip().splitlines()[-1:] or ["no message"]
            raise InputError(
                f"the vault password client exited {proc.returncode}: {reason[0]}", path=source
            )
        text = proc.stdout
    else:
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"cannot read the vault password file: {getattr(exc, 'strerror', None) or exc}",
                path=source,
            ) from None
    password = text.splitlines()[0].strip() if text.strip() else ""
    if not password:
        raise InputError("the vault password file is empty", path=source)
    return password


@contextlib.contextmanager
def private_dir(prefix: str = "provision-") -> Iterator[Path]:
    """A 0700 folder on a tmpfs where possible, removed with everything in it on exit."""
    root = next((r for r in PRIVATE_TMP_ROOTS if r.is_dir() and os.access(r, os.W_OK)), None)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    try:
        folder.chmod(0o700)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@contextlib.contextmanager
def password_file(password: str) -> Iterator[Path]:
    """A file name holding `password` for `--vault-password-file`, for the length of a run.

    On Linux an anonymous memory file (`memfd_create`, mode 0600, close-on-exec)
    named by `/proc/<pid>/fd/<n>`: it is on no file system at all, only this
    process and its own user can open it, and it vanishes with the process, even
    one killed with SIGKILL. Elsewhere a 0600 file in a private 0700 folder on a
    tmpfs. Either way outside the run's private data dir (so not in its
    artifacts), and gone when the block ends, even on an error.
    """
    memfd = _memory_file(password)
    if memfd is not None:
        try:
            yield Path(f"/proc/{os.getpid()}/fd/{memfd}")
        finally:
            os.close(memfd)
        return
    with private_dir("provision-vault-") as folder:
        path = folder / "vault-password"
        _write_private(path, password.encode() + b"\n")
        yield path


def _memory_file(password: str) -> int | None:
    """A memfd holding the password, readable at /proc/<pid>/fd/<n>; None where there is none."""
    create = getattr(os, "memfd_create", None)
    if create is None or not Path(f"/proc/{os.getpid()}/fd").is_dir():
        return None
    try:
        fd: int = create("provision-vault", getattr(os, "MFD_CLOEXEC", 0))
    except OSError:
        return None
    try:
        os.fchmod(fd, 0o600)  # not executable: Ansible reads it, never runs it
        data = password.encode() + b"\n"
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        if not os.access(f"/proc/{os.getpid()}/fd/{fd}", os.R_OK):
            raise OSError("not readable through /proc")
    except OSError:
        os.close(fd)
        return None
    return fd


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read it: {exc.strerror}", path=path) from None


def _replace(path: Path, data: bytes) -> None:
    """Write `path` atomically, keeping its mode (0600 for a new file)."""
    write_atomic(path, data, new_mode=0o600)


def _decrypt(data: bytes, password: str) -> bytes:
    # The cipher's module (and cryptography) only when a vault is really opened:
    # a rollout without vaulted values never pays for its import.
    from provision.infra import crypto

    return crypto.vault_decrypt(data, password)


def _encrypt(data: bytes, password: str, label: str | None = None) -> bytes:
    from provision.infra import crypto

    return crypto.vault_encrypt(data, password, label)


def _open(path: Path, password: str) -> bytes:
    data = _read(path)
    try:
        return _decrypt(data, password)
    except vault_text.VaultError as exc:
        hint = (
            "check the vault password (prompt, vault_password_file or client script)"
            if "password" in str(exc)
            else "is it the right file?"
        )
        raise InputError(str(exc), hint=hint, path=path) from None


def encrypt_file(path: Path, password: str, label: str | None = None) -> None:
    """Encrypt a plain file in place; refuses one that is encrypted already."""
    data = _read(path)
    if vault_text.is_vault(data):
        raise InputError("is encrypted already", hint="use provision secrets rekey", path=path)
    _replace(path, _encrypt(data, password, label))


def decrypt_file(path: Path, password: str) -> None:
    """Decrypt a vault file in place (to plain text on disk: the user asked for it)."""
    _replace(path, _open(path, password))


def view(path: Path, password: str) -> bytes:
    """The plaintext of a vault file, read into memory only."""
    return _open(path, password)


def rekey(path: Path, old_password: str, new_password: str) -> None:
    """Encrypt a vault file again under a new password (keeping its vault-id label)."""
    plain = _open(path, old_password)
    header = _read(path).split(b"\n", 1)[0].decode("ascii", errors="replace").split(";")
    label = header[3].strip() if len(header) > 3 else None
    _replace(path, _encrypt(plain, new_password, label))


def encrypt_string(value: str, password: str, name: str) -> str:
    """`name: !vault |` with `value` encrypted, for group_vars/host_vars files."""
    body = _encrypt(value.encode(), password).decode().rstrip("\n")
    return f"{name}: !vault |\n" + "".join(f"  {line}\n" for line in body.splitlines())


def editor_command(environ: dict[str, str] | None = None) -> list[str]:
    """$VISUAL, else $EDITOR, else the first of sensible-editor, editor, nano, vi."""
    environ = dict(os.environ) if environ is None else environ
    for name in ("VISUAL", "EDITOR"):
        if environ.get(name, "").strip():
            return environ[name].split()
    for candidate in ("sensible-editor", "editor", "nano", "vi"):
        if shutil.which(candidate):
            return [candidate]
    raise PrerequisiteError("no text editor found", hint="set EDITOR, e.g. EDITOR=nano")


def edit(
    path: Path,
    password: str,
    editor: Sequence[str],
    run: Callable[[list[str]], int] | None = None,
) -> EditResult:
    """Open the plaintext in an editor; encrypt it back if it changed.

    The plaintext lives only in a 0600 file in a private 0700 folder on a tmpfs,
    removed whatever happens. A file that does not exist yet is created. `run`
    starts the editor and returns its exit status (a test passes its own).
    """
    created = not path.exists()
    plain = b"" if created else _open(path, password)
    run = run or (lambda argv: subprocess.run(argv, check=False).returncode)
    with private_dir("provision-edit-") as folder:
        scratch = folder / (path.name if path.suffix else path.name + ".yml")
        _write_private(scratch, plain)
        status = run([*editor, str(scratch)])
        if status != 0:
            raise InputError(f"the editor exited {status}; the file was left as it was", path=path)
        edited = scratch.read_bytes()
    if edited == plain and not created:
        return EditResult(path, changed=False, created=False)
    label = None
    if not created:
        header = _read(path).split(b"\n", 1)[0].decode("ascii", errors="replace").split(";")
        label = header[3].strip() if len(header) > 3 else None
    _replace(path, _encrypt(edited, password, label))
    return EditResult(path, changed=True, created=created)


def configured_source(settings: Settings) -> Path | None:
    """The `vault_password_file` setting as a path (relative to the workspace), if set."""
    if not settings.vault_password_file:
        return None
    path = Path(settings.vault_password_file).expanduser()
    return path if path.is_absolute() else settings.workspace / path


@contextlib.contextmanager
def vault_for_run(settings: Settings, password: str | None = None) -> Iterator[Path | None]:
    """The `vault_password_file` to hand `runner.run_playbook` for one run, or None.

    A typed `password` wins (a private file, removed when the block ends); else the
    configured file or client script, as it is; else None (no vault in use).

        with secrets.vault_for_run(settings, typed) as vault:
            runner.run_playbook(..., vault_password_file=vault)
    """
    if password is not None:
        with password_file(password) as path:
            yield path
        return
    source = configured_source(settings)
    if source is not None and not source.exists():
        raise InputError(
            "the vault password file does not exist",
            hint="fix vault_password_file in provision.yml (or PROVISION_VAULT_PASSWORD_FILE)",
            path=source,
        )
    yield source


def vaulted_values(hostvars: Mapping[str, Mapping[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """(host, variable, vault text) for every inline `!vault` value in the hosts' variables."""

    def walk(host: str, name: str, value: Any) -> Iterator[tuple[str, str, str]]:
        if isinstance(value, Mapping):
            if set(value) == {"__ansible_vault"}:
                yield host, name, str(value["__ansible_vault"])
                return
            for key, item in value.items():
                yield from walk(host, f"{name}.{key}", item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(host, f"{name}[{index}]", item)

    for host, values in hostvars.items():
        for name, value in values.items():
            yield from walk(host, name, value)


def check_password(
    settings: Settings, hosts: Sequence[str], password: str, *, sample: int = 3
) -> int:
    """Refuse a vault password that does not open the selected hosts' vaulted variables.

    Called before a run starts, so that a mistyped password is one clear error and
    no host is touched, instead of every host failing half-way. One password opens
    every value or none, so the first `sample` distinct values are tried (each costs
    a key derivation, ~10 ms: per-host secrets on 50,000 hosts are not all tried);
    returns how many were opened (0: none to check). The error names the host and
    variable, never a value.
    """
    from provision.inventory import slice_inventory
    from provision.inventory.targets import load_environment

    loaded = load_environment(settings.inventory_path)
    known = [h for h in hosts if h in loaded.inventory.hosts]
    if not known:
        return 0
    tried: set[str] = set()
    for start in range(0, len(known), 500):  # a slice at a time: most stop in the first
        chunk = known[start : start + 500]
        resolved = slice_inventory(loaded.inventory, chunk, loaded.folder)["all"]["hosts"]
        for host, name, text in vaulted_values(resolved):
            if len(tried) >= sample:
                return len(tried)
            if text in tried:
                continue
            tried.add(text)
            try:
                _decrypt(text.encode(), password)
            except vault_text.VaultError as exc:
                raise InputError(
                    f"the vault password does not open '{name}' of host {host}: {exc}",
                    hint="check the vault password (typed or vault_password_file); nothing ran",
                ) from None
    return len(tried)


# -- what a run decrypts, to mask it; and refusing a run that could not decrypt ----------


def _vault_texts(value: Any) -> Iterator[str]:
    """Every inline `!vault` text anywhere in `value` (an inventory, variables, extravars)."""
    if isinstance(value, Mapping):
        if set(value) == {"__ansible_vault"}:
            yield str(value["__ansible_vault"])
            return
        for item in value.values():
            yield from _vault_texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _vault_texts(item)


class _PlaybookLoader(SafeLoader):  # type: ignore[misc]
    """Safe YAML for playbooks: `!vault` as Ansible's JSON form, any other tag as plain."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    return {"__ansible_vault": text} if suffix == "vault" else text


_PlaybookLoader.add_multi_constructor("!", _tagged)


def _playbook_sources(playbook: Path) -> Iterator[tuple[Path, str]]:
    """The playbook and the vars_files its plays name literally, with their text."""
    try:
        text = playbook.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    yield playbook, text
    try:
        plays = yaml.load(text, Loader=_PlaybookLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return  # its syntax is checked elsewhere; nothing more to find here
    names: list[str] = []
    for play in plays if isinstance(plays, list) else []:
        entries = play.get("vars_files") if isinstance(play, Mapping) else None
        for entry in entries if isinstance(entries, list) else [entries]:
            names += [str(e) for e in (entry if isinstance(entry, list) else [entry]) if e]
    for name in names:
        path = (playbook.parent / name) if not Path(name).is_absolute() else Path(name)
        if "{{" in name or not path.is_file():
            continue  # templated: only Ansible knows which file it is
        try:
            yield path, path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue


def playbook_vaults(playbook: Path) -> list[tuple[Path, str, bool]]:
    """(file, vault text, whole file?) for each vaulted value of the playbook and its
    literal vars_files: inline `!vault` values and files encrypted whole."""
    found: list[tuple[Path, str, bool]] = []
    for path, text in _playbook_sources(playbook):
        if vault_text.is_vault(text.encode()):
            found.append((path, text, True))
            continue
        if "!vault" not in text:
            continue
        try:
            data = yaml.load(text, Loader=_PlaybookLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError:
            continue
        found += [(path, vault, False) for vault in _vault_texts(data)]
    return found


def _plain_values(plain: bytes, whole: bool) -> list[str]:
    """What a decrypted value puts in the clear: the value, and for a file encrypted
    whole, each of its values (it is a vars file)."""
    text = plain.decode("utf-8", errors="replace")
    if not whole:
        return [text]
    try:
        data = yaml.load(text, Loader=_PlaybookLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return [text]

    def leaves(value: Any) -> Iterator[str]:
        if isinstance(value, Mapping):
            for item in value.values():
                yield from leaves(item)
        elif isinstance(value, list):
            for item in value:
                yield from leaves(item)
        elif isinstance(value, str | int) and not isinstance(value, bool):
            yield str(value)

    return [*leaves(data), *named_secrets(data if isinstance(data, Mapping) else {})]


def inventory_masker(
    vault: Path | None,
    inventory: Mapping[str, Any],
    extravars: Mapping[str, Any],
    playbook: Path | None = None,
) -> Masker:
    """`run_masker` for a run of a sliced inventory (`provision.inventory.slice_inventory`):
    its hosts' variables (each host a set of variables: a host's *name* says nothing
    of a secret) and the run's extravars."""
    hosts = inventory.get("all", {}).get("hosts") or {}
    return run_masker(vault, *hosts.values(), extravars, playbook=playbook)


def run_masker(
    vault: Path | None, *variables: Mapping[str, Any], playbook: Path | None = None
) -> Masker:
    """The secret values one run may print: hand it to `runner.run_playbook(masker=)`.

    Every value of a secret-named variable in `variables` (sets of variables: each
    host's, the run's extravars), and every vaulted value the run decrypts, decrypted here with
    the password behind `vault` (the file `vault_for_run` gave): inline `!vault`
    values of `variables`, and those of the playbook and its vars_files. Ansible
    prints a decrypted value in the clear wherever a task echoes it; the masker is
    how it never reaches the store, the artifacts or the terminal. A value that
    does not open is left out: Ansible cannot open it either.
    """
    named = [v for group in variables for v in named_secrets(group)]
    sealed = [(text, False) for group in variables for text in _vault_texts(group)]
    if playbook is not None:
        sealed += [(text, whole) for _path, text, whole in playbook_vaults(playbook)]
    plain: list[str] = []
    if sealed and vault is not None:
        password = read_password(vault)
        for text, whole in dict.fromkeys(sealed):  # each distinct value once: ~10 ms each
            try:
                plain += _plain_values(_decrypt(text.encode(), password), whole)
            except vault_text.VaultError:
                continue
    return Masker.of([*named, *plain])


def require_vault_file(settings: Settings) -> Path | None:
    """The configured vault_password_file, refused if it does not exist; None if unset."""
    source = configured_source(settings)
    if source is not None and not source.exists():
        raise InputError(
            "the vault password file does not exist",
            hint="fix vault_password_file in provision.yml (or PROVISION_VAULT_PASSWORD_FILE), "
            "or give the password with --ask-vault-pass; nothing ran",
            path=source,
        )
    return source


def require_vault(settings: Settings, hosts: Sequence[str], playbook: Path) -> None:
    """Refuse a run that could not open its vaulted values, before anything is recorded.

    A configured vault_password_file that does not exist is refused outright. With
    no vault password at all, a run whose selected hosts' variables, playbook or
    vars_files hold a vaulted value would start and fail on every host half-way
    ("Attempting to decrypt but no vault secrets found"): it is refused, naming the
    first such value (never its contents) and how to give the password.
    """
    if require_vault_file(settings) is not None:
        return
    where = _first_vaulted(settings, hosts, playbook)
    if where is not None:
        raise InputError(
            f"{where} is encrypted with the vault, but no vault password was given",
            hint="give it with --ask-vault-pass, or set vault_password_file in provision.yml "
            "(or PROVISION_VAULT_PASSWORD_FILE) to a file or client script; nothing ran",
        )


def _mentions_vault(folder: Path) -> bool:
    """Whether any file of an inventory folder holds vault text (every vaulted value,
    inline or whole, starts with the $ANSIBLE_VAULT header)."""
    marker = vault_text.VAULT_HEADER.encode()
    for path in folder.rglob("*"):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if hidden or not path.is_file():
            continue
        try:
            if marker in path.read_bytes():
                return True
        except OSError:
            continue
    return False


def _first_vaulted(settings: Settings, hosts: Sequence[str], playbook: Path) -> str | None:
    for path, _text, whole in playbook_vaults(playbook):
        return f"{path} (the whole file)" if whole else f"a variable in {path}"
    if not _mentions_vault(settings.inventory_path):
        return None  # the common case, found without resolving a single host
    from provision.inventory import slice_inventory
    from provision.inventory.targets import load_environment

    loaded = load_environment(settings.inventory_path)
    known = [h for h in hosts if h in loaded.inventory.hosts]
    for start in range(0, len(known), 500):  # a slice at a time: the first holds one, mostly
        resolved = slice_inventory(loaded.inventory, known[start : start + 500], loaded.folder)
        for host, name, _text in vaulted_values(resolved["all"]["hosts"]):
            return f"variable '{name}' of host {host}"
    return None
