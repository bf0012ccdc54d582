"""A vaulted secret used on lab hosts, and found nowhere under the state directory.

The canary travels as an inline `!vault` value in the host's variables (the form
provision keeps encrypted when it resolves an inventory slice) and the vault
password as a file name only: a prompted password through
`secrets.password_file` (0600 on a tmpfs, removed after the run), or a client
script. The playbook writes the secret on the host (checked there), then every
file under the state directory, the run's artifacts included, is searched for
the canary and for the password.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from provision.access import secrets
from provision.infra import crypto, runner
from provision.inventory import load_inventory, slice_inventory
from tests.helpers.lab import Lab
from tests.helpers.secret_search import assert_in_no_file, files_under

pytestmark = pytest.mark.lab

CANARY = "canary-lab-3d8f0a61c2b94e57"
PASSWORD = "vault-pass-lab-9e27c4d1"
HOST = "dhk-kal-lab01"

PLAYBOOK = """\
- name: Use a vaulted variable on the host
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the secret where only root can read it
      ansible.builtin.copy:
        content: "{{ provision_test_canary }}"
        dest: /root/provision-canary
        mode: "0600"
      no_log: true
"""


def _disks(lab: Lab) -> Path:
    """Where the lab hosts' own disks live, under the state directory: where the secret
    is meant to arrive, so left out of the search."""
    return lab.settings.state_path / "lab" / "hosts"


def _files(lab: Lab) -> list[Path]:
    """Every file of the control node's state but the lab hosts' disks."""
    return files_under(lab.settings.state_path, skip=_disks(lab))


def _vaulted_host_var(lab: Lab, variable: str) -> Path:
    """Write `variable: <the canary, vault-encrypted>` into the host's host_vars."""
    sealed = crypto.vault_encrypt(CANARY.encode(), PASSWORD).decode()
    host_vars = lab.inventory / "host_vars" / HOST
    host_vars.mkdir(parents=True, exist_ok=True)
    canary_vars = host_vars / "canary.yml"
    canary_vars.write_text(
        f"---\n{variable}: !vault |\n" + "".join(f"  {line}\n" for line in sealed.splitlines())
    )
    return canary_vars


def _vault_client(folder: Path, password: str = PASSWORD, name: str = "vault-client") -> Path:
    """A vault password client script that prints `password`."""
    client = folder / name
    client.write_text(f"#!/bin/sh\necho '{password}'\n")
    client.chmod(0o700)
    return client


@pytest.mark.parametrize("source", ["prompted", "client"])
def test_vaulted_secret_reaches_the_host_and_no_file_of_the_run(
    lab: Lab, tmp_path: Path, source: str
) -> None:
    loaded = load_inventory(lab.inventory)
    inventory = slice_inventory(loaded.inventory, [HOST], loaded.folder)
    sealed = crypto.vault_encrypt(CANARY.encode(), PASSWORD).decode()
    inventory["all"]["hosts"][HOST]["provision_test_canary"] = {"__ansible_vault": sealed}
    playbook = tmp_path / "canary.yml"
    playbook.write_text(PLAYBOOK)

    def run(password_file: Path) -> runner.PlaybookResult:
        return runner.run_playbook(
            playbook,
            workspace=lab.settings.workspace,
            private_data_dir=runner.new_run_dir(lab.settings.state_path, "canary"),
            inventory=inventory,
            vault_password_file=password_file,
        )

    if source == "prompted":
        with secrets.password_file(PASSWORD) as path:
            result = run(path)
        assert not path.exists()
    else:
        client = _vault_client(tmp_path)
        result = run(client)
    try:
        assert result.ok, result
        # On the host itself: the secret arrived decrypted.
        assert lab.ssh(HOST, "cat /root/provision-canary") == CANARY
        files = _files(lab)
        assert any(p.name == "command" for p in files)  # the run's artifacts are searched
        assert_in_no_file([lab.settings.state_path], CANARY, PASSWORD, skip=_disks(lab))
        assert PASSWORD not in "".join(os.environ.values())
    finally:
        lab.ssh(HOST, "rm -f /root/provision-canary")


def test_vaulted_secret_through_a_rollout_stays_out_of_state_and_store(
    lab: Lab, tmp_path: Path
) -> None:
    """The same canary through `provision rollout`: the run's artifacts, its store
    rows (SQLite in the state directory) and every other state file stay clean."""
    from provision.rollout import RolloutOptions, plan_rollout, run_rollout

    canary_vars = _vaulted_host_var(lab, "provision_test_canary")
    client = _vault_client(tmp_path)
    playbook = tmp_path / "canary.yml"
    playbook.write_text(PLAYBOOK)
    settings = replace(lab.settings, vault_password_file=str(client))
    try:
        plan = plan_rollout(settings, RolloutOptions(str(playbook), HOST))
        result = run_rollout(settings, plan)
        assert [r.outcome for r in result.results.values()] in (["changed"], ["ok"]), result
        assert lab.ssh(HOST, "cat /root/provision-canary") == CANARY
        files = _files(lab)
        assert any(p.name.startswith("state.db") for p in files)  # the store is searched
        assert_in_no_file([lab.settings.state_path], CANARY, PASSWORD, skip=_disks(lab))
    finally:
        canary_vars.unlink()
        lab.ssh(HOST, "rm -f /root/provision-canary")


