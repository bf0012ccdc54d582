"""Bootstrap against lab hosts that boot as new machines arrive, verified on the hosts.

This module boots a small lab of its own (two new lab PCs: an installer account
with a password, no automation account, no key, host keys unknown), since it
changes its hosts in ways the shared lab's users must not see.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from socket import create_server

import pexpect
import pytest
import yaml
from click.testing import CliRunner

from provision.access import bootstrap, keys
from provision.cli.main import cli
from provision.errors import ExitStatus, StateError
from provision.infra import crypto, ssh
from provision.lab import service, state
from provision.rollout import RolloutOptions, plan_rollout, run_rollout
from provision.settings import Settings
from tests.helpers.lab import (
    claim_test_subnet,
    lab_settings,
    lab_unavailable_reason,
    release_test_subnet,
)
from tests.helpers.workspace import REPO

pytestmark = pytest.mark.lab

HOSTS = ["dhk-kal-lab01", "dhk-kal-lab02"]

MARK_PLAYBOOK = """\
- name: Prove the automation account works with become
  hosts: all
  gather_facts: false
  tasks:
    - name: Write a file only root may write
      ansible.builtin.copy:
        content: "rolled out\\n"
        dest: /root/provision-rollout-mark
        mode: "0600"
"""


@pytest.fixture(scope="module")
def new_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    subnet = claim_test_subnet()
    settings = lab_settings(tmp_path_factory.mktemp("newlab") / "workspace", subnet)
    try:
        # SSH master connections of this module in a folder of its own (see _close_masters).
        cfg = settings.workspace / "ansible.cfg"
        cfg.write_text(
            cfg.read_text().replace("~/.ansible/cp", str(settings.workspace / ".ssh-masters"))
        )
        service.up(settings, "lab_pc:2@new")
        keys.generate(settings)
        yield settings
    finally:
        service.down(settings)
        release_test_subnet(subnet)


def _lab(settings: Settings) -> state.LabState:
    loaded = state.load(service.LabPaths.of(settings).state_file)
    assert loaded is not None
    return loaded


def _password(settings: Settings) -> str:
    return next(iter(state.installer_passwords(service.LabPaths.of(settings).run_dir).values()))


def _root_of(settings: Settings, host: str) -> Path:
    """The host's live filesystem (its overlay), read from the control node."""
    return service.LabPaths.of(settings).host(host).root


