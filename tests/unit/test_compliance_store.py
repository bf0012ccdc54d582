"""The store's compliance API: runs, host reports as they arrive, streaming, trends; drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provision.compliance.drift import compare_hosts, drift_between, parse_since
from provision.errors import InputError, StateError
from provision.infra.store import Store
from provision.infra.store.compliance_records import (
    ComplianceRecords,
    decode_results,
    encode_results,
)
from provision.model.compliance.model import ControlResult, HostReport


@pytest.fixture
def records(tmp_path: Path) -> ComplianceRecords:
    return ComplianceRecords(Store.open(f"sqlite:///{tmp_path / 'state.db'}"))


def new_run(records: ComplianceRecords, **over: object) -> int:
    values: dict[str, object] = {
        "env": "lab",
        "selection": "",
        "standard_id": "bd-ict-baseline",
        "standard_version": "2026.1",
        "standard_digest": "d" * 64,
        "waivers_digest": None,
        "user": "tester",
        "node": "node",
    }
    values.update(over)
    return records.create_run(**values)  # type: ignore[arg-type]


def host(name: str, *statuses: str, status: str = "reported", actual: object = "a") -> HostReport:
    results = tuple(
        ControlResult(f"C-{i}", s, "critical" if i == 0 else "medium", "x", actual, "")
        for i, s in enumerate(statuses)
    )
    return HostReport(
        name,
        status,
        role="lab_pc",
        place={"district": "Gazipur", "site": "S1"},
        collected_at=datetime(2026, 11, 28, tzinfo=UTC) if status == "reported" else None,
        evidence_digest="e" * 64,
        results=results,
    )


def test_results_round_trip_compactly() -> None:
    results = (
        ControlResult("A", "pass", "low", {"k": [1, 2]}, {"k": [1]}, "m"),
        ControlResult("B", "fail", "high", None, None, "", waiver="W-1", waiver_expired=True),
    )
    assert decode_results(encode_results(results)) == results


def test_run_lifecycle_and_reports(records: ComplianceRecords) -> None:
    run_id = new_run(records)
    assert records.get_run(run_id).status == "running"
    records.add_host_reports(run_id, [host("b", "pass", "fail"), host("a", "pass", "pass")])
    # Written before the run finished: a crash keeps them.
    assert records.get_run(run_id).hosts == 2
    records.add_host_reports(run_id, [host("c", status="unreachable")])
    records.finish_run(run_id, "done")
    run = records.get_run(run_id)
    assert (run.status, run.hosts) == ("done", 3) and run.finished_at is not None
    reports = list(records.host_reports(run_id, batch=1))
    assert [r.host for r in reports] == ["a", "b", "c"]
    assert reports[1] == host("b", "pass", "fail")
    rows = {r.host: r for r in records.host_rows(run_id)}
    assert rows["a"].compliant and rows["a"].score == 1.0
    assert rows["b"].score == 0.5 and rows["b"].counts["fail"] == 1
    assert rows["c"].score is None and rows["c"].status == "unreachable"
    assert records.host_report(run_id, "zz") is None
    with pytest.raises(StateError, match="no compliance run 99"):
        records.get_run(99)
    with pytest.raises(StateError):
        next(records.host_reports(99))


def test_a_host_reported_twice_keeps_the_later_report(records: ComplianceRecords) -> None:
    run_id = new_run(records)
    records.add_host_reports(run_id, [host("a", "fail")])
    records.add_host_reports(run_id, [host("a", "pass")])
    assert [r.results[0].status for r in records.host_reports(run_id)] == ["pass"]
    assert records.get_run(run_id).hosts == 1


def test_latest_run_list_and_summaries(records: ComplianceRecords) -> None:
    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    ids = []
    for day in range(3):
        run_id = new_run(records, started_at=t0 + timedelta(days=day))
        records.add_host_reports(
            run_id, [host("a", "pass", "pass"), host("b", *(["pass"] * day + ["fail"]))]
        )
        records.finish_run(run_id, "done")
        ids.append(run_id)
    unfinished = new_run(records, started_at=t0 + timedelta(days=5))
    other_env = new_run(records, env="production", started_at=t0 + timedelta(days=6))
    records.finish_run(other_env, "done")
    assert records.latest_run("lab").id == ids[2]  # type: ignore[union-attr]
    assert records.latest_run("lab", before=t0 + timedelta(days=1, hours=1)).id == ids[1]  # type: ignore[union-attr]
    assert records.latest_run("lab", before=t0) is None
    assert [r.id for r in records.list_runs("lab")] == [unfinished, *reversed(ids)]
    assert len(records.list_runs(limit=2)) == 2
    summaries = records.run_summaries("lab", "bd-ict-baseline", "2026.1")
    assert [s.run_id for s in summaries] == ids
    assert [s.compliant for s in summaries] == [1, 1, 1]
    assert summaries[0].median_score == pytest.approx(0.5)  # scores 1.0 and 0.0
    assert summaries[2].median_score == pytest.approx((1.0 + 2 / 3) / 2)
    assert all(s.coverage == 1.0 for s in summaries)
    assert records.run_summaries("lab", "bd-ict-baseline", "2025.9") == []
    # A host that gave no evidence lowers coverage; the run before it is not cut off.
    partial = new_run(records, started_at=t0 + timedelta(days=3))
    records.add_host_reports(partial, [host("a", "pass"), host("c", "pass", status="unreachable")])
    records.finish_run(partial, "done")
    (last,) = records.run_summaries("lab", "bd-ict-baseline", limit=1)
    assert (last.run_id, last.hosts, last.reported, last.coverage) == (partial, 2, 1, 0.5)
    before = records.run_summaries(
        "lab", "bd-ict-baseline", limit=2, before=records.get_run(partial)
    )
    assert [s.run_id for s in before] == ids[1:]


def test_drift_names_status_and_value_changes(records: ComplianceRecords) -> None:
    before = new_run(records)
    records.add_host_reports(
        before, [host("a", "pass", "pass"), host("b", "pass"), host("gone", "pass")]
    )
    records.finish_run(before, "done")
    after = new_run(records)
    records.add_host_reports(
        after,
        [host("a", "fail", "pass"), host("b", "pass", actual="changed"), host("new", "pass")],
    )
    records.finish_run(after, "done")
    report = drift_between(records, before, after)
    changes = {(c.host, c.control): c for c in report.changes}
    assert set(changes) == {("a", "C-0"), ("b", "C-0")}
    assert changes[("a", "C-0")].kind == "status" and changes[("a", "C-0")].is_new_drift
    assert changes[("b", "C-0")].kind == "actual" and not changes[("b", "C-0")].is_new_drift
    assert changes[("b", "C-0")].after_actual == "changed"
    assert report.added_hosts == ("new",) and report.removed_hosts == ("gone",)
    assert [c.control for c in report.new_drift] == ["C-0"]


def test_compare_hosts_ignores_unchanged_and_unevaluated() -> None:
    assert compare_hosts(host("a", "pass"), host("a", "pass")) == []
    down = host("a", "unreachable", status="unreachable", actual=None)
    assert compare_hosts(down, down) == []
    [change] = compare_hosts(host("a", "pass"), down)
    assert (change.before, change.after, change.is_new_drift) == ("pass", "unreachable", False)


def test_parse_since() -> None:
    assert parse_since("12") == 12
    assert parse_since("2026-11-27") == datetime(2026, 11, 27, tzinfo=UTC)
    assert parse_since("2026-11-27T10:00:00Z") == datetime(2026, 11, 27, 10, tzinfo=UTC)
    with pytest.raises(InputError, match="neither a run id nor a date"):
        parse_since("yesterday")
    with pytest.raises(InputError):
        parse_since("2026-13-45")
