"""The compliance store's detail, queries and prune with the store in PostgreSQL.

The same known-truth store as the unit tests (tests/helpers/compliance_truth.py),
written to a throwaway PostgreSQL server (tests/helpers/postgres.py): the
schema migrates, ingest writes findings and totals, roll-ups read aggregates,
the four questions answer, and prune keeps what it promises.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from provision.compliance import query
from provision.compliance.prune import prune
from provision.errors import StateError
from provision.infra.store import SCHEMA_VERSION, Store, current_version
from provision.infra.store.compliance_detail_tables import compliance_stretches
from provision.infra.store.compliance_queries import ComplianceQueries
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.scoring import RollupBuilder
from provision.settings import Settings, load_settings
from tests.helpers import compliance_stretches as stretches
from tests.helpers.compliance_truth import ABOVE_SITES, at, fill
from tests.helpers.postgres import PostgresServer, running_postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    yield from running_postgres()


@pytest.fixture
def settings(postgres: PostgresServer, workspace: Path) -> Settings:
    url = postgres.create_database()
    base = load_settings(workspace=workspace, environ={})
    with Store.open(url) as store:
        fill(ComplianceRecords(store))
    return replace(base, db_url=url)


def test_schema_ingest_and_rollups_from_aggregates(settings: Settings) -> None:
    with Store.open(settings.database_url) as store:
        assert store.engine.dialect.name == "postgresql"
        assert current_version(store.engine) == SCHEMA_VERSION
        records = ComplianceRecords(store)
        for run_id in (1, 2, 3):
            stored = records.rollups(run_id)
            builder = RollupBuilder(
                records.get_run(run_id), now=stored.now, freshness=stored.freshness
            )
            for report in records.host_reports(run_id):
                builder.add(report)
            assert stored.as_dict() == builder.result().as_dict()


def test_the_four_questions(settings: Settings) -> None:
    june = date(2026, 6, 1)
    failing = query.failing(settings, as_of=june.replace(day=2), control="SSH-001")
    assert [(f.host, f.expected, f.actual) for f in failing.findings] == [
        ("gaz-003-lab01", "no", "yes")
    ]
    critical = query.failing(settings, as_of=june.replace(day=3), critical=True)
    assert [f.host for f in critical.findings] == ["khu-014-lab01"]
    lines = query.host_history(settings, "gaz-003-lab02")
    assert [[(f.control, f.status) for f in line.findings] for line in lines] == [
        [],
        [("PKG-002", "fail")],
        [("PKG-002", "error")],
    ]
    counts = query.control_history(settings, "PKG-002")
    assert [line.counts["fail"] for line in counts] == [0, 1, 0]
    drift = query.drifted(settings, since=june.replace(day=2), until=june.replace(day=3))
    assert {(f.host, f.control) for f in drift.new} == {
        ("khu-014-lab01", "SSH-001"),
        ("gaz-003-lab02", "PKG-002"),
    }
    assert {(f.host, f.control) for f in drift.fixed} == {("gaz-003-lab01", "SSH-001")}


def test_prune_in_one_transaction_keeps_totals_and_failures(settings: Settings) -> None:
    with Store.open(settings.database_url) as store:
        records = ComplianceRecords(store)
        before = {r: records.rollups(r, ABOVE_SITES).as_dict() for r in (1, 2, 3)}
        sites = records.rollups(3, ("site",)).levels["site"]
    result = prune(settings, 1, now=at(3, 12))
    assert (result.runs, result.host_rows, result.findings) == ((1, 2), 8, 2)
    with Store.open(settings.database_url) as store:
        records = ComplianceRecords(store)
        # Every level above the sites is kept; the pruned runs' site totals go.
        assert {r: records.rollups(r, ABOVE_SITES).as_dict() for r in (1, 2, 3)} == before
        assert [records.rollups(r, ("site",)).levels["site"] for r in (1, 2, 3)] == [
            (),
            (),
            sites,
        ]
        with pytest.raises(StateError, match="pruned"):
            list(records.host_reports(2))
    failing = query.failing(settings, as_of=date(2026, 6, 2), control="SSH-001")
    assert [f.host for f in failing.findings] == ["gaz-003-lab01"]


def test_bulk_rows_by_binary_copy_read_back_as_written(settings: Settings) -> None:
    """Ingest's bulk path (`insert_many`, binary COPY here): every value of a host row
    and its findings reads back as bound, a naive time taken as UTC, an int score
    as a float."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from provision.infra.store.compliance_detail import insert_many
    from provision.infra.store.compliance_detail_tables import compliance_findings
    from provision.infra.store.compliance_tables import compliance_hosts

    names = [c.name for c in compliance_hosts.c]
    row: dict[str, object] = {n: 0 if n.startswith("n_") else None for n in names}
    row.update(
        run_id=1,
        host="pg-binary",
        status="reported",
        collected_at=datetime(2026, 6, 30, 5, 0),  # naive: UTC
        score=1,
        compliant=True,
        message="ünïcode, 'quotes', \\ and a tab\t",
        results=b"\x00\x02\xff",
        n_pass=3,
    )
    finding = (1, "pg-binary", "SSH-001", "fail", "critical", '{"a": 1}', None, "", None, None)
    with Store.open(settings.database_url) as store, store.engine.begin() as conn:
        insert_many(conn, compliance_hosts, names, [tuple(row[n] for n in names)])
        insert_many(conn, compliance_findings, [c.name for c in compliance_findings.c], [finding])
        got = (
            conn.execute(sa.select(compliance_hosts).where(compliance_hosts.c.host == "pg-binary"))
            .one()
            ._asdict()
        )
        found = conn.execute(
            sa.select(compliance_findings).where(compliance_findings.c.host == "pg-binary")
        ).one()
    assert got["collected_at"] == datetime(2026, 6, 30, 5, 0, tzinfo=UTC)
    assert got["score"] == 1.0 and isinstance(got["score"], float)
    assert got["results"] == b"\x00\x02\xff"
    assert got["message"] == row["message"] and got["compliant"] is True
    assert tuple(found) == finding


