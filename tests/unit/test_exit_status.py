"""One ladder from a result to an exit status: 130 interrupted, 4 failed, 5 unreachable, 0.

The result objects carry it (`RolloutResult.exit_status`, `PlaybookResult.exit_status`),
and every command that runs a rollout or a playbook exits with it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from provision.cli.main import cli
from provision.errors import ExitStatus, exit_status_for
from provision.infra.runner import HostStats, PlaybookResult
from provision.infra.store.records import HostResult, RunInfo, WaveInfo
from provision.portal import BackupResult, Portal, RestoreResult
from provision.rollout import RolloutOptions, RolloutResult, StopSignal, plan_rollout, run_rollout
from provision.settings import Settings, load_settings
from tests.conftest import FIXTURES, make_workspace

CHANGE = str(FIXTURES / "playbooks" / "rollout_change.yml")


def test_the_ladder() -> None:
    assert exit_status_for(failed=False, unreachable=False) == ExitStatus.SUCCESS
    assert exit_status_for(failed=False, unreachable=True) == ExitStatus.HOSTS_UNREACHABLE
    assert exit_status_for(failed=True, unreachable=True) == ExitStatus.HOSTS_FAILED
    assert (
        exit_status_for(failed=True, unreachable=True, interrupted=True) == ExitStatus.INTERRUPTED
    )


def test_a_playbook_result_says_its_exit_status(tmp_path: Path) -> None:
    def result(status: str, **hosts: HostStats) -> PlaybookResult:
        return PlaybookResult(status, 0 if status == "successful" else 2, dict(hosts), tmp_path)

    assert result("successful", a=HostStats("a", ok=1)).exit_status == ExitStatus.SUCCESS
    bad = result("failed", a=HostStats("a", failed=1), b=HostStats("b", unreachable=1))
    assert bad.exit_status == ExitStatus.HOSTS_FAILED
    assert result("failed", b=HostStats("b", unreachable=1)).exit_status == 5
    assert result("canceled", a=HostStats("a", failed=1)).exit_status == ExitStatus.INTERRUPTED


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    workspace = make_workspace(tmp_path / "workspace")
    folder = workspace / "inventories" / "lab"
    folder.mkdir(parents=True, exist_ok=True)
    hosts = {
        "h1": {
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "rollout_stamp_dir": str(tmp_path / "stamps" / "h1"),
        }
    }
    (folder / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return load_settings(workspace=workspace, environ={})


def _stopped_by_the_user(settings: Settings) -> RolloutResult:
    """A rollout the user stopped (Ctrl-C) before its first wave: no host touched."""
    stop = StopSignal()
    stop.request()
    result = run_rollout(settings, plan_rollout(settings, RolloutOptions(CHANGE, "h1")), stop=stop)
    assert result.status == "stopped" and not result.results
    return result


def test_a_rollout_stopped_by_the_user_exits_130(settings: Settings) -> None:
    assert _stopped_by_the_user(settings).exit_status == ExitStatus.INTERRUPTED


def test_a_rollout_stopped_with_hosts_never_reached_exits_5_not_0() -> None:
    """A shard whose node could not be reached leaves its hosts without a result."""
    now = datetime.now(UTC)
    run = RunInfo(
        *(7, None, "rollout", "stopped", "root", "ctl", None, now, now, now),
        *("lab", "site.yml", "all", {}, None, "node gazipur: cannot be reached", 1),
    )
    waves = [WaveInfo(7, 1, "wave 1", "done", ("a", "b"))]
    done = {"a": HostResult(host="a", wave=1, outcome="ok")}
    assert RolloutResult(run, waves, done).exit_status == ExitStatus.HOSTS_UNREACHABLE
    finished = replace(run, status="succeeded")
    everyone = {**done, "b": HostResult(host="b", wave=1, outcome="ok", node="gazipur")}
    assert RolloutResult(finished, waves, everyone).exit_status == ExitStatus.SUCCESS


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_portal_backup_and_restore_exit_130_when_their_rollout_was_interrupted(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    interrupted = _stopped_by_the_user(settings)
    portal = Portal(domain="a.gov.bd", host="h1", kind="static", content="sites/a")
    monkeypatch.setattr(
        "provision.portal.backup_portal",
        lambda *_a, **_k: BackupResult(portal, interrupted, None),
    )
    monkeypatch.setattr(
        "provision.portal.restore_portal",
        lambda *_a, **_k: RestoreResult(portal, Path("x.tar.gz"), interrupted),
    )
    done = CliRunner().invoke(
        cli,
        ["--workspace", str(settings.workspace), "portal", command, "a.gov.bd"],
        catch_exceptions=False,
    )
    assert done.exit_code == ExitStatus.INTERRUPTED, done.output


def test_lab_ping_exits_130_when_its_run_was_cancelled(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    canceled = PlaybookResult("canceled", 254, {"h1": HostStats("h1", ok=1)}, tmp_path)
    monkeypatch.setattr("provision.lab.demo.ping", lambda *_a, **_k: canceled)
    done = CliRunner().invoke(
        cli, ["--workspace", str(settings.workspace), "lab", "ping"], catch_exceptions=False
    )
    assert done.exit_code == ExitStatus.INTERRUPTED, done.output
