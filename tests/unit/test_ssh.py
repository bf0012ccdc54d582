"""SSH pieces that need no host: known_hosts, sudo's password path, the bootstrap script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.access import bootstrap, keys
from provision.cli.main import cli
from provision.errors import ExitStatus, InputError
from provision.infra import crypto, ssh
from provision.settings import load_settings


def test_known_hosts_records_and_replaces_a_hosts_key(tmp_path: Path) -> None:
    book = ssh.KnownHosts(tmp_path / ".ssh" / "known_hosts")
    first, second = crypto.new_ed25519().public_openssh, crypto.new_ed25519().public_openssh
    assert book.recorded(["gaz-001-lab01", "10.0.0.5"]) == {}
    book.add(["gaz-001-lab01", "10.0.0.5"], first)
    book.add(["other", "10.0.0.6"], second)
    assert book.recorded(["10.0.0.5"]) == {"ssh-ed25519": first}
    book.add(["gaz-001-lab01", "10.0.0.5"], second)
    lines = book.path.read_text().splitlines()
    assert lines == ["other,10.0.0.6 " + second, "gaz-001-lab01,10.0.0.5 " + second]
    # OpenSSH reads the file the same way.
    found = subprocess.run(
        ["ssh-keygen", "-F", "10.0.0.6", "-f", str(book.path)], capture_output=True, text=True
    )
    assert second.split()[1] in found.stdout


class _FakeConnection(ssh.Connection):
    def __init__(self, user: str) -> None:
        self.user = user
        self.calls: list[tuple[str, bytes]] = []

    def run(self, command: str, *, stdin: bytes = b"", timeout: float = 60) -> ssh.CommandResult:
        self.calls.append((command, stdin))
        return ssh.CommandResult(0, "", "")


def test_sudo_password_goes_to_stdin_never_to_argv() -> None:
    conn = _FakeConnection("installer")
    conn.run_as_root("id -u", password="s3cret-installer")
    ((command, stdin),) = conn.calls
    assert "s3cret-installer" not in command
    assert stdin == b"s3cret-installer\n"
    assert command.startswith("sudo -S -p '' -- /bin/sh -c ")
    assert "exec </dev/null" in command  # nothing the command runs can read the password
    root = _FakeConnection("root")
    root.run_as_root("id -u", password="s3cret-installer")
    assert root.calls[0][1] == b""


def test_bootstrap_script_is_valid_shell_with_hostile_looking_input() -> None:
    key = crypto.new_ed25519().public_openssh + ' it\'s "quoted" $(rm -rf /)'
    script = bootstrap.remote_script("provision", key)
    checked = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert "visudo -cf" in script and 'mv -f "$TMP" "$SUDOERS"' in script
    # The drop-in is checked before it is moved into place.
    assert script.index("visudo -cf") < script.index('mv -f "$TMP" "$SUDOERS"')


def test_keys_generate_refuses_to_overwrite(workspace: Path) -> None:
    runner = CliRunner()
    base = ["--workspace", str(workspace), "keys"]
    first = runner.invoke(cli, [*base, "generate"])
    assert first.exit_code == 0, first.output
    settings = load_settings(workspace=workspace, environ={})
    path = keys.key_path(settings)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    before = path.read_bytes()
    again = runner.invoke(cli, [*base, "generate"])
    assert again.exit_code == ExitStatus.BAD_INPUT
    assert "exists already" in again.output and path.read_bytes() == before
    forced = runner.invoke(cli, [*base, "generate", "--force"])
    assert forced.exit_code == 0 and path.read_bytes() != before


def test_unreadable_or_open_key_is_one_clear_error(workspace: Path) -> None:
    settings = load_settings(workspace=workspace, environ={})
    with pytest.raises(InputError, match="no automation key"):
        keys.load(settings)
    path = keys.key_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text("garbage\n")
    path.chmod(0o600)
    with pytest.raises(InputError, match="not an unencrypted OpenSSH or PEM private key"):
        keys.load(settings)
    keys.generate(settings, force=True)
    path.chmod(0o644)
    with pytest.raises(InputError, match="readable by others"):
        keys.load(settings)


def test_bootstrap_refuses_a_password_without_a_terminal(workspace: Path) -> None:
    base = ["--workspace", str(workspace), "bootstrap", "--user", "installer"]
    no_key = CliRunner().invoke(cli, base)
    assert no_key.exit_code == ExitStatus.BAD_INPUT
    assert "no automation key" in no_key.output  # said before any password is asked
    keys.generate(load_settings(workspace=workspace, environ={}))
    done = CliRunner().invoke(cli, base)
    assert done.exit_code == ExitStatus.BAD_INPUT
    assert "must be typed on a terminal or come from a vault file" in done.output


def test_connect_to_a_closed_port_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ssh.SshError) as caught:
        ssh.connect(
            "127.0.0.1",
            host="nowhere",
            user="x",
            password="p",
            known_hosts=tmp_path / "kh",
            port=1,
            timeout=2,
        )
    assert caught.value.kind == "refused"
