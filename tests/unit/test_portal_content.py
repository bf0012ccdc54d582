"""What a portal may publish: content of the workspace only, never the control node's secrets.

Refused at `portal add` with nothing written, and again at `portal deploy` (the
register can be edited by hand) before any certificate is issued: content outside
the workspace, in or around the state directory or the inventories, links that
lead there, files holding a private key, devices and pipes, and archives with
absolute paths, '..', links out of themselves or devices.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from provision.errors import InputError
from provision.portal import PortalRequest, add_portal, load_register, plan_deploy, register_path
from provision.portal import ca as portal_ca
from provision.settings import Settings
from tests.helpers.portal import portal_workspace

REQUEST = PortalRequest(host="portal01", kind="static", content="sites/a", domain="a.gov.bd")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    made = portal_workspace(tmp_path)
    portal_ca.init_ca(made)  # .provision/ca/root.key: what the tester published
    return made


def refused(settings: Settings, content: str, match: str) -> None:
    register = register_path(settings)
    before = register.read_bytes() if register.exists() else None
    with pytest.raises(InputError, match=match) as caught:
        add_portal(settings, replace(REQUEST, content=content))
    assert caught.value.hint
    assert (register.read_bytes() if register.exists() else None) == before


def test_content_outside_the_workspace_is_refused(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "index.html").write_text("x\n")
    refused(settings, "/etc", "outside the workspace")
    refused(settings, "../outside", "outside the workspace")
    refused(settings, str(outside), "outside the workspace")
    # A link in the workspace to a folder outside is outside too.
    (settings.workspace / "sites" / "elsewhere").symlink_to(outside)
    refused(settings, "sites/elsewhere", "outside the workspace")


def test_the_state_directory_and_what_holds_it_are_refused(settings: Settings) -> None:
    refused(settings, ".provision/ca", "holds secrets")
    refused(settings, str(settings.state_path / "ca"), "holds secrets")
    refused(settings, ".provision", "holds secrets")
    refused(settings, ".", "holds")  # the workspace holds the state directory
    refused(settings, "inventories/lab", "holds secrets")
    (settings.workspace / "sites" / "ca").symlink_to(settings.state_path / "ca")
    refused(settings, "sites/ca", "holds secrets")


def test_links_inside_the_content_that_lead_out_are_refused(
    settings: Settings, tmp_path: Path
) -> None:
    site = settings.workspace / "sites" / "a"
    (site / "root.key").symlink_to(settings.state_path / "ca" / "root.key")
    refused(settings, "sites/a", r"sites/a/root.key resolves to .*, inside .*\.provision")
    (site / "root.key").unlink()
    (site / "passwd").symlink_to("/etc/passwd")
    refused(settings, "sites/a", "sites/a/passwd resolves to /etc/passwd, outside the workspace")
    (site / "passwd").unlink()
    (site / "gone").symlink_to(site / "nothing")
    refused(settings, "sites/a", "does not exist")
    (site / "gone").unlink()
    # A link within the workspace is published like the file it points to.
    (site / "b.html").symlink_to(settings.workspace / "sites" / "b" / "index.html")
    (site / "loop").symlink_to(site)
    assert add_portal(settings, replace(REQUEST, content="sites/a")).content == "sites/a"


def test_key_files_and_special_files_are_refused(settings: Settings) -> None:
    site = settings.workspace / "sites" / "a"
    key = site / "backup" / "server.pem"
    key.parent.mkdir()
    # A hard link to the CA key is no link to follow: its contents give it away.
    os.link(settings.state_path / "ca" / "root.key", key)
    refused(settings, "sites/a", "sites/a/backup/server.pem holds a private key")
    key.unlink()
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----")
    refused(settings, "sites/a", "holds a private key")
    key.write_text("$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    refused(settings, "sites/a", "holds a private key or a vaulted secret")
    key.unlink()
    os.mkfifo(site / "pipe")
    refused(settings, "sites/a", "sites/a/pipe is not a regular file")


def _tar(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(_file("index.html", b"ok\n"), io.BytesIO(b"ok\n"))
        for member in members:
            data = io.BytesIO(b"x" * member.size) if member.isfile() else None
            tar.addfile(member, data)
    return path


def _file(name: str, data: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_unsafe_archives_are_refused_at_add(settings: Settings) -> None:
    sites = settings.workspace / "sites"
    device = tarfile.TarInfo("dev/sda")
    device.type = tarfile.BLKTYPE
    for name, member, why in [
        ("abs.tar.gz", _file("/etc/cron.d/x", b""), "unsafe entry '/etc/cron.d/x'"),
        ("up.tar.gz", _file("../../x", b""), "unsafe entry '../../x'"),
        ("link.tar.gz", _link("key", "/etc/shadow"), "unsafe entry 'key'"),
        ("out.tar.gz", _link("key", "../../.provision/ca/root.key"), "unsafe entry 'key'"),
        ("hard.tar.gz", _link("key", "/etc/shadow", tarfile.LNKTYPE), "unsafe entry 'key'"),
        ("dev.tar.gz", device, "unsafe entry 'dev/sda'"),
    ]:
        _tar(sites / name, member)
        refused(settings, f"sites/{name}", why)
    with zipfile.ZipFile(sites / "up.zip", "w") as z:
        z.writestr("index.html", "ok\n")
        z.writestr("../../x", "x")
    refused(settings, "sites/up.zip", "unsafe entry '../../x'")
    with zipfile.ZipFile(sites / "link.zip", "w") as z:
        link = zipfile.ZipInfo("key")
        link.external_attr = 0o120777 << 16
        z.writestr(link, "/etc/shadow")
    refused(settings, "sites/link.zip", "link or a special file")
    key = (settings.state_path / "ca" / "root.key").read_bytes()
    with tarfile.open(sites / "key.tar.gz", "w:gz") as tar:
        tar.addfile(_file("ca.key", key), io.BytesIO(key))
    refused(settings, "sites/key.tar.gz", "ca.key holds a private key")
    (sites / "junk.tar.gz").write_text("not an archive\n")
    refused(settings, "sites/junk.tar.gz", "not a readable archive")
    # A safe archive, with a link inside itself, is accepted.
    _tar(sites / "good.tar.gz", _link("home.html", "index.html"))
    assert add_portal(settings, replace(REQUEST, content="sites/good.tar.gz")).domain == "a.gov.bd"


def test_a_hand_edited_register_is_checked_again_at_deploy(settings: Settings) -> None:
    add_portal(settings, REQUEST)
    register = register_path(settings)
    register.write_text(register.read_text().replace("content: sites/a", "content: .provision/ca"))
    line = load_register(register).portals[0].line
    with pytest.raises(
        InputError, match=r"field 'content' of a\.gov\.bd: .*holds secrets"
    ) as caught:
        plan_deploy(settings, "portal01")
    assert (caught.value.path, caught.value.line) == (register, line)
    # Refused before anything was issued or written for the run.
    assert portal_ca.cert_status(settings, "a.gov.bd") is None
    assert not (settings.state_path / "portal-runs").exists()
