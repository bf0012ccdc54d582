"""A store of pruned runs whose stretches have lengths of every class, and its truth.

Forty daily audits of environment "lab": host `len-NN` fails CTL-1 (critical) in
the runs of `SPANS[host]` (first, last; both ends included), and host `two-NN`
fails CTL-2 (medium) in two series of runs broken by one pass, so that stretches
of 1 to 40 runs, starting early and late, all hold some run. `as_before_v11`
turns a store back into one of schema version 10 (no length class, version 6's
stretch indexes), as a store made before it has them; `as_before_v13` into one of
version 12 (version 8's drift index, not the covering one), on SQLite.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from provision.infra.store import Store
from provision.infra.store.compliance_detail_tables import compliance_stretches
from provision.infra.store.compliance_queries import ComplianceQueries
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.model import ControlResult, HostReport

DAYS = 40
FIRST = datetime(2026, 5, 1, 2, tzinfo=UTC)
PLACE = {"division": "Dhaka", "district": "Gazipur", "upazila": "Kaliganj", "site": "GAZ-003"}
SEVERITY = {"CTL-1": "critical", "CTL-2": "medium"}

#: host -> control -> the (first, last) days, 1-based, of each series it fails in.
SPANS: dict[str, dict[str, list[tuple[int, int]]]] = {}
for _length in (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40):
    for _start in sorted({1, DAYS - _length + 1, 1 + (_length * 7) % (DAYS - _length + 1)}):
        SPANS[f"len-{_length:02d}-{_start:02d}"] = {"CTL-1": [(_start, _start + _length - 1)]}
for _cut in (2, 5, 9, 17, 33):
    SPANS[f"two-{_cut:02d}"] = {"CTL-2": [(1, _cut - 1), (_cut + 1, DAYS)]}


def day_of(day: int) -> datetime:
    return FIRST + timedelta(days=day - 1)


def failing_on(day: int, control: str | None = None) -> set[tuple[str, str]]:
    """The (host, control) pairs failing on `day`, as the plan has them."""
    return {
        (host, ctl)
        for host, plan in SPANS.items()
        for ctl, series in plan.items()
        if (control is None or ctl == control) and any(a <= day <= b for a, b in series)
    }


def _report(day: int, host: str) -> HostReport:
    failing = {ctl for h, ctl in failing_on(day) if h == host}
    results = tuple(
        ControlResult(
            control,
            "fail" if control in failing else "pass",
            severity,
            expected="no",
            actual="yes" if control in failing else "no",
            message=f"{control} differs" if control in failing else "",
        )
        for control, severity in SEVERITY.items()
    )
    return HostReport(
        host=host,
        status="reported",
        role="lab_pc",
        os_release="debian-12",
        place=PLACE,
        collected_at=day_of(day) + timedelta(hours=1),
        evidence_digest="e" * 64,
        results=results,
    )


def fill(records: ComplianceRecords) -> list[int]:
    """The forty runs, oldest first; returns their ids."""
    runs = []
    for day in range(1, DAYS + 1):
        run_id = records.create_run(
            env="lab",
            selection="",
            standard_id="bd-ict-baseline",
            standard_version="2026.1",
            standard_digest="d" * 64,
            waivers_digest=None,
            user="auditor",
            node="node",
            started_at=day_of(day),
        )
        records.add_host_reports(run_id, [_report(day, host) for host in SPANS])
        records.finish_run(run_id, "done")
        runs.append(run_id)
    return runs


def as_before_v11(engine: Engine) -> None:
    """The store as schema version 10 left it: stretches without their length class,
    found by version 6's indexes."""
    with engine.begin() as conn:
        for statement in (
            "DROP INDEX ix_compliance_stretches_bucket",
            "DROP INDEX ix_compliance_stretches_bucket_severity",
            "ALTER TABLE compliance_stretches DROP COLUMN span_bucket",
            "CREATE INDEX ix_compliance_stretches_severity "
            "ON compliance_stretches (env, severity, last_run, first_run)",
            "CREATE INDEX ix_compliance_stretches_run "
            "ON compliance_stretches (env, last_run, first_run)",
            "DELETE FROM schema_version WHERE version >= 11",  # 12 on is IF NOT EXISTS
        ):
            conn.execute(sa.text(statement))


def as_before_v13(engine: Engine) -> None:
    """The SQLite store as schema version 12 left it: version 8's (env, host, control,
    last_run, first_run) stretch index in place of the covering one."""
    with engine.begin() as conn:
        for statement in (
            "DROP INDEX ix_compliance_stretches_drift",
            "CREATE INDEX ix_compliance_stretches_key "
            "ON compliance_stretches (env, host, control, last_run, first_run)",
            "DELETE FROM schema_version WHERE version >= 13",
        ):
            conn.execute(sa.text(statement))


def stretch_indexes(store: Store) -> dict[str, str]:
    """The SQLite store's indexes of compliance_stretches: name -> its CREATE statement."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'compliance_stretches' AND sql IS NOT NULL"
        ).all()
    return {str(name): str(sql) for name, sql in rows}


def drift_answers(store: Store) -> str:
    """`drift` between pairs of the forty runs (pruned to kept, pruned to pruned, kept to
    pruned, a run with itself), every finding as JSON in the answer's order."""
    queries = ComplianceQueries(store.engine, "lab")
    refs = queries.run_refs(None, None)
    pairs = ((refs[3], refs[-1]), (refs[16], refs[32]), (refs[-1], refs[8]), (refs[20], refs[20]))
    answers = []
    for before, after in pairs:
        new, gone, audited = queries.drift(before, after)
        answers.append(
            {
                "new": [f.as_dict() for f in new],
                "gone": [f.as_dict() for f in gone],
                "audited": None if audited is None else sorted(audited),
            }
        )
    return json.dumps(answers, sort_keys=True)


def classes(store: Store) -> list[tuple[int, int, int]]:
    """Each stretch's (first run, last run, length class), in order."""
    s = compliance_stretches
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(s.c.first_run, s.c.last_run, s.c.span_bucket).order_by(s.c.id)
        ).all()
    return [(int(a), int(b), int(c)) for a, b, c in rows]


def check_answers(store: Store) -> None:
    """Every pruned run's failures, critical ones and drift, against the plan."""
    queries = ComplianceQueries(store.engine, "lab")
    refs = queries.run_refs(None, None)
    assert [r.pruned for r in refs] == [True] * (DAYS - 1) + [False]
    day = {r.run_id: n for n, r in enumerate(refs, start=1)}
    for ref in refs:
        found = {(f.host, f.control) for f in queries.failing(ref)}
        assert found == failing_on(day[ref.run_id]), ref
        critical = {(f.host, f.control) for f in queries.failing(ref, critical=True)}
        assert critical == failing_on(day[ref.run_id], "CTL-1"), ref
        medium = {(f.host, f.control) for f in queries.failing(ref, control="CTL-2")}
        assert medium == failing_on(day[ref.run_id], "CTL-2"), ref
    for before, after in ((refs[3], refs[20]), (refs[16], refs[32]), (refs[8], refs[-1])):
        new, gone, _audited = queries.drift(before, after)
        was, now = failing_on(day[before.run_id]), failing_on(day[after.run_id])
        assert [(f.host, f.control) for f in new] == sorted(now - was)
        assert [(f.host, f.control) for f in gone] == sorted(was - now)
