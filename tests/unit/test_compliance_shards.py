"""Audits in shards, without hosts: the node a host's report names, stored and shown,
the hosts of a shard that could not finish (not run: unreachable, never judged), and
the node column of an older store's compliance_hosts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console

from provision.cli.compliance import hosts_table, row_json
from provision.compliance.service import AuditResult, _Collector, plan_audit
from provision.errors import ExitStatus
from provision.infra.runner import HostStats
from provision.infra.store import Store, open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.infra.store.migrations import MIGRATIONS
from provision.model.compliance.model import (
    HOST_ERROR,
    HOST_REPORTED,
    HOST_UNREACHABLE,
    NOT_APPLICABLE,
    PASS,
    UNREACHABLE,
    ControlResult,
    HostReport,
)
from tests.helpers.bundles import pull_workspace
from tests.helpers.runs import record_compliance_run


@contextmanager
def _collecting(tmp_path: Path, selection: str) -> Iterator[tuple[_Collector, ComplianceRecords]]:
    """An audit's collector over `selection`'s pulled hosts, on a run of its own."""
    settings, _ = pull_workspace(tmp_path)
    plan = plan_audit(settings, selection)
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        collector = _Collector(records, record_compliance_run(records), plan, lambda _p: None)
        yield collector, records


def test_the_node_that_ran_a_host_is_stored_with_its_report(tmp_path: Path) -> None:
    records = ComplianceRecords(Store.open(f"sqlite:///{tmp_path / 'state.db'}"))
    run_id = record_compliance_run(records)
    results = (ControlResult("SSH-001", PASS, "high"),)
    records.add_host_reports(
        run_id,
        [
            HostReport("a", HOST_REPORTED, results=results, node="gazipur"),
            HostReport("b", HOST_REPORTED, results=results),
        ],
    )
    rows = {r.host: r for r in records.host_rows(run_id)}
    assert (rows["a"].node, rows["b"].node) == ("gazipur", None)
    assert [(r.host, r.node) for r in records.host_reports(run_id)] == [
        ("a", "gazipur"),
        ("b", None),
    ]
    assert row_json(rows["a"])["node"] == "gazipur"
    console = Console(width=200, record=True)
    console.print(hosts_table(list(rows.values())))
    shown = console.export_text()
    assert "ran on" in shown and "node gazipur" in shown and "control node" in shown


def test_a_run_without_nodes_shows_no_ran_on_column(tmp_path: Path) -> None:
    records = ComplianceRecords(Store.open(f"sqlite:///{tmp_path / 'state.db'}"))
    run_id = record_compliance_run(records)
    records.add_host_reports(run_id, [HostReport("a", HOST_REPORTED)])
    console = Console(width=200, record=True)
    console.print(hosts_table(records.host_rows(run_id)))
    assert "ran on" not in console.export_text()


def test_the_hosts_of_a_shard_that_could_not_finish_are_not_run_never_judged(
    tmp_path: Path,
) -> None:
    with _collecting(tmp_path, "pc1;pc2;pc3") as (collector, records):
        run_id = collector.run_id
        collector.node_of.update({"pc1": "gazipur", "pc2": "gazipur", "pc3": "kaliganj"})
        why = "node gazipur: cannot be reached (timed out)"
        collector.settle(["pc1", "pc2"], None, why)
        # A shard that ended: its recap says which host was unreachable from the node.
        collector.settle(["pc3"], {"pc3": HostStats("pc3", unreachable=1)}, None)
        collector.flush()
        records.finish_run(run_id, "done")
        result = AuditResult(records.get_run(run_id), tuple(records.host_rows(run_id)))
        reports = {r.host: r for r in records.host_reports(run_id)}
    assert {r.host: (r.status, r.node) for r in result.hosts} == {
        "pc1": (HOST_UNREACHABLE, "gazipur"),
        "pc2": (HOST_UNREACHABLE, "gazipur"),
        "pc3": (HOST_UNREACHABLE, "kaliganj"),
    }
    assert reports["pc1"].message == f"not run: {why}"
    assert reports["pc3"].message == "unreachable"
    for report in reports.values():
        assert {r.status for r in report.results} <= {UNREACHABLE, NOT_APPLICABLE}
        assert any(r.status == UNREACHABLE for r in report.results)
    assert all(r.score is None and not r.compliant for r in result.hosts)
    assert result.exit_status() == ExitStatus.HOSTS_UNREACHABLE


def test_a_host_a_finished_shard_did_not_report_is_an_error(tmp_path: Path) -> None:
    with _collecting(tmp_path, "pc1") as (collector, records):
        collector.settle(["pc1"], {}, "node gazipur: the playbook failed")
        collector.flush()
        (row,) = records.host_rows(collector.run_id)
    assert (row.status, row.message, row.node) == (
        HOST_ERROR,
        "node gazipur: the playbook failed",
        None,
    )


def test_an_older_store_gets_the_compliance_node_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for _version, name, step in MIGRATIONS:
            if name != "compliance host node":
                step(conn)
        conn.execute(sa.text("ALTER TABLE compliance_hosts DROP COLUMN node"))
    step = next(m[2] for m in MIGRATIONS if m[1] == "compliance host node")
    with engine.begin() as conn:
        step(conn)
        step(conn)  # a store made by today's version 2 has it already: no second column
        columns = [c["name"] for c in sa.inspect(conn).get_columns("compliance_hosts")]
    assert columns.count("node") == 1
