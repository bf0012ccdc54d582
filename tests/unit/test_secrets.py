"""Vault files, password sources, edit, and a run that uses a secret without leaking it."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.access import secrets
from provision.cli.main import cli
from provision.errors import ExitStatus, InputError
from provision.infra import crypto, runner
from provision.infra.runner import tool_path
from tests.helpers.local import LOCAL

CANARY = "canary-7f3a9c2e51d04b8e"
PASSWORD = "vault-pass-0b5e6d1c"


@pytest.fixture
def pass_file(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def test_password_from_file_and_from_client_script(tmp_path: Path, pass_file: Path) -> None:
    assert secrets.read_password(pass_file) == PASSWORD
    client = tmp_path / "vault-client"
    client.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    client.chmod(0o700)
    assert secrets.read_password(client) == PASSWORD
    failing = tmp_path / "failing-client"
    failing.write_text("#!/bin/sh\necho 'keyring locked' >&2\nexit 4\n")
    failing.chmod(0o700)
    with pytest.raises(InputError, match="exited 4: keyring locked"):
        secrets.read_password(failing)
    with pytest.raises(InputError, match="cannot read the vault password file"):
        secrets.read_password(tmp_path / "missing")


def test_encrypt_view_rekey_decrypt_round_trip(tmp_path: Path, pass_file: Path) -> None:
    target = tmp_path / "vault.yml"
    target.write_text(f"canary: {CANARY}\n")
    target.chmod(0o640)
    secrets.encrypt_file(target, PASSWORD)
    assert CANARY not in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the mode is kept
    with pytest.raises(InputError, match="encrypted already"):
        secrets.encrypt_file(target, PASSWORD)
    assert secrets.view(target, PASSWORD) == f"canary: {CANARY}\n".encode()
    secrets.rekey(target, PASSWORD, "new-pass")
    with pytest.raises(InputError, match="password is wrong"):
        secrets.view(target, PASSWORD)
    # ansible-vault opens the rekeyed file with the new password.
    new_pass = tmp_path / "new-pass"
    new_pass.write_text("new-pass\n")
    shown = subprocess.run(
        [
            str(tool_path("ansible-vault")),
            "view",
            str(target),
            "--vault-password-file",
            str(new_pass),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert CANARY in shown.stdout
    secrets.decrypt_file(target, "new-pass")
    assert target.read_text() == f"canary: {CANARY}\n"


def test_edit_uses_a_private_file_that_is_gone_afterwards(tmp_path: Path) -> None:
    target = tmp_path / "vault.yml"
    target.write_bytes(crypto.vault_encrypt(b"a: 1\n", PASSWORD))
    seen: dict[str, object] = {}

    def editor(argv: list[str]) -> int:
        scratch = Path(argv[-1])
        seen["path"] = scratch
        seen["mode"] = stat.S_IMODE(scratch.stat().st_mode)
        seen["dir_mode"] = stat.S_IMODE(scratch.parent.stat().st_mode)
        seen["text"] = scratch.read_text()
        scratch.write_text("a: 2\n")
        return 0

    result = secrets.edit(target, PASSWORD, ["fake-editor"], run=editor)
    assert result.changed and not result.created
    assert seen["text"] == "a: 1\n"
    assert (seen["mode"], seen["dir_mode"]) == (0o600, 0o700)
    scratch = seen["path"]
    assert isinstance(scratch, Path) and not scratch.exists() and not scratch.parent.exists()
    if Path("/dev/shm").is_dir():
        assert str(scratch).startswith("/dev/shm/")
    assert secrets.view(target, PASSWORD) == b"a: 2\n"
    unchanged = secrets.edit(target, PASSWORD, ["fake-editor"], run=lambda argv: 0)
    before = target.read_bytes()
    assert not unchanged.changed and target.read_bytes() == before


def test_edit_and_rekey_keep_the_files_mode_whatever_the_umask(tmp_path: Path) -> None:
    """A vars file shared with a group (0640) or readable by all (0644) keeps its mode
    when edited or rekeyed by someone whose umask is 077."""
    target = tmp_path / "vault.yml"
    target.write_bytes(crypto.vault_encrypt(b"a: 1\n", PASSWORD))
    previous = os.umask(0o077)
    try:
        for mode in (0o644, 0o640):
            target.chmod(mode)

            def editor(argv: list[str], text: str = f"a: {mode}\n") -> int:
                Path(argv[-1]).write_text(text)
                return 0

            assert secrets.edit(target, PASSWORD, ["fake-editor"], run=editor).changed
            assert stat.S_IMODE(target.stat().st_mode) == mode
            secrets.rekey(target, PASSWORD, PASSWORD)
            assert stat.S_IMODE(target.stat().st_mode) == mode
        assert secrets.view(target, PASSWORD) == f"a: {0o640}\n".encode()
    finally:
        os.umask(previous)


def test_a_failing_editor_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "vault.yml"
    target.write_bytes(crypto.vault_encrypt(b"a: 1\n", PASSWORD))
    before = target.read_bytes()

    def editor(argv: list[str]) -> int:
        Path(argv[-1]).write_text("half: done\n")
        return 1

    with pytest.raises(InputError, match="editor exited 1"):
        secrets.edit(target, PASSWORD, ["fake-editor"], run=editor)
    assert target.read_bytes() == before


def test_password_file_is_in_memory_private_and_gone_afterwards() -> None:
    with secrets.password_file(PASSWORD) as path:
        assert path.read_text() == PASSWORD + "\n"
        held = path.stat()
        assert stat.S_IMODE(held.st_mode) == 0o600
        # An anonymous memory file: on no file system, so on no disk and in no folder.
        assert path.parent == Path(f"/proc/{os.getpid()}/fd")
        assert str(path.readlink()).startswith("/memfd:provision-vault")
    after = path.stat() if path.exists() else None
    assert after is None or (after.st_dev, after.st_ino) != (held.st_dev, held.st_ino)


def test_password_file_falls_back_to_a_private_tmpfs_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(secrets, "_memory_file", lambda _password: None)
    with secrets.password_file(PASSWORD) as path:
        assert path.read_text() == PASSWORD + "\n"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not path.exists() and not path.parent.exists()


def test_a_killed_process_leaves_no_password_behind(tmp_path: Path) -> None:
    """SIGKILL runs no cleanup: the password must not be in a file that outlives it."""
    script = (
        "import sys, time\n"
        "from provision.access import secrets\n"
        f"with secrets.password_file({PASSWORD!r}) as path:\n"
        "    print(path, flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        shown = Path(proc.stdout.readline().strip())
        assert shown.read_text() == PASSWORD + "\n"  # Ansible, a child, could read it
    finally:
        proc.kill()
        proc.wait()
    assert not shown.exists()
    for root in secrets.PRIVATE_TMP_ROOTS:
        if root.is_dir():
            for path in root.rglob("*"):
                with contextlib.suppress(OSError):
                    assert PASSWORD.encode() not in path.read_bytes(), path


def test_cli_round_trip_and_wrong_password_is_one_line(
    workspace: Path, tmp_path: Path, pass_file: Path
) -> None:
    target = tmp_path / "vault.yml"
    target.write_text(f"canary: {CANARY}\n")
    cli_runner = CliRunner()
    base = ["--workspace", str(workspace), "secrets"]
    done = cli_runner.invoke(
        cli, [*base, "encrypt", str(target), "--vault-password-file", str(pass_file)]
    )
    assert done.exit_code == 0, done.output
    assert crypto.is_vault(target.read_bytes())
    shown = cli_runner.invoke(
        cli, [*base, "view", str(target), "--vault-password-file", str(pass_file)]
    )
    assert shown.exit_code == 0 and CANARY in shown.output
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    before = target.read_bytes()
    refused = cli_runner.invoke(
        cli, [*base, "decrypt", str(target), "--vault-password-file", str(wrong)]
    )
    assert refused.exit_code == ExitStatus.BAD_INPUT
    assert "vault password is wrong" in refused.output
    assert "Traceback" not in refused.output
    assert target.read_bytes() == before


def test_rekey_checks_the_old_password_before_asking_for_the_new_one(
    workspace: Path, tmp_path: Path, pass_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provision.cli import console

    target = tmp_path / "vault.yml"
    target.write_bytes(crypto.vault_encrypt(b"a: 1\n", PASSWORD))
    before = target.read_bytes()
    base = ["--workspace", str(workspace), "secrets", "rekey", str(target)]
    monkeypatch.setattr(console, "is_interactive", lambda: True)  # a person at the prompt
    typed = CliRunner().invoke(
        cli, [*base, "--ask-vault-pass"], input="mistyped\nnew-pass\nnew-pass\n"
    )
    assert typed.exit_code == ExitStatus.BAD_INPUT, typed.output
    assert "vault password is wrong" in typed.output
    assert "New vault password" not in typed.output  # not asked: the old one was wrong
    assert target.read_bytes() == before


def test_rekey_without_a_terminal_names_the_new_password_option(
    workspace: Path, tmp_path: Path, pass_file: Path
) -> None:
    target = tmp_path / "vault.yml"
    target.write_bytes(crypto.vault_encrypt(b"a: 1\n", PASSWORD))
    before = target.read_bytes()
    done = CliRunner().invoke(
        cli,
        [
            *("--workspace", str(workspace), "secrets", "rekey", str(target)),
            *("--vault-password-file", str(pass_file)),
        ],
    )
    assert done.exit_code == ExitStatus.BAD_INPUT, done.output
    first = done.output.splitlines()[0]
    assert first.startswith("error: no new vault password")
    assert "--new-vault-password-file" in done.output
    assert "no vault_password_file is set" not in done.output  # it was given, and it is fine
    assert target.read_bytes() == before


def test_setting_names_a_client_script(workspace: Path, tmp_path: Path) -> None:
    client = workspace / "vault-client"
    client.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    client.chmod(0o700)
    (workspace / "provision.yml").write_text("---\nenv: lab\nvault_password_file: vault-client\n")
    target = tmp_path / "vault.yml"
    target.write_bytes(crypto.vault_encrypt(f"canary: {CANARY}\n".encode(), PASSWORD))
    shown = CliRunner().invoke(cli, ["--workspace", str(workspace), "secrets", "view", str(target)])
    assert shown.exit_code == 0, shown.output
    assert CANARY in shown.output


PLAYBOOK = """\
- name: Use a vaulted secret
  hosts: all
  gather_facts: false
  vars_files:
    - secret.yml
  tasks:
    - name: Write the secret where the test can see it was decrypted
      ansible.builtin.copy:
        content: "{{ canary }}"
        dest: "{{ marker_path }}"
        mode: "0600"
      no_log: true
