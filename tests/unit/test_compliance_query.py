"""`provision compliance query`, prune and the store's detail, on a store whose truth is known
(tests/helpers/compliance_truth.py: three daily audits of four hosts)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.compliance import query
from provision.errors import ExitStatus, InputError, StateError
from provision.infra.store import Store
from provision.infra.store.compliance_codec import ControlTallies, host_rows
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.scoring import RollupBuilder, host_score
from provision.settings import load_settings
from tests.helpers import inventory as registers
from tests.helpers.compliance_truth import ABOVE_SITES, TRUTH, at, fill, report


@pytest.fixture
def env(workspace: Path, tmp_path: Path) -> dict[str, str]:
    db = f"sqlite:///{workspace / 'state.db'}"
    environ = {"PROVISION_WORKSPACE": str(workspace), "PROVISION_DB_URL": db}
    register = registers.write(tmp_path / "register.csv")
    imported = CliRunner().invoke(cli, ["inventory", "import", str(register)], env=environ)
    assert imported.exit_code == 0, imported.output
    with Store.open(db) as store:
        fill(ComplianceRecords(store))
    return environ


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, ["compliance", *args], env=env)


def answer(env: dict[str, str], *args: str) -> object:
    result = run(env, "query", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# -- the store's one pass agrees with the scoring rules --------------------------------


def test_ingest_scores_hosts_as_the_scoring_rules_do() -> None:
    for day, hosts in TRUTH.items():
        for host in hosts:
            r = report(day, host)
            row, findings = host_rows(1, r, ControlTallies())
            score = host_score(r)
            assert (row["score"], row["compliant"]) == (score.score, score.compliant)
            assert (row["critical_failures"] or "") == ",".join(score.critical_failures)
            assert sorted(f[2] for f in findings) == sorted(
                c for c, (s, _) in TRUTH[day][host].items() if s != "unreachable"
            )


def test_rollups_from_aggregates_match_the_rollup_of_the_reports(tmp_path: Path) -> None:
    records = ComplianceRecords(Store.open(f"sqlite:///{tmp_path / 'state.db'}"))
    runs = fill(records)
    for day, run_id in zip((1, 2, 3), runs, strict=True):
        stored = records.rollups(run_id)
        run_info = records.get_run(run_id)
        builder = RollupBuilder(run_info, now=stored.now, freshness=stored.freshness)
        for r in records.host_reports(run_id):
            builder.add(r)
        assert stored.as_dict() == builder.result().as_dict(), f"day {day}"


# -- the four questions ----------------------------------------------------------------


def test_failing_a_control_as_of_a_day(env: dict[str, str]) -> None:
    data = answer(env, "failing", "--control", "SSH-001", "--as-of", "2026-06-02")
    assert isinstance(data, dict)
    assert data["run"]["standard_version"] == "2026.2"
    [finding] = data["findings"]
    assert (finding["host"], finding["status"], finding["expected"], finding["actual"]) == (
        "gaz-003-lab01",
        "fail",
        "no",
        "yes",
    )
    assert finding["collected_at"].startswith("2026-06-02T03:00")
    # 3 June: lab01 was fixed, khu-014-lab01 broke.
    data = answer(env, "failing", "--control", "SSH-001", "--as-of", "2026-06-03")
    assert [f["host"] for f in data["findings"]] == ["khu-014-lab01"]  # type: ignore[index]


def test_failing_any_critical_control_within_a_selection(env: dict[str, str]) -> None:
    data = answer(env, "failing", "--critical", "--as-of", "2026-06-03")
    assert [(f["host"], f["control"]) for f in data["findings"]] == [  # type: ignore[index]
        ("khu-014-lab01", "SSH-001")
    ]
    data = answer(env, "failing", "--critical", "--as-of", "2026-06-03", "district:gazipur")
    assert data["findings"] == []  # type: ignore[index]
    # Failing means fail, error and no_report; waived is not failing.
    data = answer(env, "failing", "--control", "PKG-002", "--as-of", "2026-06-03")
    assert [(f["host"], f["status"]) for f in data["findings"]] == [  # type: ignore[index]
        ("gaz-003-lab02", "error")
    ]


def test_host_history_over_a_period(env: dict[str, str]) -> None:
    lines = answer(env, "host", "gaz-003-lab02", "--since", "2026-06-02", "--until", "2026-06-03")
    assert isinstance(lines, list)
    assert [line["standard_version"] for line in lines] == ["2026.2", "2026.3"]
    assert [[(f["control"], f["status"]) for f in line["findings"]] for line in lines] == [
        [("PKG-002", "fail")],
        [("PKG-002", "error")],
    ]
    assert [line["compliant"] for line in lines] == [False, False]
    lines = answer(env, "host", "khu-014-lab01")
    assert [line["host_status"] for line in lines] == ["unreachable", "reported", "reported"]  # type: ignore[union-attr]


def test_control_history_counts_each_status(env: dict[str, str]) -> None:
    lines = answer(env, "control", "PKG-002")
    assert isinstance(lines, list)
    counts = [(line["pass"], line["fail"], line["error"], line["waived"]) for line in lines]
    assert counts == [(2, 0, 0, 1), (2, 1, 0, 1), (2, 0, 1, 1)]
    assert [line["unreachable"] for line in lines] == [1, 0, 0]


def test_drifted_between_two_days(env: dict[str, str]) -> None:
    data = answer(env, "drifted", "--from", "2026-06-02", "--to", "2026-06-03")
    assert isinstance(data, dict)
    new = {(f["host"], f["control"], f["status"]) for f in data["new"]}
    fixed = {(f["host"], f["control"]) for f in data["fixed"]}
    assert new == {("khu-014-lab01", "SSH-001", "fail"), ("gaz-003-lab02", "PKG-002", "error")}
    assert fixed == {("gaz-003-lab01", "SSH-001")}


def test_csv_has_one_line_per_finding(env: dict[str, str]) -> None:
    result = run(env, "query", "failing", "--control", "PKG-002", "--as-of", "2026-06-02", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["host"], r["status"], r["actual"]) for r in rows] == [
        ("gaz-003-lab02", "fail", "1.0")
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("failing", "--control", "SSH-001", "--as-of", "30/06/2026"), "--as-of '30/06/2026'"),
        (("failing", "--control", "NOPE-1", "--as-of", "2026-06-02"), "'NOPE-1'"),
        (("failing", "--as-of", "2026-06-02"), "--control ID or --critical"),
        (("host", "no-such-host"), "'no-such-host'"),
        (("control", "SSH-001", "--since", "2026-13-01"), "--since '2026-13-01'"),
        (("drifted", "--from", "2026-06-03", "--to", "2026-06-01"), "before --from"),
    ],
)
def test_bad_input_is_one_clear_error(
    env: dict[str, str], args: tuple[str, ...], words: str
) -> None:
    result = run(env, "query", *args)
    assert result.exit_code == ExitStatus.BAD_INPUT, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_a_day_before_any_run_is_a_clear_error(env: dict[str, str]) -> None:
    result = run(env, "query", "failing", "--control", "SSH-001", "--as-of", "2026-05-31")
    assert result.exit_code != 0
    assert "no finished compliance run" in result.output


# -- prune -----------------------------------------------------------------------------


def test_prune_keeps_totals_and_failures_of_old_runs(env: dict[str, str], workspace: Path) -> None:
    settings = load_settings(workspace=workspace, environ=env)
    now = at(3, 12)
    dry = query_prune(settings, now, dry_run=True)
    assert (dry.runs, dry.host_rows, dry.findings) == ((1, 2), 8, 2)  # the waived findings
    with Store.open(settings.database_url) as store:
        records = ComplianceRecords(store)
        assert records.pruned_at(1) is None  # a dry run changes nothing
        before = {r: records.rollups(r, ABOVE_SITES).as_dict() for r in (1, 2, 3)}
        sites = {r: records.rollups(r, ("site",)).levels["site"] for r in (1, 2, 3)}
    assert all(sites.values()) and dry.place_rows == len(sites[1]) + len(sites[2])
    done = query_prune(settings, now)
    assert (done.runs, done.host_rows, done.findings) == (dry.runs, 8, 2)
    assert done.place_rows == dry.place_rows
    with Store.open(settings.database_url) as store:
        records = ComplianceRecords(store)
        assert records.pruned_at(1) is not None and records.pruned_at(3) is None
        # Every level above the sites is kept; the pruned runs' site totals go.
        assert {r: records.rollups(r, ABOVE_SITES).as_dict() for r in (1, 2, 3)} == before
        assert [records.rollups(r, ("site",)).levels["site"] for r in (1, 2, 3)] == [
            (),
            (),
            sites[3],
        ]
        with pytest.raises(StateError, match="pruned"):
            list(records.host_reports(1))
        assert records.host_rows(3)  # the kept run is whole
        # The trend's points of pruned runs come from their totals.
        points = records.run_summaries("lab", "bd-ict-baseline")
        assert [(p.hosts, p.reported, p.compliant) for p in points] == [
            (4, 3, 2),
            (4, 4, 2),
            (4, 4, 2),
        ]
    # The evidence of each host's failures answers as before.
    data = answer(env, "failing", "--control", "SSH-001", "--as-of", "2026-06-02")
    assert [(f["host"], f["actual"]) for f in data["findings"]] == [  # type: ignore[index]
        ("gaz-003-lab01", "yes")
    ]
    # lab01 failed SSH-001 the same way on 1 and 2 June: one stretch holds both.
    with Store.open(settings.database_url) as store:
        from provision.infra.store.compliance_detail_tables import compliance_stretches

        with store.engine.connect() as conn:
            stretches = conn.execute(
                compliance_stretches.select().order_by(compliance_stretches.c.host)
            ).all()
    assert [(r.host, r.control, r.first_run, r.last_run) for r in stretches] == [
        ("gaz-003-lab01", "SSH-001", 1, 2),
        ("gaz-003-lab02", "PKG-002", 2, 2),
    ]
    lines = answer(env, "host", "gaz-003-lab01")
    assert [[f["stretch"] for f in line["findings"]] for line in lines][:2] == [  # type: ignore[index]
        [
            {
                "first_run": 1,
                "last_run": 2,
                "first_collected": "2026-06-01T03:00:00+00:00",
                "last_collected": "2026-06-02T03:00:00+00:00",
            }
        ]
    ] * 2
    # A host whose pruned runs held only a waiver keeps no trace of them.
    lines = answer(env, "host", "gaz-001-fs01")
    assert [line["run"] for line in lines] == [3]  # type: ignore[union-attr]
    # show and report on a pruned run say what is true.
    shown = run(env, "show", "2")
    assert shown.exit_code == 0, shown.output
    assert "4 hosts" in shown.output and "pruned" in shown.output
    report = run(env, "report", "2", "--format", "json", "--out", str(workspace / "r.json"))
    assert report.exit_code != 0 and "pruned" in report.output
    assert "Traceback" not in report.output
    again = query_prune(settings, now)
    assert again.runs == ()  # nothing is pruned twice


def query_prune(settings: object, now: datetime, *, dry_run: bool = False) -> object:
    from provision.compliance.prune import prune

    return prune(settings, 1, dry_run=dry_run, now=now)  # type: ignore[arg-type]


def test_prune_removes_old_audit_folders_only(env: dict[str, str], workspace: Path) -> None:
    from provision.compliance.prune import prune
    from provision.infra import runner

    settings = load_settings(workspace=workspace, environ=env)
    runs = settings.state_path / "runs"
    runs.mkdir(parents=True)
    old = runs / "20260501T000000Z-compliance-1-aaaa"
    young = runs / "20260603T000000Z-compliance-3-bbbb"
    rollout = runs / "20260501T000000Z-rollout-4-w1-cccc"
    for folder in (old, young, rollout):
        folder.mkdir()
    result = prune(settings, 1, now=at(3, 12))
    assert result.folders == (old,)
    assert not old.exists() and young.is_dir() and rollout.is_dir()
    assert runner.run_kind(rollout) == "rollout"


def test_prune_refuses_to_keep_nothing(env: dict[str, str], workspace: Path) -> None:
    result = run(env, "prune", "--keep", "0")
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert "keep at least 1 day" in result.output


def test_prune_says_what_it_removed(env: dict[str, str]) -> None:
    result = run(env, "prune", "--keep", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would remove" in result.output


def test_parse_day_names_the_option() -> None:
    assert query.parse_day("2026-06-30", "--as-of") == date(2026, 6, 30)
    assert query.day_end(date(2026, 6, 30)) - query.day_start(date(2026, 6, 30)) == timedelta(
        days=1
    )
    with pytest.raises(InputError, match="--as-of"):
        query.parse_day("yesterday", "--as-of")


def test_runs_recorded_before_the_detail_tables_get_it_when_asked(tmp_path: Path) -> None:
    from provision.infra.store.compliance_detail_tables import TABLES

    url = f"sqlite:///{tmp_path / 'state.db'}"
    with Store.open(url) as store:
        records = ComplianceRecords(store)
        fill(records)
        whole = {r: records.rollups(r).as_dict() for r in (1, 2, 3)}
        with store.engine.begin() as conn:  # as a store of schema version 3 had it
            for table in TABLES:
                conn.execute(table.delete())
    with Store.open(url) as store:
        records = ComplianceRecords(store)
        assert records.backfill() == 3
        assert {r: records.rollups(r).as_dict() for r in (1, 2, 3)} == whole
        from provision.infra.store.compliance_queries import ComplianceQueries

        queries = ComplianceQueries(store.engine, "lab")
        run = queries.run_as_of(at(3, 12))
        assert run is not None
        assert [(f.host, f.control) for f in queries.failing(run)] == [
            ("gaz-003-lab02", "PKG-002"),
            ("khu-014-lab01", "SSH-001"),
        ]
