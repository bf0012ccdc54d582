"""Pack a sealed tree: a root filesystem tarball, a bootable qcow2 disk, a Vagrant box.

The disk: a sparse raw file with one DOS partition (sfdisk), attached with
`losetup -P`, an ext4 filesystem with a fixed UUID, the tree copied in, fstab
by UUID, GRUB installed from the image's own grub-pc in a chroot (bind mounts
of /dev, /proc, /sys), then `qemu-img convert -O qcow2` once the loop device is
really released. Every mount and loop device is undone in `finally`, deepest
first, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from provision.errors import StateError
from provision.lab.machine import is_mounted, mounted_paths, unmount

#: The partition starts at 1 MiB: room for GRUB's core image after the MBR.
PARTITION_START = 2048
#: How long the disk's filesystem may stay mounted elsewhere after packing (a
#: container starting at that moment lets go within seconds).
RELEASE_TIMEOUT = 300.0

VAGRANTFILE = """\
# Written by provision image build: a {role} box brought to the standard.
# Vagrant logs in as the automation account with the control node's key.
Vagrant.configure("2") do |config|
  config.ssh.username = "{user}"
  config.ssh.insert_key = false
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "kvm"
    libvirt.disk_bus = "virtio"
    libvirt.nic_model_type = "virtio"
  end
