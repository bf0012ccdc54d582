"""Bundles: the signing key, per role-and-site builds without secrets, reproducible
archives, and every way a bundle is refused, checked with the real ssh-keygen."""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.bundles import build_bundles, init_key, key_info, verify_bundle
from provision.bundles.archive import pack, unpack
from provision.bundles.manifest import MANIFEST, SIGNATURE, Manifest
from provision.bundles.verify import BundleRefused
from provision.cli.main import cli
from provision.errors import InputError, StateError
from provision.settings import Settings, load_settings
from tests.helpers.bundles import CANARY, pull_workspace

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def ws(tmp_path: Path) -> tuple[Settings, str]:
    return pull_workspace(tmp_path)


@pytest.fixture
def settings(ws: tuple[Settings, str]) -> Settings:
    init_key(ws[0])
    return ws[0]


def _members(path: Path) -> dict[str, bytes]:
    return unpack(path.read_bytes())


def _repack(path: Path, members: dict[str, bytes]) -> Path:
    out = path.with_name("changed.tar.gz")
    out.write_bytes(pack(members, 0))
    return out


def test_key_init_is_private_and_refuses_to_replace(ws: tuple[Settings, str]) -> None:
    settings = ws[0]
    with pytest.raises(StateError) as missing:
        key_info(settings)
    assert missing.value.hint == "create one with provision bundle key init"
    info = init_key(settings)
    assert info.key_path.parent == settings.state_path / "ca"
    assert info.key_path.stat().st_mode & 0o777 == 0o600
    before = info.key_path.read_bytes()
    with pytest.raises(StateError, match="already exists"):
        init_key(settings)
    assert info.key_path.read_bytes() == before
    line = info.allowed_signers_path.read_text()
    assert line.startswith('provision-bundle namespaces="provision-bundle" ssh-ed25519 ')
    info.key_path.chmod(0o644)
    with pytest.raises(StateError, match="readable by others"):
        key_info(settings)


def test_key_show_never_prints_the_private_key(settings: Settings) -> None:
    result = CliRunner().invoke(
        cli, ["--workspace", str(settings.workspace), "bundle", "key", "show"]
    )
    assert result.exit_code == 0, result.output
    assert "ssh-ed25519 " in result.output and "SHA256:" in result.output
    private = key_info(settings).key_path.read_text()
    body = [ln for ln in private.splitlines() if ln and not ln.startswith("-----")]
    assert not any(line in result.output for line in body)


def test_build_makes_one_bundle_per_role_and_site(settings: Settings) -> None:
    result = build_bundles(settings, "", now=NOW)
    names = {b.manifest.name: b for b in result.bundles}
    assert set(names) == {"digital_centre_pc.khu_014", "lab_pc.gaz_001", "lab_pc.khu_014"}
    lab = names["lab_pc.khu_014"].manifest
    assert lab.hosts == ("pc1", "pc2") and lab.serial == 1 == result.serial
    assert lab.standard_id == "bd-ict-baseline" and lab.standard_version
    assert lab.not_after == NOW + timedelta(days=30) and lab.built_at == NOW
    members = _members(names["lab_pc.khu_014"].path)
    assert "content/playbooks/lab_pcs.yml" in members
    assert "content/playbooks/roles/lab_pc/tasks/main.yml" in members
    assert "content/playbooks/roles/baseline/defaults/main.yml" in members
    assert "content/playbooks/library/provision_evidence.py" in members
    assert "content/playbooks/compliance.yml" in members
    assert "content/standard/bd-ict-baseline.yml" in members
    assert not any("portal_host" in n or "field_server" in n for n in members)
    for name, digest in lab.files.items():
        assert hashlib.sha256(members[name]).hexdigest() == digest
    # The next build counts on: a PC never goes back to an older serial.
    assert build_bundles(settings, "role:lab_pc", now=NOW).serial == 2


def test_bundle_carries_no_secret_plain_or_encrypted(ws: tuple[Settings, str]) -> None:
    settings, vaulted = ws
    init_key(settings)
    result = build_bundles(settings, "pc1", now=NOW)
    (only,) = result.bundles
    raw = gzip.decompress(only.path.read_bytes())
    assert CANARY.encode() not in raw
    cipher_line = vaulted.splitlines()[1].encode()
    assert cipher_line not in raw and b"$ANSIBLE_VAULT" not in raw
    assert set(only.manifest.withheld) == {"pc1.lab_pc_wifi_psk", "pc1.lab_pc_nested.token"}
    assert b'"plain": "kept"' in _members(only.path)["content/inventory.json"]


