"""Packing a disk that fails half-way (an error, Ctrl-C) leaves no mount, loop device,
raw disk or half-written image behind. Needs root and loop devices (no hosts)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from provision.errors import StateError
from provision.images import pack
from provision.lab.machine import mounted_paths

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and mounts need root")


def loops_on(folder: Path) -> list[str]:
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if str(folder) in line]


@pytest.mark.parametrize("failure", [StateError("grub-install failed"), KeyboardInterrupt()])
def test_a_failure_after_mounting_undoes_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    tree = tmp_path / "tree"
    for folder in ("etc", "dev", "proc", "sys", "boot/grub"):
        (tree / folder).mkdir(parents=True)
    (tree / "etc/hostname").write_text("lab-pc\n")
    work = tmp_path / "work"
    target = tmp_path / "image.qcow2"
    real_run = pack._run
    reached: list[str] = []

    def failing_run(argv: list[str], **kwargs: object) -> str:
        if argv[:2] == ["chroot", str(work / "mnt")]:
            # The disk is partitioned, attached, formatted, mounted, filled and
            # the bind mounts are in place: fail here, as grub-install or Ctrl-C would.
            reached.append(str(len([p for p in mounted_paths() if tmp_path in p.parents])))
            raise failure
        return real_run(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pack, "_run", failing_run)
    with pytest.raises(type(failure)):
        pack.pack_qcow2(tree, target, work, size_gb=1)
    assert reached == ["4"]  # root, dev, proc, sys were mounted when it failed
    assert [p for p in mounted_paths() if tmp_path in p.parents] == []
    assert loops_on(tmp_path) == []
    assert not target.exists()
    assert not (work / "disk.raw").exists()


def _filesystem_of(image: Path, work: Path) -> tuple[str, str]:
    """The packed disk's ext4 superblock features and its /boot/grub/grub.cfg, read
    from the qcow2 without mounting it (a mount would replay the journal)."""
    raw = work / "check.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(raw)], check=True)
    loop = subprocess.run(
        ["losetup", "--find", "--show", "--read-only", "--offset", str(2048 * 512), str(raw)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        features = subprocess.run(
            ["dumpe2fs", "-h", loop], capture_output=True, text=True, check=True
        ).stdout
        grub_cfg = subprocess.run(
            ["debugfs", "-R", "cat /boot/grub/grub.cfg", loop],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
    (line,) = [x for x in features.splitlines() if x.startswith("Filesystem features:")]
    return line, grub_cfg


@pytest.mark.slow
def test_a_disk_still_mounted_in_another_namespace_is_converted_only_once_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container starting on the machine while the disk is mounted keeps a copy of
    the mount: the disk is converted only after that copy is gone, whole and clean."""
    tree = tmp_path / "tree"
    for folder in ("etc", "dev", "proc", "sys", "boot/grub"):
        (tree / folder).mkdir(parents=True)
    work = tmp_path / "work"
    mnt = work / "mnt"
    target = tmp_path / "image.qcow2"
    real_run = pack._run
    holders: list[subprocess.Popen[str]] = []

    def run(argv: list[str], **kwargs: object) -> str:
        if argv[:2] != ["chroot", str(mnt)]:
            return real_run(argv, **kwargs)  # type: ignore[arg-type]
        if not holders:
            # Another mount namespace, made now, as systemd-nspawn makes one when a
            # lab host boots; it lets go of its copy of the mount when it exits.
            holder = subprocess.Popen(
                ["unshare", "--mount", "--", "sh", "-c", "echo ready; exec sleep 10"],
                stdout=subprocess.PIPE,
                text=True,
            )
            holders.append(holder)
            assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        return ""

    def grub_cfg(path: Path, part: str, fs_uuid: str) -> None:
        path.write_text(f"linux /vmlinuz root=UUID={fs_uuid}\n")

    monkeypatch.setattr(pack, "_run", run)
    monkeypatch.setattr(pack, "_root_by_uuid", grub_cfg)
    try:
        pack.pack_qcow2(tree, target, work, size_gb=1)
    finally:
        for holder in holders:
            holder.wait(timeout=60)
    features, text = _filesystem_of(target, tmp_path)
    assert "needs_recovery" not in features
    assert "root=UUID=" in text
    assert loops_on(tmp_path) == []
