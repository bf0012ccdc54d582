"""The trend of a report: which earlier runs are its points, and one coverage for all of them."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.reports import DEFAULT_FRESHNESS, write_report
from provision.reports.service import trend_points
from provision.settings import Settings
from tests.helpers.drift_samples import drift_settings, record, report

#: More runs than the newest ~31 the trend once read before it filtered them.
RUNS = 40


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return drift_settings(tmp_path)


@pytest.fixture
def daily(settings: Settings) -> list[int]:
    """RUNS fleet runs a day apart, with a one-host audit beside each of the first ten."""
    ids = []
    for day in range(RUNS):
        ids.append(record(settings, 24 * day, "", report("dhk-gaz-fs01", "pass")))
        if day < 10:
            record(settings, 24 * day + 1, "dhk-gaz-fs01", report("dhk-gaz-fs01", "fail"))
    return ids


def _points(settings: Settings, run_id: int, limit: int = 30) -> list[int]:
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        return [p.run_id for p in trend_points(records, records.get_run(run_id), limit)]


def test_the_trend_of_an_old_run_holds_the_runs_before_it(
    settings: Settings, daily: list[int]
) -> None:
    assert _points(settings, daily[4]) == daily[:4]
    assert _points(settings, daily[4], limit=2) == daily[2:4]


def test_the_trend_holds_no_later_run_and_not_the_run_itself(
    settings: Settings, daily: list[int]
) -> None:
    assert _points(settings, daily[35]) == daily[5:35]
    assert _points(settings, daily[35], limit=3) == daily[32:35]
    assert _points(settings, daily[0]) == []
    assert _points(settings, daily[-1], limit=0) == []


def _coverage_line(page: str) -> list[float]:
    """The y values of the trend's coverage polyline, in the order drawn."""
    found = re.search(r'<polyline points="([^"]*)"[^>]*stroke-dasharray', page)
    assert found, "no coverage line in the trend"
    return [float(xy.split(",")[1]) for xy in found.group(1).split()]


def test_the_trend_draws_one_coverage_for_earlier_runs_and_the_run_itself(
    settings: Settings, tmp_path: Path
) -> None:
    hosts = (
        report("dhk-gaz-fs01", "pass"),
        report("dhk-gaz-fs02", "pass"),
        report("dhk-gaz-fs03", "pass", status="unreachable"),
    )
    first = record(settings, 0, "", *hosts)
    second = record(settings, 12, "", *hosts)
    out = tmp_path / "page.html"
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run = records.get_run(second)
        (summary,) = [s for s in records.run_summaries("lab", run.standard_id) if s.run_id == first]
        # Two of three hosts gave evidence at their run: not 1.0, not the reported share by luck.
        assert summary.coverage == pytest.approx(2 / 3)
        # Written a week later: the evidence is stale now, as the page's coverage says,
        # but each point of the trend is its run's coverage at that run, the same way.
        write_report(
            run,
            records.host_reports(second),
            "html",
            out,
            history=trend_points(records, run),
            now=run.started_at + timedelta(days=7),
            freshness=DEFAULT_FRESHNESS,
        )
    line = _coverage_line(out.read_text(encoding="utf-8"))
    assert len(line) == 2 and line[0] == line[1] == pytest.approx(200 - 180 * 2 / 3, abs=0.1)


def test_store_coverage_counts_only_evidence_fresh_at_the_run(settings: Settings) -> None:
    stale = report("dhk-gaz-fs02", "pass")
    record(settings, 0, "", report("dhk-gaz-fs01", "pass"), stale)
    # The same evidence (collected at T0) reported again by a run three days later.
    later = record(settings, 72, "", report("dhk-gaz-fs01", "pass"), stale)
    with open_store(settings) as store:
        summaries = ComplianceRecords(store).run_summaries("lab", "bd-ict-baseline")
    by_run = {s.run_id: s for s in summaries}
    assert by_run[later].reported == 2
    assert by_run[later].coverage == 0.0
    assert [s.coverage for s in summaries] == [1.0, 0.0]
