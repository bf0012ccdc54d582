"""Rollouts end to end on local-connection hosts (no lab): waves, stops, resume, retry, CLI.

Five inventory hosts that Ansible reaches over its local connection stand in for
machines here; the lab tests (tests/integration/test_rollout_lab.py) do the same
against real hosts over SSH.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from provision.cli.main import cli
from provision.errors import ExitStatus, InputError, StateError
from provision.infra.store import HostResult, Store, open_store
from provision.rollout import (
    RolloutOptions,
    plan_retry,
    plan_rollout,
    resume_rollout,
    run_rollout,
)
from provision.settings import Settings, load_settings
from tests.helpers.local import LOCAL_HOST
from tests.helpers.workspace import FIXTURES, make_workspace

CHANGE = str(FIXTURES / "playbooks" / "rollout_change.yml")
SECRET = str(FIXTURES / "playbooks" / "rollout_secret.yml")


def _local_workspace(root: Path, failing: tuple[str, ...] = ()) -> Settings:
    workspace = make_workspace(root / "workspace")
    folder = workspace / "inventories" / "lab"
    folder.mkdir(parents=True, exist_ok=True)
    hosts = {
        f"h{i}": {
            **LOCAL_HOST,
            "rollout_stamp_dir": str(root / "stamps" / f"h{i}"),
            "provision_district": "Gazipur" if i <= 3 else "Narsingdi",
            "rollout_db_password": "s3cr3t-Value-42",
            **({"rollout_fail": True} if f"h{i}" in failing else {}),
        }
        for i in range(1, 6)
    }
    (folder / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return load_settings(workspace=workspace, environ={})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _local_workspace(tmp_path, failing=("h4",))


def _stamp(settings: Settings, host: str) -> str | None:
    path = settings.workspace.parent / "stamps" / host / "stamp"
    return path.read_text().strip() if path.exists() else None


def _git(workspace: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(workspace), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _commit_all(workspace: Path) -> str:
    """Commit every file of the workspace but the state dir (not ignored); return the commit."""
    _git(workspace, "add", "-A", "--", ".", ":(exclude).provision")
    _git(workspace, "commit", "-q", "--allow-empty", "-m", "content")
    return _git(workspace, "rev-parse", "HEAD")


@pytest.mark.slow
def test_canary_and_waves_by_district_record_every_host(settings: Settings) -> None:
    _git(settings.workspace, "init", "-q")
    head = _commit_all(settings.workspace)
    plan = plan_rollout(
        settings, RolloutOptions(CHANGE, "!h4", canary="1", by="district", max_fail="50%")
    )
    assert [w.hosts for w in plan.waves] == [("h1",), ("h2", "h3"), ("h5",)]
    result = run_rollout(settings, plan)
    assert result.status == "succeeded"
    assert {h: r.outcome for h, r in result.results.items()} == dict.fromkeys(
        ["h1", "h2", "h3", "h5"], "changed"
    )
    assert all(_stamp(settings, h) == h for h in result.results)
    assert _stamp(settings, "h4") is None
    run = result.run
    assert run.git_revision == head and run.selection == "!h4" and run.user
    assert run.options["by"] == "district" and run.options["max_fail"] == "50%"


@pytest.mark.slow
def test_a_failing_canary_stops_before_wave_1(settings: Settings) -> None:
    plan = plan_rollout(settings, RolloutOptions(CHANGE, "", canary="h4", batch="2"))
    result = run_rollout(settings, plan)
    assert result.status == "stopped" and "canary" in (result.run.stop_reason or "")
    assert list(result.results) == ["h4"]
    assert result.results["h4"].failed_task == "Fail where the marker is"
    assert all(_stamp(settings, h) is None for h in ("h1", "h2", "h3", "h5"))


@pytest.mark.slow
def test_max_fail_stops_launching_waves_and_resume_goes_on(settings: Settings) -> None:
    plan = plan_rollout(settings, RolloutOptions(CHANGE, "", batch="2", max_fail="20%"))
    result = run_rollout(settings, plan)
    # Wave 2 (h3, h4): 1 of 4 hosts failed, 25 % > 20 %: wave 3 (h5) never starts.
    assert result.status == "stopped" and "--max-fail 20%" in (result.run.stop_reason or "")
    assert result.pending == ["h5"] and _stamp(settings, "h5") is None
    resumed = resume_rollout(settings, result.run_id)
    assert resumed.status == "failed"  # every host has a result; h4 failed
    assert resumed.pending == [] and resumed.results["h5"].outcome == "changed"
    assert resumed.run.attempts == 2 and resumed.results["h5"].attempt == 2
    with pytest.raises(StateError, match="nothing to resume"):
        resume_rollout(settings, result.run_id)


@pytest.mark.slow
def test_resume_after_a_crash_runs_only_hosts_without_a_result(settings: Settings) -> None:
    plan = plan_rollout(settings, RolloutOptions(CHANGE, "!h4", batch="2"))
    with open_store(settings) as store:
        from provision.rollout.service import create_run

        run_id = create_run(settings, plan, store)
        # What a control node killed mid-wave 2 leaves: wave 1 recorded, a dead pid.
        dead = subprocess.Popen(["true"])
        dead.wait()
        store.start_attempt(run_id, dead.pid)
        store.acquire_locks(run_id, plan.hosts, user="u", node=os.uname().nodename, pid=dead.pid)
        store.add_host_results(run_id, [HostResult("h1", 1, "ok", ok=3), HostResult("h2", 1, "ok")])
        store.set_wave(run_id, 2, "running")
    listed = _invoke(settings, "runs", "list")
    assert "crashed?" in listed.stdout  # its process is gone: shown before anyone resumes
    result = resume_rollout(settings, run_id)
    assert result.status == "succeeded"
    assert sorted(result.results) == ["h1", "h2", "h3", "h5"]
    assert result.results["h1"].ok == 3 and result.results["h1"].attempt == 1  # kept as it was
    assert _stamp(settings, "h1") is None and _stamp(settings, "h3") == "h3"


@pytest.mark.slow
def test_retry_failed_is_a_new_run_linked_to_the_old(settings: Settings, tmp_path: Path) -> None:
    result = run_rollout(settings, plan_rollout(settings, RolloutOptions(CHANGE, "h3;h4")))
    assert result.hosts_with("failed") == ["h4"]
    # The host is fixed; retry runs only it.
    fixed = _local_workspace(tmp_path / "fixed")
    fixed = replace(fixed, db_url=settings.database_url)
    retry = run_rollout(fixed, plan_retry(fixed, result.run_id, ["failed"]))
    assert retry.run.parent_id == result.run_id and retry.run.kind == "retry"
    assert list(retry.results) == ["h4"] and retry.status == "succeeded"
    with pytest.raises(StateError, match="no unreachable hosts"):
        plan_retry(settings, result.run_id, ["unreachable"])


@pytest.mark.slow
def test_the_store_never_holds_a_secret(settings: Settings) -> None:
    result = run_rollout(settings, plan_rollout(settings, RolloutOptions(SECRET, "h1")))
    failed = result.results["h1"]
    assert failed.outcome == "failed" and failed.failed_task == "Fail with the secret on stderr"
    assert failed.message is not None and "********" in failed.message
    # The secret reached the host (the module had it) but no byte of the store has it.
    assert (settings.workspace.parent / "stamps/h1/secret").read_text().strip() == "s3cr3t-Value-42"
    store_files = list((settings.state_path).glob("state.db*"))
    assert store_files
    for path in store_files:
        assert b"s3cr3t-Value-42" not in path.read_bytes()


def test_bad_options_change_nothing(settings: Settings) -> None:
    for options, reason in (
        (RolloutOptions(CHANGE, "", batch="ten"), "--batch 'ten' is neither a number"),
        (RolloutOptions(CHANGE, "", max_fail="200%"), "--max-fail '200%' is not a percentage"),
        (RolloutOptions(CHANGE, "", control="SSH 001"), "--control 'SSH 001' is not a control"),
        (RolloutOptions("missing.yml", ""), "playbook 'missing.yml' was found neither here"),
        (RolloutOptions(CHANGE, "nohost*"), "the selection 'nohost*' matches no host"),
    ):
        with pytest.raises(InputError) as caught:
            plan_rollout(settings, options)
        assert caught.value.message.startswith(reason)
        assert caught.value.hint
    assert not (settings.state_path / "state.db").exists()


NOT_A_PLAY = """\
- name: A task where a play should be
  ansible.builtin.debug:
    msg: this is a tasks file
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("- name: A play\n  hosts: [all\n", 3),  # YAML: the flow sequence never closes
        (NOT_A_PLAY, 2),
        ((FIXTURES / "playbooks" / "broken_syntax.yml").read_text(), 6),  # no such module
    ],
)
def test_a_broken_playbook_is_refused_before_a_run_is_recorded(
    settings: Settings, tmp_path: Path, content: str, line: int
) -> None:
    playbook = tmp_path / "broken.yml"
    playbook.write_text(content)
    refused = _invoke(settings, "rollout", str(playbook), "h1", "--yes")
    assert refused.exit_code == ExitStatus.BAD_INPUT, refused.output
    assert f"{playbook}:{line}: the playbook does not parse" in refused.stderr
    assert "internal error" not in refused.stderr
    assert _stamp(settings, "h1") is None
    with open_store(settings) as store:
        assert store.list_runs() == []  # nothing to resume, nothing in the history


