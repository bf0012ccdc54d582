"""SSH from Python for first contact and sweeps. The only module that imports paramiko.

Host keys are checked *before* anything is sent that an impostor could use: the
key the host offers is compared with the environment's known_hosts file right
after the key exchange, and only then does authentication (possibly with an
installer's password) begin.

* a host with no recorded key: the `trust` callback sees its fingerprint and
  decides (the command line asks, or `--accept-new` says yes); declined, nothing
  is sent;
* a recorded key that differs from the offered one: `HostKeyMismatchError`
  naming the host and both fingerprints, always, whatever the callback says.

Passwords only ever travel to paramiko's auth call and to sudo's stdin: never in
a command line, an exception or a log line.
"""

from __future__ import annotations

import errno
import logging
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import paramiko

from provision.errors import InputError, ProvisionError
from provision.infra import crypto
from provision.infra.atomic import write_atomic

#: paramiko logs a traceback from its transport thread for every connection that
#: fails before login (a reset, a dropped banner). Without a handler of its own,
#: Python's last-resort handler would print them on stderr; our callers report
#: each failure as one line instead. (Nothing secret is in them either way.)
logging.getLogger("paramiko").addHandler(logging.NullHandler())

#: Host key types, most preferred first. The lab and Debian 12 offer Ed25519.
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


@dataclass(frozen=True)
class HostKeyOffer:
    """The key a host offered, for a person (or a flag) to trust or not."""

    host: str
    address: str
    key_type: str
    fingerprint: str
    public_key: str  # "ssh-ed25519 AAAA…"


TrustCallback = Callable[[HostKeyOffer], bool]