"""


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.slow
@pytest.mark.parametrize("source", ["prompted", "client"])
def test_a_run_uses_the_vault_and_leaves_no_trace(
    workspace: Path, tmp_path: Path, source: str
) -> None:
    """The canary is decrypted on the host, and found in no file of the state directory."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "use_secret.yml").write_text(PLAYBOOK)
    (project / "secret.yml").write_bytes(
        crypto.vault_encrypt(f"canary: {CANARY}\n".encode(), PASSWORD)
    )
    marker = tmp_path / "marker"
    state = workspace / ".provision"

    def run(password_file: Path) -> runner.PlaybookResult:
        return runner.run_playbook(
            project / "use_secret.yml",
            workspace=workspace,
            private_data_dir=runner.new_run_dir(state, "canary"),
            inventory=LOCAL,
            extravars={"marker_path": str(marker)},
            vault_password_file=password_file,
        )

    if source == "prompted":
        with secrets.password_file(PASSWORD) as path:
            result = run(path)
        assert not path.exists()
    else:
        client = tmp_path / "vault-client"
        client.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
        client.chmod(0o700)
        result = run(client)
    assert result.ok, result
    assert marker.read_text() == CANARY  # the secret really was decrypted and used
    files = _all_files(state)
    assert any(p.name == "command" for p in files)  # the artifacts we search are there
    for path in files:
        data = path.read_bytes()
        assert CANARY.encode() not in data, path
        assert PASSWORD.encode() not in data, path
    assert os.environ.get("ANSIBLE_VAULT_PASSWORD") is None