@pytest.mark.slow
def test_a_run_whose_playbook_broke_since_is_not_resumed(
    settings: Settings, tmp_path: Path
) -> None:
    playbook = tmp_path / "change.yml"
    playbook.write_text(Path(CHANGE).read_text())
    # h4 fails in wave 1: --max-fail 0% stops the run with h5 pending.
    plan = plan_rollout(settings, RolloutOptions(str(playbook), "h4;h5", batch="1"))
    stopped = run_rollout(settings, plan)
    assert stopped.status == "stopped" and stopped.pending == ["h5"]
    playbook.write_text(NOT_A_PLAY)
    refused = _invoke(settings, "rollout", "resume", str(stopped.run_id))
    assert refused.exit_code == ExitStatus.BAD_INPUT, refused.output
    assert f"{playbook}:2: the playbook does not parse" in refused.stderr
    with open_store(settings) as store:
        run = store.get_run(stopped.run_id)
    assert (run.status, run.attempts) == ("stopped", 1)  # no attempt was started


@pytest.mark.slow
def test_a_rollout_variables_file_that_is_not_a_mapping_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    extra = tmp_path / "vars.yml"
    extra.write_text("- just\n- a list\n")
    plan = plan_rollout(settings, RolloutOptions(CHANGE, "h1", vars_file=str(extra)))
    with pytest.raises(InputError, match="not a mapping"):
        run_rollout(settings, plan)
    with open_store(settings) as store:
        assert store.list_runs() == []


