"""First contact: turn a machine as it arrives (an installer's password) into a managed host.

For each selected host, in parallel with a bound:

1. Connect. The host key is checked against `inventories/<env>/.ssh/known_hosts`
   before any secret is sent: an unknown key is shown and trusted only if the
   caller says so (`trust`, or `accept_new`) and then recorded; a key that differs
   from the recorded one is refused (`HostKeyMismatchError`).
2. Try the automation key first, on every host before any password is asked. A
   host that lets the automation account in with it and has everything in place
   is `unchanged`, and nothing is sent. The password is asked for (`password`,
   in the caller's thread) only for the hosts that need it: not at all when
   every host already takes the key.
3. Otherwise log in as the installer with the password and, as root through
   `sudo -S` (the password on stdin), run one idempotent script: create the
   automation account (no password; key login only), add the control node's key
   to its authorized_keys (written to a temporary file, then moved), and grant
   sudo through `/etc/sudoers.d/provision-<user>`, written to a temporary name
   sudo ignores, checked with `visudo -cf`, then moved into place. Each step is
   skipped when already done, so a run that stopped half-way is finished by the
   next, and a host is never left with a sudoers file sudo cannot read.
4. Check the result: log in with the key alone and run `sudo -n true`.
5. Write `host_vars/<host>/provision_connection.yml`: Ansible logs in as the
   automation account with the key (and `become`), host keys strict against the
   environment's known_hosts.
"""

from __future__ import annotations

import re
import shlex
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from provision.access import keys
from provision.errors import ExitStatus, InputError, exit_status_for
from provision.infra import crypto, ssh
from provision.infra.atomic import write_atomic
from provision.inventory import slice_inventory
from provision.inventory.targets import select_targets
from provision.model.inventory.targets import Target
from provision.settings import Settings

#: Hosts bootstrapped at once: each holds one SSH connection and a thread.
DEFAULT_CONCURRENCY = 20
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_MARKER = "provision-bootstrap:"
HEADER = "# Written by provision bootstrap: how Ansible logs into this host. Do not edit.\n"

PasswordLookup = Callable[[str], str]
HostCallback = Callable[["HostBootstrap"], None]


@dataclass(frozen=True)
class HostBootstrap:
    """What bootstrap did to one host."""

    host: str
    address: str
    #: bootstrapped (something changed), unchanged, failed, unreachable
    outcome: str
    #: what changed on the host or the control node: account, ssh_dir, key, sudo, inventory
    changes: tuple[str, ...] = ()
    fingerprint: str = ""
    #: the host key was seen for the first time and recorded in this run
    first_contact: bool = False
    #: one word for a problem: auth_failed, host_key_mismatch, sudo_refused, …
    problem: str = ""
    message: str = ""


@dataclass(frozen=True)
class BootstrapResult:
    hosts: list[HostBootstrap]
    seconds: float
    known_hosts: Path
    key_fingerprint: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def exit_status(self) -> ExitStatus:
        """3 for a wrong password (SSH refused it) or a host key problem, 4 other failures
        (sudo_refused included), 5 unreachable."""
        failed = [h for h in self.hosts if h.outcome == "failed"]
        if any(h.problem in _BAD_INPUT for h in failed):
            return ExitStatus.BAD_INPUT
        return exit_status_for(
            failed=bool(failed), unreachable=any(h.outcome == "unreachable" for h in self.hosts)
        )


#: What the user gave is wrong (the password SSH refused) or a host key is not trusted:
#: exit 3. `sudo_refused` is not among them: SSH took the password, and the host does
#: not let that account use sudo, a failure of that host (exit 4) like any other.
_BAD_INPUT = {"auth_failed", "host_key_mismatch", "host_key_unknown"}
_UNREACHABLE = {"refused", "timeout", "unreachable", "ssh_error"}


def targets(settings: Settings, selection: str | None) -> list[Target]:
    """The selected hosts with the address and port Ansible would use."""
    loaded, hosts = select_targets(settings.inventory_path, selection)
    data: dict[str, Any] = slice_inventory(loaded.inventory, hosts, loaded.folder)
    resolved: dict[str, dict[str, Any]] = data["all"]["hosts"]
    key = keys.key_path(settings)
    return [
        Target.from_hostvars(h, v, user=settings.automation_user, key=key)
        for h, v in resolved.items()
    ]