class SshError(ProvisionError):
    """A host could not be reached or logged into. `kind` says how, in one word.

    refused, timeout, unreachable, auth_failed, host_key_mismatch, host_key_unknown,
    ssh_error.
    """

    def __init__(self, kind: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind


class HostKeyMismatchError(SshError):
    """The host offered a key that differs from the one recorded for it."""

    def __init__(self, host: str, recorded: str, offered: str, known_hosts: Path) -> None:
        super().__init__(
            "host_key_mismatch",
            f"HOST KEY MISMATCH for {host}: known_hosts records {recorded} but the host "
            f"offered {offered}; refusing to connect (someone may be impersonating it)",
            hint=f"if the host was reinstalled, check the new key with its owner, then remove "
            f"its line from {known_hosts} and bootstrap it again",
        )
        self.host = host
        self.recorded = recorded
        self.offered = offered


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str


# -- known_hosts ----------------------------------------------------------------------

_LOCK = threading.Lock()  # one writer at a time within this process


class KnownHosts:
    """An OpenSSH known_hosts file: `name,address keytype base64` lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    _cache: ClassVar[dict[Path, tuple[tuple[float, int], paramiko.HostKeys]]] = {}

    def _entries(self) -> paramiko.HostKeys:
        """The file's entries, parsed once per version of the file (sweeps read it often)."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return paramiko.HostKeys()
        version = (info.st_mtime, info.st_size)
        cached = self._cache.get(self.path)
        if cached is not None and cached[0] == version:
            return cached[1]
        keys = paramiko.HostKeys()
        # paramiko skips lines it cannot read (with a warning) and reads hashed ones.
        keys.load(str(self.path))
        self._cache[self.path] = (version, keys)
        return keys

    def recorded(self, names: Iterable[str]) -> dict[str, str]:
        """Key type → "type base64" of the first of `names` that has a recorded key."""
        entries = self._entries()
        for name in names:
            found = entries.lookup(name)
            if found:
                return {t: f"{t} {found[t].get_base64()}" for t in list(found)}
        return {}

    def add(self, names: Iterable[str], public_key: str) -> None:
        """Record a key for `names` (replacing that key type's older line for them)."""
        names = [n for n in dict.fromkeys(names) if n]
        key_type = public_key.split()[0]
        with _LOCK:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            kept = []
            if self.path.is_file():
                for line in self.path.read_text().splitlines():
                    fields = line.split()
                    same_host = len(fields) >= 2 and set(fields[0].split(",")) & set(names)
                    if not (same_host and fields[1] == key_type):
                        kept.append(line)
            kept.append(f"{','.join(names)} {' '.join(public_key.split()[:2])}")
            write_atomic(self.path, "\n".join(line for line in kept if line.strip()) + "\n")


# -- connecting -----------------------------------------------------------------------


def _open_socket(address: str, port: int, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError:
        raise SshError(
            "refused", f"{address}:{port} refused the connection (no SSH server?)"
        ) from None
    except TimeoutError:
        raise SshError("timeout", f"{address}:{port} did not answer within {timeout:g}s") from None
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
            raise SshError("unreachable", f"{address} is unreachable ({exc.strerror})") from None
        raise SshError("unreachable", f"{address}:{port}: {exc.strerror or exc}") from None


def _offer(transport: paramiko.Transport, host: str, address: str) -> HostKeyOffer:
    key = transport.get_remote_server_key()
    public = f"{key.get_name()} {key.get_base64()}"
    return HostKeyOffer(host, address, key.get_name(), crypto.fingerprint(public), public)


def _fingerprint_line(line: str) -> str:
    return crypto.fingerprint(line)


class Connection:
    """One authenticated SSH connection; use as a context manager."""

    def __init__(self, transport: paramiko.Transport, offer: HostKeyOffer, user: str) -> None:
        self._transport = transport
        self.offer = offer
        self.user = user
        #: from the first byte sent to logged in; and the TCP handshake alone (a round trip)
        self.connect_seconds = 0.0
        self.tcp_seconds = 0.0

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def run(self, command: str, *, stdin: bytes = b"", timeout: float = 60) -> CommandResult:
        """Run `command` (a shell command line) and return its status and output."""
        channel = self._transport.open_session(timeout=timeout)
        try:
            channel.settimeout(timeout)
            channel.exec_command(command)
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            # Our commands print little; paramiko buffers stderr apart while stdout is read.
            out = channel.makefile("rb").read()
            err = channel.makefile_stderr("rb").read()
            return CommandResult(
                channel.recv_exit_status(),
                out.decode(errors="replace"),
                err.decode(errors="replace"),
            )
        except TimeoutError:
            raise SshError(
                "timeout", f"{self.offer.host}: a command ran over {timeout:g}s"
            ) from None
        except (paramiko.SSHException, OSError) as exc:
            raise SshError("ssh_error", f"{self.offer.host}: {exc}") from None
        finally:
            channel.close()

    def run_as_root(
        self, command: str, *, password: str | None, timeout: float = 120
    ) -> CommandResult:
        """Run `command` as root: directly when logged in as root, else through sudo.

        With a password, `sudo -S` reads it from stdin (never from argv); `-p ''`
        keeps sudo's prompt out of stderr. The command's own stdin is /dev/null so
        nothing it runs can read what sudo left unread.
        """
        wrapped = f"exec </dev/null; {command}"
        if self.user == "root":
            return self.run(f"/bin/sh -c {shlex.quote(wrapped)}", timeout=timeout)
        if password is None:
            return self.run(f"sudo -n -- /bin/sh -c {shlex.quote(wrapped)}", timeout=timeout)
        return self.run(
            f"sudo -S -p '' -- /bin/sh -c {shlex.quote(wrapped)}",
            stdin=password.encode() + b"\n",
            timeout=timeout,
        )


def connect(
    address: str,
    *,
    host: str,
    user: str,
    known_hosts: Path,
    password: str | None = None,
    key_path: Path | None = None,
    trust: TrustCallback | None = None,
    timeout: float = 10,
    port: int = 22,
) -> Connection:
    """Connect, check the host key against `known_hosts`, then log in.

    An unknown host is trusted only if `trust(offer)` says so (then recorded in
    `known_hosts`); without `trust` it is refused. Raises `SshError` (with `kind`).
    """
    pkey = _load_key(key_path) if key_path is not None else None
    started = time.monotonic()
    sock = _open_socket(address, port, timeout)
    tcp_seconds = time.monotonic() - started
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    book = KnownHosts(known_hosts)
    recorded = book.recorded([host, address])
    preferred = [t for t in KEY_TYPES if t in recorded] + [
        t for t in KEY_TYPES if t not in recorded
    ]
    try:
        options = transport.get_security_options()
        options.key_types = [t for t in preferred if t in options.key_types] or options.key_types
        transport.start_client(timeout=timeout)
        offer = _offer(transport, host, address)
        if recorded:
            known = recorded.get(offer.key_type)
            if known is None or known.split()[1] != offer.public_key.split()[1]:
                was = known or next(iter(recorded.values()))
                raise HostKeyMismatchError(
                    host, _fingerprint_line(was), offer.fingerprint, known_hosts
                )
        elif trust is None or not trust(offer):
            raise SshError(
                "host_key_unknown",
                f"{host} ({address}) is not in {known_hosts}; its key {offer.fingerprint} "
                "was not accepted, nothing was sent",
                hint="check the fingerprint on the host's console (ssh-keygen -lf "
                "/etc/ssh/ssh_host_ed25519_key.pub), then accept it",
            )
        else:
            book.add([host, address], offer.public_key)
        if pkey is not None:
            transport.auth_publickey(user, pkey)
        elif password is not None:
            transport.auth_password(user, password)
        else:
            raise InputError("connect() needs a password or a key")
    except SshError:
        transport.close()
        raise
    except paramiko.AuthenticationException:
        transport.close()
        how = "key" if pkey is not None else "password"
        raise SshError(
            "auth_failed", f"{host} ({address}) refused the {how} for user {user}"
        ) from None
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        kind = "timeout" if isinstance(exc, TimeoutError | socket.timeout) else "ssh_error"
        if "protocol banner" in str(exc):
            # sshd closes connections beyond its MaxStartups before it greets them.
            raise SshError(
                kind,
                f"{host} ({address}): the SSH server closed the connection before greeting",
                hint="it may be busy with other connections (sshd MaxStartups); "
                "try a lower --concurrency",
            ) from None
        raise SshError(
            kind, f"{host} ({address}): SSH failed: {exc or type(exc).__name__}"
        ) from None
    except BaseException:
        transport.close()
        raise
    connection = Connection(transport, offer, user)
    connection.connect_seconds = time.monotonic() - started
    connection.tcp_seconds = tcp_seconds
    return connection


_KEYS: dict[tuple[Path, float], paramiko.PKey] = {}


def _load_key(path: Path) -> paramiko.PKey:
    """A private key, read once per file version (a sweep opens hundreds of connections)."""
    try:
        stamp = path.stat().st_mtime
    except OSError as exc:
        raise InputError(f"cannot read the SSH key: {exc.strerror}", path=path) from None
    key = _KEYS.get((path, stamp))
    if key is None:
        key = _KEYS[(path, stamp)] = _read_key(path)
    return key


def _read_key(path: Path) -> paramiko.PKey:
    try:
        return paramiko.Ed25519Key.from_private_key_file(str(path))
    except paramiko.SSHException:
        pass
    except OSError as exc:
        raise InputError(f"cannot read the SSH key: {exc.strerror}", path=path) from None
    for kind in (paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key_file(str(path))
        except (paramiko.SSHException, ValueError):
            continue
    raise InputError(
        "is not a readable unencrypted SSH private key",
        hint="generate the automation key with provision keys generate",
        path=path,
    )
