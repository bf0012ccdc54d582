"""Reports of large runs: gzip-compressed streams, the HTML folder of pages, a place's subtree."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.errors import ExitStatus, InputError
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.model import HostReport
from provision.model.places import tree_group
from provision.model.scoring import host_score
from provision.reports import LARGE_RUN_HOSTS, write_report
from provision.reports.html_pages import PAGE_DETAIL
from provision.settings import load_settings
from provision.standards.files import load_standard
from tests.helpers.fleet_reports import district_name, fleet, fleet_run, place_of

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
#: Enough hosts for six districts (720 hosts a district), few controls: quick to write.
HOSTS = 4000
CONTROLS = 4


def _fleet(hosts: int = HOSTS) -> Iterator[HostReport]:
    return fleet(hosts, CONTROLS, NOW)


# -- gzip ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "csv", "junit"])
def test_a_compressed_report_is_the_plain_one_through_gzip(tmp_path: Path, fmt: str) -> None:
    run = fleet_run(300, NOW)
    plain = write_report(run, _fleet(300), fmt, tmp_path / f"r.{fmt}", now=NOW)
    packed = write_report(run, _fleet(300), fmt, tmp_path / f"r.{fmt}.gz", now=NOW, compress=True)
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    assert packed.stat().st_size * 5 < plain.stat().st_size
    # The same run gives the same bytes: no name or time in the gzip header.
    again = write_report(run, _fleet(300), fmt, tmp_path / "again.gz", now=NOW, compress=True)
    assert again.read_bytes() == packed.read_bytes()


def test_a_compressed_json_reads_back_as_the_versioned_record(tmp_path: Path) -> None:
    out = write_report(
        fleet_run(200, NOW), _fleet(200), "json", tmp_path / "r.json.gz", now=NOW, compress=True
    )
    with gzip.open(out, "rt", encoding="utf-8") as handle:
        data = json.load(handle)
    assert data["format"] == "provision-compliance/1"
    assert len(data["hosts"]) == 200 and "place" not in data


def test_a_failed_compressed_write_leaves_no_file(tmp_path: Path) -> None:
    def broken() -> Iterator[HostReport]:
        yield from _fleet(50)
        raise OSError("the store went away")

    with pytest.raises(OSError, match="went away"):
        write_report(
            fleet_run(50, NOW), broken(), "csv", tmp_path / "r.csv.gz", now=NOW, compress=True
        )
    assert list(tmp_path.iterdir()) == []


def test_html_is_never_compressed(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not written compressed"):
        write_report(fleet_run(5, NOW), _fleet(5), "html", tmp_path / "r.html", compress=True)
    assert list(tmp_path.iterdir()) == []


# -- a place's subtree -----------------------------------------------------------------------


def test_a_report_limited_to_one_district(tmp_path: Path) -> None:
    group = tree_group("district", "Division 0", "District 02")
    out = write_report(
        fleet_run(HOSTS, NOW), _fleet(), "json", tmp_path / "r.json", now=NOW, place=group
    )
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["place"] == "district_district_02"
    assert {h["place"]["district"] for h in data["hosts"]} == {"District 02"}
    assert len(data["hosts"]) == 720
    assert [r["name"] for r in data["rollups"]["levels"]["district"]] == ["District 02"]


@pytest.mark.parametrize(
    "place", ["district:District-02", "district:'district 02'", "district_district_02"]
)
def test_a_place_as_a_selection_term_or_a_group(tmp_path: Path, place: str) -> None:
    out = write_report(fleet_run(HOSTS, NOW), _fleet(), "csv", tmp_path / "r.csv", place=place)
    with out.open(encoding="utf-8-sig", newline="") as handle:
        districts = {row["district"] for row in csv.DictReader(handle)}
    assert districts == {"District 02"}


def test_upazila_terms_name_the_district_too(tmp_path: Path) -> None:
    out = write_report(
        fleet_run(HOSTS, NOW),
        _fleet(),
        "json",
        tmp_path / "r.json",
        place="upazila:district 01/upazila 010",
    )
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["place"] == "upazila_district_01_upazila_010"
    assert {h["place"]["upazila"] for h in data["hosts"]} == {"Upazila 010"}
    with pytest.raises(InputError, match="is not one place"):
        write_report(
            fleet_run(5, NOW), _fleet(5), "json", tmp_path / "x.json", place="upazila:kaliganj"
        )


def test_a_place_the_run_does_not_hold_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has no host in district_nowhere"):
        write_report(
            fleet_run(50, NOW),
            _fleet(50),
            "csv",
            tmp_path / "r.csv",
            now=NOW,
            place="district_nowhere",
        )
    with pytest.raises(InputError, match="not a place group"):
        write_report(fleet_run(50, NOW), _fleet(50), "csv", tmp_path / "r.csv", place="Gazipur")
    assert list(tmp_path.iterdir()) == []


# -- HTML as a folder of pages ---------------------------------------------------------------


def _links(page: Path) -> set[str]:
    return set(re.findall(r'href="([^"#]+)', page.read_text(encoding="utf-8")))


def test_the_folder_holds_a_summary_linking_to_one_page_per_district(tmp_path: Path) -> None:
    folder = write_report(
        fleet_run(HOSTS, NOW), _fleet(), "html", tmp_path / "report", now=NOW, pages=True
    )
    index = folder / "index.html"
    pages = sorted(p.name for p in folder.iterdir() if p.name != "index.html")
    assert len(pages) == 6  # 4,000 hosts at 720 a district
    assert _links(index) == set(pages)
    summary = index.read_text(encoding="utf-8")
    for section in ("summary", "tree", "worst-places", "trend", "worst-controls", "worst-hosts"):
        assert f'id="{section}"' in summary, section
    assert district_name(0) in summary  # the Bangla name, on the page as it is
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", summary)

    page = folder / "district_district_02.html"
    text = page.read_text(encoding="utf-8")
    assert _links(page) == {"index.html"}
    hosts = set(re.findall(r'<tr class="line" id="host-([^"]+)"', text))
    expected = {f"host-{n:05d}" for n in range(HOSTS) if place_of(n)["district"] == "District 02"}
    assert hosts == expected  # every host of the district, no other
    assert "Upazila 016" in text and "Union 0144" in text  # its upazilas and unions
    assert text.count('<details class="host"') == PAGE_DETAIL
    # The evidence shown is the worst hosts': those failing a critical control first.
    detail = text[text.index('id="detail"') :]
    critical = [
        r.host
        for r in _fleet()
        if r.place["district"] == "District 02" and host_score(r).critical_failures
    ]
    shown = re.findall(r'<details class="host" data-host="([^"]+)"', detail)
    assert 0 < len(critical) < PAGE_DETAIL
    assert set(shown[: len(critical)]) == set(critical)
    assert '<span class="status s-pass">compliant' not in detail
    assert "CTL-" in text and "is not as the standard asks" in text  # evidence
    assert "<script src" not in text and "<link" not in text


def test_hosts_without_a_district_get_a_page_of_their_own(tmp_path: Path) -> None:
    hosts = [replace(r, place={}) if i % 100 == 3 else r for i, r in enumerate(_fleet(900))]
    folder = write_report(
        fleet_run(900, NOW), iter(hosts), "html", tmp_path / "r", now=NOW, pages=True
    )
    unplaced = (folder / "district_none.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<tr class="line"', unplaced)) == 9
    assert "district_none.html" in _links(folder / "index.html")


def test_pages_per_upazila_and_a_subtree(tmp_path: Path) -> None:
    folder = write_report(
        fleet_run(HOSTS, NOW),
        _fleet(),
        "html",
        tmp_path / "report",
        by="upazila",
        now=NOW,
        pages=True,
        place="district_district_01",
    )
    pages = sorted(p.name for p in folder.iterdir() if p.name != "index.html")
    assert len(pages) == 8 and all(p.startswith("upazila_district_01_") for p in pages)
    summary = (folder / "index.html").read_text(encoding="utf-8")
    assert "limited to <code>district_district_01</code>" in summary
    assert "District 02" not in summary


def test_a_folder_has_pages_per_division_district_or_upazila_only(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no page per union"):
        write_report(fleet_run(5, NOW), _fleet(5), "html", tmp_path / "r", by="union", pages=True)
    assert list(tmp_path.iterdir()) == []


def test_a_new_folder_replaces_the_old_whole_and_a_failed_one_keeps_it(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "stale.html").write_text("old")
    write_report(fleet_run(800, NOW), _fleet(800), "html", out, now=NOW, pages=True)
    assert not (out / "stale.html").exists() and (out / "index.html").is_file()
    before = sorted(p.name for p in out.iterdir())

    def broken() -> Iterator[HostReport]:
        yield from _fleet(10)
        raise OSError("the store went away")

    with pytest.raises(OSError, match="went away"):
        write_report(fleet_run(800, NOW), broken(), "html", out, now=NOW, pages=True)
    assert sorted(p.name for p in out.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary left


# -- the command on a large recorded run -----------------------------------------------------


def _cli(ws: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--workspace", str(ws), *args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace whose store holds one run of LARGE_RUN_HOSTS + 200 hosts."""
    ws = tmp_path_factory.mktemp("ws")
    (ws / "provision.yml").write_text("env: production\n")
    (ws / "standards").mkdir()
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", ws / "standards")
    standard = load_standard(ws / "standards" / "bd-ict-baseline.yml")
    with open_store(load_settings(workspace=ws, flags={})) as store:
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
            started_at=NOW - timedelta(hours=1),
        )
        records.add_host_reports(run_id, _fleet(LARGE_RUN_HOSTS + 200))
        records.finish_run(run_id, "done")
    return ws