@pytest.mark.slow
def test_a_run_from_a_workspace_with_changes_records_a_dirty_revision(
    settings: Settings,
) -> None:
    workspace = settings.workspace
    _git(workspace, "init", "-q")
    head = _commit_all(workspace)
    local = workspace / "local.yml"  # a playbook never added to git
    local.write_text(Path(CHANGE).read_text())
    untracked = run_rollout(settings, plan_rollout(settings, RolloutOptions(str(local), "h1")))
    assert untracked.run.git_revision == f"{head}-dirty"
    shown = _invoke(settings, "runs", "show", str(untracked.run_id))
    assert f"{head}-dirty (the workspace had changes this commit does not hold)" in shown.stdout

    committed = _commit_all(workspace)  # the state dir, untracked, is not content
    clean = run_rollout(settings, plan_rollout(settings, RolloutOptions(str(local), "h2")))
    assert clean.run.git_revision == committed
    assert "-dirty" not in _invoke(settings, "runs", "show", str(clean.run_id)).stdout

    hosts = workspace / "inventories" / "lab" / "hosts.yml"
    hosts.write_text(hosts.read_text() + "# an edit not committed\n")
    edited = run_rollout(settings, plan_rollout(settings, RolloutOptions(str(local), "h3")))
    assert edited.run.git_revision == f"{committed}-dirty"


