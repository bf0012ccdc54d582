"""The runner wrapper, against a real ansible-playbook on localhost (local connection)."""

from __future__ import annotations

import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path

import pytest

from provision.errors import RunnerError
from provision.infra import runner
from provision.infra.masking import MASK, Masker
from tests.helpers.local import LOCAL
from tests.helpers.workspace import FIXTURES


def _run(workspace: Path, playbook: str, **kwargs: object) -> runner.PlaybookResult:
    return runner.run_playbook(
        FIXTURES / "playbooks" / playbook,
        workspace=workspace,
        private_data_dir=runner.new_run_dir(workspace / ".provision", "test"),
        inventory=LOCAL,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.slow
def test_check_mode_reports_stats_and_changes_nothing(workspace: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    result = _run(workspace, "local_file.yml", check=True, extravars={"marker_path": str(marker)})
    assert result.ok
    assert result.status == "successful"
    stats = result.hosts["localhost"]
    assert stats.changed == 1  # the copy would change the file …
    assert stats.failed == stats.unreachable == 0
    assert not marker.exists()  # … but check mode wrote nothing


@pytest.mark.slow
def test_real_run_changes_then_is_idempotent(workspace: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    first = _run(workspace, "local_file.yml", extravars={"marker_path": str(marker)})
    assert first.hosts["localhost"].outcome == "changed"
    assert marker.read_text() == "written by the runner test\n"
    second = _run(workspace, "local_file.yml", extravars={"marker_path": str(marker)})
    assert second.hosts["localhost"].changed == 0


@pytest.mark.slow
def test_events_reach_the_callback_in_order(workspace: Path, tmp_path: Path) -> None:
    events: list[runner.PlaybookEvent] = []
    _run(workspace, "local_file.yml", check=True, on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "playbook_on_start"
    assert "runner_on_ok" in kinds
    assert kinds[-1] == "playbook_on_stats"
    assert [e.counter for e in events] == sorted(e.counter for e in events)
    tasks = [e.task for e in events if e.kind == "playbook_on_task_start"]
    assert tasks == ["Ensure the marker file exists", "Read the marker back"]


@pytest.mark.slow
def test_a_slow_callback_does_not_stall_the_run(workspace: Path) -> None:
    """The reader reaches the play recap while the callback is still on the first event.

    The callback holds the first event until the recap is in the stdout artifact,
    which the reader writes (runner._EventFilter) before it hands an event on. A
    callback called on the reader thread would hold the reader: the recap would
    never come and the wait would end at its bound, failing the test.
    """
    private_data_dir = runner.new_run_dir(workspace / ".provision", "test")
    caller = threading.current_thread()
    threads: set[threading.Thread] = set()
    seen: list[str] = []
    recap_seen_while_held: list[bool] = []

    def recap_written() -> bool:
        return any(
            "PLAY RECAP" in stdout.read_text()
            for stdout in private_data_dir.glob("artifacts/*/stdout")
        )

    def slow(event: runner.PlaybookEvent) -> None:
        threads.add(threading.current_thread())
        if not seen:
            deadline = time.monotonic() + 60  # a bound for the broken case, not a pace
            while not recap_written() and time.monotonic() < deadline:
                time.sleep(0.05)
            recap_seen_while_held.append(recap_written())
        seen.append(event.kind)

    result = runner.run_playbook(
        FIXTURES / "playbooks" / "local_file.yml",
        workspace=workspace,
        private_data_dir=private_data_dir,
        inventory=LOCAL,
        check=True,
        on_event=slow,
    )
    assert result.ok
    assert recap_seen_while_held == [True], "the reader waited for the callback"
    assert caller not in threads, "events were delivered on the thread reading Ansible"
    assert seen[0] == "playbook_on_start"
    assert seen[-1] == "playbook_on_stats"  # every event delivered by the end, in order


@pytest.mark.slow
def test_failed_host_is_reported_not_raised(workspace: Path) -> None:
    result = _run(workspace, "local_fail.yml")
    assert not result.ok
    assert result.hosts_with("failed") == ["localhost"]


@pytest.mark.slow
def test_broken_playbook_raises_with_ansibles_words(workspace: Path) -> None:
    with pytest.raises(RunnerError) as caught:
        _run(workspace, "broken_syntax.yml")
    assert "no_such_module_anywhere" in caught.value.message


@pytest.mark.slow
def test_runs_without_the_venv_on_path(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Called from a venv that is not activated, ansible-playbook is still found."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    result = _run(workspace, "local_file.yml", check=True)
    assert result.ok


@pytest.mark.slow
def test_host_key_checking_is_on_and_env_files_are_not_written(workspace: Path) -> None:
    result = _run(workspace, "local_file.yml", check=True)
    assert not (result.private_data_dir / "env" / "envvars").exists()
    commands = list(result.private_data_dir.glob("artifacts/*/command"))
    assert commands and '"ANSIBLE_HOST_KEY_CHECKING": "True"' in commands[0].read_text()


def test_missing_playbook_is_an_error(workspace: Path) -> None:
    with pytest.raises(RunnerError, match=r"nope\.yml does not exist"):
        runner.run_playbook(
            workspace / "playbooks" / "nope.yml",
            workspace=workspace,
            private_data_dir=runner.new_run_dir(workspace / ".provision"),
            inventory=LOCAL,
        )


def test_ansible_gets_a_chosen_environment_not_the_control_nodes() -> None:
    environ = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "LC_TIME": "en_GB.UTF-8",
        "SSH_AUTH_SOCK": "/run/agent.sock",
        "ANSIBLE_STRATEGY": "provision_linear",
        "ANSIBLE_BECOME_PASS": "canary",
        "ANSIBLE_SSH_CONTROL_PATH": "/tmp/shared/%%C",  # each run has its own (ssh_masters)
        "PGPASSWORD": "canary",
        "PROVISION_DB_URL": "postgresql://u:canary@db/x",
        "https_proxy": "http://u:canary@proxy:3128",
    }
    env = runner.ansible_environment(environ, {"ANSIBLE_CONFIG": "/ws/ansible.cfg"}, Path("/v/bin"))
    assert env == {
        "PATH": "/v/bin:/usr/bin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "LC_TIME": "en_GB.UTF-8",
        "SSH_AUTH_SOCK": "/run/agent.sock",
        "ANSIBLE_STRATEGY": "provision_linear",
        "ANSIBLE_CONFIG": "/ws/ansible.cfg",
    }


@pytest.mark.slow
def test_a_masked_run_leaves_the_secret_in_no_event_and_no_artifact(
    workspace: Path, tmp_path: Path
) -> None:
    """A failing task prints the secret (msg, stdout): the callback, the events kept
    in the artifacts and the stdout artifact all have it masked."""
    playbook = tmp_path / "echo.yml"
    playbook.write_text(
        "- name: Echo\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Say it and fail\n"
        "      ansible.builtin.shell: echo 'the word is canary-unit-4f1d'; exit 2\n"
        "      changed_when: false\n"
    )
    events: list[runner.PlaybookEvent] = []
    result = runner.run_playbook(
        playbook,
        workspace=workspace,
        private_data_dir=runner.new_run_dir(workspace / ".provision", "mask"),
        inventory=LOCAL,
        on_event=events.append,
        masker=Masker.of(["canary-unit-4f1d"]),
    )
    assert result.hosts_with("failed") == ["localhost"]
    (failed,) = [e for e in events if e.kind == "runner_on_failed"]
    assert failed.data["res"]["stdout"] == f"the word is {MASK}"
    files = [p for p in result.private_data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "stdout" for p in files) and any(p.suffix == ".json" for p in files)
    assert f"the word is {MASK}" in next(p for p in files if p.name == "stdout").read_text()
    for path in files:
        assert b"canary-unit-4f1d" not in path.read_bytes(), path


def test_each_run_has_its_own_masters_folder_removed_at_its_end(tmp_path: Path) -> None:
    short = Path(tempfile.mkdtemp(prefix="pv-"))  # pytest's own folders are too deep here
    state = short / "state"
    with runner.ssh_masters(state) as folder, runner.ssh_masters(state) as other:
        assert folder.parent == other.parent == state / "ssh" and folder != other
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not folder.exists() and not other.exists()
    # Too deep for a unix socket (107 bytes): a private folder of its own elsewhere.
    deep = tmp_path / ("d" * 60) / "state"
    with runner.ssh_masters(deep) as folder:
        assert deep not in folder.parents and len(str(folder)) < 60
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not folder.exists()
    shutil.rmtree(short)
