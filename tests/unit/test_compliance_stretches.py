"""Stretches of pruned runs by length class (migration 11): each stretch's class is
right whether prune's fold made it or the migration filled it in, and the stretches
holding a pruned run are found whatever their length (tests/helpers/compliance_stretches.py:
forty daily audits with failures of 1 to 40 runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from provision.infra.store import SCHEMA_VERSION, Store, current_version
from provision.infra.store.compliance_detail_tables import span_bucket
from provision.infra.store.compliance_queries import ComplianceQueries, RunRef
from provision.infra.store.compliance_records import ComplianceRecords
from tests.helpers.compliance_stretches import (
    DAYS,
    as_before_v11,
    as_before_v13,
    check_answers,
    classes,
    day_of,
    drift_answers,
    fill,
    stretch_indexes,
)


def _indexes(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return {str(i["name"]) for i in sa.inspect(conn).get_indexes("compliance_stretches")}


@pytest.fixture
def pruned(tmp_path: Path) -> Store:
    """The forty runs, all but the last pruned (in two prunes: stretches grow across)."""
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    records = ComplianceRecords(store)
    fill(records)
    records.prune(day_of(DAYS // 2))
    records.prune(day_of(DAYS))
    return store


def test_fold_gives_each_stretch_its_length_class(pruned: Store) -> None:
    made = classes(pruned)
    assert {b - a + 1 for a, b, _ in made} >= {1, 2, 3, 8, 9, 16, 17, 32, 33, 39}
    assert all(bucket == span_bucket(b - a + 1) for a, b, bucket in made)
    assert {bucket for _, _, bucket in made} == {1, 2, 4, 8, 16, 32, 64}
    check_answers(pruned)
    pruned.close()


def test_an_older_store_gets_its_stretches_length_classes(pruned: Store) -> None:
    url = str(pruned.engine.url)
    before = classes(pruned)
    as_before_v11(pruned.engine)
    pruned.close()
    with Store.open(url) as store:
        assert current_version(store.engine) == SCHEMA_VERSION
        assert sorted(classes(store)) == sorted(before)
        indexes = _indexes(store)
        assert {"ix_compliance_stretches_bucket", "ix_compliance_stretches_bucket_severity"} <= (
            indexes
        )
        assert not indexes & {"ix_compliance_stretches_severity", "ix_compliance_stretches_run"}
        check_answers(store)


def test_a_store_of_version_12_gets_the_covering_drift_index(pruned: Store) -> None:
    """Migration 13 on SQLite: a store of version 12 ends with the same stretch indexes
    as a fresh one, among them the covering (env, host, control, last_run, first_run,
    status, actual) one in place of version 8's, and answers drift to the byte as the
    fresh one did."""
    url = str(pruned.engine.url)
    fresh_indexes = stretch_indexes(pruned)
    fresh_answers = drift_answers(pruned)
    assert "ix_compliance_stretches_key" not in fresh_indexes
    with pruned.engine.connect() as conn:
        info = conn.exec_driver_sql("PRAGMA index_info(ix_compliance_stretches_drift)")
        columns = [row[2] for row in info]
    assert columns == ["env", "host", "control", "last_run", "first_run", "status", "actual"]
    as_before_v13(pruned.engine)
    assert "ix_compliance_stretches_drift" not in stretch_indexes(pruned)
    pruned.close()
    with Store.open(url) as store:
        assert current_version(store.engine) == SCHEMA_VERSION
        assert stretch_indexes(store) == fresh_indexes
        assert drift_answers(store) == fresh_answers
        check_answers(store)
        with store.engine.connect() as conn:  # never analysed: nothing analysed now
            assert not conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).all()


def test_an_analysed_store_of_version_12_has_the_new_index_analysed(pruned: Store) -> None:
    """Without figures for the new index, SQLite's planner would take its `env` for a
    selective key and read one control's stretches through it."""
    url = str(pruned.engine.url)
    as_before_v13(pruned.engine)
    with pruned.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    pruned.close()
    with Store.open(url) as store, store.engine.connect() as conn:
        analysed = {
            str(name)
            for (name,) in conn.exec_driver_sql(
                "SELECT idx FROM sqlite_stat1 WHERE tbl = 'compliance_stretches'"
            )
        }
    assert "ix_compliance_stretches_drift" in analysed
    assert "ix_compliance_stretches_key" not in analysed


def test_an_in_memory_store_asks_drift_s_sides_one_after_the_other(pruned: Store) -> None:
    """An in-memory SQLite store is one connection a thread (a second thread would
    see an empty database of its own): drift answers there as on a file, its two
    sides asked in turn on the one connection."""
    expected = drift_answers(pruned)
    pruned.close()
    with Store.open("sqlite://") as store:
        records = ComplianceRecords(store)
        fill(records)
        records.prune(day_of(DAYS // 2))
        records.prune(day_of(DAYS))
        assert drift_answers(store) == expected


def test_span_bucket_is_the_smallest_power_of_two_at_least_the_span() -> None:
    assert [span_bucket(n) for n in (1, 2, 3, 4, 5, 8, 9, 365, 1024, 1025)] == [
        1,
        2,
        4,
        4,
        8,
        8,
        16,
        512,
        1024,
        2048,
    ]


def test_a_pruned_run_s_stretches_are_read_by_bounded_ranges(pruned: Store) -> None:
    """Each length class is one range of first_run in the (env, [severity,] class,
    first_run, last_run) index, not every stretch ending after the run."""
    queries = ComplianceQueries(pruned.engine, "lab")
    run = next(r for r in queries.run_refs(None, None) if r.run_id == 21)
    assert isinstance(run, RunRef) and run.pruned
    seen: list[tuple[str, object]] = []

    def grab(conn: object, cursor: object, sql: str, params: object, *rest: object) -> None:
        if "compliance_stretches" in sql:
            seen.append((sql, params))

    sa.event.listen(pruned.engine, "before_cursor_execute", grab)
    queries.failing(run, critical=True)
    queries.drift(run, run)
    sa.event.remove(pruned.engine, "before_cursor_execute", grab)
    with pruned.engine.connect() as conn:
        plans = [
            " ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in seen
        ]
    pruned.close()
    assert len(plans) == 3  # failing; drift's new and gone
    indexes = (
        "bucket_severity (env=? AND severity=? AND",
        "bucket (env=? AND",
        "bucket (env=? AND",
    )
    for plan, index in zip(plans, indexes, strict=True):
        # The stretches are read by id, the ids found in one bounded range a class.
        assert "SEARCH compliance_stretches_1 USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
        ranges = f"COVERING INDEX ix_compliance_stretches_{index} span_bucket=? AND first_run>? AND"
        assert plan.count(ranges) == 5, plan  # classes 1 to 16; then 32 and up: run 1 on
        assert "SCAN" not in plan, plan
        # drift's comparison of one host's control is one probe of the covering key
        # index (migration 13): the stretch's row is not read.
        if "CORRELATED" in plan:
            probe = "COVERING INDEX ix_compliance_stretches_drift (env=? AND host=? AND control=?"
            assert probe in plan, plan