def test_ask_vault_pass_on_the_command_line_leaves_no_trace(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`provision rollout … --ask-vault-pass`: the typed password is not echoed, opens
    the vault for the run, and is in no file under the state directory afterwards
    (artifacts, store, logs), nor is the canary it opened."""
    from click.testing import CliRunner

    from provision.cli import console
    from provision.cli.main import cli

    canary_vars = _vaulted_host_var(lab, "provision_test_canary")
    playbook = tmp_path / "canary.yml"
    playbook.write_text(PLAYBOOK)
    monkeypatch.setattr(console, "is_interactive", lambda: True)  # a person at the prompt
    assert lab.settings.state_path == lab.settings.workspace / ".provision"
    base = ["--workspace", str(lab.settings.workspace)]
    try:
        from provision.infra.store import open_store

        with open_store(lab.settings) as store:
            runs_before = len(store.list_runs(limit=1000))
        wrong = CliRunner().invoke(
            cli,
            [*base, "rollout", str(playbook), HOST, "--yes", "--ask-vault-pass"],
            input="not-the-password\n",
        )
        # A mistyped password is one line before anything runs: no run, no host touched.
        assert wrong.exit_code == 3, wrong.output
        assert f"does not open 'provision_test_canary' of host {HOST}" in wrong.output
        assert "not-the-password" not in wrong.output
        with open_store(lab.settings) as store:
            assert len(store.list_runs(limit=1000)) == runs_before
        # The same for a wrong password from the setting (a client script here).
        wrong_client = _vault_client(tmp_path, "not-the-password", "wrong-client")
        configured = CliRunner().invoke(
            cli,
            [*base, "rollout", str(playbook), HOST, "--yes"],
            env={"PROVISION_VAULT_PASSWORD_FILE": str(wrong_client)},
        )
        assert configured.exit_code == 3, configured.output
        assert "does not open 'provision_test_canary'" in configured.output
        with open_store(lab.settings) as store:
            assert len(store.list_runs(limit=1000)) == runs_before
        done = CliRunner().invoke(
            cli,
            [*base, "rollout", str(playbook), HOST, "--yes", "--ask-vault-pass", "--json"],
            input=PASSWORD + "\n",
        )
        assert done.exit_code == 0, done.output
        assert PASSWORD not in done.output  # never echoed
        assert lab.ssh(HOST, "cat /root/provision-canary") == CANARY
        files = _files(lab)
        assert any(p.name.startswith("state.db") for p in files)
        assert any(p.name == "command" for p in files)
        assert_in_no_file([lab.settings.state_path], CANARY, PASSWORD, skip=_disks(lab))
    finally:
        canary_vars.unlink()
        lab.ssh(HOST, "rm -f /root/provision-canary")


def test_vaulted_become_password_through_a_compliance_run_leaves_no_trace(
    lab: Lab, tmp_path: Path
) -> None:
    """`provision compliance run` over a host whose become password is in the vault.

    The audit playbook runs with become, so Ansible must open the vaulted
    `ansible_become_password` to audit the host at all: without the vault
    password the host is an error, with it (the vault_password_file setting, a
    client script, as a timer's run would have it) the host reports. Afterwards
    the canary and the password are in no file under the state directory: the
    run's artifacts, the store (state.db and its WAL), the reports written with
    --report-dir in every format, and in nothing the command printed.
    """
    import json
    import shutil

    from click.testing import CliRunner

    from provision.cli.main import cli
    from tests.helpers.workspace import REPO

    standard = lab.settings.workspace / "standards" / "bd-ict-baseline.yml"
    added_standard = not standard.exists()
    if added_standard:
        shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", standard)
    canary_vars = _vaulted_host_var(lab, "ansible_become_password")
    client = _vault_client(tmp_path)
    reports = lab.settings.state_path / "reports"
    command = [
        *("--workspace", str(lab.settings.workspace), "compliance", "run", HOST),
        *("--report-dir", str(reports), "--format", "json,junit,csv,html", "--json"),
    ]

    def audit(env: dict[str, str]) -> dict[str, object]:
        done = CliRunner().invoke(cli, command, env=env)
        assert done.exit_code in (0, 6), done.output  # judged (pass or below threshold)
        assert CANARY not in done.output and PASSWORD not in done.output
        data: dict[str, object] = json.loads(done.stdout)
        return data

    def host_status(data: dict[str, object]) -> str:
        hosts = data["hosts"]
        assert isinstance(hosts, list)
        (row,) = (h for h in hosts if h["host"] == HOST)
        return str(row["status"])

    try:
        without = CliRunner().invoke(cli, command, env={"PROVISION_VAULT_PASSWORD_FILE": ""})
        assert CANARY not in without.output
        assert host_status(json.loads(without.stdout)) != "reported", without.output
        with_vault = audit({"PROVISION_VAULT_PASSWORD_FILE": str(client)})
        assert host_status(with_vault) == "reported", with_vault
        written = [Path(str(p)) for p in with_vault["reports"]]  # type: ignore[attr-defined]
        assert {p.suffix for p in written} >= {".json", ".html", ".xml", ".csv"}, written
        files = _files(lab)
        assert any(p.name.startswith("state.db") for p in files)  # the store is searched
        assert any(p.parent == reports for p in files)  # the reports are searched
        assert any(p.name == "command" for p in files)  # the run's artifacts are searched
        assert_in_no_file([lab.settings.state_path], CANARY, PASSWORD, skip=_disks(lab))
    finally:
        canary_vars.unlink()
        if added_standard:
            standard.unlink()


FAILING_PLAYBOOK = """\
- name: Use vaulted variables, then fail saying them
  hosts: all
  gather_facts: false
  tasks:
    - name: Fail with the secrets on stderr
      ansible.builtin.shell: >-
        echo "login {{ db_password }} motd {{ provision_test_motd }}" >&2; exit 3
      changed_when: false
"""
#: A second canary under a name that says nothing of a secret: masked because the
#: run decrypted it, not because of its name.
MOTD = "canary-motd-lab-71b2e9d04f"


def _vault_block(name: str, plain: str) -> str:
    sealed = crypto.vault_encrypt(plain.encode(), PASSWORD).decode()
    return f"{name}: !vault |\n" + "".join(f"  {line}\n" for line in sealed.splitlines())


def _grep_run(lab: Lab, outputs: list[str], *canaries: str) -> None:
    """No canary in anything printed, nor in any file under the state directory (the
    store and its WAL, every run's artifacts: stdout, command, events)."""
    files = _files(lab)
    assert any(p.name.startswith("state.db") for p in files)
    assert any(p.name == "stdout" for p in files) and any(p.name == "command" for p in files)
    for canary in canaries:
        for text in outputs:
            assert canary not in text
    assert_in_no_file([lab.settings.state_path], *canaries, skip=_disks(lab))


def test_a_task_failing_with_vaulted_values_shows_them_masked(lab: Lab, tmp_path: Path) -> None:
    """`db_password: !vault …` echoed by a failing command: masked on the terminal,
    in the host's and the task's message, in `runs show --json`, in the artifacts."""
    import json

    from click.testing import CliRunner

    from provision.cli.main import cli
    from provision.infra.store import open_store

    host_vars = lab.inventory / "host_vars" / HOST
    host_vars.mkdir(parents=True, exist_ok=True)
    canary_vars = host_vars / "canary.yml"
    canary_vars.write_text(
        "---\n" + _vault_block("db_password", CANARY) + _vault_block("provision_test_motd", MOTD)
    )
    playbook = tmp_path / "fail.yml"
    playbook.write_text(FAILING_PLAYBOOK)
    client = _vault_client(tmp_path)
    base = ["--workspace", str(lab.settings.workspace)]
    env = {"PROVISION_VAULT_PASSWORD_FILE": str(client)}
    try:
        done = CliRunner().invoke(
            cli, [*base, "rollout", str(playbook), HOST, "--yes", "--json"], env=env
        )
        assert done.exit_code == 4, done.output  # the host failed
        data = json.loads(done.stdout)
        run_id = data["run"]["id"]
        (result,) = data["hosts"]
        assert result["message"] == "non-zero return code: login ******** motd ********"
        shown = CliRunner().invoke(cli, [*base, "runs", "show", str(run_id), "--json"])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["hosts"][0]["message"] == result["message"]
        table = CliRunner().invoke(cli, [*base, "runs", "show", str(run_id)])
        assert "********" in table.output
        with open_store(lab.settings) as store:
            (row,) = [r for r in store.task_rows(run_id) if r.status == "failed"]
        assert row.message == result["message"]
        _grep_run(lab, [done.output, shown.output, table.output], CANARY, MOTD, PASSWORD)
    finally:
        canary_vars.unlink()


ENV_CANARY = "canary-env-lab-5a90c3e18d"


def test_the_control_nodes_environment_stays_out_of_the_run(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PGPASSWORD, a password inside a database URL, any token in provision's
    environment: a real rollout runs (Ansible has what it needs) and neither the
    run's artifacts (`command` records the environment Ansible had) nor any other
    file of the state directory holds them."""
    import json

    from provision.rollout import RolloutOptions, plan_rollout, run_rollout

    monkeypatch.setenv("PGPASSWORD", ENV_CANARY)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://provision:{ENV_CANARY}@db.example/fleet")
    monkeypatch.setenv("GITLAB_DEPLOY_TOKEN", ENV_CANARY)
    monkeypatch.setenv("ANSIBLE_BECOME_PASS", ENV_CANARY)  # a secret in an Ansible name too
    monkeypatch.setenv("ANSIBLE_FORCE_COLOR", "0")  # an Ansible setting passes
    playbook = tmp_path / "canary.yml"
    playbook.write_text(PLAYBOOK)
    canary_vars = _vaulted_host_var(lab, "provision_test_canary")
    settings = replace(lab.settings, vault_password_file=str(_vault_client(tmp_path)))
    try:
        result = run_rollout(settings, plan_rollout(settings, RolloutOptions(str(playbook), HOST)))
        assert [r.outcome for r in result.results.values()] in (["changed"], ["ok"]), result
        assert lab.ssh(HOST, "cat /root/provision-canary") == CANARY
        (wave,) = result.waves
        (command,) = Path(str(wave.artifacts)).glob("artifacts/*/command")
        env = json.loads(command.read_text())["env"]
        assert env["ANSIBLE_FORCE_COLOR"] == "0" and env["HOME"] == os.environ["HOME"]
        assert not {"PGPASSWORD", "DATABASE_URL", "GITLAB_DEPLOY_TOKEN"} & set(env)
        assert "ANSIBLE_BECOME_PASS" not in env
        _grep_run(lab, [], ENV_CANARY, CANARY, PASSWORD)
    finally:
        canary_vars.unlink()
        lab.ssh(HOST, "rm -f /root/provision-canary")


def test_a_run_that_cannot_open_its_vault_is_refused_before_it_starts(
    lab: Lab, tmp_path: Path
) -> None:
    """Vaulted host variables and no vault password, or a vault_password_file that is
    not there: exit 3 with how to give it; no run in the store, no run folder, and
    the host untouched (not "Attempting to decrypt but no vault secrets found" on
    every host half-way)."""
    from click.testing import CliRunner

    from provision.cli.main import cli
    from provision.infra.store import open_store

    canary_vars = _vaulted_host_var(lab, "provision_test_canary")
    playbook = tmp_path / "canary.yml"
    playbook.write_text(PLAYBOOK)
    base = ["--workspace", str(lab.settings.workspace), "rollout", str(playbook), HOST, "--yes"]
    runs = lab.settings.state_path / "runs"

    def history() -> tuple[int, list[str]]:
        with open_store(lab.settings) as store:
            count = len(store.list_runs(limit=10_000))
        return count, sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []

    before = history()
    try:
        unset = CliRunner().invoke(cli, base, env={"PROVISION_VAULT_PASSWORD_FILE": ""})
        assert unset.exit_code == 3, unset.output
        assert (
            f"variable 'provision_test_canary' of host {HOST} is encrypted with the vault, "
            "but no vault password was given" in unset.output
        )
        assert "--ask-vault-pass" in unset.output and "vault_password_file" in unset.output
        missing = tmp_path / "no-such-client"
        gone = CliRunner().invoke(cli, base, env={"PROVISION_VAULT_PASSWORD_FILE": str(missing)})
        assert gone.exit_code == 3, gone.output
        assert "the vault password file does not exist" in gone.output
        assert history() == before
        assert lab.ssh(HOST, "test -e /root/provision-canary && echo yes || echo no") == "no\n"
    finally:
        canary_vars.unlink()


def test_a_compliance_run_with_a_missing_vault_password_file_records_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    """The same for an audit: a vault_password_file that is not there is exit 3 before
    a compliance run is recorded (not a crashed run in the history)."""
    import json
    import shutil

    from click.testing import CliRunner

    from provision.cli.main import cli
    from tests.helpers.workspace import REPO

    standard = lab.settings.workspace / "standards" / "bd-ict-baseline.yml"
    added_standard = not standard.exists()
    if added_standard:
        shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", standard)
    base = ["--workspace", str(lab.settings.workspace), "compliance"]

    def runs() -> list[int]:
        listed = CliRunner().invoke(cli, [*base, "runs", "--json"])
        assert listed.exit_code == 0, listed.output
        return [int(r["id"]) for r in json.loads(listed.stdout)]

    try:
        before = runs()
        missing = str(tmp_path / "no-such-file")
        done = CliRunner().invoke(
            cli, [*base, "run", HOST], env={"PROVISION_VAULT_PASSWORD_FILE": missing}
        )
        assert done.exit_code == 3, done.output
        assert "the vault password file does not exist" in done.output
        assert runs() == before
    finally:
        if added_standard:
            standard.unlink()
