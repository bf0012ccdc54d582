"""Runs recorded in a real store for the drift and notice tests: hosts, statuses, times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.model import ControlResult, HostReport
from provision.settings import Settings, load_settings
from tests.helpers.runs import record_compliance_run

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def drift_settings(tmp_path: Path) -> Settings:
    """A workspace of env lab with its own SQLite store."""
    (tmp_path / "provision.yml").write_text("env: lab\n")
    (tmp_path / "standards").mkdir()
    return load_settings(workspace=tmp_path, flags={})


def report(name: str, *statuses: str, status: str = "reported") -> HostReport:
    return HostReport(
        name,
        status,
        role="field_server",
        place={"district": "Gazipur"},
        collected_at=T0 if status == "reported" else None,
        evidence_digest="e" * 64 if status == "reported" else None,
        results=tuple(
            ControlResult(f"C-{i}", s, "high", "x", s, "") for i, s in enumerate(statuses)
        ),
    )


def record(settings: Settings, hours: int, selection: str, *reports: HostReport) -> int:
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run_id = record_compliance_run(
            records,
            selection=selection,
            user="auditor",
            node="control-01",
            started_at=T0 + timedelta(hours=hours),
        )
        records.add_host_reports(run_id, reports)
        records.finish_run(run_id, "done")
    return run_id


def cli_run(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(settings.workspace), *args])