end
"""


def _run(argv: list[str], *, input_text: str | None = None, timeout: float = 1800) -> str:
    proc = subprocess.run(
        argv, input=input_text, capture_output=True, text=True, check=False, timeout=timeout
    )
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise StateError(
            f"{' '.join(argv[:2])} failed (exit {proc.returncode}): "
            f"{detail[-1] if detail else 'no output'}"
        )
    return proc.stdout


def _tar_tree(root: Path, target: Path) -> None:
    _run(
        [
            "tar",
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--acls",
            "--sort=name",
            "-C",
            str(root),
            "-cf",
            str(target),
            ".",
        ]
    )


def pack_tar(root: Path, target: Path) -> None:
    """The tree as a root filesystem tarball (numeric owners, xattrs, ACLs)."""
    _tar_tree(root, target)


class _Attached:
    """Loop devices and mounts made while packing, undone deepest first."""

    def __init__(self) -> None:
        self.mounts: list[Path] = []
        self.loops: list[str] = []

    def mount(self, argv: list[str], point: Path) -> None:
        point.mkdir(parents=True, exist_ok=True)
        _run(["mount", *argv, str(point)])
        self.mounts.append(point)

    def close(self) -> None:
        for point in reversed(self.mounts):
            # Anything mounted below a point (by a chroot's tools) goes first.
            for below in sorted(
                (p for p in mounted_paths() if point in p.parents),
                key=lambda p: -len(p.parts),
            ):
                unmount(below)
            unmount(point)
        self.mounts.clear()
        for loop in reversed(self.loops):
            subprocess.run(["losetup", "-d", loop], capture_output=True, check=False)
        self.loops.clear()


@contextlib.contextmanager
def _attached() -> Iterator[_Attached]:
    attached = _Attached()
    try:
        yield attached
    finally:
        attached.close()


def _partition_device(loop: str, timeout: float = 10) -> str:
    """`/dev/loopNp1`, waiting for it and creating the node where nothing else does."""
    device = Path(f"{loop}p1")
    sysfs = Path("/sys/block") / Path(loop).name / f"{Path(loop).name}p1" / "dev"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if device.exists():
            return str(device)
        if not sysfs.exists():
            subprocess.run(["partx", "-a", loop], capture_output=True, check=False)
        elif not device.exists():
            # No udev (a container): make the node from the kernel's numbers.
            major, minor = sysfs.read_text().strip().split(":")
            subprocess.run(
                ["mknod", str(device), "b", major, minor], capture_output=True, check=False
            )
        time.sleep(0.2)
    raise StateError(f"the partition of {loop} did not appear", hint="modprobe loop")


def build_disk(root: Path, raw: Path, size_gb: int) -> None:
    """A bootable raw disk of `size_gb` holding the tree at `root`."""
    raw.parent.mkdir(parents=True, exist_ok=True)
    with raw.open("wb") as handle:
        handle.truncate(size_gb * 2**30)
    _run(
        ["sfdisk", "--quiet", str(raw)],
        input_text=f"label: dos\nstart={PARTITION_START}, type=83, bootable\n",
    )
    fs_uuid = str(uuid.uuid4())
    mnt = raw.parent / "mnt"
    with _attached() as attached:
        loop = _run(["losetup", "--find", "--show", "--partscan", str(raw)]).strip()
        attached.loops.append(loop)
        part = _partition_device(loop)
        _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-U", fs_uuid, part])
        attached.mount([part], mnt)
        # Copy with numeric owners, xattrs and ACLs, as the tarball does.
        copy = subprocess.Popen(
            [
                "tar",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "--acls",
                "-C",
                str(root),
                "-cf",
                "-",
                ".",
            ],
            stdout=subprocess.PIPE,
        )
        try:
            unpack = subprocess.run(
                [
                    "tar",
                    "--numeric-owner",
                    "--xattrs",
                    "--xattrs-include=*",
                    "--acls",
                    "-C",
                    str(mnt),
                    "-xpf",
                    "-",
                ],
                stdin=copy.stdout,
                capture_output=True,
                check=False,
            )
        finally:
            if copy.stdout is not None:
                copy.stdout.close()
            copy.wait()
        if copy.returncode != 0 or unpack.returncode != 0:
            raise StateError(
                "copying the tree into the disk failed: "
                + unpack.stderr.decode(errors="replace").strip()[-200:]
            )
        (mnt / "etc/fstab").write_text(
            "# Written by provision image build: the root filesystem by UUID.\n"
            f"UUID={fs_uuid}\t/\text4\terrors=remount-ro\t0\t1\n"
        )
        for name in ("dev", "proc", "sys"):
            attached.mount(["--bind", f"/{name}"], mnt / name)
        _run(["chroot", str(mnt), "grub-install", "--target=i386-pc", "--recheck", loop])
        _run(["chroot", str(mnt), "update-grub"])
        _root_by_uuid(mnt / "boot/grub/grub.cfg", part, fs_uuid)
    if is_mounted(mnt):
        raise StateError(f"{mnt} is still mounted after packing")
    wait_released(loop, raw, part)


def _holders(part: str) -> list[str]:
    """Processes whose mount namespace still has `part` mounted."""
    found = []
    for mountinfo in Path("/proc").glob("[0-9]*/mountinfo"):
        with contextlib.suppress(OSError):
            if f" {part} " in mountinfo.read_text():
                pid = mountinfo.parent.name
                comm = (mountinfo.parent / "comm").read_text().strip()
                found.append(f"{pid} ({comm})")
    return found


def wait_released(loop: str, raw: Path, part: str, timeout: float = RELEASE_TIMEOUT) -> None:
    """Return once `loop` no longer holds `raw`: its filesystem was shut down whole.

    A mount namespace made while the disk was mounted (a container starting on
    this machine, `ip netns exec`, `unshare`) holds its own copy of the mount,
    and the kernel keeps the filesystem live and half-written to the raw file
    until the last copy goes; our unmount and `losetup -d` succeed all the same
    (the device detaches later by itself). Converting before then copies a disk
    whose journal was never replayed, which GRUB reads without its grub.cfg.
    """
    backing = Path("/sys/block") / Path(loop).name / "loop" / "backing_file"
    deadline = time.monotonic() + timeout
    while True:
        try:
            attached = Path(backing.read_text().strip()) == raw.resolve()
        except OSError:
            attached = False  # detached (a later reuse of the number names another file)
        if not attached:
            return
        if time.monotonic() > deadline:
            holders = ", ".join(_holders(part)) or "unknown processes"
            raise StateError(
                f"the image's filesystem is still mounted {timeout:.0f}s after packing, "
                f"in the mount namespace of {holders}",
                hint="stop those processes (or wait for them) and build again",
            )
        time.sleep(0.2)


def _root_by_uuid(grub_cfg: Path, part: str, fs_uuid: str) -> None:
    """Point the kernel at the root filesystem by UUID, not by the build's loop device.

    grub-mkconfig writes `root=UUID=` only when /dev/disk/by-uuid has the
    filesystem, which it lacks where no udev runs (a container); the machine
    itself writes UUIDs again at its next update-grub.
    """
    text = grub_cfg.read_text()
    text = re.sub(rf"root={re.escape(part)}(?=\s)", f"root=UUID={fs_uuid}", text)
    if f"root=UUID={fs_uuid}" not in text or "vmlinuz" not in text or part in text:
        raise StateError("update-grub wrote no boot entry for the image's kernel by UUID")
    grub_cfg.write_text(text)


def pack_qcow2(root: Path, target: Path, work: Path, size_gb: int) -> None:
    """The tree as a bootable qcow2 disk (BIOS, GRUB, DHCP on the first NIC)."""
    raw = work / "disk.raw"
    try:
        build_disk(root, raw, size_gb)
        _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(target)])
    finally:
        raw.unlink(missing_ok=True)


def pack_vagrant_box(
    root: Path, target: Path, work: Path, size_gb: int, *, user: str, role: str
) -> None:
    """A Vagrant libvirt box: box.img (qcow2), metadata.json, Vagrantfile, as tar.gz."""
    work.mkdir(parents=True, exist_ok=True)
    image = work / "box.img"
    pack_qcow2(root, image, work, size_gb)
    metadata = {"provider": "libvirt", "format": "qcow2", "virtual_size": size_gb}
    with tarfile.open(target, "w:gz") as box:
        for name, text in (
            ("metadata.json", json.dumps(metadata) + "\n"),
            ("Vagrantfile", VAGRANTFILE.format(role=role, user=user)),
        ):
            path = work / name
            path.write_text(text)
            box.add(path, arcname=name)
        box.add(image, arcname="box.img")
    image.unlink(missing_ok=True)