def test_an_older_store_gets_its_stretches_length_classes(postgres: PostgresServer) -> None:
    """Migration 11 on PostgreSQL: an older store's stretches get their length class,
    and the stretches holding each pruned run are found whatever their length."""
    url = postgres.create_database()
    with Store.open(url) as store:
        records = ComplianceRecords(store)
        stretches.fill(records)
        records.prune(stretches.day_of(stretches.DAYS))
        made = stretches.classes(store)
        stretches.as_before_v11(store.engine)
    with Store.open(url) as store:
        assert current_version(store.engine) == SCHEMA_VERSION
        assert stretches.classes(store) == made
        stretches.check_answers(store)


def test_the_drift_index_stays_version_8_s_and_takes_long_values(
    postgres: PostgresServer,
) -> None:
    """Migration 13 is SQLite's only: PostgreSQL keeps version 8's (env, host, control,
    last_run, first_run) index, whose entries stay small whatever a failure's actual
    value, so a stretch with a value far past a b-tree entry's cap (about 2.7 kB) is
    written, and drift answers as on SQLite."""
    url = postgres.create_database()
    with Store.open(url) as store:
        assert current_version(store.engine) == SCHEMA_VERSION
        records = ComplianceRecords(store)
        stretches.fill(records)
        records.prune(stretches.day_of(stretches.DAYS))
        with store.engine.connect() as conn:
            names = {i["name"] for i in sa.inspect(conn).get_indexes("compliance_stretches")}
        assert "ix_compliance_stretches_key" in names
        assert "ix_compliance_stretches_drift" not in names
        stretches.check_answers(store)
        queries = ComplianceQueries(store.engine, "lab")
        refs = queries.run_refs(None, None)
        # 10 kB that do not compress (PostgreSQL compresses a long index entry first).
        long_value = "".join(hashlib.sha256(str(n).encode()).hexdigest() for n in range(160))
        s = compliance_stretches
        with store.engine.begin() as conn:
            conn.execute(
                s.insert().values(
                    env="lab",
                    host="long-value",
                    control="CTL-2",
                    status="fail",
                    severity="medium",
                    expected='"no"',
                    actual=json.dumps(long_value),
                    first_run=refs[0].run_id,
                    last_run=refs[0].run_id,
                    span_bucket=1,
                )
            )
        new, gone, _ = queries.drift(refs[0], refs[-1])
        assert ("long-value", "CTL-2") in {(f.host, f.control) for f in gone}
        assert "long-value" not in {f.host for f in new}
