"""The lab's Debian root filesystem: built once with debootstrap, cached, reused.

The cache lives outside any repository (`lab_cache`, /var/cache/provision/lab by
default). A build goes to a temporary folder and is renamed into place only when
debootstrap has finished and the result looks whole, with a marker file written
last; a cache without the marker, or missing what the lab needs, is rebuilt.
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from provision.errors import PrerequisiteError

SUITE = "bookworm"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "sudo",
    "iproute2",
    "ifupdown",
)
MARKER = ".provision-rootfs.json"
#: Files without which a host cannot boot or be reached; their absence means a broken cache.
REQUIRED_FILES = ("usr/lib/systemd/systemd", "usr/sbin/sshd", "usr/bin/python3", "usr/sbin/ifup")
#: Bumped when PACKAGES or the preparation changes, so old caches are rebuilt.
FORMAT = 2


def debian_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses (deb822 .sources or one-line lists)."""
    candidates = sorted((sources_dir / "sources.list.d").glob("*.sources"))
    for path in candidates:
        text = path.read_text(errors="replace")
        for stanza in re.split(r"\n\s*\n", text):
            if re.search(r"^Enabled:\s*no", stanza, re.M | re.I):
                continue
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            if (
                uris
                and suites
                and SUITE in suites.group(1).split()
                and "security" not in uris.group(1)
            ):
                return uris.group(1).rstrip("/")
    lists = [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            match = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
            if match and match.group(2) == SUITE and "security" not in match.group(1):
                return match.group(1).rstrip("/")
    raise PrerequisiteError(
        f"no Debian {SUITE} mirror found in {sources_dir}/sources.list(.d)",
        hint="add the Debian mirror to apt's sources; the lab builds its hosts from it",
    )


def cache_status(rootfs: Path) -> str:
    """'ready', 'missing' or 'broken: <why>' for the cached root filesystem."""
    if not rootfs.exists():
        return "missing"
    marker = rootfs / MARKER
    if not marker.is_file():
        return "broken: the build never finished"
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return "broken: unreadable marker"
    if meta.get("format") != FORMAT:
        return "broken: built by an older provision"
    missing = [f for f in REQUIRED_FILES if not (rootfs / f).exists()]
    if missing:
        return "broken: lacks " + ", ".join(missing)
    return "ready"


def ensure_rootfs(cache_dir: Path, on_step: Callable[[str], None]) -> Path:
    """The cached root filesystem, built first if missing or broken."""
    rootfs = cache_dir / f"debian-{SUITE}"
    if cache_status(rootfs) == "ready":
        return rootfs
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Two labs starting at once (two test runs, say) build the cache only once.
    with (cache_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_if_needed(rootfs, cache_dir, on_step)


def _build_if_needed(rootfs: Path, cache_dir: Path, on_step: Callable[[str], None]) -> Path:
    status = cache_status(rootfs)
    if status == "ready":
        return rootfs
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise PrerequisiteError("debootstrap is not installed", hint="apt-get install debootstrap")
    mirror = debian_mirror()
    if status != "missing":
        on_step(f"root filesystem cache at {rootfs} is {status}; rebuilding")
    building = cache_dir / f".building-{SUITE}"
    shutil.rmtree(building, ignore_errors=True)
    on_step(f"building the Debian {SUITE} root filesystem (once, about 2 minutes)")
    started = time.monotonic()
    proc = subprocess.run(
        [
            debootstrap,
            "--variant=minbase",
            "--include=" + ",".join(PACKAGES),
            SUITE,
            str(building),
            mirror,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        log = cache_dir / "debootstrap.log"
        log.write_text(proc.stdout + proc.stderr)
        shutil.rmtree(building, ignore_errors=True)
        raise PrerequisiteError(
            f"debootstrap failed (exit {proc.returncode}): {_last_line(proc.stdout + proc.stderr)}",
            hint=f"see {log}; check that apt can reach the Debian mirror",
        )
    _prepare(building)
    (building / MARKER).write_text(
        json.dumps(
            {
                "format": FORMAT,
                "suite": SUITE,
                "built": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.monotonic() - started, 1),
                "packages": list(PACKAGES),
            }
        )
    )
    shutil.rmtree(rootfs, ignore_errors=True)
    building.rename(rootfs)
    return rootfs


def _prepare(root: Path) -> None:
    """What every lab host shares, done once in the cache rather than per host."""
    # Host keys baked in by openssh-server's install would be shared by every host;
    # each host gets its own at boot time instead.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # No machine-id: systemd creates one per host on first boot.
    (root / "etc/machine-id").write_text("")
    # Hosts speak only on the lab bridge; the console getty would just wait forever.
    (root / "etc/systemd/system/console-getty.service").symlink_to("/dev/null")
    # Keep apt's lists from the build so hosts install packages without an update first.
    (root / "etc/apt/apt.conf.d/99provision-lab").write_text(
        "// The lab's apt settings; the proxy comes from 01proxy per host.\n"
        'APT::Install-Recommends "false";\n'
    )


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
