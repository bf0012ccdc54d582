"""One lab host: its overlay over the cached root filesystem, its boot, its stop.

A host's files live in `<lab dir>/hosts/<name>/`: `upper/` and `work/` for the
overlay, `root/` where it is mounted and booted, `console.log` for what systemd
printed. Resetting a host is deleting `upper/` and booting again.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from provision.errors import PrerequisiteError, StateError
from provision.infra import crypto
from provision.lab.network import PROXY_PORT, process_matches, stop_process
from provision.lab.spec import LabHost
from provision.lab.state import INSTALLER_USER

NSPAWN_RUN = Path("/run/systemd/nspawn")


@dataclass(frozen=True)
class HostPaths:
    base: Path

    @property
    def upper(self) -> Path:
        return self.base / "upper"

    @property
    def work(self) -> Path:
        return self.base / "work"

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def console_log(self) -> Path:
        return self.base / "console.log"


def mounted_paths() -> list[Path]:
    """Every mount point on this machine, from /proc/mounts."""
    points = []
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 1:
            points.append(Path(fields[1].replace("\\040", " ")))
    return points


def is_mounted(path: Path) -> bool:
    return path in mounted_paths()


def ensure_nspawn_runtime_dir() -> bool:
    """systemd-nspawn refuses to start without a writable /run/systemd/nspawn.

    On a machine whose PID 1 is not systemd nothing creates it, so the lab mounts a
    tmpfs there. Returns True when this call mounted it (so `down` unmounts it).
    """
    if is_mounted(NSPAWN_RUN):
        return False
    NSPAWN_RUN.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(NSPAWN_RUN)])
    return True


#: Each host's systemd, journald, logind… take inotify instances of their own, and
#: all of them count against root's one per-user limit on the control node:
#: Debian's default of 128 runs out at about twenty hosts on the machine (every lab
#: together), and the next host's systemd exits at once ("Failed to allocate
#: manager object: Too many open files"). Container hosts raise it; so does the lab.
INOTIFY_LIMITS = {
    Path("/proc/sys/fs/inotify/max_user_instances"): 8192,
    Path("/proc/sys/fs/inotify/max_user_watches"): 524288,
}


def ensure_inotify_limits() -> list[str]:
    """Raise the kernel's inotify limits to what many lab hosts need; never lower them.

    Returns what was raised, as "name old → new".
    """
    raised = []
    for path, wanted in INOTIFY_LIMITS.items():
        with contextlib.suppress(OSError, ValueError):
            current = int(path.read_text())
            if current < wanted:
                path.write_text(f"{wanted}\n")
                raised.append(f"{path.name} {current} → {wanted}")
    return raised


def mount_overlay(paths: HostPaths, lower: Path) -> None:
    for folder in (paths.upper, paths.work, paths.root):
        folder.mkdir(parents=True, exist_ok=True)
    if is_mounted(paths.root):
        return
    _run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={lower},upperdir={paths.upper},workdir={paths.work}",
            str(paths.root),
        ]
    )


def unmount(path: Path) -> None:
    """Unmount `path` if mounted; lazily if busy, so teardown always finishes."""
    if not is_mounted(path):
        return
    proc = subprocess.run(["umount", str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 and is_mounted(path):
        _run(["umount", "-l", str(path)])


def personalise(
    root: Path,
    host: LabHost,
    prefixlen: int,
    proxy: str,
    control_key: str,
    installer_password: str | None = None,
) -> str:
    """Give a freshly mounted host its identity; return its SSH host public key.

    The host key is generated here, on the control node, and written into the
    host's filesystem: the key recorded in known_hosts is the host's real key,
    read from the source, not trusted on first contact over the network.

    A new machine (`host.new`) gets no key for root, only an installer account
    with `installer_password` in the sudo group, as machines come from a supplier.
    """
    (root / "etc/hostname").write_text(host.name + "\n")
    (root / "etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
    interfaces = root / "etc/network/interfaces.d"
    interfaces.mkdir(parents=True, exist_ok=True)
    (interfaces / "host0").write_text(
        "# Written by provision lab: the host's address on the lab bridge.\n"
        f"auto host0\niface host0 inet static\n    address {host.address}/{prefixlen}\n"
    )
    # debootstrap's dbus left one D-Bus machine id in the shared root filesystem,
    # and systemd takes it over when /etc/machine-id is empty: every lab host had
    # the same machine id. Linked as on an installed Debian, the host's systemd
    # makes its own at first boot and keeps it in /etc/machine-id.
    dbus_id = root / "var/lib/dbus/machine-id"
    if not dbus_id.is_symlink():
        dbus_id.unlink(missing_ok=True)
        dbus_id.parent.mkdir(parents=True, exist_ok=True)
        dbus_id.symlink_to("/etc/machine-id")
    (root / "etc/apt/apt.conf.d/01proxy").write_text(
        f'// The lab\'s package cache on the control node.\nAcquire::http::Proxy "http://{proxy}:{PROXY_PORT}";\n'
    )
    if host.new:
        _add_installer(root, installer_password or "")
    else:
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        ssh_dir.chmod(0o700)
        authorized = ssh_dir / "authorized_keys"
        authorized.write_text(control_key.strip() + " provision-lab-control\n")
        authorized.chmod(0o600)

    pair = crypto.new_ed25519()
    crypto.write_private_key(
        root / "etc/ssh/ssh_host_ed25519_key", pair, comment=f"root@{host.name}"
    )
    drop_in = root / "etc/ssh/sshd_config.d/provision-lab.conf"
    drop_in.parent.mkdir(parents=True, exist_ok=True)
    drop_in.write_text(
        "# Written by provision lab: this host has only the Ed25519 key made for it.\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\n"
        "# Sweeps (provision preflight, benchmarks) open many connections to a few lab\n"
        "# hosts at once; the default 10:30:100 would drop some before they log in.\n"
        "MaxStartups 100:30:200\n"
    )
    return pair.public_openssh


def _add_installer(root: Path, password: str) -> None:
    """The installer account of a new machine: a password, sudo, no key."""
    if not password:
        raise StateError("a new lab host needs an installer password")
    if not (root / "home" / INSTALLER_USER).exists():
        _run(
            [
                *("useradd", "--root", str(root), "--create-home", "--shell", "/bin/bash"),
                *("--groups", "sudo", "--comment", "supplier's installer account", INSTALLER_USER),
            ]
        )
    # The password on stdin, never in argv.
    proc = subprocess.run(
        ["chpasswd", "--root", str(root)],
        input=f"{INSTALLER_USER}:{password}\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StateError(f"chpasswd for the installer account failed: {proc.stderr.strip()}")


CGROUP_BASE = Path("/sys/fs/cgroup")
CGROUP_GROUP = "provision-lab"


def cgroup_roots() -> list[Path]:
    """The hierarchies systemd uses: the unified one alone, or name=systemd beside it."""
    if (CGROUP_BASE / "cgroup.controllers").exists():
        return [CGROUP_BASE]
    return [
        CGROUP_BASE / sub
        for sub in ("systemd", "unified")
        if (CGROUP_BASE / sub / "cgroup.procs").exists()
    ]


def lab_cgroups(bridge: str) -> list[Path]:
    """The cgroups of one lab (named by its bridge), in every hierarchy."""
    return [root / CGROUP_GROUP / bridge for root in cgroup_roots()]


def cgroup_pids(tops: list[Path]) -> set[int]:
    """Every process in these cgroups and below."""
    pids: set[int] = set()
    for top in tops:
        for procs in top.rglob("cgroup.procs") if top.is_dir() else ():
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs.read_text().split())
    return pids


def kill_cgroups(tops: list[Path], timeout: float = 10) -> None:
    """SIGKILL whatever still runs in these cgroups and wait until they are empty.

    A host whose nspawn died (or had to be killed) leaves its systemd running as
    an orphan in its own namespaces; its cgroup is how the lab finds it again.
    """
    deadline = time.monotonic() + timeout
    while (pids := cgroup_pids(tops)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)


def remove_cgroups(bridge: str) -> list[Path]:
    """Kill what is left in one lab's cgroups and remove them, deepest first."""
    kill_cgroups(lab_cgroups(bridge))
    removed = []
    for top in lab_cgroups(bridge):
        if not top.is_dir():
            continue
        # The parent goes too when no other lab is left in it.
        folders = [Path(f) for f, _, _ in os.walk(top)]
        for folder in [*sorted(folders, key=lambda p: -len(p.parts)), top.parent]:
            with contextlib.suppress(OSError):
                folder.rmdir()
                removed.append(folder)
    return removed