def remote_script(user: str, public_key: str) -> str:
    """The idempotent root script that makes `user` an automation account with `public_key`."""
    sudoers = f"/etc/sudoers.d/provision-{user}"
    rule = (
        "# Written by provision bootstrap: the automation account may use sudo.\n"
        f"{user} ALL=(ALL:ALL) NOPASSWD: ALL"
    )
    return f"""set -eu
U={shlex.quote(user)}
KEY={shlex.quote(public_key)}
SUDOERS={shlex.quote(sudoers)}
WANT={shlex.quote(rule)}
TMP=""
trap 'rm -f "$TMP"' EXIT
changed=""
command -v visudo >/dev/null || {{ echo "sudo is not installed (no visudo)" >&2; exit 3; }}
if ! getent passwd "$U" >/dev/null; then
  useradd --create-home --shell /bin/bash --comment "provision automation" "$U"
  usermod -p '*' "$U"  # no password at all, and not locked: key login only
  changed="$changed account"
fi
HOME_DIR=$(getent passwd "$U" | cut -d: -f6)
GROUP=$(id -gn "$U")
if [ ! -d "$HOME_DIR/.ssh" ]; then
  install -d -m 0700 -o "$U" -g "$GROUP" "$HOME_DIR/.ssh"
  changed="$changed ssh_dir"
fi
AK="$HOME_DIR/.ssh/authorized_keys"
if ! grep -qxF "$KEY" "$AK" 2>/dev/null; then
  TMP=$(mktemp "$HOME_DIR/.ssh/.authorized_keys.XXXXXX")
  if [ -f "$AK" ]; then cat "$AK" >"$TMP"; fi
  printf '%s\\n' "$KEY" >>"$TMP"
  chown "$U:$GROUP" "$TMP"
  chmod 0600 "$TMP"
  mv -f "$TMP" "$AK"
  changed="$changed key"
fi
if [ "$(cat "$SUDOERS" 2>/dev/null || true)" != "$WANT" ]; then
  # A name with a dot: sudo never reads it, even while it is being checked.
  TMP=$(mktemp /etc/sudoers.d/.provision.XXXXXX)
  printf '%s\\n' "$WANT" >"$TMP"
  chmod 0440 "$TMP"
  if ! visudo -cf "$TMP" >/dev/null 2>&1; then
    echo "visudo refused the sudoers drop-in; nothing was moved into place" >&2
    exit 3
  fi
  mv -f "$TMP" "$SUDOERS"
  changed="$changed sudo"
fi
echo "{_MARKER}$changed"
"""


def connection_vars(settings: Settings, key: Path) -> dict[str, Any]:
    known = keys.known_hosts_path(settings.inventory_path)
    return {
        "ansible_user": settings.automation_user,
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": (f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes"),
        "ansible_become": True,
    }


def _write_connection_vars(settings: Settings, host: str, key: Path) -> bool:
    """Write the host's connection file; True when it changed."""
    path = keys.connection_vars_path(settings.inventory_path, host)
    text = (
        HEADER
        + "# The automation account with the control node's key; host keys strict.\n---\n"
        + yaml.safe_dump(connection_vars(settings, key), sort_keys=False)
    )
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    return True


class _Bootstrapper:
    def __init__(
        self,
        settings: Settings,
        *,
        login_user: str,
        trust: ssh.TrustCallback | None,
        timeout: float,
    ) -> None:
        self.settings = settings
        self.login_user = login_user
        self.trust = trust
        self.timeout = timeout
        self.key = keys.load(settings)
        self.known_hosts = keys.known_hosts_path(settings.inventory_path)
        self.first_contacts: set[str] = set()
        self._lock = threading.Lock()

    def _trust(self, offer: ssh.HostKeyOffer) -> bool:
        accepted = self.trust is not None and self.trust(offer)
        if accepted:
            with self._lock:
                self.first_contacts.add(offer.host)
        return accepted

    def _connect(self, target: Target, *, user: str, password: str | None) -> ssh.Connection:
        return ssh.connect(
            target.address,
            host=target.host,
            port=target.port,
            user=user,
            known_hosts=self.known_hosts,
            password=password,
            key_path=None if password is not None else self.key.path,
            trust=self._trust,
            timeout=self.timeout,
        )

    def _key_works(self, target: Target) -> bool:
        """Can the automation account log in with the key and use sudo without a password?"""
        try:
            with self._connect(target, user=self.settings.automation_user, password=None) as conn:
                return conn.run("sudo -n true", timeout=self.timeout * 3).rc == 0
        except ssh.SshError as exc:
            if exc.kind == "auth_failed":
                return False
            raise

    def _via_key(self, target: Target) -> tuple[str, ...] | None:
        """If the key already works with sudo: run the script with it; what it changed.

        None when the key does not let the automation account in (a new host).
        """
        if not self._key_works(target):
            return None
        script = remote_script(self.settings.automation_user, self.key.public_key)
        with self._connect(target, user=self.settings.automation_user, password=None) as conn:
            done = conn.run_as_root(script, password=None, timeout=self.timeout * 12)
        if done.rc != 0 or _MARKER not in done.stdout:
            return None
        return tuple(done.stdout.strip().rsplit(_MARKER, 1)[1].split())

    def _failed(self, target: Target, problem: str, message: str, outcome: str) -> HostBootstrap:
        # A key recorded in this run (first contact, then a wrong password) is reported too.
        return replace(self._result(target, outcome, ()), problem=problem, message=message)

    def no_password(self, target: Target) -> HostBootstrap:
        return self._failed(
            target,
            "no_password",
            "no installer password for this host in the vault file",
            "failed",
        )

    def _ssh_failed(self, target: Target, exc: ssh.SshError) -> HostBootstrap:
        outcome = "unreachable" if exc.kind in _UNREACHABLE else "failed"
        hint = f" ({exc.hint})" if exc.hint else ""
        return self._failed(target, exc.kind, exc.message + hint, outcome)

    def by_key(self, target: Target) -> HostBootstrap | None:
        """The host's result if the automation key already lets provision in (or the host
        cannot be reached at all); None when it needs the installer's password."""
        try:
            fixed = self._via_key(target)
            if fixed is None:
                return None
            changes = fixed + self._finish(target)
            return self._result(target, "bootstrapped" if changes else "unchanged", changes)
        except ssh.SshError as exc:
            return self._ssh_failed(target, exc)

    def by_password(self, target: Target, secret: str) -> HostBootstrap:
        """Log in as the installer with `secret` and set the automation account up."""
        try:
            with self._connect(target, user=self.login_user, password=secret) as conn:
                done = conn.run_as_root(
                    remote_script(self.settings.automation_user, self.key.public_key),
                    password=secret if self.login_user != "root" else None,
                    timeout=self.timeout * 12,
                )
            if done.rc != 0 or _MARKER not in done.stdout:
                problem, message = _script_problem(done, self.login_user)
                return self._failed(target, problem, message, "failed")
            changed = tuple(done.stdout.strip().rsplit(_MARKER, 1)[1].split())
            if not self._key_works(target):
                return self._failed(
                    target,
                    "key_login_failed",
                    f"the account {self.settings.automation_user} was set up but does "
                    "not let the key in with sudo (sshd AllowUsers? PubkeyAuthentication?)",
                    "failed",
                )
            changes = changed + self._finish(target)
            return self._result(target, "bootstrapped" if changes else "unchanged", changes)
        except ssh.SshError as exc:
            return self._ssh_failed(target, exc)

    def _finish(self, target: Target) -> tuple[str, ...]:
        wrote = _write_connection_vars(self.settings, target.host, self.key.path)
        return ("inventory",) if wrote else ()

    def _result(self, target: Target, outcome: str, changes: tuple[str, ...]) -> HostBootstrap:
        recorded = ssh.KnownHosts(self.known_hosts).recorded([target.host, target.address])
        key = recorded.get("ssh-ed25519") or next(iter(recorded.values()), "")
        return HostBootstrap(
            target.host,
            target.address,
            outcome,
            changes,
            fingerprint=crypto.fingerprint(key) if key else "",
            first_contact=target.host in self.first_contacts,
        )


