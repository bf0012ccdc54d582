"""Compliance knows what to expect of hosts in pull mode: an audit never contacts them,
uses each one's newest pulled evidence within its keep-last window, and calls a host
silent past it no_report; coverage, evidence age and the reports say so honestly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from provision.access import keys
from provision.cli.main import cli
from provision.compliance.fix import plan_fix
from provision.compliance.service import plan_audit, run_audit
from provision.errors import ExitStatus, InputError
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.infra.store.pull_records import PullRecords
from provision.model.compliance.model import (
    HOST_NO_REPORT,
    HOST_REPORTED,
    NO_REPORT,
    ControlResult,
    HostReport,
)
from provision.model.pull import PullState
from provision.model.scoring import RollupBuilder
from provision.pull.collect import collect_files, plan_collect
from provision.reports.html import PulledEntry, keep_pulled, pulled_rows
from provision.reports.service import write_run_reports
from provision.settings import Settings
from provision.standards.service import pick_standard
from tests.helpers.bundles import pull_workspace
from tests.helpers.pulled import file_name, result_file
from tests.helpers.runs import record_compliance_run

NOW = datetime.now(UTC)
#: The truth of the store: host -> (serial, hours since its report), None: never reported.
REPORTED = {"pc1": (5, 2), "pc2": (4, 20 * 24), "pc3": (4, 20 * 24)}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings, _ = pull_workspace(tmp_path)
    hosts = settings.inventory_path / "hosts.yml"
    data = yaml.safe_load(hosts.read_text())
    data["all"]["children"]["role_field_server"] = {
        "hosts": {"fs1": {"ansible_host": "10.0.0.2", "provision_role": "field_server"}}
    }
    for group in ("role_lab_pc", "role_digital_centre_pc"):
        data["all"]["children"][group]["vars"] = {
            "provision_pull_mode": True,
            "pull_agent_server": "https://fs1:8443",
        }
    hosts.write_text(yaml.safe_dump(data))
    # pc3 keeps its evidence for 30 days (a host var beats the default of 14).
    (settings.inventory_path / "host_vars" / "pc3.yml").write_text(
        "---\nprovision_pull_keep_days: 30\n"
    )
    keys.generate(settings)
    plan = plan_collect(settings)
    files = []
    for host, (serial, hours) in REPORTED.items():
        when = NOW - timedelta(hours=hours)
        files.append((host, file_name(when, serial), result_file(host, serial, when)))
    assert collect_files(settings, plan, files, server="fs1").recorded == 3
    return settings


def test_an_audit_judges_pulled_hosts_from_the_store_within_their_window(
    settings: Settings,
) -> None:
    plan = plan_audit(settings, "role:lab_pc;role:digital_centre_pc")
    assert {h.host: h.pull_keep for h in plan.hosts} == {
        "pc1": timedelta(days=14),
        "pc2": timedelta(days=14),
        "pc3": timedelta(days=30),
        "dc1": timedelta(days=14),
    }
    # No host answers at these addresses: a host contacted would be unreachable.
    result = run_audit(settings, plan)
    rows = {h.host: h for h in result.hosts}
    assert {h: r.status for h, r in rows.items()} == {
        "pc1": HOST_REPORTED,
        "pc2": HOST_NO_REPORT,
        "pc3": HOST_REPORTED,
        "dc1": HOST_NO_REPORT,
    }
    assert rows["pc1"].collected_at is not None
    assert abs(rows["pc1"].collected_at - (NOW - timedelta(hours=2))) < timedelta(seconds=1)
    assert rows["pc1"].message == "pulled: bundle serial 5"
    assert "silent since" in rows["pc2"].message and "14 days" in rows["pc2"].message
    assert rows["dc1"].message.startswith("pull mode: no report yet")
    assert rows["pc2"].counts[NO_REPORT] > 0 and rows["pc2"].counts["pass"] == 0
    assert not rows["pc2"].compliant and rows["pc2"].collected_at is None
    # A silent host is never a pass, and it tells a script so.
    assert result.exit_status(threshold=0) == ExitStatus.HOSTS_UNREACHABLE
    with open_store(settings) as store:
        states = PullRecords(store).compliance_pull(result.run_id)
    assert {h: (s.serial, s.within) for h, s in states.items()} == {
        "pc1": (5, True),
        "pc2": (4, False),
        "pc3": (4, True),
        "dc1": (None, False),
    }


def test_the_reports_show_pulled_hosts_with_serial_and_report_age(
    settings: Settings, tmp_path: Path
) -> None:
    result = run_audit(settings, plan_audit(settings, "role:lab_pc;role:digital_centre_pc"))
    written = write_run_reports(settings, result.run_id, tmp_path / "out", "json,html", now=NOW)
    paths = dict(written.files)
    data = json.loads(paths["json"].read_text())
    pulls = {h["host"]: h["pull"] for h in data["hosts"]}
    assert pulls["pc1"]["serial"] == 5 and pulls["pc1"]["within_window"] is True
    assert pulls["pc2"]["serial"] == 4 and pulls["pc2"]["within_window"] is False
    assert pulls["pc2"]["report_age_seconds"] == pytest.approx(20 * 86400, abs=5)
    assert pulls["dc1"] == {
        "mode": "pull",
        "serial": None,
        "reported_at": None,
        "report_age_seconds": None,
        "keep_days": 14,
        "within_window": False,
    }
    # Coverage counts only evidence fresh at the report's time (one day): pc1's.
    total = data["rollups"]["levels"]["all"][0]
    assert total["coverage"] == pytest.approx(0.25)
    assert total["reported"] == 2 and total["hosts"] == 4
    html = paths["html"].read_text()
    section = html[html.index('id="pull-mode"') : html.index('id="hosts"')]
    assert "4 host(s) apply their signed bundle" in section
    # The silent ones first: never reported, then the oldest report past its window.
    order = [section.index(f'data-host="{h}"') for h in ("dc1", "pc2", "pc3", "pc1")]
    assert order == sorted(order)
    assert section.count("no_report") >= 2 and "20 d" in section


def test_the_folder_of_pages_shows_pulled_hosts_on_the_summary_and_their_place_page(
    settings: Settings, tmp_path: Path
) -> None:
    result = run_audit(settings, plan_audit(settings, "role:lab_pc;role:digital_centre_pc"))
    written = write_run_reports(
        settings, result.run_id, tmp_path / "out", "html", now=NOW, pages=True
    )
    index = dict(written.files)["html"]
    assert index.name == "index.html"
    summary = index.read_text()
    section = summary[summary.index('id="pull-mode"') : summary.index('id="charts"')]
    assert "4 host(s) apply their signed bundle" in section
    # The silent ones first, as on one page; each linked to its district's page.
    order = [section.index(f'data-host="{h}"') for h in ("dc1", "pc2", "pc3", "pc1")]
    assert order == sorted(order)
    assert section.count("no_report") >= 2 and "20 d" in section
    (page,) = [p for p in index.parent.glob("district_*.html")]
    assert f'href="{page.name}#host-pc2"' in section
    assert "<b>2</b>no report" in summary
    place = page.read_text()
    here = place[place.index('id="pull-mode"') : place.index('id="hosts"')]
    assert "Hosts in pull mode here" in here and "4 host(s)" in here
    assert all(f'data-host="{h}"' in here for h in ("dc1", "pc1", "pc2", "pc3"))


def test_place_totals_count_silent_pulled_hosts_as_no_report_not_errored(
    settings: Settings, tmp_path: Path
) -> None:
    result = run_audit(settings, plan_audit(settings, "role:lab_pc;role:digital_centre_pc"))
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        stored = records.rollups(result.run_id)
        builder = RollupBuilder(
            records.get_run(result.run_id), now=stored.now, freshness=stored.freshness
        )
        for report in records.host_reports(result.run_id):
            builder.add(report)
    # The store's place totals and the roll-up of the reports count hosts alike, at
    # every level.
    figures = ("hosts", "reported", "unreachable", "errored", "no_report", "compliant", "fresh")
    for level, rows in builder.result().levels.items():
        for mine, theirs in zip(stored.at(level), rows, strict=True):
            assert [getattr(mine, f) for f in figures] == [getattr(theirs, f) for f in figures]
    total = stored.total
    # pc2 (silent 20 days, window 14) and dc1 (never reported) are no_report.
    assert (total.hosts, total.reported, total.no_report) == (4, 2, 2)
    assert (total.errored, total.unreachable) == (0, 0)
    written = write_run_reports(settings, result.run_id, tmp_path / "out", "json,html", now=NOW)
    paths = dict(written.files)
    data = json.loads(paths["json"].read_text())
    assert data["rollups"]["levels"]["all"][0]["no_report"] == 2
    assert data["rollups"]["levels"]["all"][0]["errored"] == 0
    assert "<b>2</b>no report" in paths["html"].read_text()


def test_a_store_aggregated_before_no_report_had_a_figure_is_aggregated_again(
    settings: Settings,
) -> None:
    result = run_audit(settings, plan_audit(settings, "role:lab_pc;role:digital_centre_pc"))
    with open_store(settings) as store:
        ComplianceRecords(store).rollups(result.run_id)
        with store.engine.begin() as conn:  # as schema version 8 left it
            conn.execute(sa.text("ALTER TABLE compliance_place_totals DROP COLUMN no_report"))
            old = "UPDATE compliance_place_totals SET errored = hosts - reported - unreachable"
            conn.execute(sa.text(old))
            conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 9"))
    with open_store(settings) as store:
        total = ComplianceRecords(store).rollups(result.run_id).total
    assert (total.no_report, total.errored) == (2, 0)


def _failed_run(settings: Settings, failing: dict[str, tuple[str, ...]]) -> int:
    """A finished audit in which each host failed the controls named, passed the rest."""
    standard = pick_standard(settings.standards_path, "bd-ict-baseline")
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run_id = record_compliance_run(records, env=settings.env, standard=standard)
        reports = [
            HostReport(
                host,
                HOST_REPORTED,
                results=tuple(
                    ControlResult(c.id, "fail" if c.id in controls else "pass", c.severity)
                    for c in standard.controls
                ),
            )
            for host, controls in failing.items()
        ]
        records.add_host_reports(run_id, reports)
        records.finish_run(run_id, "done")
    return run_id


def test_a_fix_pushes_to_pushed_hosts_only_and_names_the_pulled_ones_left_out(
    settings: Settings,
) -> None:
    run_id = _failed_run(
        settings, {"pc1": ("SSH-002", "LAB-001"), "pc3": ("SSH-002",), "fs1": ("SSH-002",)}
    )
    plan = plan_fix(settings, run_id)
    assert plan.pulled == ("pc1", "pc3")
    assert plan.hosts == ("fs1",)
    assert dict(plan.failing) == {"SSH-002": ("fs1",)}
    # LAB-001 failed only on a pulled PC: its tag is not pushed anywhere.
    assert plan.tags == ("SSH-002",)
    assert plan.rollout is not None and list(plan.rollout.hosts) == ["fs1"]
    assert set(plan.before) == {("SSH-002", "fs1")}


def test_a_fix_of_pulled_hosts_alone_pushes_nothing_and_says_why(settings: Settings) -> None:
    run_id = _failed_run(settings, {"pc1": ("SSH-002",), "dc1": ("LAB-002",)})
    environ = {"PROVISION_WORKSPACE": str(settings.workspace)}
    result = CliRunner().invoke(cli, ["compliance", "fix", str(run_id), "--yes"], env=environ)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "pull mode" in line]
    assert lines == [
        "left out, in pull mode (no SSH to them): dc1, pc1; they get the fix through "
        "their next bundle (provision bundle build, then publish)"
    ]
    assert f"compliance run {run_id}: nothing to fix" in result.output
    with open_store(settings) as store:
        assert [r.kind for r in store.list_runs() if r.kind != "pull"] == []  # no rollout


def test_a_bad_keep_last_window_names_the_host_and_the_variable(settings: Settings) -> None:
    (settings.inventory_path / "host_vars" / "pc3.yml").write_text(
        "---\nprovision_pull_keep_days: soon\n"
    )
    with pytest.raises(InputError, match="host pc3: provision_pull_keep_days") as error:
        plan_audit(settings, "role:lab_pc")
    assert "group_vars or host_vars" in (error.value.hint or "")


def test_the_pull_mode_section_keeps_the_longest_silent_in_bounded_memory() -> None:
    states = [
        PullState(
            serial=i,
            reported_at=None if i % 7 == 0 else NOW - timedelta(hours=i),
            keep=timedelta(days=14),
            within=i % 3 != 0,
        )
        for i in range(1, 60)
    ]
    entries = [
        (
            s.within,
            NOW.timestamp() - 1e9 if s.reported_at is None else s.reported_at.timestamp(),
            f"h{s.serial:02d}",
            s,
        )
        for s in states
    ]
    kept: list[PulledEntry] = []
    for entry in entries:
        keep_pulled(kept, entry, limit=5)
        assert len(kept) <= 10
    assert pulled_rows(kept, NOW, limit=5) == pulled_rows(entries, NOW, limit=5)
