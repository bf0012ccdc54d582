"""`provision image build|verify` without hosts: manifests, checksums, and bad input refused
before anything is touched."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.access import keys
from provision.cli.main import cli
from provision.errors import InputError
from provision.images import manifest, seal
from provision.settings import Settings, load_settings
from tests.helpers.workspace import REPO


@pytest.fixture
def settings(workspace: Path) -> Settings:
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", workspace / "standards")
    loaded = load_settings(workspace=workspace, environ={})
    keys.generate(loaded)
    return loaded


def fake_image(folder: Path) -> Path:
    image = folder / "lab_pc.qcow2"
    image.write_bytes(b"QFI\xfb" + bytes(range(256)) * 64)
    manifest.manifest_path(image).write_text(
        json.dumps(
            {
                "role": "lab_pc",
                "standard": {"id": "bd-ict-baseline", "version": "2026.1"},
                "sha256": manifest.sha256_of(image),
            }
        )
    )
    return image


def run(settings: Settings, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--workspace", str(settings.workspace), "image", *args])
    return result.exit_code, result.output


def test_verify_accepts_an_untouched_image(settings: Settings, tmp_path: Path) -> None:
    image = fake_image(tmp_path)
    result = manifest.verify_image(image)
    assert result.ok and result.role == "lab_pc" and result.standard_version == "2026.1"
    code, output = run(settings, "verify", str(image))
    assert code == 0 and "matches its manifest" in output


def test_verify_names_the_file_whose_bytes_changed(settings: Settings, tmp_path: Path) -> None:
    image = fake_image(tmp_path)
    data = bytearray(image.read_bytes())
    data[100] ^= 0x01  # one bit, same size
    image.write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match its manifest") as caught:
        manifest.verify_image(image)
    assert caught.value.path == image
    code, output = run(settings, "verify", str(image))
    assert code == 3
    assert output.splitlines()[0] == (
        f"error: {image}: the image does not match its manifest: "
        + output.splitlines()[0].split("manifest: ", 1)[1]
    )


def test_verify_without_a_manifest_says_which_is_missing(
    settings: Settings, tmp_path: Path
) -> None:
    image = fake_image(tmp_path)
    manifest.manifest_path(image).unlink()
    code, output = run(settings, "verify", str(image))
    assert code == 3 and "no manifest beside" in output and str(image) in output


def test_package_list_from_dpkg_query_is_sorted_and_complete() -> None:
    text = "zlib1g\t1:1.2.13.dfsg-1\tamd64\nbash\t5.2.15-2+b7\tamd64\n\nbase-files\t12.4\tamd64\n"
    assert [p["name"] for p in manifest.parse_packages(text)] == ["base-files", "bash", "zlib1g"]
    assert manifest.parse_packages(text)[2] == {
        "name": "zlib1g",
        "version": "1:1.2.13.dfsg-1",
        "architecture": "amd64",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "kiosk", "--format", "qcow2"], "unknown role 'kiosk'"),
        (["--role", "lab_pc", "--format", "iso"], "unknown image format 'iso'"),
    ],
)
def test_bad_input_is_one_clear_line(
    settings: Settings, tmp_path: Path, args: list[str], message: str
) -> None:
    parent = tmp_path / "out"
    parent.mkdir()
    code, output = run(settings, "build", *args, "--out", str(parent / "img"))
    assert code == 3
    assert output.splitlines()[0].startswith("error: ") and message in output.splitlines()[0]
    assert list(parent.iterdir()) == []
    assert not (settings.state_path / "images").exists()


def test_existing_image_is_refused_without_force(settings: Settings, tmp_path: Path) -> None:
    image = tmp_path / "lab_pc.qcow2"
    image.write_bytes(b"mine")
    code, output = run(
        settings, "build", "--role", "lab_pc", "--format", "qcow2", "--out", str(image)
    )
    assert code == 3 and "exists already" in output.splitlines()[0]
    assert image.read_bytes() == b"mine"
    assert not (settings.state_path / "images").exists()


def test_not_root_is_one_clear_line_and_touches_nothing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    parent = tmp_path / "out"
    parent.mkdir()
    code, output = run(
        settings, "build", "--role", "lab_pc", "--format", "tar", "--out", str(parent / "x.tar")
    )
    assert code == 3
    assert output.splitlines()[0].startswith("error: building an image needs root")
    assert list(parent.iterdir()) == []
    assert not (settings.state_path / "images").exists()


def test_seal_takes_out_the_build_host_and_keeps_the_automation_key(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for folder in (
        "etc/ssh/sshd_config.d",
        "etc/network/interfaces.d",
        "etc/apt/apt.conf.d",
        "etc/systemd/system",
        "root/.ssh",
        "home/provision/.ssh",
        "var/log/journal/abc",
        "var/log/apt",
        "var/cache/apt/archives",
        "var/lib/apt/lists/partial",
        "tmp",
    ):
        (root / folder).mkdir(parents=True)
    files = {
        "etc/ssh/ssh_host_ed25519_key": "secret",
        "etc/ssh/ssh_host_ed25519_key.pub": "pub",
        "etc/ssh/sshd_config.d/provision-lab.conf": "HostKey x",
        "etc/network/interfaces.d/host0": "static",
        "etc/apt/apt.conf.d/01proxy": "proxy",
        "etc/machine-id": "0123456789abcdef\n",
        "root/.ssh/authorized_keys": "ssh-ed25519 BUILDKEY provision-lab-control\n",
        "home/provision/.ssh/authorized_keys": "ssh-ed25519 CONTROL provision@node\n",
        "var/log/journal/abc/system.journal": "log",
        "var/log/apt/history.log": "log",
        "var/log/sudo.log": "log",
        "var/cache/apt/archives/x.deb": "deb",
        "var/cache/apt/pkgcache.bin": "bin",
        "var/lib/apt/lists/deb_dists_bookworm_InRelease": "list",
        "tmp/leftover": "x",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    seal.seal_tree(
        root, role="lab_pc", build_key="ssh-ed25519 BUILDKEY provision-lab-control", disk=True
    )
    assert not list((root / "etc/ssh").glob("ssh_host_*"))
    assert (root / "etc/machine-id").read_text() == ""
    for gone in (
        "etc/ssh/sshd_config.d/provision-lab.conf",
        "etc/network/interfaces.d/host0",
        "etc/apt/apt.conf.d/01proxy",
        "root/.ssh/authorized_keys",
        "var/log/sudo.log",
        "var/log/apt/history.log",
        "var/log/journal/abc",
        "var/cache/apt/archives",
        "var/cache/apt/pkgcache.bin",
        "var/lib/apt/lists/deb_dists_bookworm_InRelease",
        "tmp/leftover",
    ):
        assert not (root / gone).exists(), gone
    assert (root / "var/log/journal").is_dir() and (root / "var/log/apt").is_dir()
    assert "CONTROL" in (root / "home/provision/.ssh/authorized_keys").read_text()
    assert (root / "etc/hostname").read_text() == "lab-pc\n"
    assert (root / "etc/systemd/system/ssh.service.wants" / seal.HOST_KEYS_UNIT_NAME).is_symlink()
    assert (
        "HostKey /etc/ssh/ssh_host_ed25519_key"
        in (root / "etc/ssh/sshd_config.d/10-provision-host-keys.conf").read_text()
    )
    assert "DHCP=yes" in (root / "etc/systemd/network/20-provision-dhcp.network").read_text()
    grub = (root / "etc/default/grub.d/50-provision.cfg").read_text()
    # The boot's messages on screen and serial port, the serial port last (/dev/console).
    assert 'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"' in grub
    assert "quiet" not in grub