def _link_exists(link: str) -> bool:
    shown = subprocess.run(["ip", "link", "show", "dev", link], capture_output=True, check=False)
    return shown.returncode == 0


def _free_link_name(link: str, timeout: float = 60) -> None:
    """Make sure no interface is named (or alt-named) `link` before nspawn creates it.

    nspawn names a host's link `vb-<machine>`, shortened with a hash when too long;
    the full name stays as the link's altname, which `ip link show dev` accepts.
    The link of a host stopped a moment ago lives on until the kernel has torn the
    host's network namespace down, which on a loaded machine takes a while; nspawn
    cannot create the new link until then ("File exists"). The old host is gone by
    now (its cgroup is empty) and the name is this lab's own, so the stale link is
    deleted (its peer inside the dead namespace goes with it).
    """
    if _machine_running(link.removeprefix("vb-")):
        raise StateError(
            f"lab host machine {link.removeprefix('vb-')} is already running",
            hint="another lab uses the same names: see provision lab status",
        )
    deadline = time.monotonic() + timeout
    while _link_exists(link):
        subprocess.run(["ip", "link", "delete", "dev", link], capture_output=True, check=False)
        if time.monotonic() > deadline:
            raise StateError(
                f"the network link {link} of a stopped lab host is still there after "
                f"{timeout:.0f}s",
                hint=f"ip link delete dev {link}, then try again",
            )
        time.sleep(0.2)