def test_vault_for_run_prefers_a_typed_password_then_the_setting(workspace: Path) -> None:
    from provision.settings import load_settings

    plain = load_settings(workspace=workspace, environ={})
    with secrets.vault_for_run(plain) as none:
        assert none is None
    with secrets.vault_for_run(plain, PASSWORD) as typed:
        assert typed is not None and typed.read_text() == PASSWORD + "\n"
    assert not typed.exists()
    configured = load_settings(
        workspace=workspace, environ={"PROVISION_VAULT_PASSWORD_FILE": "vault-client"}
    )
    with pytest.raises(InputError, match="does not exist"), secrets.vault_for_run(configured):
        pass
    (workspace / "vault-client").write_text(PASSWORD + "\n")
    with secrets.vault_for_run(configured) as source:
        assert source == workspace / "vault-client"


def test_a_typed_password_is_checked_against_the_selected_hosts_vaulted_values(
    workspace: Path,
) -> None:
    from provision.settings import load_settings

    folder = workspace / "inventories" / "lab"
    (folder / "host_vars").mkdir(parents=True)
    (folder / "hosts.yml").write_text(
        "all:\n  hosts:\n    h1: {ansible_host: 10.0.0.1}\n    h2: {ansible_host: 10.0.0.2}\n"
    )
    sealed = crypto.vault_encrypt(CANARY.encode(), PASSWORD).decode()
    (folder / "host_vars" / "h2.yml").write_text(
        "---\nportal:\n  db_password: !vault |\n"
        + "".join(f"    {line}\n" for line in sealed.splitlines())
    )
    settings = load_settings(workspace=workspace, environ={})
    assert secrets.check_password(settings, ["h1"], "anything") == 0  # nothing vaulted there
    assert secrets.check_password(settings, ["h1", "h2"], PASSWORD) == 1
    with pytest.raises(
        InputError, match=r"does not open 'portal\.db_password' of host h2"
    ) as caught:
        secrets.check_password(settings, ["h2"], "wrong-password")
    assert CANARY not in str(caught.value) and "wrong-password" not in str(caught.value)
