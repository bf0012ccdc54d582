"""Drift and the trend: each host against its own last evidence, whatever the runs' selections.

A one-host audit between two fleet audits must neither hide the other hosts'
drift nor count as a point of the fleet's trend. Runs are recorded in a real
SQLite store; the commands run in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.compliance.drift import drift
from provision.errors import ExitStatus
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.reports.service import trend_points
from provision.settings import Settings
from tests.helpers.drift_samples import cli_run, drift_settings, record, report

FLEET = ("dhk-gaz-fs01", "dhk-kal-fs01", "dhk-kal-lab01")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return drift_settings(tmp_path)


@pytest.fixture
def fleet_one_fleet(settings: Settings) -> tuple[int, int, int]:
    """A fleet audit, a one-host audit of the lab PC, a fleet audit where a field server drifted."""
    first = record(settings, 0, "", *(report(h, "pass", "pass") for h in FLEET))
    one = record(settings, 1, "dhk-kal-lab01", report("dhk-kal-lab01", "pass", "pass"))
    last = record(
        settings,
        2,
        "",
        report("dhk-gaz-fs01", "pass", "pass"),
        report("dhk-kal-fs01", "fail", "pass"),
        report("dhk-kal-lab01", "pass", "pass"),
    )
    return first, one, last


def test_a_one_host_audit_hides_no_other_hosts_drift(
    settings: Settings, fleet_one_fleet: tuple[int, int, int]
) -> None:
    first, one, last = fleet_one_fleet
    found = drift(settings)
    assert found.run.id == last
    assert [(c.host, c.control, c.since_run) for c in found.new_drift] == [
        ("dhk-kal-fs01", "C-0", first)
    ]
    assert found.added_hosts == () and found.removed_hosts == ()
    assert found.compared_with == (first, one)
    # --fail-on-drift and timers act on the same verdict: `drift` exits 6.
    result = cli_run(settings, "compliance", "drift", "--json")
    assert result.exit_code == ExitStatus.BELOW_THRESHOLD, result.output
    assert json.loads(result.output)["new_drift"] == 1


def test_a_one_host_audit_is_compared_with_that_host_only(
    settings: Settings, fleet_one_fleet: tuple[int, int, int]
) -> None:
    first, one, _ = fleet_one_fleet
    found = drift(settings, run=one)
    assert found.changes == () and found.since.id == first
    # The hosts it did not audit are not "gone": it never meant to cover them.
    assert found.removed_hosts == () and found.added_hosts == ()


def test_since_a_run_takes_each_hosts_evidence_as_of_that_run(
    settings: Settings, fleet_one_fleet: tuple[int, int, int]
) -> None:
    first, one, _ = fleet_one_fleet
    found = drift(settings, since=str(one))
    assert {c.host: c.since_run for c in found.changes} == {"dhk-kal-fs01": first}
    assert found.compared_with == (first, one)


def test_unreachable_is_no_evidence_to_compare_with(settings: Settings) -> None:
    first = record(settings, 0, "", report("dhk-gaz-fs01", "pass"))
    record(settings, 1, "", report("dhk-gaz-fs01", "unreachable", status="unreachable"))
    record(settings, 2, "", report("dhk-gaz-fs01", "pass"))
    found = drift(settings)
    assert found.changes == () and found.compared_with == (first,)


def test_the_trend_holds_only_runs_of_the_same_selection(
    settings: Settings, fleet_one_fleet: tuple[int, int, int]
) -> None:
    first, _, last = fleet_one_fleet
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        points = trend_points(records, records.get_run(last))
    assert [p.run_id for p in points] == [first]
    assert points[0].hosts == 3


def test_hosts_with_no_earlier_evidence_are_new_not_compared(settings: Settings) -> None:
    record(settings, 0, "", report("dhk-gaz-fs01", "pass"))
    record(settings, 1, "dhk-kal-fs01", report("dhk-kal-fs01", "fail"))
    result = cli_run(settings, "compliance", "drift", "--json")
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    body = json.loads(result.output)
    assert body["added_hosts"] == ["dhk-kal-fs01"] and body["compared_with"] == []
    assert body["changes"] == [] and body["removed_hosts"] == []
