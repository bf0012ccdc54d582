"""From Ansible events to recorded rows: messages without secrets, outcomes, artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.infra import runner
from provision.infra.runner import PlaybookEvent
from provision.infra.store import BatchWriter, Store
from provision.rollout.recorder import (
    WaveRecorder,
    outcome_of,
    short_message,
)
from tests.helpers.local import LOCAL
from tests.helpers.runs import record_rollout_run
from tests.helpers.workspace import FIXTURES


def test_short_message_is_the_reason_never_the_whole_result() -> None:
    assert short_message({"msg": "boom", "stdout": "x" * 10_000, "invocation": {}}) == "boom"
    assert short_message({"msg": "non-zero return code", "stderr": "a\nE: no package\n"}) == (
        "non-zero return code: E: no package"
    )
    # A no_log result says it was hidden, never what its msg held.
    assert short_message({"censored": "hidden", "msg": "secret"}) == (
        "the output has been hidden due to the fact that 'no_log: true'"
    )
    assert len(short_message({"msg": "y" * 5000}) or "") == 400
    assert short_message("not a mapping") is None


def test_outcomes() -> None:
    assert outcome_of(1, 0, 0, 1) == "unreachable"
    assert outcome_of(3, 1, 1, 0) == "failed"
    assert outcome_of(3, 1, 0, 0) == "changed"
    assert outcome_of(3, 0, 0, 0) == "ok"
    assert outcome_of(0, 0, 0, 0) == "skipped"


def test_recap_makes_results_final_at_once(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    run_id = record_rollout_run(store, [(0, "w", ["a", "b"])])
    writer = BatchWriter(store)
    recorder = WaveRecorder(store, writer, run_id=run_id, wave=0, attempt=1, hosts={"a", "b"})
    recorder(PlaybookEvent("runner_on_start", "a", "t1", 1, {}))
    recorder(PlaybookEvent("runner_on_ok", "a", "t1", 2, {"res": {"changed": True}}))
    recorder(PlaybookEvent("runner_on_failed", "b", "t1", 3, {"res": {"msg": "nope"}}))
    recorder(PlaybookEvent("runner_on_failed", "a", "t2", 4, {"ignore_errors": True, "res": {}}))
    recap = {"ok": {"a": 2}, "changed": {"a": 1}, "failures": {"b": 1}, "ignored": {"a": 1}}
    recorder(PlaybookEvent("playbook_on_stats", None, None, 5, recap))
    # Committed before the writer is even closed, as the recap arrived.
    results = store.host_results(run_id)
    assert results["a"].outcome == "changed" and results["a"].ignored == 1
    assert results["a"].failed_task is None
    assert (results["b"].outcome, results["b"].failed_task, results["b"].message) == (
        "failed",
        "t1",
        "nope",
    )
    writer.close()
    assert [r.status for r in store.task_rows(run_id, "a")] == ["changed", "ignored"]


@pytest.mark.slow
def test_runner_can_leave_per_event_files_out_and_still_read_the_recap(workspace: Path) -> None:
    events: list[PlaybookEvent] = []
    result = runner.run_playbook(
        FIXTURES / "playbooks" / "local_file.yml",
        workspace=workspace,
        private_data_dir=runner.new_run_dir(workspace / ".provision", "test"),
        inventory=LOCAL,
        check=True,
        on_event=events.append,
        keep_events=False,
    )
    assert result.hosts["localhost"].changed == 1  # stats read back from the recap file
    files = list(result.private_data_dir.glob("artifacts/*/job_events/*.json"))
    assert len(files) == 1 and "playbook_on_stats" in files[0].read_text()
    assert len(events) > 5  # the caller still saw every event
