"""Host scores and the roll-ups along the administrative tree, on hand-built reports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from provision.model.compliance.model import (
    HOST_ERROR,
    HOST_NO_REPORT,
    HOST_REPORTED,
    HOST_UNREACHABLE,
    ComplianceRunInfo,
    ControlResult,
    HostReport,
)
from provision.model.scoring import (
    MixedStandardsError,
    RollupBuilder,
    host_score,
    require_one_standard,
    rollup,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

RUN = ComplianceRunInfo(
    id=7,
    status="done",
    env="lab",
    selection="all",
    standard_id="bd-ict-baseline",
    standard_version="2026.1",
    standard_digest="d" * 64,
    waivers_digest=None,
    user="auditor",
    node="control",
    started_at=NOW - timedelta(hours=1),
)

LEVELS = ("division", "district", "upazila", "union", "site")
GAZIPUR = dict(zip(LEVELS, ("Dhaka", "Gazipur", "Kaliganj", "Bahadursadi", "DHK-014"), strict=True))
DHAKA = dict(zip(LEVELS, ("Dhaka", "Dhaka", "Savar", "Ashulia", "DHK-001"), strict=True))
JASHORE = dict(
    zip(LEVELS, ("Khulna", "Jashore", "Chougachha", "Narayanpur", "KHU-014"), strict=True)
)


def _report(
    host: str,
    place: dict[str, str],
    statuses: dict[str, str],
    *,
    age: timedelta | None = timedelta(hours=2),
    critical: tuple[str, ...] = (),
) -> HostReport:
    results = tuple(
        ControlResult(c, s, "critical" if c in critical else "medium") for c, s in statuses.items()
    )
    return HostReport(
        host=host,
        status=HOST_REPORTED,
        place=place,
        collected_at=None if age is None else NOW - age,
        results=results,
    )


def _unreachable(host: str, place: dict[str, str], controls: list[str]) -> HostReport:
    results = tuple(ControlResult(c, "unreachable", "medium") for c in controls)
    return HostReport(host=host, status=HOST_UNREACHABLE, place=place, results=results)


def _silent(host: str, place: dict[str, str], status: str, controls: list[str]) -> HostReport:
    """A host with no evidence: a pulled PC silent past its window (HOST_NO_REPORT), or a
    pushed host reached whose evidence could not be collected (HOST_ERROR); each of
    its applicable controls is no_report."""
    results = tuple(ControlResult(c, "no_report", "medium") for c in controls)
    return HostReport(host=host, status=status, place=place, results=results)


def _fleet() -> list[HostReport]:
    return [
        # 4 of 4 pass: 1.0, compliant
        _report("g1", GAZIPUR, {"A": "pass", "B": "pass", "C": "pass", "D": "pass"}),
        # 3 of 4: 0.75, B fails
        _report("g2", GAZIPUR, {"A": "pass", "B": "fail", "C": "pass", "D": "pass"}),
        # 1 of 2 scored (C waived, D n/a): 0.5, B errors; evidence 3 days old
        _report(
            "g3",
            GAZIPUR,
            {"A": "pass", "B": "error", "C": "waived", "D": "not_applicable"},
            age=3 * DAY,
        ),
        # Unreachable: no score, no evidence.
        _unreachable("g4", GAZIPUR, ["A", "B", "C", "D"]),
        # 3 of 4 with the one failure critical: 0.75 but non-compliant.
        _report("d1", DHAKA, {"A": "fail", "B": "pass", "C": "pass", "D": "pass"}, critical=("A",)),
        # 1.0 and compliant, in another division.
        _report("j1", JASHORE, {"A": "pass", "B": "pass", "C": "pass", "D": "pass"}),
    ]


def test_host_score_counts_only_pass_fail_error() -> None:
    g3 = _fleet()[2]
    assert host_score(g3).score == 0.5
    assert not host_score(g3).compliant
    critical = host_score(_fleet()[4])
    assert critical.score == 0.75
    assert critical.critical_failures == ("A",)
    assert not critical.compliant
    unreachable = host_score(_fleet()[3])
    assert unreachable.score is None and not unreachable.compliant


def test_rollup_of_the_whole_run() -> None:
    result = rollup(RUN, iter(_fleet()), now=NOW, freshness=DAY)
    total = result.total
    assert (total.hosts, total.reported, total.unreachable) == (6, 5, 1)
    assert total.compliant == 2  # g1 and j1
    assert total.critical == 1  # d1
    # Scores 1.0, 0.75, 0.5, 0.75, 1.0 -> median 0.75; the unreachable host has none.
    assert total.median_score == 0.75
    assert total.lowest_score == 0.5
    # Fresh evidence: g1, g2, d1, j1 (g3 is 3 days old, g4 has none).
    assert total.fresh == 4
    assert total.coverage == pytest.approx(4 / 6)
    assert total.oldest_evidence == 3 * DAY
    assert total.median_evidence == timedelta(hours=2)
    assert [(t.control, t.fail, t.error) for t in total.worst_controls] == [
        ("B", 1, 1),
        ("A", 1, 0),
    ]
    assert total.statuses["unreachable"] == 4
    assert total.statuses["waived"] == 1


def test_rollup_per_district_and_division() -> None:
    result = rollup(RUN, _fleet(), now=NOW, freshness=DAY)
    districts = {r.name: r for r in result.at("district")}
    assert set(districts) == {"Gazipur", "Dhaka", "Jashore"}
    gazipur = districts["Gazipur"]
    assert gazipur.path == ("Dhaka", "Gazipur")
    assert (gazipur.hosts, gazipur.reported, gazipur.compliant) == (4, 3, 1)
    assert gazipur.median_score == 0.75
    assert gazipur.coverage == 0.5
    assert gazipur.rag == "red"
    assert districts["Jashore"].rag == "green"
    divisions = {r.name: r for r in result.at("division")}
    assert divisions["Dhaka"].hosts == 5
    assert divisions["Khulna"].median_score == 1.0
    sites = result.at("site")
    assert [s.path[-1] for s in sites] == ["DHK-001", "DHK-014", "KHU-014"]


def test_unreachable_lowers_coverage_not_score() -> None:
    reachable = [r for r in _fleet() if r.host != "g4"]
    with_it = rollup(RUN, _fleet(), now=NOW, freshness=DAY).total
    without = rollup(RUN, reachable, now=NOW, freshness=DAY).total
    assert with_it.median_score == without.median_score
    assert with_it.compliant == without.compliant
    assert with_it.coverage is not None and without.coverage is not None
    assert with_it.coverage < without.coverage


def test_a_host_without_place_is_rolled_up_as_unplaced() -> None:
    lab = _report("lab01", {}, {"A": "pass"})
    result = rollup(RUN, [lab], now=NOW, freshness=DAY)
    assert result.at("district")[0].path == ("(none)", "(none)")


def test_empty_run_has_an_empty_total() -> None:
    total = rollup(RUN, [], now=NOW, freshness=DAY).total
    assert total.hosts == 0 and total.median_score is None and total.coverage is None


def test_standard_versions_are_never_mixed() -> None:
    newer = replace(RUN, id=8, standard_version="2027.1")
    with pytest.raises(MixedStandardsError, match=r"2026\.1.*2027\.1"):
        rollup([RUN, newer], _fleet(), now=NOW, freshness=DAY)
    with pytest.raises(MixedStandardsError):
        require_one_standard([RUN, replace(RUN, standard_id="other")])
    assert require_one_standard([RUN, replace(RUN, id=9)]) == ("bd-ict-baseline", "2026.1")


def test_builder_streams_without_keeping_reports() -> None:
    builder = RollupBuilder(RUN, now=NOW, freshness=DAY, levels=("all", "district"))

    def stream() -> Iterator[HostReport]:
        for i in range(1000):
            yield _report(f"h{i}", GAZIPUR, {"A": "pass" if i % 4 else "fail", "B": "pass"})

    for report in stream():
        builder.add(report)
    total = builder.result().total
    assert total.hosts == 1000
    assert total.compliant == 750
    assert total.median_score == 1.0
    assert "all" in builder.result().as_dict()["levels"]


def test_a_pulled_host_silent_past_its_window_counts_as_no_report_not_errored() -> None:
    reports = [
        _report("g1", GAZIPUR, {"A": "pass", "B": "pass"}),
        _silent("g2", GAZIPUR, HOST_NO_REPORT, ["A", "B"]),
        _silent("g3", GAZIPUR, HOST_NO_REPORT, ["A", "B"]),
        _silent("d1", DHAKA, HOST_ERROR, ["A", "B"]),
        _unreachable("d2", DHAKA, ["A", "B"]),
    ]
    result = rollup(RUN, reports, now=NOW, freshness=DAY)
    total = result.total
    assert (total.hosts, total.reported, total.unreachable) == (5, 1, 1)
    assert (total.no_report, total.errored) == (2, 1)
    # Never a pass, never a score: the median and the compliant share are g1's alone ...
    assert (total.compliant, total.compliant_share, total.median_score) == (1, 1.0, 1.0)
    # ... and only g1's evidence covers.
    assert total.coverage == pytest.approx(1 / 5)
    assert total.statuses["no_report"] == 6 and total.statuses["pass"] == 2
    assert total.worst_controls == ()
    districts = {r.name: r for r in result.at("district")}
    gazipur, dhaka = districts["Gazipur"], districts["Dhaka"]
    assert (gazipur.hosts, gazipur.reported, gazipur.no_report, gazipur.errored) == (3, 1, 2, 0)
    assert (dhaka.hosts, dhaka.no_report, dhaka.errored, dhaka.unreachable) == (2, 0, 1, 1)
    # A place of silent PCs alone has nothing reported to judge: red, not a pass.
    only_silent = rollup(RUN, reports[1:3], now=NOW, freshness=DAY).total
    assert (only_silent.no_report, only_silent.compliant_share, only_silent.rag) == (2, None, "red")
    as_dict = total.as_dict()
    assert (as_dict["no_report"], as_dict["errored"], as_dict["unreachable"]) == (2, 1, 1)