def test_same_input_gives_the_same_bytes(settings: Settings, tmp_path: Path) -> None:
    first = build_bundles(settings, "pc3", now=NOW, serial=7, out_dir=tmp_path / "a")
    second = build_bundles(settings, "pc3", now=NOW, serial=7, out_dir=tmp_path / "b")
    assert first.bundles[0].path.read_bytes() == second.bundles[0].path.read_bytes()
    with tarfile.open(first.bundles[0].path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {
        (0, 0, "", "", int(NOW.timestamp()))
    }


def test_a_stock_ssh_keygen_verifies_the_manifest(settings: Settings, tmp_path: Path) -> None:
    (built,) = build_bundles(settings, "pc3", now=NOW).bundles
    members = _members(built.path)
    (tmp_path / "manifest.json.sig").write_bytes(members[SIGNATURE])
    proc = subprocess.run(
        [
            "ssh-keygen", "-Y", "verify", "-f", str(key_info(settings).allowed_signers_path),
            "-I", "provision-bundle", "-n", "provision-bundle",
            "-s", str(tmp_path / "manifest.json.sig"),
        ],
        input=members[MANIFEST],
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_verify_accepts_a_good_bundle_and_refuses_every_bad_one(
    settings: Settings, tmp_path: Path
) -> None:
    (built,) = build_bundles(settings, "pc3", now=NOW).bundles
    signers = key_info(settings).allowed_signers_path
    good = verify_bundle(built.path, signers, now=NOW + timedelta(days=1))
    assert good.name == "lab_pc.gaz_001" and good.serial == 1
    members = _members(built.path)

    changed = dict(members)
    task = "content/playbooks/roles/lab_pc/tasks/main.yml"
    changed[task] = changed[task] + b"\n"
    with pytest.raises(BundleRefused, match="does not match its checksum"):
        verify_bundle(_repack(built.path, changed), signers, now=NOW)

    extra = {**members, "content/playbooks/evil.yml": b"---\n"}
    with pytest.raises(BundleRefused, match="does not list"):
        verify_bundle(_repack(built.path, extra), signers, now=NOW)

    unsigned = {n: d for n, d in members.items() if n != SIGNATURE}
    with pytest.raises(BundleRefused, match="not signed"):
        verify_bundle(_repack(built.path, unsigned), signers, now=NOW)

    manifest = Manifest.from_bytes(members[MANIFEST])
    forged = {**members, MANIFEST: manifest.to_bytes().replace(b'"serial":1', b'"serial":99')}
    with pytest.raises(BundleRefused, match="signature"):
        verify_bundle(_repack(built.path, forged), signers, now=NOW)

    with pytest.raises(BundleRefused, match="expired"):
        verify_bundle(built.path, signers, now=NOW + timedelta(days=31))

    other, _ = pull_workspace(tmp_path / "other")
    other_signers = init_key(other).allowed_signers_path
    with pytest.raises(BundleRefused, match="signature"):
        verify_bundle(built.path, other_signers, now=NOW)

    link = io.BytesIO()
    with tarfile.open(fileobj=link, mode="w:gz") as tar:
        info = tarfile.TarInfo("content/x")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        tar.addfile(info)
    (tmp_path / "link.tar.gz").write_bytes(link.getvalue())
    with pytest.raises(BundleRefused, match="not a regular file"):
        verify_bundle(tmp_path / "link.tar.gz", signers, now=NOW)


def test_clear_errors_before_anything_is_written(ws: tuple[Settings, str]) -> None:
    settings = ws[0]
    with pytest.raises(StateError, match="no bundle signing key") as missing:
        build_bundles(settings, "")
    assert missing.value.hint == "create one with provision bundle key init"
    init_key(settings)
    with pytest.raises(InputError, match="no role 'nothing_here'"):
        build_bundles(settings, "role:nothing_here")
    with pytest.raises(InputError, match="matches no host"):
        build_bundles(settings, "pc9*")
    assert not (settings.state_path / "bundles").exists()


def test_cli_build_and_verify(settings: Settings) -> None:
    base = ["--workspace", str(settings.workspace), "bundle"]
    runner = CliRunner()
    built = runner.invoke(cli, [*base, "build", "site:KHU-014"])
    assert built.exit_code == 0, built.output
    assert "serial 1: 2 bundles" in built.output
    path = next((settings.state_path / "bundles" / "000001").glob("lab_pc.*"))
    checked = runner.invoke(cli, [*base, "verify", str(path)])
    assert checked.exit_code == 0 and "good: lab_pc.khu_014 serial 1" in checked.output
    path.write_bytes(path.read_bytes()[:-20])
    bad = runner.invoke(cli, [*base, "verify", str(path)])
    assert bad.exit_code == 3 and "error:" in bad.output and "Traceback" not in bad.output
    unknown = runner.invoke(cli, [*base, "build", "nosuchhost"])
    assert unknown.exit_code == 3 and "matches no host" in unknown.output
    assert load_settings(workspace=settings.workspace, environ={}).env == "lab"
