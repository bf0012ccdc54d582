"""`compliance run --report-dir` (what the schedule timer runs) against `compliance report`.

The audit itself is replaced by one that records a hand-made run in the store
(no host, no Ansible): what is tested is what the command does around it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.compliance import service
from provision.compliance.service import AuditPlan, AuditResult
from provision.errors import ExitStatus
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.model import ControlResult, HostReport
from provision.settings import Settings
from tests.helpers.inventory import write

REPO = Path(__file__).resolve().parents[2]
TODAY = datetime.now(UTC).date()
APPROVER = "Director (Infrastructure), ICT Division"
JUSTIFICATION = "The old backup agent needs it until the migration"
EXPIRES = (TODAY + timedelta(days=30)).isoformat()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "provision.yml").write_text("env: production\n")
    (tmp_path / "standards").mkdir()
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", tmp_path / "standards")
    assert run(tmp_path, "inventory", "import", str(write(tmp_path / "r.csv"))).exit_code == 0
    (tmp_path / "waivers.yml").write_text(
        "waivers:\n  - id: W-001\n    control: SSH-004\n    scope: district:Gazipur\n"
        f"    justification: {JUSTIFICATION}\n    approver: {APPROVER}\n"
        f"    approved: {(TODAY - timedelta(days=1)).isoformat()}\n    expires: {EXPIRES}\n",
        encoding="utf-8",
    )
    return tmp_path


def run(ws: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--workspace", str(ws), *args])
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result


def fake_audit(status: str = "done") -> Callable[..., AuditResult]:
    """A run_audit that records the plan's first host with a waived SSH-004, no host touched."""

    def run_audit(settings: Settings, plan: AuditPlan, **_: Any) -> AuditResult:
        host = plan.hosts[0]
        with open_store(settings) as store:
            records = ComplianceRecords(store)
            run_id = records.create_run(
                env=plan.env,
                selection=plan.selection,
                standard_id=plan.standard.id,
                standard_version=plan.standard.version,
                standard_digest=plan.standard.digest,
                waivers_digest=plan.waivers.digest,
                user="auditor",
                node="control-01",
            )
            results = (
                ControlResult("OS-001", "pass", "critical", True, True),
                ControlResult("SSH-004", "waived", "high", "no", "yes", waiver="W-001"),
            )
            report = HostReport(
                host.host,
                "reported",
                role=host.role,
                place=host.place,
                collected_at=datetime.now(UTC),
                evidence_digest="e" * 64,
                results=results,
            )
            records.add_host_reports(run_id, [report])
            records.finish_run(run_id, status)
            return AuditResult(records.get_run(run_id), tuple(records.host_rows(run_id)))

    return run_audit


def _runs(ws: Path) -> list[dict[str, Any]]:
    listed = run(ws, "compliance", "runs", "--json")
    assert listed.exit_code == 0, listed.output
    runs: list[dict[str, Any]] = json.loads(listed.stdout)
    return runs


def test_scheduled_reports_keep_every_waivers_detail_as_compliance_report_does(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "run_audit", fake_audit())
    folder = ws / "reports"
    result = run(ws, "compliance", "run", "--report-dir", str(folder), "--format", "html,json")
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    (run_id,) = [r["id"] for r in _runs(ws)]
    scheduled = (folder / f"compliance-production-run{run_id}.html").read_text(encoding="utf-8")
    asked = ws / "asked.html"
    assert run(ws, "compliance", "report", str(run_id), "--out", str(asked)).exit_code == 0
    by_hand = asked.read_text(encoding="utf-8")
    for page in (scheduled, by_hand):
        assert "W-001" in page
        assert APPROVER in page and EXPIRES in page and JUSTIFICATION in page
    assert (folder / f"compliance-production-run{run_id}.json").is_file()


@pytest.mark.parametrize("formats", ["html,pdf", "", " , "])
def test_a_bad_format_is_refused_before_anything_runs(
    ws: Path, monkeypatch: pytest.MonkeyPatch, formats: str
) -> None:
    monkeypatch.setattr(service, "run_audit", fake_audit())
    folder = ws / "reports"
    result = run(ws, "compliance", "run", "--report-dir", str(folder), "--format", formats)
    assert result.exit_code in (ExitStatus.USAGE_ERROR, ExitStatus.BAD_INPUT), result.output
    assert "--format" in result.output and "formats: json, junit, csv, html" in result.output
    assert "auditing" not in result.output and "compliance run 1" not in result.output
    assert _runs(ws) == []
    assert not folder.exists()
    # Without --report-dir too: a typo is no silent "no report".
    alone = run(ws, "compliance", "run", "--format", formats)
    assert alone.exit_code == result.exit_code and _runs(ws) == []


def test_an_interrupted_run_exits_130_and_still_writes_its_reports(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "run_audit", fake_audit("interrupted"))
    folder = ws / "reports"
    result = run(ws, "compliance", "run", "--report-dir", str(folder), "--format", "json")
    assert result.exit_code == ExitStatus.INTERRUPTED, result.output
    assert [p.suffix for p in folder.iterdir()] == [".json"]


def test_the_notice_names_the_worst_districts_and_the_page(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provision.compliance import notify

    sent: list[notify.ComplianceNotice] = []

    def capture(_settings: Settings, notice: notify.ComplianceNotice) -> list[str]:
        sent.append(notice)
        return []

    monkeypatch.setattr(service, "run_audit", fake_audit())
    monkeypatch.setattr(notify, "notify_compliance", capture)
    monkeypatch.setenv("PROVISION_NOTIFY_WEBHOOK", "http://127.0.0.1:9/hook")
    folder = ws / "reports"
    result = run(ws, "compliance", "run", "--report-dir", str(folder), "--format", "json,html")
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    (notice,) = sent
    # The one audited host is in Gazipur and compliant (its one failing control is waived).
    assert notice.worst_districts == [("Gazipur", 1.0)]
    assert notice.report_path is not None and notice.report_path.suffix == ".html"
    assert notice.counts == {"hosts": 1, "compliant": 1, "non_compliant": 0, "unreachable": 0}
