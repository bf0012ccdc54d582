"""`compliance resume` without hosts: which hosts remain, each refusal, the run finished whole.

The workspace is a real one (standard, inventory); hosts are never contacted:
the SSH part of the audit is replaced by one that gives each host it is handed
an error report (what an audit that could not run there records), so what is
tested is what the resume decides and what it writes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.compliance import service
from provision.compliance.resume import plan_resume, remaining_hosts, resume_audit
from provision.compliance.service import HostPlan, plan_audit
from provision.errors import ExitStatus, StateError
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.model import HOST_REPORTED, PASS, ControlResult, HostReport
from provision.settings import Settings
from tests.helpers.bundles import pull_workspace
from tests.helpers.compliance_totals import counted_totals, stored_totals

HOSTS = ["dc1", "pc1", "pc2", "pc3"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    found, _ = pull_workspace(tmp_path)
    return found


def _record(
    settings: Settings,
    status: str,
    hosts: Sequence[str] = ("pc1", "dc1"),
    *,
    pid: int | None = None,
    **changed: Any,
) -> int:
    """A run of the workspace's plan with `hosts` recorded (each with one pass), left `status`."""
    plan = plan_audit(settings)
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        values: dict[str, Any] = {
            "env": plan.env,
            "selection": plan.selection,
            "standard_id": plan.standard.id,
            "standard_version": plan.standard.version,
            "standard_digest": plan.standard.digest,
            "waivers_digest": plan.waivers.digest,
            "user": "auditor",
            "node": socket.gethostname(),
            "pid": pid,
        }
        values.update(changed)
        run_id = records.create_run(**values)
        records.add_host_reports(
            run_id,
            [
                HostReport(h, HOST_REPORTED, results=(ControlResult("SSH-001", PASS, "high"),))
                for h in hosts
            ],
        )
        if status != "running":
            records.finish_run(run_id, status)
    return run_id


def _snapshot(settings: Settings, run_id: int) -> tuple[Any, ...]:
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        return (
            records.get_run(run_id),
            [(r.host, r.collected_at, r.counts) for r in records.host_rows(run_id)],
            stored_totals(records, run_id),
            len(records.list_runs()),
        )


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- which hosts remain ----------------------------------------------------------------


def _plan(host: str) -> HostPlan:
    return HostPlan(host, None, {}, frozenset(), (), (), {}, "k")


def test_the_hosts_left_are_the_plans_without_a_report_in_the_plans_order() -> None:
    planned = [_plan(h) for h in ("c", "a", "d", "b")]
    left = remaining_hosts(planned, {"a", "b", "gone-from-the-inventory"})
    assert [h.host for h in left] == ["c", "d"]
    assert remaining_hosts(planned, []) == tuple(planned)
    assert remaining_hosts(planned, ["a", "b", "c", "d"]) == ()


def test_an_interrupted_run_plans_only_its_hosts_without_a_report(settings: Settings) -> None:
    run_id = _record(settings, "interrupted")
    resume = plan_resume(settings, run_id)
    assert resume.run.id == run_id
    assert [h.host for h in resume.plan.hosts] == ["pc2", "pc3"]
    assert (resume.planned, resume.recorded, resume.remaining) == (4, 2, 2)


def test_without_a_run_id_the_newest_unfinished_run_of_the_env_is_resumed(
    settings: Settings,
) -> None:
    older = _record(settings, "interrupted", ["pc1"])
    _record(settings, "done", HOSTS)
    newest = _record(settings, "crashed", ["pc1", "pc2"])
    assert plan_resume(settings).run.id == newest
    assert [h.host for h in plan_resume(settings, older).plan.hosts] == ["dc1", "pc2", "pc3"]


def test_a_run_still_running_with_its_process_dead_here_is_crashed_and_resumable(
    settings: Settings,
) -> None:
    run_id = _record(settings, "running", ["pc1"], pid=_dead_pid())
    resume = plan_resume(settings, run_id)
    assert resume.run.status == "crashed"
    assert resume.remaining == 3


# -- refusals: each says why and changes nothing -----------------------------------------