def nspawn_command_lines() -> Iterator[tuple[int, list[str]]]:
    """(pid, command line) of every systemd-nspawn running on this machine, any lab's."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"systemd-nspawn"):
            yield int(proc.name), [a.decode(errors="replace") for a in argv]


def _machine_running(machine_name: str) -> bool:
    """Is a systemd-nspawn with this machine name (`-M NAME`) running on this machine?"""
    return any(machine_name in words for _, words in nspawn_command_lines())


def boot(name: str, paths: HostPaths, bridge: str) -> int:
    """Boot the host with systemd inside systemd-nspawn; return nspawn's pid.

    Each host gets a cgroup of its own before nspawn starts. With --keep-unit and
    no systemd on the control node, nspawn splits the cgroup it was started in into
    `supervisor` and `payload`; hosts started from one cgroup would share one
    `payload`, and their systemds would fight over it (units failing with
    status 219/CGROUP).
    """
    nspawn = shutil.which("systemd-nspawn")
    if nspawn is None:
        raise PrerequisiteError(
            "systemd-nspawn is not installed", hint="apt-get install systemd-container"
        )
    # Checked at every boot, not once per lab: another lab may have brought
    # many hosts up since.
    ensure_inotify_limits()
    _free_link_name(f"vb-{bridge}-{name}")
    cgroups = [group / name for group in lab_cgroups(bridge)]
    for cgroup in cgroups:
        cgroup.mkdir(parents=True, exist_ok=True)
    # A shell moves itself into the host's cgroups, then becomes nspawn (same pid);
    # done by the child itself so no other process is ever moved by mistake.
    join = "; ".join(f'echo $$ > "{c}/cgroup.procs"' for c in cgroups)
    log = paths.console_log.open("ab")
    proc = subprocess.Popen(
        [
            "/bin/sh",
            "-c",
            f'{join}; exec "$@"' if cgroups else 'exec "$@"',
            "sh",
            nspawn,
            "--quiet",
            "-D",
            str(paths.root),
            # The machine name names the host's link on the bridge (vb-…), so it
            # carries the lab's bridge: two labs may each have a dhk-kal-fs01.
            "-M",
            f"{bridge}-{name}",
            f"--hostname={name}",
            "-b",
            # No system bus to register with, and no unit of our own to move into.
            "--register=no",
            "--keep-unit",
            f"--network-bridge={bridge}",
            "--console=read-only",
            # The host keeps its own /etc/localtime and /etc/resolv.conf: by default
            # nspawn overwrites them with the control node's at every boot, so a
            # host set to Asia/Dhaka came back from `lab stop`/`start` on the
            # control node's zone. Nor does it link its journal into the control
            # node's /var/log/journal.
            "--timezone=off",
            "--resolv-conf=off",
            "--link-journal=no",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # outlives `lab up`; stopped by pid at `lab stop`/`down`
    )
    log.close()
    _wait_exec(proc, nspawn)
    return proc.pid


def _wait_exec(proc: subprocess.Popen[bytes], nspawn: str, timeout: float = 60) -> None:
    """Return once the shell has become systemd-nspawn (or has exited).

    While a process is in execve its command line reads empty: the new program is
    mapped but its arguments are not yet in place. On a loaded machine that lasts
    long enough for `is_running` to look right then and take a booting host for a
    stopped one; after this, the pid's command line is nspawn's until it exits.
    """
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            if argv[0] == nspawn.encode():
                return
        time.sleep(0.01)


def is_running(pid: int | None, name: str) -> bool:
    return pid is not None and process_matches(pid, f"--hostname={name} ")


def stop(pid: int | None, name: str, bridge: str) -> None:
    """Power the host off (nspawn turns SIGTERM into an orderly shutdown).

    If the host does not go in time, everything in its cgroup is killed: killing
    only nspawn would leave the host's systemd running as an orphan.
    """
    if pid is not None:
        # Generous: a loaded 2-core machine takes tens of seconds to power a host off.
        stop_process(pid, expect=f"--hostname={name} ", timeout=90)
    kill_cgroups([group / name for group in lab_cgroups(bridge)])


def ensure_gone(name: str, bridge: str, timeout: float = 60) -> None:
    """Before a host boots again: nothing of its previous instance may still run.

    A new instance beside a dying one would share its cgroup and boot on the
    overlay the old one still writes to.
    """
    groups = [group / name for group in lab_cgroups(bridge)]
    kill_cgroups(groups, timeout)
    left = cgroup_pids(groups)
    if left:
        raise StateError(
            f"lab host {name}: {len(left)} processes of its previous boot still run "
            f"after {timeout:.0f}s",
            hint="the machine may be overloaded; try again, or provision lab down",
        )


def wait_for_ssh(
    address: str,
    pid: int,
    name: str,
    ssh_args: list[str],
    timeout: float = 180,  # generous: a loaded 2-core machine boots slowly
    banner_only: bool = False,
    console_log: Path | None = None,
) -> float:
    """Wait until the host answers a real SSH login; return the seconds it took.

    `banner_only` waits for the SSH server's banner instead: a new machine has
    no key the lab could log in with.
    """
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if not is_running(pid, name):
            raise StateError(
                f"lab host {name} stopped while booting: {_last_words(console_log)}",
                hint=f"see {console_log}" if console_log else "see its console.log",
            )
        if banner_only and ssh_banner(address):
            return time.monotonic() - started
        if not banner_only and _port_open(address, 22):
            proc = subprocess.run(
                ["ssh", *ssh_args, f"root@{address}", "true"],
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
            if proc.returncode == 0:
                return time.monotonic() - started
        time.sleep(0.3)
    raise StateError(f"lab host {name} ({address}) did not answer SSH within {timeout:.0f}s")


def _last_words(console_log: Path | None) -> str:
    """What nspawn (or the host's systemd) printed last: why it stopped, usually."""
    if console_log is None or not console_log.is_file():
        return "no console output"
    text = re.sub(r"\x1b\[[0-9;]*m", "", console_log.read_text(errors="replace"))
    lines = [ln.strip() for ln in text.splitlines()]
    words = [ln for ln in lines if ln]
    return words[-1][:200] if words else "no console output"


def ssh_banner(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=0.5) as sock:
            sock.settimeout(2)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _port_open(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((address, port)) == 0


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StateError(
            f"{' '.join(argv[:3])} … failed: {proc.stderr.strip() or proc.stdout.strip()}"
        )


def other_nspawn_running(ours: set[int]) -> bool:
    """Is a systemd-nspawn not started by this lab running (another lab, say)?"""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) not in ours:
            try:
                argv0 = (proc / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if argv0.endswith(b"systemd-nspawn"):
                return True
    return False