def test_a_large_run_is_compressed_by_default_and_says_so(
    large: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _cli(large, "compliance", "report", "--format", "csv")
    assert result.exit_code == 0, result.output
    (written,) = tmp_path.glob("compliance-production-run*.csv.gz")
    assert "gzip-compressed; --no-gzip writes it plain" in result.stderr
    with gzip.open(written, "rt", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len({r["host"] for r in rows}) == LARGE_RUN_HOSTS + 200

    plain = _cli(large, "compliance", "report", "--format", "junit", "--no-gzip", "--out", "r.xml")
    assert plain.exit_code == 0, plain.output
    assert "gzip" not in plain.stderr
    root = ET.parse(tmp_path / "r.xml").getroot()  # noqa: S314 (our own output)
    assert len(root.findall("testsuite")) == LARGE_RUN_HOSTS + 200

    named = _cli(large, "compliance", "report", "--format", "json", "--out", "r.json", "--json")
    assert named.exit_code == 0, named.output
    info = json.loads(named.stdout)
    assert info["path"] == "r.json.gz" and info["compressed"] is True
    assert not (tmp_path / "r.json").exists()

    piped = _cli(large, "compliance", "report", "--format", "json", "--out", "-")
    assert piped.exit_code == 0
    assert json.load(io.StringIO(piped.stdout))["format"] == "provision-compliance/1"


def test_a_large_runs_html_is_a_folder_unless_asked_for_one_page(
    large: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _cli(large, "compliance", "report")
    assert result.exit_code == 0, result.output
    (folder,) = tmp_path.glob("compliance-production-run*")
    assert folder.is_dir() and (folder / "index.html").is_file()
    assert "the HTML report is a folder of pages" in result.stderr
    assert f"wrote {folder.name}/index.html" in result.stdout

    named = _cli(large, "compliance", "report", "--out", "national.html")
    assert named.exit_code == 0, named.output
    assert (tmp_path / "national" / "index.html").is_file()
    assert not (tmp_path / "national.html").exists()
    (tmp_path / "taken").write_text("a file")
    taken = _cli(large, "compliance", "report", "--out", "taken")
    assert taken.exit_code == ExitStatus.BAD_INPUT and "--one-page" in taken.output
    assert (tmp_path / "taken").read_text() == "a file"

    one = _cli(large, "compliance", "report", "--one-page", "--out", "one.html")
    assert one.exit_code == 0, one.output
    assert (tmp_path / "one.html").is_file()

    bad = _cli(large, "compliance", "report", "--by", "union")
    assert bad.exit_code == ExitStatus.BAD_INPUT
    assert "no page per union" in bad.output
    gz = _cli(large, "compliance", "report", "--gzip")
    assert gz.exit_code == ExitStatus.BAD_INPUT and "not written compressed" in gz.output