def _script_problem(done: ssh.CommandResult, login_user: str) -> tuple[str, str]:
    err = done.stderr.strip()
    if "incorrect password" in err or "Sorry, try again" in err:
        return "sudo_refused", f"sudo refused the password of {login_user}"
    if "not in the sudoers file" in err or "may not run sudo" in err:
        return "sudo_refused", f"{login_user} may not use sudo on this host"
    last = err.splitlines()[-1] if err else f"exit status {done.rc}"
    return "script_failed", f"setting up the automation account failed: {last}"


def bootstrap(
    settings: Settings,
    selection: str | None,
    *,
    login_user: str,
    password: PasswordLookup,
    trust: ssh.TrustCallback | None = None,
    accept_new: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = 10,
    on_host: HostCallback | None = None,
) -> BootstrapResult:
    """Bootstrap the selected hosts (see the module's docstring); never raises per host."""
    if not _USER.match(settings.automation_user):
        raise InputError(
            f"automation_user '{settings.automation_user}' is not a valid user name",
            hint="lower-case letters, digits, - and _ (e.g. provision)",
        )
    if not login_user or any(c.isspace() for c in login_user):
        raise InputError(f"--user '{login_user}' is not a user name")
    chosen = targets(settings, selection)
    worker = _Bootstrapper(
        settings,
        login_user=login_user,
        trust=(lambda _offer: True) if accept_new else trust,
        timeout=timeout,
    )
    started = time.monotonic()

    def report(result: HostBootstrap) -> HostBootstrap:
        if on_host is not None:
            on_host(result)
        return result

    def by_key(target: Target) -> HostBootstrap | None:
        result = worker.by_key(target)
        return None if result is None else report(result)

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(chosen)))) as pool:
        # Every host with the key alone first; only then, in this thread, the password
        # for those that need it: never asked when no host needs it, and never while
        # other hosts' threads are still printing.
        first = list(pool.map(by_key, chosen))
        need = [t for t, r in zip(chosen, first, strict=True) if r is None]
        later: dict[str, HostBootstrap] = {}
        secrets: dict[str, str] = {}
        for target in need:
            try:
                secrets[target.host] = password(target.host)
            except KeyError:
                later[target.host] = report(worker.no_password(target))
        typed = [t for t in need if t.host in secrets]
        done = pool.map(lambda t: report(worker.by_password(t, secrets[t.host])), typed)
        later.update(zip([t.host for t in typed], done, strict=True))
    hosts = [later[t.host] if r is None else r for t, r in zip(chosen, first, strict=True)]
    counts: dict[str, int] = {}
    for h in hosts:
        counts[h.outcome] = counts.get(h.outcome, 0) + 1
    return BootstrapResult(
        hosts=hosts,
        seconds=time.monotonic() - started,
        known_hosts=worker.known_hosts,
        key_fingerprint=worker.key.fingerprint,
        counts=counts,
    )
