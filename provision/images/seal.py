"""Seal a built tree: take out what belongs to the build host, keep what the image needs.

Removed: SSH host keys (regenerated at first boot by a small unit), the
machine-id (an empty file: systemd makes one at first boot), logs, apt caches
and lists, temporary files, Ansible's leftovers, the lab's own network, proxy
and sshd settings, and the build key from root's authorized_keys. Kept: the
automation account with the control node's key, so `provision bootstrap`,
a rollout or a compliance run reaches a machine installed from the image.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

#: Host keys are made at first boot, before sshd starts, when there are none:
#: Ed25519 and ECDSA only, which take milliseconds where an RSA key can take
#: minutes (an emulated CPU, a slow PC), with sshd told to use just those.
HOST_KEYS_UNIT = """\
# Written by provision image build: each machine made from the image gets its own
# SSH host keys at first boot.
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key

[Install]
WantedBy=ssh.service
"""
HOST_KEYS_UNIT_NAME = "provision-ssh-host-keys.service"
HOST_KEYS_CONFIG = """\
# Written by provision image build: the host keys made at first boot.
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
"""

#: DHCP on the first wired interface whatever the kernel names it (eth0, ens3, enp1s0…).
NETWORK_UNIT = """\
# Written by provision image build: DHCP on wired interfaces, whatever their names.
[Match]
Type=ether
Name=!veth* !docker* !br* !virbr* !vnet*

[Network]
DHCP=yes
"""

#: Files the lab put in for its own use.
LAB_FILES = (
    "etc/network/interfaces.d/host0",
    "etc/apt/apt.conf.d/01proxy",
    "etc/apt/apt.conf.d/99provision-lab",
    "etc/ssh/sshd_config.d/provision-lab.conf",
    "etc/systemd/system/console-getty.service",
)


def _empty_folder(folder: Path, keep: tuple[str, ...] = ()) -> None:
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()


def _remove_files_keep_folders(folder: Path) -> None:
    """Logs go, their folders (and their owners and modes) stay for the services."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
        if path.is_symlink() or path.is_file():
            path.unlink()


def seal_tree(root: Path, *, role: str, build_key: str, disk: bool) -> None:
    """Seal the tree at `root` in place (the build host must be stopped)."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    units = root / "etc/systemd/system"
    (units / HOST_KEYS_UNIT_NAME).write_text(HOST_KEYS_UNIT)
    wants = units / "ssh.service.wants"
    wants.mkdir(exist_ok=True)
    link = wants / HOST_KEYS_UNIT_NAME
    if not link.is_symlink():
        link.symlink_to(f"/etc/systemd/system/{HOST_KEYS_UNIT_NAME}")

    (root / "etc/ssh/sshd_config.d/10-provision-host-keys.conf").write_text(HOST_KEYS_CONFIG)

    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() and not dbus_id.is_symlink():
        dbus_id.unlink()

    for name in LAB_FILES:
        path = root / name
        if path.is_symlink() or path.exists():
            path.unlink()

    hostname = role.replace("_", "-")
    (root / "etc/hostname").write_text(hostname + "\n")
    (root / "etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )

    # The build key goes; any other key root had (none, normally) stays.
    authorized = root / "root/.ssh/authorized_keys"
    if authorized.is_file():
        marker = " ".join(build_key.split()[:2])
        kept = [line for line in authorized.read_text().splitlines() if marker not in line]
        if kept:
            authorized.write_text("\n".join(kept) + "\n")
        else:
            authorized.unlink()

    network = root / "etc/systemd/network"
    network.mkdir(parents=True, exist_ok=True)
    (network / "20-provision-dhcp.network").write_text(NETWORK_UNIT)

    _remove_files_keep_folders(root / "var/log")
    _empty_folder(root / "var/log/journal")
    _empty_folder(root / "var/cache/apt")
    _empty_folder(root / "var/lib/apt/lists", keep=("partial", "lock"))
    _empty_folder(root / "tmp")
    _empty_folder(root / "var/tmp")
    for leftover in ("root/.ansible", "root/.cache", "root/.bash_history"):
        path = root / leftover
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    for home in (root / "home").glob("*"):
        shutil.rmtree(home / ".ansible", ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (home / ".bash_history").unlink()
    if disk:
        _boot_settings(root)


def _boot_settings(root: Path) -> None:
    """GRUB's defaults for a disk image: a short menu, the console on screen and serial.

    Not `quiet`: the kernel's and systemd's messages go to both consoles, so a
    headless field server (or a VM) shows on its serial port how far its boot got.
    The serial port is named last, so it is /dev/console and gets a login prompt.
    """
    grub = root / "etc/default/grub.d"
    grub.mkdir(parents=True, exist_ok=True)
    (grub / "50-provision.cfg").write_text(
        "# Written by provision image build: a short menu, and the boot messages and\n"
        "# console on the screen and the first serial port (for virtual machines and\n"
        "# headless boxes, whose serial port shows how far a boot got).\n"
        "GRUB_TIMEOUT=1\n"
        'GRUB_CMDLINE_LINUX_DEFAULT=""\n'
        'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"\n'
        'GRUB_TERMINAL="console serial"\n'
        'GRUB_SERIAL_COMMAND="serial --speed=115200"\n'
    )
