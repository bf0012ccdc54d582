"""`provision image seed`: rendered from the standard, checked, written whole or not at all."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from provision.access import keys
from provision.cli.main import cli
from provision.errors import ConfigError, ExitStatus, InputError
from provision.images import seeds
from provision.settings import Settings, load_settings
from provision.standards import load_standard
from tests.helpers.workspace import REPO

STANDARD = REPO / "standards" / "bd-ict-baseline.yml"
HASH = (
    "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/"
    "jctKu9YterLp8wwnB5sZjMDyLw3QMbJzXQdwnIDn9q1"
)


@pytest.fixture
def settings(workspace: Path) -> Settings:
    shutil.copy(STANDARD, workspace / "standards")
    loaded = load_settings(workspace=workspace, environ={})
    keys.generate(loaded)
    return loaded


def invoke(settings: Settings, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["--workspace", str(settings.workspace), "image", "seed", *args]
    )
    return result.exit_code, result.output


def test_debian_preseed_passes_debconf_and_carries_the_standard(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "seed"
    result = seeds.write_seed(settings, seeds.SeedRequest("lab_pc", "debian-12", out))
    text = (out / "preseed.cfg").read_text()
    proc = subprocess.run(
        ["debconf-set-selections", "--checkonly", str(out / "preseed.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and proc.stderr == ""
    answers = seeds.preseed_answers(text)
    assert answers["time/zone"] == ("string", "Asia/Dhaka")
    assert answers["debian-installer/locale"] == ("string", "en_US.UTF-8")
    assert "bn_BD" in answers["localechooser/supported-locales"][1]
    assert answers["passwd/username"] == ("string", "provision")
    assert answers["partman-auto/choose_recipe"] == ("select", "atomic")
    assert "openssh-server" in answers["pkgsel/include"][1]
    assert "python3" in answers["pkgsel/include"][1]
    late = answers["preseed/late_command"][1]
    assert result.values.public_key in late
    assert "/etc/sudoers.d/provision-provision" in late
    assert "visudo -cf" in late
    # No password: the account is key-only; no hash anywhere.
    assert answers["passwd/user-password-crypted"] == ("password", "!")
    assert "$6$" not in text and "$y$" not in text
    assert (out / "preseed.cfg").stat().st_mode & 0o777 == 0o644


def test_server_roles_get_lvm_partitioning(settings: Settings, tmp_path: Path) -> None:
    seeds.write_seed(settings, seeds.SeedRequest("field_server", "debian-12", tmp_path / "s"))
    answers = seeds.preseed_answers((tmp_path / "s" / "preseed.cfg").read_text())
    assert answers["partman-auto/method"] == ("string", "lvm")
    assert answers["partman-auto/choose_recipe"] == ("select", "multi")


def test_ubuntu_user_data_parses_as_cloud_config_with_user_key_and_timezone(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "nocloud"
    result = seeds.write_seed(
        settings, seeds.SeedRequest("portal_host", "ubuntu-24.04", out, site="DHK-GAZ-DC")
    )
    text = (out / "user-data").read_text()
    assert text.splitlines()[0] == "#cloud-config"
    data = yaml.safe_load(text)
    auto = data["autoinstall"]
    assert auto["version"] == 1
    assert auto["timezone"] == "Asia/Dhaka"
    assert auto["storage"]["layout"]["name"] == "lvm"
    assert auto["ssh"] == {"install-server": True, "allow-pw": False}
    assert {"openssh-server", "python3"} <= set(auto["packages"])
    user = seeds.seed_user(data, "provision")
    assert user["ssh_authorized_keys"] == [result.values.public_key]
    assert user["lock_passwd"] is True and "passwd" not in user
    assert any("/etc/sudoers.d/provision-provision" in c for c in auto["late-commands"])
    meta = yaml.safe_load((out / "meta-data").read_text())
    assert meta["local-hostname"] == "dhk-gaz-dc-portal-host"


def test_password_hash_only_when_asked_and_folder_private(
    settings: Settings, tmp_path: Path
) -> None:
    hash_file = tmp_path / "hash"
    hash_file.write_text(HASH + "\n")
    out = tmp_path / "seed"
    seeds.write_seed(
        settings,
        seeds.SeedRequest("lab_pc", "ubuntu-24.04", out, password_hash_file=hash_file),
    )
    user = seeds.seed_user(yaml.safe_load((out / "user-data").read_text()), "provision")
    assert user["passwd"] == HASH and user["lock_passwd"] is False
    assert out.stat().st_mode & 0o777 == 0o700
    assert (out / "user-data").stat().st_mode & 0o777 == 0o600


def test_a_debian_password_hash_is_not_reset_at_the_end_of_the_install(
    settings: Settings, tmp_path: Path
) -> None:
    """The installer sets the hash; the late command must not then replace it with '*'
    (no password): the console login asked for would never work."""
    hash_file = tmp_path / "hash"
    hash_file.write_text(HASH + "\n")
    with_hash = tmp_path / "with-hash"
    seeds.write_seed(
        settings,
        seeds.SeedRequest("lab_pc", "debian-12", with_hash, password_hash_file=hash_file),
    )
    answers = seeds.preseed_answers((with_hash / "preseed.cfg").read_text())
    assert answers["passwd/user-password-crypted"] == ("password", HASH)
    late = answers["preseed/late_command"][1]
    assert "usermod" not in late and "passwd" not in late
    assert "authorized_keys" in late and "visudo -cf" in late  # the rest is still done
    # Without a hash, "!" (locked) becomes "*" (no password, key login only).
    key_only = tmp_path / "key-only"
    seeds.write_seed(settings, seeds.SeedRequest("lab_pc", "debian-12", key_only))
    answers = seeds.preseed_answers((key_only / "preseed.cfg").read_text())
    assert answers["passwd/user-password-crypted"] == ("password", "!")
    assert (
        answers["preseed/late_command"][1]
        .lstrip()
        .startswith("in-target usermod -p '*' provision;")
    )


def test_a_plain_password_is_refused(settings: Settings, tmp_path: Path) -> None:
    hash_file = tmp_path / "hash"
    hash_file.write_text("hunter2\n")
    with pytest.raises(InputError, match="crypt"):
        seeds.write_seed(
            settings,
            seeds.SeedRequest("lab_pc", "debian-12", tmp_path / "s", password_hash_file=hash_file),
        )
    assert not (tmp_path / "s").exists()


def test_a_broken_preseed_is_caught_by_debconf() -> None:
    with pytest.raises(ConfigError, match="debconf-set-selections"):
        seeds.check_preseed("d-i time/zone\n")
    # debconf only warns about an unknown type (exit 0): the warning is caught too.
    with pytest.raises(ConfigError, match="Unknown type strin"):
        seeds.check_preseed("d-i time/zone strin Asia/Dhaka\n")
    with pytest.raises(ConfigError, match="boolean clock-setup/utc is 'yes'"):
        seeds.check_preseed("d-i clock-setup/utc boolean yes\n")


def test_user_data_structure_check_catches_what_the_installer_would_refuse() -> None:
    standard = load_standard(STANDARD)
    values = seeds.seed_values(
        standard,
        role="lab_pc",
        os_release="ubuntu-24.04",
        user="provision",
        public_key="ssh-ed25519 AAAA k",
    )
    good = seeds.render_seed(values)["user-data"]
    seeds.check_user_data(good, values)
    for broken, why in (
        (good.replace("#cloud-config\n", ""), "#cloud-config"),
        (good.replace("version: 1", "version: 2"), "version must be 1"),
        (good.replace("  timezone:", "  time_zone:"), "unknown autoinstall keys"),
        (good.replace("install-server: true", "install-server: false"), "install-server"),
        (good.replace("ssh-ed25519 AAAA k", "ssh-ed25519 BBBB k"), "lacks the control node's key"),
    ):
        with pytest.raises(ConfigError, match=why):
            seeds.check_user_data(broken, values)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "kiosk", "--os", "debian-12"], "unknown role 'kiosk'"),
        (["--role", "lab_pc", "--os", "windows-11"], "unknown OS 'windows-11'"),
        (["--role", "lab_pc", "--os", "debian-12", "--site", "bad site!"], "not a site code"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(
    settings: Settings, tmp_path: Path, args: list[str], message: str
) -> None:
    parent = tmp_path / "out"
    parent.mkdir()
    code, output = invoke(settings, *args, "--out", str(parent / "seed"))
    assert code == 3
    assert output.splitlines()[0].startswith("error: ") and message in output.splitlines()[0]
    assert "Traceback" not in output
    assert list(parent.iterdir()) == []


def test_existing_output_is_refused_without_force_and_replaced_with_it(
    settings: Settings, tmp_path: Path
) -> None:
    parent = tmp_path / "out"
    out = parent / "seed"
    out.mkdir(parents=True)
    (out / "mine.txt").write_text("keep")
    code, output = invoke(settings, "--role", "lab_pc", "--os", "debian-12", "--out", str(out))
    assert code == 3 and "exists already" in output.splitlines()[0]
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    code, output = invoke(
        settings, "--role", "lab_pc", "--os", "debian-12", "--out", str(out), "--force"
    )
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["preseed.cfg"]
    assert sorted(p.name for p in parent.iterdir()) == ["seed"]  # no temporary left


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_force_over_a_file_is_one_clear_error_and_keeps_the_file(
    settings: Settings, tmp_path: Path, kind: str
) -> None:
    """--force replaces an output *folder*; a file (or a symlink) at --out is most
    likely a wrong path: refused (exit 3), left as it was, nothing written beside it."""
    parent = tmp_path / "out"
    parent.mkdir()
    mine = parent / "notes.txt"
    mine.write_text("keep")
    out = mine
    if kind == "symlink":
        out = parent / "seed"
        out.symlink_to(tmp_path)
    code, output = invoke(
        settings, "--role", "lab_pc", "--os", "debian-12", "--out", str(out), "--force"
    )
    assert code == ExitStatus.BAD_INPUT, output
    first = output.splitlines()[0]
    assert first.startswith("error: ") and f"{out} is a {kind}, not a folder" in first
    assert "internal error" not in output and "Traceback" not in output
    assert mine.read_text() == "keep"
    assert sorted(p.name for p in parent.iterdir()) == sorted({mine.name, out.name})


def test_a_failing_check_leaves_nothing_behind(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(files: dict[str, str], values: seeds.SeedValues) -> None:
        raise ConfigError("broken on purpose")

    monkeypatch.setattr(seeds, "check_seed", broken)
    parent = tmp_path / "out"
    parent.mkdir()
    with pytest.raises(ConfigError, match="broken on purpose"):
        seeds.write_seed(settings, seeds.SeedRequest("lab_pc", "debian-12", parent / "s"))
    assert list(parent.iterdir()) == []


def test_no_automation_key_is_one_clear_error(workspace: Path, tmp_path: Path) -> None:
    shutil.copy(STANDARD, workspace / "standards")
    settings = load_settings(workspace=workspace, environ={})
    code, output = invoke(
        settings, "--role", "lab_pc", "--os", "debian-12", "--out", str(tmp_path / "s")
    )
    assert code == 3 and "no automation key" in output
    assert not (tmp_path / "s").exists()