def test_no_unfinished_run_is_a_clear_error(settings: Settings) -> None:
    _record(settings, "done", HOSTS)
    with pytest.raises(StateError, match="no unfinished compliance run in environment lab"):
        plan_resume(settings)


def test_by_default_an_unfinished_run_older_than_a_finished_one_is_not_resumed(
    settings: Settings,
) -> None:
    old = _record(settings, "interrupted")
    done = _record(settings, "done", HOSTS)
    with pytest.raises(StateError, match=f"{old}, is older than run {done}") as refused:
        plan_resume(settings)
    assert f"provision compliance resume {old}" in (refused.value.hint or "")
    assert plan_resume(settings, old).remaining == 2  # named, it is resumed


def test_a_run_given_a_waivers_file_is_resumed_with_the_same(settings: Settings) -> None:
    other = settings.workspace / "other-waivers.yml"
    other.write_text("waivers: []\n")
    plan = plan_audit(settings, waivers=other)
    run_id = _record(settings, "interrupted", waivers_digest=plan.waivers.digest)
    with pytest.raises(StateError, match=r"waivers\.yml changed") as refused:
        plan_resume(settings, run_id)
    assert "--waivers FILE" in (refused.value.hint or "")
    assert plan_resume(settings, run_id, waivers=other).remaining == 2


def test_an_unknown_run_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(StateError, match="there is no compliance run 7"):
        plan_resume(settings, 7)


@pytest.mark.parametrize(
    ("status", "changed", "words"),
    [
        ("done", {}, "is done"),
        ("running", {"pid": os.getpid()}, "is still running"),
        ("interrupted", {"standard_version": "2025.9"}, "version 2025.9, now 2026."),
        ("interrupted", {"standard_digest": "e" * 64}, "digest eeeeeeeeeeee, now"),
        ("interrupted", {"standard_id": "bd-ict-old"}, "no longer in standards/"),
        ("crashed", {"waivers_digest": "f" * 64}, "waivers.yml changed"),
        ("interrupted", {"env": "staging"}, "is of environment staging, not lab"),
    ],
)
def test_a_run_that_cannot_be_continued_is_refused_and_left_as_it_was(
    settings: Settings, status: str, changed: dict[str, Any], words: str
) -> None:
    run_id = _record(settings, status, **changed)
    before = _snapshot(settings, run_id)
    with pytest.raises(StateError, match=words) as refused:
        plan_resume(settings, run_id)
    if "env" in changed:
        assert f"--env {changed['env']}" in (refused.value.hint or "")
    elif status != "running":
        assert "provision compliance run" in (refused.value.hint or "")
    assert _snapshot(settings, run_id) == before


def test_waivers_changed_after_the_run_are_refused(settings: Settings) -> None:
    run_id = _record(settings, "interrupted")
    (settings.workspace / "waivers.yml").write_text("waivers: []\n")
    before = _snapshot(settings, run_id)
    with pytest.raises(StateError, match=r"waivers.yml changed .*then no waivers file"):
        plan_resume(settings, run_id)
    assert _snapshot(settings, run_id) == before


def test_a_pruned_run_is_refused(settings: Settings) -> None:
    run_id = _record(settings, "interrupted")
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        records.prune(records.get_run(run_id).started_at + timedelta(seconds=1))
    before = _snapshot(settings, run_id)
    with pytest.raises(StateError, match="was pruned"):
        plan_resume(settings, run_id)
    assert _snapshot(settings, run_id) == before


# -- resuming: the same run, each host once, totals over all of it ------------------------


