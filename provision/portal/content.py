"""What a portal may publish: content from the workspace, never the control node's secrets.

    folder = check_content(settings, "sites/gazipur")   # the resolved folder or archive

A portal's content is copied to its host and served to anyone, so it is checked
before it is registered and again before every deploy (the register can be
edited by hand): it must resolve, symlinks included, inside the workspace; it
must not be, hold or lead into the state directory (the CA, the automation key,
the database) or any other file that holds a key or a password; a folder holds
only regular files, folders and links that obey the same rules; an archive
holds no absolute path, no `..`, no link out of itself and no device.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from provision.access import keys, secrets
from provision.errors import InputError
from provision.portal.model import ARCHIVES
from provision.settings import Settings

#: Files at most this big are read to see whether they hold a private key or a vault;
#: key files are a few kilobytes, so bigger ones (images, videos) are not read.
SCAN_BYTES = 64 * 1024
#: Markers of secrets no portal may publish: PEM and OpenSSH private keys, vaulted files.
_SECRET_MARKERS = (b"PRIVATE KEY-----", b"$ANSIBLE_VAULT;")

_HINT = "publish a folder or archive of the workspace made for the portal (e.g. sites/<domain>)"


def _workspace_path(settings: Settings, text: str) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else settings.workspace / p


def secret_places(settings: Settings, extra: tuple[str, ...] = ()) -> list[Path]:
    """Places that hold keys or passwords, resolved: no content may be, hold or reach them.

    The state directory (CA, automation key, database, runs), the inventories (host
    variables, vaulted secrets), the configured key and password files, and `extra`
    (the external TLS files of registered portals).
    """
    places = [settings.state_path, settings.inventory_path.parent, keys.key_path(settings)]
    vault = secrets.configured_source(settings)
    if vault is not None:
        places.append(vault)
    if settings.smtp_password_file:
        places.append(_workspace_path(settings, settings.smtp_password_file))
    places += [_workspace_path(settings, p) for p in extra if p]
    return [p.resolve() for p in places]


def _refuse(message: str, hint: str = _HINT) -> InputError:
    return InputError(message, hint=hint)


def _check_place(path: Path, shown: str, workspace: Path, secret: list[Path]) -> None:
    """`path` (resolved) is in the workspace and neither in nor around a secret place."""
    if not path.is_relative_to(workspace):
        raise _refuse(f"{shown} resolves to {path}, outside the workspace {workspace}")
    for place in secret:
        if path.is_relative_to(place):
            raise _refuse(f"{shown} resolves to {path}, inside {place}, which holds secrets")
        if place.is_relative_to(path):
            raise _refuse(f"{shown} holds {place}, which holds secrets")


def _holds_secret(data: bytes) -> bool:
    return any(marker in data for marker in _SECRET_MARKERS)


def _check_file(path: Path, shown: str) -> None:
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(f"{shown} is not a regular file, folder or link (a device, pipe or socket)")
    if info.st_size <= SCAN_BYTES:
        with path.open("rb") as handle:
            if _holds_secret(handle.read(SCAN_BYTES)):
                raise _refuse(f"{shown} holds a private key or a vaulted secret")


def _walk(top: Path) -> Iterator[tuple[Path, Path]]:
    """(entry as found under `top`, entry resolved) for everything below `top`.

    Links to folders are followed, as the deploy's copy follows them, each real
    folder once (a link loop ends).
    """
    seen = {top.resolve()}
    pending = [top]
    while pending:
        folder = pending.pop()
        for entry in sorted(folder.iterdir()):
            real = entry.resolve()
            yield entry, real
            if real.is_dir() and real not in seen:
                seen.add(real)
                pending.append(entry)


def _check_folder(top: Path, root: str, workspace: Path, secret: list[Path]) -> None:
    for entry, real in _walk(top):
        shown = f"{root}/{entry.relative_to(top)}"
        if entry.is_symlink():
            if not real.exists():
                raise _refuse(f"{shown} is a link to {entry.readlink()}, which does not exist")
            _check_place(real, shown, workspace, secret)
        if not real.is_dir():
            _check_file(real, shown)


def _unsafe_name(name: str) -> bool:
    """An absolute path, a drive letter or a '..' part (unpacking tools differ on these)."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]


def _check_tar(archive: Path, shown: str) -> None:
    with tarfile.open(archive) as tar:
        for member in tar:
            if _unsafe_name(member.name):
                raise _refuse(
                    f"{shown} holds an unsafe entry {member.name!r} (absolute or '..' path)"
                )
            try:
                # The filter unpacking applies at deploy, here before anything is written:
                # absolute paths, '..', links out of the archive, devices and pipes.
                tarfile.data_filter(member, "/nonexistent-portal-root")
            except tarfile.FilterError as exc:
                raise _refuse(f"{shown} holds an unsafe entry {member.name!r}: {exc}") from None
            if member.isfile() and member.size <= SCAN_BYTES:
                handle = tar.extractfile(member)
                if handle is not None and _holds_secret(handle.read()):
                    raise _refuse(f"{shown}: {member.name} holds a private key or a vaulted secret")


def _check_zip(archive: Path, shown: str) -> None:
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            name = info.filename
            kind = stat.S_IFMT(info.external_attr >> 16)
            if _unsafe_name(name):
                raise _refuse(f"{shown} holds an unsafe entry {name!r} (absolute or '..' path)")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise _refuse(f"{shown} holds {name!r}, which is a link or a special file")
            if not info.is_dir() and info.file_size <= SCAN_BYTES and _holds_secret(z.read(info)):
                raise _refuse(f"{shown}: {name} holds a private key or a vaulted secret")


def check_archive(archive: Path, shown: str | None = None) -> None:
    """InputError unless `archive` is a readable .tar(.gz)/.tgz/.zip whose entries are safe."""
    label = shown or str(archive)
    try:
        if archive.name.endswith(".zip"):
            _check_zip(archive, label)
        else:
            _check_tar(archive, label)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise _refuse(
            f"{label} is not a readable archive ({type(exc).__name__})",
            hint="give a .tar.gz, .tgz, .tar or .zip, or a folder",
        ) from None


def check_content(settings: Settings, content: str, *, extra_secrets: tuple[str, ...] = ()) -> Path:
    """The content folder or archive `content` names, resolved, or InputError saying why not."""
    given = _workspace_path(settings, content)
    if not given.exists():
        raise _refuse(
            f"the content {given} does not exist",
            hint="give a folder or an archive (.tar.gz, .tgz, .tar, .zip) of the workspace",
        )
    workspace = settings.workspace.resolve()
    secret = secret_places(settings, extra_secrets)
    real = given.resolve()
    _check_place(real, f"the content {content}", workspace, secret)
    if real.is_dir():
        _check_folder(real, content.rstrip("/"), workspace, secret)
    elif real.is_file() and real.name.endswith(ARCHIVES):
        check_archive(real, f"the content archive {content}")
    else:
        raise _refuse(
            f"the content {given} is neither a folder nor an archive",
            hint="give a folder or an archive (.tar.gz, .tgz, .tar, .zip)",
        )
    return real
