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
