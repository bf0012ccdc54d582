"""The lab network: one bridge with the control node's lab address, and the package proxy.

Hosts are attached to the bridge by systemd-nspawn (`--network-bridge`); each
host's network namespace is created by nspawn for that host and goes with it.
The bridge carries only the lab subnet: nothing is routed or forwarded off it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import time
from pathlib import Path

from provision.errors import PrerequisiteError, StateError

#: Not apt-cacher-ng's usual 3142: a system-wide apt-cacher-ng on this machine
#: listens there on every address, and the lab's own must not collide with it.
PROXY_PORT = 3149


def bridge_name(subnet: ipaddress.IPv4Network) -> str:
    """One bridge per lab subnet, so a test lab and a person's lab can run side by side.

    The name carries the subnet's first three octets (in hex, to fit the kernel's
    15 characters): two lab subnets that do not overlap never share a bridge, nor
    the cgroups and machine names made from it. (Named after the third octet
    alone, 10.213.20.0/24 and 10.214.20.0/24 were both `pvlab-20`.)
    """
    return "pvlab-" + subnet.network_address.packed[:3].hex()


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise StateError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def bridge_exists(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


class BridgeTaken(StateError):
    """The lab's bridge already exists: another lab made it."""


def create_bridge(name: str, address: str, prefixlen: int) -> None:
    """Create the bridge with the control node's address; refuse one that exists.

    The kernel's "File exists" makes this the lab's claim on the name: of two labs
    starting at once on one subnet, exactly one creates it.
    """
    made = _ip("link", "add", "name", name, "type", "bridge", check=False)
    if made.returncode != 0:
        if bridge_exists(name):
            raise BridgeTaken(f"bridge {name} already exists")
        raise StateError(f"ip link add {name} failed: {made.stderr.strip()}")
    wanted = f"{address}/{prefixlen}"
    shown = _ip("-o", "addr", "show", "dev", name).stdout
    if wanted not in shown:
        _ip("addr", "add", wanted, "dev", name)
    _ip("link", "set", "dev", name, "up")


def remove_bridge(name: str) -> None:
    if bridge_exists(name):
        _ip("link", "delete", "dev", name)


def lab_interfaces(name: str) -> list[str]:
    """The lab's interfaces that still exist: its bridge and the host links on it."""
    if not bridge_exists(name):
        return []
    attached = _ip("-o", "link", "show", "master", name, check=False).stdout
    return [name] + [
        line.split(":")[1].strip().split("@")[0] for line in attached.splitlines() if ":" in line
    ]


PROXY_CONF = """\
# apt-cacher-ng for the provision lab: started and stopped by `provision lab`.
# No Remap-* lines on purpose: with them apt-cacher-ng answers 503 for the
# Debian mirror; without them it caches whatever mirror the hosts ask for.
CacheDir: {cache}
LogDir: {logs}
SupportDir: /usr/lib/apt-cacher-ng
Port: {port}
BindAddress: {address}
PidFile: {pidfile}
ReportPage: acng-report.html
ExThreshold: 4
LocalDirs: acng-doc /usr/share/doc/apt-cacher-ng
"""


def start_proxy(address: str, run_dir: Path, cache_dir: Path) -> int:
    """Start apt-cacher-ng on the lab address; return its pid."""
    binary = Path("/usr/sbin/apt-cacher-ng")
    if not binary.exists():
        raise PrerequisiteError(
            "apt-cacher-ng is not installed", hint="apt-get install apt-cacher-ng"
        )
    conf_dir = run_dir / "apt-cacher-ng"
    logs = run_dir / "apt-cacher-ng-log"
    for folder in (conf_dir, logs, cache_dir):
        folder.mkdir(parents=True, exist_ok=True)
    pidfile = run_dir / "apt-cacher-ng.pid"
    (conf_dir / "acng.conf").write_text(
        PROXY_CONF.format(
            cache=cache_dir, logs=logs, port=PROXY_PORT, address=address, pidfile=pidfile
        )
    )
    log = (logs / "stdout.log").open("ab")
    proc = subprocess.Popen(
        [str(binary), "-c", str(conf_dir), "ForeGround=1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the command that started it; stopped by pid
    )
    log.close()
    _wait_listening(address, PROXY_PORT, proc)
    return proc.pid


def _wait_listening(
    address: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 10
) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StateError(f"apt-cacher-ng exited at start (code {proc.returncode})")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((address, port)) == 0:
                return
        time.sleep(0.2)
    raise StateError(f"apt-cacher-ng did not listen on {address}:{port} within {timeout:.0f}s")


def stop_process(pid: int, *, expect: str, timeout: float = 20) -> None:
    """Stop a process the lab started, by pid, if it is still that process.

    Returns only once the process has really exited (or is a zombie): not when its
    command line reads empty, which happens as soon as it starts to exit, while it
    still holds its files, locks and namespaces.
    """
    if not process_matches(pid, expect):
        return
    started = _start_time(pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if _wait_exited(pid, started, timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_exited(pid, started, 60):
        raise StateError(
            f"process {pid} ({expect.strip()}) did not exit even when killed",
            hint="see ps; the machine may be overloaded",
        )


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat): with the pid, its identity."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _wait_exited(pid: int, started: str | None, timeout: float) -> bool:
    """Wait until the process `pid` that started at `started` has exited; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        _reap(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        fields = stat.rsplit(")", 1)[-1].split()
        if fields[0] in ("Z", "X") or fields[19] != started:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _reap(pid: int) -> None:
    # When this same process started the child (as the test fixture does), it must
    # be reaped or it lingers as a zombie that still looks alive.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def process_matches(pid: int, expect: str) -> bool:
    """True if `pid` is alive (not a zombie) and its command line mentions `expect`.

    Checking the command line keeps a recycled pid from being killed by mistake.
    """
    try:
        cmdline = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else ""
    return state != "Z" and expect in cmdline