def _no_ssh(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Replace the SSH part of an audit: each host it is handed gets an error report."""
    handed: list[list[str]] = []

    def run_pushed(
        settings: Settings, plan: Any, run_id: int, names: Sequence[str], *args: Any, **kw: Any
    ) -> bool:
        handed.append(list(names))
        collector = args[1]
        collector.settle(names, {}, None)
        return False

    monkeypatch.setattr(service, "_run_pushed", run_pushed)
    return handed


def test_a_resume_audits_the_hosts_left_into_the_same_run_and_finishes_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed = _no_ssh(monkeypatch)
    run_id = _record(settings, "interrupted")
    before = {r.host: r for r in _rows(settings, run_id)}
    result = resume_audit(settings, plan_resume(settings, run_id))
    assert handed == [["pc2", "pc3"]]  # the recorded hosts are not contacted again
    assert result.run.id == run_id and result.run.status == "done"
    assert [r.host for r in result.hosts] == HOSTS
    rows = {r.host: r for r in _rows(settings, run_id)}
    assert {h: rows[h] for h in before} == before
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        assert len(records.list_runs()) == 1
        run = records.get_run(run_id)
        assert (run.hosts, run.finished_at is not None) == (4, True)
        # Control totals added batch by batch count each host once, old and new.
        totals = stored_totals(records, run_id)
        assert totals == counted_totals(records, run_id)
        assert totals[("SSH-001", PASS)] == 2
        (whole,) = records.rollups(run_id, ("all",)).levels["all"]
        assert (whole.hosts, whole.reported, whole.errored) == (4, 2, 2)
    # The whole run's exit status: hosts whose evidence could not be collected.
    assert result.exit_status() == ExitStatus.HOSTS_FAILED


def test_a_resume_of_a_run_with_every_host_recorded_only_finishes_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed = _no_ssh(monkeypatch)
    run_id = _record(settings, "running", HOSTS, pid=_dead_pid())
    result = resume_audit(settings, plan_resume(settings, run_id))
    assert handed == []
    assert result.run.status == "done" and len(result.hosts) == 4


def test_two_resumes_of_one_run_cannot_both_go_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_ssh(monkeypatch)
    run_id = _record(settings, "interrupted")
    first, second = plan_resume(settings, run_id), plan_resume(settings, run_id)
    resume_audit(settings, first)
    with pytest.raises(StateError, match="taken over by another process"):
        resume_audit(settings, second)
    assert _snapshot(settings, run_id)[0].status == "done"


def _rows(settings: Settings, run_id: int) -> list[Any]:
    with open_store(settings) as store:
        return ComplianceRecords(store).host_rows(run_id)


# -- the command -----------------------------------------------------------------------


def _cli(settings: Settings, *args: str) -> Any:
    result = CliRunner().invoke(
        cli, ["--workspace", str(settings.workspace), "compliance", "resume", *args]
    )
    assert "Traceback" not in result.output
    return result


def test_the_command_resumes_and_exits_as_compliance_run_would(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed = _no_ssh(monkeypatch)
    run_id = _record(settings, "interrupted")
    result = _cli(settings)
    assert result.exit_code == ExitStatus.HOSTS_FAILED, result.output
    assert handed == [["pc2", "pc3"]]
    assert f"compliance run {run_id} (interrupted): 2 of 4 hosts recorded, resuming" in (
        result.output
    )
    assert f"compliance run {run_id} done" in result.output


def test_the_command_refuses_a_done_run_in_one_line(settings: Settings) -> None:
    run_id = _record(settings, "done", HOSTS)
    result = _cli(settings, str(run_id))
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert f"compliance run {run_id} is done" in result.output
    assert _snapshot(settings, run_id)[0].status == "done"


# -- what a resume can count on: reports reach the store without a later host --------------


def test_a_report_no_later_host_follows_is_committed_all_the_same(settings: Settings) -> None:
    """A host that hangs must not hold the reports before it in memory: Ctrl-C or a
    crash then would leave them unrecorded, to be audited again on resume."""
    plan = plan_audit(settings)
    run_id = _record(settings, "running", [])
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        collector = service._Collector(records, run_id, plan, lambda _p: None)
        collector.add("pc1", None, "unreachable", "unreachable")  # then nothing more arrives
        deadline = time.monotonic() + 60
        while not records.host_names(run_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert records.host_names(run_id) == ["pc1"]
        collector.flush()


def test_a_timed_write_that_fails_keeps_its_reports_for_the_next(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store busy when the timer writes: the batch waits for the next write (here
    the run's last), it is not dropped with the hosts counted as done."""
    plan = plan_audit(settings)
    run_id = _record(settings, "running", [])
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        real = records.add_host_reports
        tried: list[int] = []

        def busy_once(run: int, batch: Sequence[HostReport]) -> None:
            tried.append(len(batch))
            if len(tried) == 1:
                raise RuntimeError("database is locked")
            real(run, batch)

        monkeypatch.setattr(records, "add_host_reports", busy_once)
        collector = service._Collector(records, run_id, plan, lambda _p: None)
        collector.add("pc1", None, "unreachable", "unreachable")
        deadline = time.monotonic() + 60
        while not tried and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tried == [1] and records.host_names(run_id) == []
        collector.flush()
        assert tried == [1, 1] and records.host_names(run_id) == ["pc1"]


def test_a_last_write_that_fails_leaves_the_run_crashed_and_resumable(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_ssh(monkeypatch)
    run_id = _record(settings, "interrupted")
    resume = plan_resume(settings, run_id)

    def broken(self: ComplianceRecords, run: int, batch: Sequence[HostReport]) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(ComplianceRecords, "add_host_reports", broken)
    with pytest.raises(RuntimeError, match="locked"):
        resume_audit(settings, resume)
    monkeypatch.undo()
    assert _snapshot(settings, run_id)[0].status == "crashed"
    assert plan_resume(settings, run_id).remaining == 2


def test_a_resume_refused_for_a_crashed_run_another_resume_drives_stops_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_ssh(monkeypatch)
    run_id = _record(settings, "running", pid=_dead_pid())
    first, second = plan_resume(settings, run_id), plan_resume(settings, run_id)
    assert first.run.status == second.run.status == "crashed"
    with open_store(settings) as store:  # the first resume takes the run over, and goes on
        ComplianceRecords(store).reopen_run(
            run_id, was=first.run, pid=os.getpid(), node=socket.gethostname()
        )
    stopped: list[int] = []
    monkeypatch.setattr(service, "stop_leftovers", lambda _state, run: stopped.append(run))
    before = _snapshot(settings, run_id)
    with pytest.raises(StateError, match="taken over by another process"):
        resume_audit(settings, second)
    assert stopped == []
    assert _snapshot(settings, run_id) == before
    assert before[0].status == "running"


def test_an_interrupted_run_says_how_to_continue_and_resume_finishes_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cancelled_after_one(
        settings: Settings, plan: Any, run_id: int, names: Sequence[str], *args: Any, **kw: Any
    ) -> bool:
        args[1].settle(names[:1], {}, None)
        return True  # Ctrl-C after the first host

    monkeypatch.setattr(service, "_run_pushed", cancelled_after_one)
    ws = ["--workspace", str(settings.workspace), "compliance"]
    first = CliRunner().invoke(cli, [*ws, "run"])
    assert first.exit_code == ExitStatus.INTERRUPTED, first.output
    assert "continue with: provision compliance resume 1" in first.output
    assert [r.host for r in _rows(settings, 1)] == ["dc1"]
    handed = _no_ssh(monkeypatch)
    second = CliRunner().invoke(cli, [*ws, "resume", "--json"])
    assert second.exit_code == ExitStatus.HOSTS_FAILED, second.output
    assert handed == [["pc1", "pc2", "pc3"]]
    assert [r.host for r in _rows(settings, 1)] == HOSTS


def test_a_crashed_runs_leftovers_are_looked_for_in_its_own_folders_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    for name in (
        "20261204T010000Z-compliance-5-aaaa",
        "20261204T020000Z-compliance-5-bbbb",
        "20261204T010000Z-compliance-55-cccc",
        "20261204T010000Z-rollout-5-dddd",
    ):
        (runs / name).mkdir(parents=True)
    marks: list[str] = []
    monkeypatch.setattr(service, "stop_run_processes", lambda mark: marks.append(mark) or [])
    service.stop_leftovers(tmp_path, 5)
    assert [Path(m).name for m in marks] == [
        "20261204T010000Z-compliance-5-aaaa",
        "20261204T020000Z-compliance-5-bbbb",
    ]
    service.stop_leftovers(tmp_path / "nothing-yet", 5)  # no runs folder: nothing to stop