# -- the command line -----------------------------------------------------------


def _invoke(settings: Settings, *args: str) -> object:
    return CliRunner().invoke(
        cli, ["--workspace", str(settings.workspace), *args], catch_exceptions=False
    )


@pytest.mark.slow
def test_cli_rollout_runs_and_runs_commands_show_it(settings: Settings) -> None:
    done = _invoke(
        settings,
        "rollout",
        CHANGE,
        "h1;h4",
        "--batch",
        "1",
        "--max-fail",
        "100%",
        "--yes",
        "--json",
    )
    assert done.exit_code == ExitStatus.HOSTS_FAILED, done.output
    data = json.loads(done.stdout)
    assert {h["host"]: h["outcome"] for h in data["hosts"]} == {"h1": "changed", "h4": "failed"}
    run_id = data["run"]["id"]

    listed = _invoke(settings, "runs", "list", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
    shown = _invoke(settings, "runs", "show", str(run_id))
    assert shown.exit_code == 0
    assert "Fail where the marker is" in shown.stdout and "failing on purpose" in shown.stdout
    as_json = json.loads(_invoke(settings, "runs", "show", str(run_id), "--json").stdout)
    assert as_json["run"]["status"] == "failed" and len(as_json["waves"]) == 2


def test_cli_refuses_without_yes_when_input_is_not_a_terminal(settings: Settings) -> None:
    refused = _invoke(settings, "rollout", CHANGE, "h1")
    assert refused.exit_code == ExitStatus.BAD_INPUT
    assert "--yes" in refused.stderr and "plan" in refused.stderr
    assert not (settings.state_path / "state.db").exists()  # nothing recorded, nothing run


def test_cli_rollout_group_takes_subcommands_and_playbooks(settings: Settings) -> None:
    missing = _invoke(settings, "rollout", "resume", "42")
    assert missing.exit_code == ExitStatus.BAD_INPUT and "no run 42" in missing.stderr
    bad = _invoke(settings, "rollout", "nothere.yml", "h1", "--yes")
    assert bad.exit_code == ExitStatus.BAD_INPUT and "nothere.yml" in bad.stderr
    helped = _invoke(settings, "rollout", "--help")
    assert "resume" in helped.stdout and "retry" in helped.stdout and "Example" in helped.stdout
    retry_help = _invoke(settings, "rollout", "retry", "--help")
    assert "--unreachable" in retry_help.stdout


def test_runs_list_on_an_empty_store(settings: Settings) -> None:
    empty = _invoke(settings, "runs", "list")
    assert empty.exit_code == 0 and "no runs" in empty.stdout
    assert Store.open(settings.database_url).list_runs() == []


def test_a_rollout_prunes_only_rollout_run_folders(settings: Settings) -> None:
    from provision.infra import runner

    runs = settings.state_path / "runs"
    runs.mkdir(parents=True)
    for kind in ("rollout", "compliance"):
        for i in range(runner.KEEP_RUN_DIRS + 2):
            (runs / f"20250101T00{i // 60:02d}{i % 60:02d}Z-{kind}-1-{i:08x}").mkdir()
    result = run_rollout(settings, plan_rollout(settings, RolloutOptions(CHANGE, "h1")))
    assert result.status == "succeeded"
    kinds = [runner.run_kind(p) for p in runs.iterdir()]
    assert kinds.count("rollout") == runner.KEEP_RUN_DIRS
    assert kinds.count("compliance") == runner.KEEP_RUN_DIRS + 2
    newest = max(p for p in runs.iterdir() if runner.run_kind(p) == "rollout")
    assert newest.name.split("-")[2:4] == [str(result.run_id), "w1"]
