"""Notices say which way each change went: newly failing (drift) or repaired, never a
repair called drift; a repair alone does not fail `--fail-on-drift` or `drift`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.compliance.drift import drift
from provision.compliance.notice import compliance_notice
from provision.compliance.service import AuditResult
from provision.errors import ExitStatus
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.settings import Settings
from tests.helpers.drift_samples import cli_run, drift_settings, record, report


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return drift_settings(tmp_path)


def test_a_repair_is_reported_as_a_repair_not_as_drift(settings: Settings) -> None:
    record(settings, 0, "", report("dhk-gaz-fs01", "fail", "pass"))
    later = record(settings, 1, "", report("dhk-gaz-fs01", "pass", "pass"))
    found = drift(settings)
    assert found.new_drift == []
    assert [(c.host, c.control, c.direction) for c in found.repaired] == [
        ("dhk-gaz-fs01", "C-0", "repaired")
    ]
    result = cli_run(settings, "compliance", "drift", "--json")
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    body = json.loads(result.output)
    assert body["new_drift"] == 0 and body["repaired"] == 1
    assert body["changes"][0]["direction"] == "repaired"

    with open_store(settings) as store:
        records = ComplianceRecords(store)
        audit = AuditResult(records.get_run(later), tuple(records.host_rows(later)))
    notice = compliance_notice(audit, found)
    assert notice.newsworthy
    assert notice.new_failures == [] and notice.drifted_hosts == []
    assert notice.repaired == [("dhk-gaz-fs01", "C-0")]
    assert notice.as_dict()["event"] == "compliance.repaired"
    subject = notice.subject()
    assert "1 controls repaired on 1 host" in subject and "drift" not in subject
    assert "repaired (better) (1):\n  dhk-gaz-fs01 C-0" in notice.text()


def test_a_notice_names_each_direction(settings: Settings) -> None:
    record(settings, 0, "", report("dhk-gaz-fs01", "fail", "pass"), report("dhk-kal-fs01", "pass"))
    later = record(
        settings, 1, "", report("dhk-gaz-fs01", "pass", "fail"), report("dhk-kal-fs01", "pass")
    )
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        audit = AuditResult(records.get_run(later), tuple(records.host_rows(later)))
    notice = compliance_notice(audit, drift(settings))
    assert notice.new_failures == [("dhk-gaz-fs01", "C-1")]
    assert notice.repaired == [("dhk-gaz-fs01", "C-0")]
    assert notice.drifted_hosts == ["dhk-gaz-fs01"]
    # Both hosts are in Gazipur; one of the two is fully compliant.
    assert notice.worst_districts == [("Gazipur", 0.5)]
    body = notice.as_dict()
    assert body["worst_districts"] == [{"district": "Gazipur", "compliant_share": 0.5}]
    assert "worst districts (share of hosts fully compliant):\n  Gazipur: 50%" in notice.text()
    assert body["event"] == "compliance.drift"
    assert body["repaired"] == [{"host": "dhk-gaz-fs01", "control": "C-0"}]
    assert notice.subject().endswith(
        "drift: 1 controls newly failing on 1 host, 1 controls repaired on 1 host"
    )