def _as_automation(settings: Settings, host: str, command: str) -> subprocess.CompletedProcess[str]:
    """OpenSSH (not our paramiko code) with the automation key and the recorded host keys."""
    known = keys.known_hosts_path(settings.inventory_path)
    return subprocess.run(
        [
            *("ssh", "-i", str(keys.key_path(settings))),
            *("-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"),
            *("-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "IdentitiesOnly=yes"),
            f"{settings.automation_user}@{_lab(settings).hosts[host].address}",
            command,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _close_masters(settings: Settings) -> None:
    """End Ansible's persistent SSH connections (ControlPersist), so the next run connects
    afresh. A master connection was authenticated against the genuine host and is reused
    without a new host key check until it expires."""
    for socket in (settings.workspace / ".ssh-masters").glob("*"):
        subprocess.run(
            ["ssh", "-O", "exit", "-S", str(socket), "unused"], capture_output=True, check=False
        )


def _make_pristine(settings: Settings, host: str) -> None:
    """Reset `host` to a new machine unless it is one already (a reset takes seconds)."""
    known = keys.known_hosts_path(settings.inventory_path)
    bootstrapped = known.is_file() and host in known.read_text()
    if bootstrapped or "provision:" in (_root_of(settings, host) / "etc/passwd").read_text():
        service.reset_host(settings, host)


def _run(settings: Settings, selection: str, password: str) -> bootstrap.BootstrapResult:
    return bootstrap.bootstrap(
        settings, selection, login_user="installer", password=lambda _h: password, accept_new=True
    )


def test_new_hosts_have_no_key_login_and_unknown_host_keys(new_lab: Settings) -> None:
    known = keys.known_hosts_path(new_lab.inventory_path)
    text = known.read_text() if known.is_file() else ""
    for host in HOSTS:
        assert host not in text
        assert not (_root_of(new_lab, host) / "root/.ssh/authorized_keys").exists()
        assert "installer:" in (_root_of(new_lab, host) / "etc/passwd").read_text()
    assert {h.name: h.systemd for h in service.status(new_lab)} == dict.fromkeys(
        HOSTS, "awaiting bootstrap"
    )
    with pytest.raises(StateError, match="awaiting bootstrap"):
        service.ssh_command(new_lab, HOSTS[0], ["true"])


def test_bootstrap_then_rollout_with_the_key_alone_then_nothing_to_do(
    new_lab: Settings, tmp_path: Path
) -> None:
    first = _run(new_lab, "role:lab_pc", _password(new_lab))
    assert first.exit_status == ExitStatus.SUCCESS, first.hosts
    lab = _lab(new_lab)
    for result in first.hosts:
        assert result.outcome == "bootstrapped" and result.first_contact
        assert {"account", "key", "sudo", "inventory"} <= set(result.changes)
        # The key recorded is the host's real key, as the lab wrote it into the host.
        assert result.fingerprint == crypto.fingerprint(lab.hosts[result.host].host_key)

    for host in HOSTS:
        # On the host itself, through OpenSSH: key login as the automation account, sudo.
        done = _as_automation(new_lab, host, "sudo -n id -un && sudo -n visudo -c")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == "root"
        root = _root_of(new_lab, host)
        drop_in = root / "etc/sudoers.d/provision-provision"
        assert drop_in.stat().st_mode & 0o777 == 0o440
        assert "provision ALL=(ALL:ALL) NOPASSWD: ALL" in drop_in.read_text()
        assert not list((root / "etc/sudoers.d").glob(".provision.*"))  # no temp left
        home = root / "home/provision/.ssh"
        assert home.stat().st_mode & 0o777 == 0o700
        assert (home / "authorized_keys").stat().st_mode & 0o777 == 0o600
        assert keys.load(new_lab).public_key in (home / "authorized_keys").read_text()

    # A rollout now logs in with the key alone (root has no key on these hosts).
    playbook = tmp_path / "mark.yml"
    playbook.write_text(MARK_PLAYBOOK)
    plan = plan_rollout(new_lab, RolloutOptions(str(playbook), "role:lab_pc"))
    rolled = run_rollout(new_lab, plan)
    assert {h: r.outcome for h, r in rolled.results.items()} == dict.fromkeys(HOSTS, "changed")
    for host in HOSTS:
        assert (
            _root_of(new_lab, host) / "root/provision-rollout-mark"
        ).read_text() == "rolled out\n"
        journal = _as_automation(new_lab, host, "sudo -n journalctl -u ssh --no-pager")
        assert "Accepted publickey for provision" in journal.stdout

    # `lab ssh` reaches a bootstrapped new machine as the automation account.
    argv = service.ssh_command(new_lab, HOSTS[0], ["sudo", "-n", "id", "-un"])
    assert subprocess.run(argv, capture_output=True, text=True, check=True).stdout == "root\n"
    assert {h.name: h.systemd for h in service.status(new_lab)} == dict.fromkeys(
        HOSTS, "bootstrapped"
    )

    drop_in = _root_of(new_lab, HOSTS[0]) / "etc/sudoers.d/provision-provision"
    before = drop_in.stat().st_mtime_ns
    again = _run(new_lab, "role:lab_pc", "not even needed: the key already works")
    assert [(h.outcome, h.changes) for h in again.hosts] == [("unchanged", ())] * 2
    assert drop_in.stat().st_mtime_ns == before


def test_a_swapped_host_key_is_refused_by_bootstrap_and_rollout(new_lab: Settings) -> None:
    host = HOSTS[1]
    recorded = crypto.fingerprint(_lab(new_lab).hosts[host].host_key)
    if _as_automation(new_lab, host, "true").returncode != 0:
        assert _run(new_lab, host, _password(new_lab)).exit_status == ExitStatus.SUCCESS
    impostor = crypto.new_ed25519()
    crypto.write_private_key(_root_of(new_lab, host) / "etc/ssh/ssh_host_ed25519_key", impostor)
    # sshd reads its host keys afresh for each connection: the swap is live at once.
    try:
        refused = _run(new_lab, host, _password(new_lab))
        (result,) = refused.hosts
        assert result.outcome == "failed" and result.problem == "host_key_mismatch"
        assert refused.exit_status == ExitStatus.BAD_INPUT
        assert host in result.message and recorded in result.message
        assert crypto.fingerprint(impostor.public_openssh) in result.message

        _close_masters(new_lab)
        rolled = run_rollout(new_lab, plan_rollout(new_lab, RolloutOptions("ping.yml", host)))
        assert rolled.results[host].outcome == "unreachable"
        # The same words under either strategy (rollout/hostkey.py), with what to do.
        message = rolled.results[host].message or ""
        assert message.startswith("host key refused") and "provision bootstrap" in message
    finally:
        service.reset_host(new_lab, host)  # pristine again, its bootstrap forgotten


def test_first_contact_shows_the_real_key_and_a_refusal_sends_nothing(new_lab: Settings) -> None:
    host = HOSTS[1]
    _make_pristine(new_lab, host)
    offers: list[ssh.HostKeyOffer] = []

    def decline(offer: ssh.HostKeyOffer) -> bool:
        offers.append(offer)
        return False

    result = bootstrap.bootstrap(
        new_lab, host, login_user="installer", password=lambda _h: _password(new_lab), trust=decline
    )
    (one,) = result.hosts
    assert (one.outcome, one.problem) == ("failed", "host_key_unknown")
    assert result.exit_status == ExitStatus.BAD_INPUT
    (offer,) = offers  # asked once, with the key the lab wrote into the host
    assert offer.fingerprint == crypto.fingerprint(_lab(new_lab).hosts[host].host_key)
    known = keys.known_hosts_path(new_lab.inventory_path)
    assert host not in known.read_text()
    assert "provision:" not in (_root_of(new_lab, host) / "etc/passwd").read_text()


def test_wrong_installer_password_leaves_the_host_untouched(new_lab: Settings) -> None:
    host = HOSTS[1]
    _make_pristine(new_lab, host)
    result = _run(new_lab, host, "wrong-password")
    (one,) = result.hosts
    assert (one.outcome, one.problem) == ("failed", "auth_failed")
    assert result.exit_status == ExitStatus.BAD_INPUT
    assert "refused the password for user installer" in one.message
    assert "wrong-password" not in one.message
    # The host key was seen and recorded in this run: the failed host's entry says so.
    assert one.first_contact
    assert one.fingerprint == crypto.fingerprint(_lab(new_lab).hosts[host].host_key)
    root = _root_of(new_lab, host)
    assert "provision:" not in (root / "etc/passwd").read_text()
    assert not (root / "etc/sudoers.d/provision-provision").exists()
    assert not keys.connection_vars_path(new_lab.inventory_path, host).exists()


def test_a_host_that_is_down_is_unreachable(new_lab: Settings) -> None:
    host = HOSTS[1]
    service.stop_host(new_lab, host)
    try:
        result = bootstrap.bootstrap(
            new_lab,
            host,
            login_user="installer",
            password=lambda _h: _password(new_lab),
            accept_new=True,
            timeout=2,
        )
        (one,) = result.hosts
        assert one.outcome == "unreachable", one
        assert result.exit_status == ExitStatus.HOSTS_UNREACHABLE
    finally:
        service.start_host(new_lab, host)


def _bootstrapped(settings: Settings, host: str) -> None:
    if _as_automation(settings, host, "sudo -n true").returncode != 0:
        assert _run(settings, host, _password(settings)).exit_status == ExitStatus.SUCCESS


def _cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
    env.update(
        PROVISION_WORKSPACE=str(settings.workspace),
        PROVISION_STATE_DIR=str(settings.state_path),
        PROVISION_LAB_SUBNET=settings.lab_subnet,
        PYTHONPATH=str(REPO),
    )
    return env


def _on_a_terminal(settings: Settings, *args: str) -> pexpect.spawn:
    """`provision ARGS` on a terminal of its own (a pty), as a person runs it."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "provision", *args],
        env=_cli_env(settings),
        encoding="utf-8",
        timeout=180,
        dimensions=(50, 250),
    )


def test_no_password_is_asked_when_every_host_takes_the_key(new_lab: Settings) -> None:
    for host in HOSTS:
        _bootstrapped(new_lab, host)
    child = _on_a_terminal(new_lab, "bootstrap", "role:lab_pc", "--user", "installer")
    seen = child.expect(["password of installer", pexpect.EOF])
    output = child.before
    child.close(force=True)
    assert seen == 1, f"asked for a password no host needs: {output}"
    assert child.exitstatus == ExitStatus.SUCCESS, output
    assert output.count(": unchanged") == len(HOSTS), output


def test_progress_lines_wait_for_a_trust_question_being_asked(
    new_lab: Settings, tmp_path: Path
) -> None:
    """Two hosts at once: a new one whose key is being asked about, and one that fails
    while the question waits for its answer. The failure's line comes after the
    answer, not into the question."""
    folder = new_lab.workspace / "inventories" / "prompt"
    folder.mkdir(parents=True)
    with create_server(("127.0.0.1", 0)) as silent:
        hosts = {
            HOSTS[0]: {"ansible_host": _lab(new_lab).hosts[HOSTS[0]].address},
            "silent-host": {"ansible_host": "127.0.0.1", "ansible_port": silent.getsockname()[1]},
        }
        (folder / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
        child = _on_a_terminal(
            new_lab, "--env", "prompt", "bootstrap", "--user", "installer", "--timeout", "120"
        )
        try:
            if child.expect(["password of installer: ", "Trust this key and record it"]) == 0:
                child.sendline(_password(new_lab))  # asked first before the fix: answer it
                child.expect("Trust this key and record it")
            child.expect(re.escape("[y/N]: "))
            # The question is on the screen; now the silent host fails: its server
            # closes the connection before greeting.
            silent.settimeout(120)
            connection, _ = silent.accept()
            connection.close()
            assert child.expect(["silent-host", pexpect.TIMEOUT], timeout=10) == 1, (
                f"a progress line was printed into the question: {child.before!r}"
            )
            child.sendline("n")
            child.expect(pexpect.EOF)
            after = child.before
        finally:
            child.close(force=True)
            shutil.rmtree(folder)
    assert re.search(rf"{HOSTS[0]}: failed .*not accepted", after), after
    assert "silent-host: unreachable" in after or "silent-host: failed" in after, after
    assert child.exitstatus == ExitStatus.BAD_INPUT  # the declined key


def test_an_installer_without_sudo_is_a_host_failure_and_keeps_the_key_seen(
    new_lab: Settings, tmp_path: Path
) -> None:
    """SSH takes the password, the host does not let that account use sudo: exit 4
    (some hosts failed), not 3; the --json entry keeps the key recorded in the run."""
    host = HOSTS[1]
    _make_pristine(new_lab, host)
    root = _root_of(new_lab, host)
    group = root / "etc/group"
    text = group.read_text()
    assert re.search(r"^sudo:[^:]*:[^:]*:.*installer", text, re.M)
    group.write_text(re.sub(r"^(sudo:[^:]*:[^:]*:).*$", r"\1", text, flags=re.M))
    vault_pass = tmp_path / "vault-pass"
    vault_pass.write_text("vault-pass-bootstrap\n")
    vault = tmp_path / "installer.yml"
    vault.write_bytes(
        crypto.vault_encrypt(
            f"installer_password: {_password(new_lab)}\n".encode(), "vault-pass-bootstrap"
        )
    )
    try:
        done = CliRunner().invoke(
            cli,
            [
                *("--workspace", str(new_lab.workspace), "bootstrap", host),
                *("--user", "installer", "--accept-new", "--json"),
                *("--password-vault", str(vault), "--vault-password-file", str(vault_pass)),
            ],
        )
        assert done.exit_code == ExitStatus.HOSTS_FAILED, done.output
        (entry,) = json.loads(done.stdout)["hosts"]
        assert (entry["outcome"], entry["problem"]) == ("failed", "sudo_refused"), entry
        assert "may not use sudo" in entry["message"]
        assert entry["first_contact"] is True
        assert entry["fingerprint"] == crypto.fingerprint(_lab(new_lab).hosts[host].host_key)
        assert "provision:" not in (root / "etc/passwd").read_text()  # nothing was set up
    finally:
        service.reset_host(new_lab, host)
