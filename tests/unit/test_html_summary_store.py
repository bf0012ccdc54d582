"""A recorded run's folder report from the store's aggregates and host columns.

The folder written with `StoredRun` (roll-ups from the per-run aggregates,
the summary from the host columns, no result read but the worst hosts'
failing controls) must be, byte for byte, the folder the one pass over the
host reports writes: the same run is written both ways and every file compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provision.errors import InputError, StateError
from provision.infra.store import compliance_records, open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.infra.store.pull_records import PullRecords
from provision.model.compliance.model import (
    HOST_ERROR,
    HOST_NO_REPORT,
    HOST_REPORTED,
    HOST_UNREACHABLE,
    ControlResult,
    HostReport,
)
from provision.model.pull import PullState
from provision.model.scoring import host_score
from provision.reports import write_report
from provision.reports.html_pages import FAILING_NAMED, WORST_HOSTS
from provision.reports.service import (
    stored_run,
    trend_points,
    with_pull,
    write_run_report,
    write_run_summary,
)
from provision.settings import Settings, load_settings

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(days=2)
HOSTS = 420
#: Not in name order: a host's failing controls are named in its results' order.
CONTROLS = [f"CTL-{i:02d}" for i in (9, 3, 11, 0, 7, 1, 10, 5, 2, 8, 4, 6)]
SEVERITIES = ("low", "medium", "high", "critical")
#: A window other than the aggregates' default: fresh evidence is counted again.
FRESHNESS = timedelta(hours=30)


def _place(n: int) -> dict[str, str]:
    if n % 37 == 5:
        return {}  # a lab host: no place at all
    district = n % 5  # interleaved: hosts of one district are not neighbours by name
    upazila = (n // 5) % 3
    return {
        "division": f"Division {district % 2}",
        "district": "গাজীপুর" if district == 0 else f"District {district}",
        "upazila": f"Upazila {district}{upazila}",
        "union": f"Union {n % 4}",
        "site": f"SITE-{n % 11:02d}",
    }


def _status(n: int, i: int) -> str:
    if n % 3 == 0:
        return "pass"  # a third of the fleet is clean: many ties in badness
    if n % 7 == 1:  # the same failures on many hosts: ties in badness too
        return "fail" if i in (0, 2, 4, 6, 8, 10, 11) else "pass"
    mix = (n * 31 + i * 17) % 100
    if mix < 12:
        return "fail"
    if mix < 16:
        return "error"
    if mix < 20:
        return "waived"
    if mix < 23:
        return "not_applicable"
    return "pass"


def _reports() -> Iterator[HostReport]:
    for n in range(HOSTS):
        host = f"pc-{(n * 7919) % 1000:03d}"  # recorded out of name order
        place = _place(n)
        if n % 29 == 4:
            yield HostReport(
                host=host,
                status=HOST_UNREACHABLE,
                role="lab_pc",
                place=place,
                message="ssh: no route to host",
                results=tuple(
                    ControlResult(c, "unreachable", SEVERITIES[i % 4])
                    for i, c in enumerate(CONTROLS)
                ),
            )
            continue
        if n % 31 == 9:
            yield HostReport(host=host, status=HOST_ERROR, role="lab_pc", place=place)
            continue
        if n % 41 == 3:
            yield HostReport(
                host=host,
                status=HOST_NO_REPORT,
                role="digital_centre_pc",
                place=place,
                results=tuple(
                    ControlResult(c, "no_report", SEVERITIES[i % 4]) for i, c in enumerate(CONTROLS)
                ),
            )
            continue
        results = tuple(
            ControlResult(
                c,
                status,
                SEVERITIES[i % 4],
                expected={"v": i},
                actual={"v": i if status == "pass" else -1},
                message="" if status == "pass" else f"{c} differs",
                waiver="W-1" if status == "waived" else None,
            )
            for i, c in enumerate(CONTROLS)
            for status in [_status(n, i)]
        )
        # Evidence from a few minutes to four days old, some after the report's `now`.
        collected = NOW - timedelta(minutes=(n * 53) % 5800) + timedelta(minutes=n % 4)
        yield HostReport(
            host=host,
            status=HOST_REPORTED,
            role="lab_pc",
            os_release="debian-12",
            place=place,
            collected_at=collected,
            evidence_digest=f"{n:064x}",
            results=results,
        )


def _pulled() -> dict[str, PullState]:
    states = {}
    for n in range(0, HOSTS, 9):
        host = f"pc-{(n * 7919) % 1000:03d}"
        reported = None if n % 27 == 0 else NOW - timedelta(hours=n % 500)
        states[host] = PullState(
            serial=None if reported is None else n,
            reported_at=reported,
            keep=timedelta(days=14),
            within=reported is not None and n % 500 < 14 * 24,
        )
    return states


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, int]:
    ws = tmp_path_factory.mktemp("ws")
    (ws / "provision.yml").write_text("env: production\n")
    settings = load_settings(workspace=ws, flags={})
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run_id = records.create_run(
            env="production",
            selection="all",
            standard_id="bd-ict-baseline",
            standard_version="2026.1",
            standard_digest="a" * 64,
            waivers_digest=None,
            user="auditor",
            node="control-01",
            started_at=STARTED,
        )
        reports = list(_reports())
        records.add_host_reports(run_id, reports[:200])
        records.add_host_reports(run_id, reports[200:])
        PullRecords(store).set_compliance_pull(run_id, _pulled())
        records.finish_run(run_id, "done")
    return settings, run_id


def test_the_fixture_has_what_the_comparison_needs(recorded: tuple[Settings, int]) -> None:
    """Ties in badness among the worst, hosts named out of arrival order, long failure lists."""
    settings, run_id = recorded
    with open_store(settings) as store:
        reports = list(ComplianceRecords(store).host_reports(run_id))
    assert [r.host for r in reports] == sorted(r.host for r in reports)
    bad = sorted(
        (
            (
                not host_score(r).compliant,
                bool(host_score(r).critical_failures),
                -(host_score(r).score or 0.0),
            )
            for r in reports
        ),
        reverse=True,
    )
    assert len(set(bad[: WORST_HOSTS + 1])) < WORST_HOSTS  # ties at the cut
    assert any(
        sum(x.status in ("fail", "error") for x in r.results) > FAILING_NAMED for r in reports
    )
    assert {r.status for r in reports} == {
        HOST_REPORTED,
        HOST_UNREACHABLE,
        HOST_ERROR,
        HOST_NO_REPORT,
    }


def _both_ways(settings: Settings, run_id: int, out: Path, by: str) -> tuple[Path, Path]:
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run = records.get_run(run_id)
        pulled = PullRecords(store).compliance_pull(run_id)
        history = trend_points(records, run)
        ways = {}
        for name, stored in (("pass", None), ("store", stored_run(records, run, by, pulled))):
            ways[name] = write_report(
                run,
                with_pull(records.host_reports(run_id), pulled),
                "html",
                out / name,
                by=by,
                history=history,
                now=NOW,
                freshness=FRESHNESS,
                pages=True,
                stored=stored,
            )
    return ways["pass"], ways["store"]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("by", ["division", "district", "upazila"])
def test_the_folder_from_the_store_is_the_one_pass_folder_byte_for_byte(
    recorded: tuple[Settings, int], tmp_path: Path, by: str
) -> None:
    settings, run_id = recorded
    one_pass, from_store = _both_ways(settings, run_id, tmp_path, by)
    expected, got = _files(one_pass), _files(from_store)
    assert len(expected) > 3 and "index.html" in expected
    assert sorted(got) == sorted(expected)
    for name, text in expected.items():
        assert got[name] == text, name
    summary = expected["index.html"].decode()
    assert "pc-" in summary and "Division 1" in summary  # it lists hosts and places

    alone = write_run_summary(settings, run_id, tmp_path / "alone.html", by=by, now=NOW)
    through = write_run_report(
        settings, run_id, "html", tmp_path / "cli", by=by, now=NOW, pages=True
    )
    ((_, index),) = through.files
    assert alone.read_bytes() == index.read_bytes()


def test_the_summary_alone_reads_no_results_but_the_worst_hosts(
    recorded: tuple[Settings, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, run_id = recorded
    expected = _both_ways(settings, run_id, tmp_path, "district")[0] / "index.html"
    decoded: list[int] = []
    real = compliance_records.decode_results

    def counted(blob: bytes) -> object:
        decoded.append(1)
        return real(blob)

    def no_reports(*args: object, **kwargs: object) -> None:
        raise AssertionError("the summary read the host reports")

    monkeypatch.setattr(compliance_records, "decode_results", counted)
    monkeypatch.setattr(ComplianceRecords, "host_reports", no_reports)
    out = write_run_summary(settings, run_id, tmp_path / "index.html", now=NOW, freshness=FRESHNESS)
    assert 0 < len(decoded) <= WORST_HOSTS
    assert out.read_bytes() == expected.read_bytes()


def test_a_summary_alone_needs_a_page_level_and_a_finished_run(
    recorded: tuple[Settings, int], tmp_path: Path
) -> None:
    settings, run_id = recorded
    with pytest.raises(InputError, match="no page per union"):
        write_run_summary(settings, run_id, tmp_path / "x.html", by="union")
    with open_store(settings) as store:
        running = ComplianceRecords(store).create_run(
            env="production",
            selection="all",
            standard_id="bd-ict-baseline",
            standard_version="2026.1",
            standard_digest="a" * 64,
            waivers_digest=None,
            user="auditor",
            node="control-01",
        )
    with pytest.raises(StateError, match="still running"):
        write_run_summary(settings, running, tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_a_run_of_no_host_and_a_pruned_run(tmp_path: Path) -> None:
    """No host: the same (empty) folder both ways. Pruned: the summary says why, as the
    folder does, and writes nothing."""
    (tmp_path / "provision.yml").write_text("env: production\n")
    settings = load_settings(workspace=tmp_path, flags={})
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run_id = records.create_run(
            env="production",
            selection="all",
            standard_id="bd-ict-baseline",
            standard_version="2026.1",
            standard_digest="a" * 64,
            waivers_digest=None,
            user="auditor",
            node="control-01",
            started_at=STARTED,
        )
        records.finish_run(run_id, "done")
    one_pass, from_store = _both_ways(settings, run_id, tmp_path, "district")
    assert _files(from_store) == _files(one_pass)
    assert list(_files(one_pass)) == ["index.html"]

    with open_store(settings) as store:
        records = ComplianceRecords(store)
        records.add_host_reports(run_id, list(_reports())[:20])
        records.finish_run(run_id, "done")
        records.prune(NOW + timedelta(days=1))
    out = tmp_path / "pruned"
    for write in (
        lambda: write_run_summary(settings, run_id, out / "index.html", now=NOW),
        lambda: write_run_report(settings, run_id, "html", out, now=NOW, pages=True),
    ):
        with pytest.raises(StateError, match="was pruned"):
            write()
    assert not out.exists()
