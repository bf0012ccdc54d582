"""`provision compliance report`: a run read back from the store, in every format."""

from __future__ import annotations

import csv
import json
import shutil
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.errors import ExitStatus
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.settings import load_settings
from provision.standards.files import load_standard
from tests.helpers.compliance_samples import NOW, sample_reports

REPO = Path(__file__).resolve().parents[2]


def run(ws: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--workspace", str(ws), *args])
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "provision.yml").write_text("env: production\n")
    (tmp_path / "standards").mkdir()
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", tmp_path / "standards")
    return tmp_path


def _record(ws: Path, *, days_ago: int, reports: int) -> int:
    standard = load_standard(ws / "standards" / "bd-ict-baseline.yml")
    settings = load_settings(workspace=ws, flags={})
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run_id = records.create_run(
            env="production",
            selection="all",
            standard_id=standard.id,
            standard_version=standard.version,
            standard_digest=standard.digest,
            waivers_digest=None,
            user="auditor",
            node="control-01",
            started_at=NOW - timedelta(days=days_ago),
        )
        records.add_host_reports(run_id, sample_reports()[:reports])
        records.finish_run(run_id, "done")
    return run_id


def test_no_run_is_a_clear_error(ws: Path) -> None:
    result = run(ws, "compliance", "report", "--format", "json")
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert "no finished compliance run" in result.output
    missing = run(ws, "compliance", "report", "99")
    assert missing.exit_code == ExitStatus.BAD_INPUT and "no compliance run 99" in missing.output


def test_every_format_of_the_latest_run(ws: Path) -> None:
    _record(ws, days_ago=2, reports=2)
    latest = _record(ws, days_ago=0, reports=4)
    out = ws / "r.json"
    result = run(ws, "compliance", "report", "--format", "json", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"] == latest
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["format"] == "provision-compliance/1"
    assert data["run"]["id"] == latest
    assert len(data["hosts"]) == 4
    assert data["standard"]["title"]  # the workspace's standard is the one judged by
    lab02 = next(h for h in data["hosts"] if h["host"] == "gaz-003-lab02")
    assert lab02["results"][1]["actual"] == {"permitrootlogin": "yes"}

    xml = ws / "r.xml"
    assert run(ws, "compliance", "report", "--format", "junit", "--out", str(xml)).exit_code == 0
    root = ET.parse(xml).getroot()  # noqa: S314 (our own output)
    assert len(root.findall("testsuite")) == 4

    sheet = ws / "r.csv"
    assert run(ws, "compliance", "report", "--format", "csv", "--out", str(sheet)).exit_code == 0
    with sheet.open(encoding="utf-8-sig", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 12

    page = ws / "r.html"
    result = run(
        ws, "compliance", "report", "--format", "html", "--by", "upazila", "--out", str(page)
    )
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "Chougachha" in text and "gaz-003-lab02" in text
    version = load_standard(ws / "standards" / "bd-ict-baseline.yml").version
    assert f"(bd-ict-baseline {version}, 2 runs)" in text  # the earlier run is in the trend


def test_an_older_run_to_stdout(ws: Path) -> None:
    first = _record(ws, days_ago=2, reports=2)
    _record(ws, days_ago=0, reports=4)
    result = run(ws, "compliance", "report", str(first), "--format", "json", "--out", "-")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["run"]["id"] == first and len(data["hosts"]) == 2
    assert not list(ws.glob("compliance-*"))


def test_default_file_name(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    latest = _record(ws, days_ago=0, reports=1)
    monkeypatch.chdir(ws)
    result = run(ws, "compliance", "report", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert (ws / f"compliance-production-run{latest}.csv").is_file()
