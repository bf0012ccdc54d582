"""Each report format's content, read back with a parser for that format."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from provision.errors import InputError, StateError
from provision.model.compliance.model import HostReport
from provision.model.standards.model import AppliesTo, Control, Standard
from provision.model.waivers import Scope, Waiver, WaiverSet
from provision.reports import FORMAT_VERSION, default_name, write_report
from provision.reports.csv_report import COLUMNS
from tests.helpers.compliance_samples import NOW, RUN, sample_history, sample_reports


def _standard(digest: str = RUN.standard_digest) -> Standard:
    controls = tuple(
        Control(cid, title, "", sev, AppliesTo(), (), (), None)
        for cid, title, sev in (
            ("OS-001", "The host runs a supported OS release", "critical"),
            ("SSH-001", "Root cannot log in over SSH", "critical"),
            ("PKG-002", "Forbidden packages are absent", "medium"),
        )
    )
    return Standard("bd-ict-baseline", "2026.1", "Baseline", (), (), controls, digest=digest)


def _stream() -> Iterator[HostReport]:
    """A generator: a writer must read the reports once, as a stream."""
    yield from sample_reports()


def test_json_is_canonical_and_complete(tmp_path: Path) -> None:
    out = write_report(RUN, _stream(), "json", tmp_path / "r.json", standard=_standard(), now=NOW)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["format"] == FORMAT_VERSION == "provision-compliance/1"
    assert data["run"]["id"] == 42 and data["run"]["env"] == "production"
    assert data["standard"] == {
        "id": "bd-ict-baseline",
        "version": "2026.1",
        "digest": "a" * 64,
        "title": "Baseline",
        "controls": [
            {
                "id": "OS-001",
                "title": "The host runs a supported OS release",
                "severity": "critical",
            },
            {"id": "SSH-001", "title": "Root cannot log in over SSH", "severity": "critical"},
            {"id": "PKG-002", "title": "Forbidden packages are absent", "severity": "medium"},
        ],
    }
    hosts = {h["host"]: h for h in data["hosts"]}
    assert list(hosts) == ["gaz-003-lab01", "gaz-003-lab02", "jas-001-fs01", "jas-001-fs02"]
    lab02 = hosts["gaz-003-lab02"]
    assert lab02["score"] == 0.5 and lab02["compliant"] is False
    assert lab02["critical_failures"] == ["SSH-001"]
    ssh = lab02["results"][1]
    assert ssh["expected"] == {"permitrootlogin": "no"}
    assert ssh["actual"] == {"permitrootlogin": "yes"}
    assert hosts["jas-001-fs01"]["results"][2]["waiver_expired"] is True
    assert hosts["jas-001-fs02"]["score"] is None
    total = data["rollups"]["levels"]["all"][0]
    assert (total["hosts"], total["reported"], total["compliant"]) == (4, 3, 1)
    assert total["coverage"] == 0.5  # two fresh hosts of four
    districts = {r["name"]: r for r in data["rollups"]["levels"]["district"]}
    assert districts["Gazipur"]["median_score"] == 0.75
    assert data["rollups"]["standard_version"] == "2026.1"


def test_junit_one_suite_per_host(tmp_path: Path) -> None:
    out = write_report(RUN, _stream(), "junit", tmp_path / "r.xml", standard=_standard(), now=NOW)
    root = ET.parse(out).getroot()  # noqa: S314 (our own output)
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["gaz-003-lab01", "gaz-003-lab02", "jas-001-fs01", "jas-001-fs02"]
    lab02 = suites["gaz-003-lab02"]
    assert (lab02.get("tests"), lab02.get("failures"), lab02.get("skipped")) == ("3", "1", "1")
    cases = {c.get("name", "").split()[0]: c for c in lab02.findall("testcase")}
    failure = cases["SSH-001"].find("failure")
    assert failure is not None
    assert "root login <script>" in (failure.get("message") or "")
    assert "permitrootlogin" in (failure.text or "")
    assert cases["SSH-001"].get("name") == "SSH-001 Root cannot log in over SSH"
    skipped = cases["PKG-002"].find("skipped")
    assert skipped is not None and "W-001" in (skipped.get("message") or "")
    assert cases["OS-001"].find("failure") is None and cases["OS-001"].find("error") is None
    down = suites["jas-001-fs02"]
    assert down.get("errors") == "3"
    assert all(c.find("error") is not None for c in down.findall("testcase"))
    props = {p.get("name"): p.get("value") for p in lab02.iter("property")}
    assert props["district"] == "Gazipur" and props["score"] == "0.5000"


def test_junit_unreachable_host_without_results_and_bad_characters(tmp_path: Path) -> None:
    down = replace(sample_reports()[3], results=(), message="refused \x00\x07 here")
    out = write_report(RUN, [down], "junit", tmp_path / "r.xml", now=NOW)
    [suite] = ET.parse(out).getroot().findall("testsuite")  # noqa: S314
    [case] = suite.findall("testcase")
    assert case.get("name") == "reachability"
    error = case.find("error")
    assert error is not None and error.get("type") == "unreachable"


def test_csv_one_row_per_host_and_control(tmp_path: Path) -> None:
    out = write_report(RUN, _stream(), "csv", tmp_path / "r.csv", standard=_standard(), now=NOW)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM, for Excel
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == 12
    row = next(r for r in rows if r["host"] == "gaz-003-lab02" and r["control"] == "SSH-001")
    assert row["status"] == "fail" and row["severity"] == "critical"
    assert json.loads(row["actual"]) == {"permitrootlogin": "yes"}
    assert row["district"] == "Gazipur" and row["host_score"] == "0.5000"
    assert row["title"] == "Root cannot log in over SSH"
    expired = next(r for r in rows if r["host"] == "jas-001-fs01" and r["control"] == "PKG-002")
    assert expired["waiver"] == "W-000" and expired["waiver_expired"] == "yes"
    # A host's text that a spreadsheet would run as a formula is defused.
    assert expired["message"].startswith("'=HYPERLINK")


def test_html_has_the_tree_the_failures_and_escapes(tmp_path: Path) -> None:
    waivers = WaiverSet(
        (
            Waiver(
                "W-000", "PKG-002", Scope("host", "jas-001-fs01"), "old", "Director",
                date(2026, 1, 1), date(2026, 6, 1),
            ),
        )
    )  # fmt: skip
    out = write_report(
        RUN,
        _stream(),
        "html",
        tmp_path / "r.html",
        standard=_standard(),
        history=sample_history(),
        now=NOW,
        waivers=waivers,
    )
    page = out.read_text(encoding="utf-8")
    for text in ("Gazipur", "Jashore", "Dhaka", "Khulna", "gaz-003-lab02", "SSH-001"):
        assert text in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "expired waiver W-000" in page and "approved by Director" in page
    assert "run 41 (" in page  # the trend draws the earlier run of this version
    assert "1 run(s) judged by another standard version" in page
    assert "http://" not in page and "https://" not in page
    assert 'src="' not in page and "<link" not in page


def test_html_detail_is_bounded_worst_first(tmp_path: Path) -> None:
    from provision.reports.common import ReportInput
    from provision.reports.html import write_html

    data = ReportInput(RUN, "district", None, (), NOW, __import__("datetime").timedelta(days=1))
    write_html(data, _stream(), tmp_path / "r.html", limit=2)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    # The two worst: the critical failure and the unreachable host; the clean one is left out.
    assert 'data-host="gaz-003-lab02"' in page and 'data-host="jas-001-fs02"' in page
    assert 'data-host="gaz-003-lab01"' not in page
    assert "1 more non-compliant host(s)" in page


def test_bad_arguments_change_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("old", encoding="utf-8")
    with pytest.raises(InputError, match="unknown report format"):
        write_report(RUN, _stream(), "pdf", out, now=NOW)
    with pytest.raises(InputError, match="cannot group"):
        write_report(RUN, _stream(), "json", out, by="planet", now=NOW)
    with pytest.raises(StateError, match="judged by"):
        write_report(RUN, _stream(), "json", out, standard=_standard("f" * 64), now=NOW)
    with pytest.raises(InputError, match="does not exist"):
        write_report(RUN, _stream(), "json", tmp_path / "no" / "r.json", now=NOW)
    assert out.read_text(encoding="utf-8") == "old"


def test_a_failed_write_leaves_the_old_report(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    out.write_text("old", encoding="utf-8")

    def broken() -> Iterator[HostReport]:
        yield sample_reports()[0]
        raise RuntimeError("store went away")

    with pytest.raises(RuntimeError):
        write_report(RUN, broken(), "csv", out, now=NOW)
    assert out.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_default_name() -> None:
    assert default_name(RUN, "junit") == "compliance-production-run42.xml"
    assert default_name(RUN, "html") == "compliance-production-run42.html"


def test_every_format_names_the_execution_node_that_ran_a_host(tmp_path: Path) -> None:
    """A host an execution node audited carries the node's name; one the control node
    audited carries none (JSON null, an empty CSV cell, no JUnit property)."""
    reports = sample_reports()
    by_node = [replace(reports[0], node="gazipur"), *reports[1:]]
    ran_on = {r.host: r.node for r in by_node}
    assert ran_on["gaz-003-lab01"] == "gazipur" and ran_on["gaz-003-lab02"] is None

    data = json.loads(write_report(RUN, by_node, "json", tmp_path / "r.json", now=NOW).read_text())
    assert {h["host"]: h["node"] for h in data["hosts"]} == ran_on

    out = write_report(RUN, by_node, "csv", tmp_path / "r.csv", now=NOW)
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["host"]: r["node"] or None for r in rows} == ran_on

    root = ET.parse(write_report(RUN, by_node, "junit", tmp_path / "r.xml", now=NOW)).getroot()  # noqa: S314
    props = {
        s.get("name"): {p.get("name"): p.get("value") for p in s.iter("property")}.get("node")
        for s in root.findall("testsuite")
    }
    assert props == ran_on
