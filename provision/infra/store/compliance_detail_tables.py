"""Queryable compliance detail beside the per-host blobs (migration "compliance detail").

`compliance_hosts` keeps each host's every result as one compressed blob (the
whole truth, cheap to write). These tables make that truth askable without
decoding blobs, and keep what an auditor needs after old detail is pruned:

* `compliance_findings`: one row per host per control per run, but only for the
  results that are *not* the passing majority: `fail`, `error`, `no_report`
  and `waived`. `pass` and `not_applicable` are left to the blob (they are 95 %
  of a healthy fleet's results), and so is `unreachable` (the host's own status
  says it, for every control at once). Each row carries the evaluated expected
  and actual values (JSON), the message, the waiver, and when the evidence was
  collected, so "who failed SSH-001 on 30 June, and why?" is an index lookup.
* `compliance_control_totals`: per run and control, the count of each status
  over the run's hosts; added to batch by batch as hosts arrive.
* `compliance_place_totals`: per run and place of the admin tree (level "all"
  and each level down to site), what a roll-up shows: hosts, reported,
  compliant, median and lowest score, status counts, evidence age, worst
  controls. Written when the run finishes (or, for a run that never finished,
  the first time it is rolled up), read by roll-ups instead of the hosts.
* `compliance_run_detail`: per run, whether its aggregates are written and
  when its detail was pruned (`provision compliance prune`).

* `compliance_stretches`: the findings of pruned runs, each stored once for
  the consecutive runs of its environment in which a host had the same result
  on a control (same status, expected and actual values, message, waiver):
  `first_run` to `last_run`. A daily audit of a fleet whose failures last
  weeks keeps one row per failure, not one per failure per day. Each row also
  says its length class, `span_bucket` (version 11): the smallest power of two
  at least `last_run - first_run + 1`, so that the stretches holding one run are
  a few bounded index ranges (`holding_run`), not half the table.

What prune keeps of an old run: its run row, these aggregates (the place
totals above the sites), and its `fail`, `error` and `no_report` findings (the
evidence of each host's failures), folded into stretches. What it removes: the
host rows with their blobs, the `waived` findings, and the sites' place totals.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from provision.infra.store.schema import metadata

#: The statuses that get a findings row; the others live only in the host's blob.
FINDING_STATUSES: tuple[str, ...] = ("fail", "error", "no_report", "waived")
#: The findings prune keeps: the evidence of a host's failures.
KEPT_STATUSES: tuple[str, ...] = ("fail", "error", "no_report")

compliance_findings = sa.Table(
    "compliance_findings",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("compliance_runs.id"), primary_key=True),
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("control", sa.String(100), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("severity", sa.String(20), nullable=True),
    sa.Column("expected", sa.Text, nullable=True),  # JSON
    sa.Column("actual", sa.Text, nullable=True),  # JSON
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("waiver", sa.String(200), nullable=True),
    sa.Column("collected_at", sa.DateTime(timezone=True), nullable=True),
)
# "Which hosts fail SSH-001 in this run" and "one control over a year".
sa.Index(
    "ix_compliance_findings_control",
    compliance_findings.c.control,
    compliance_findings.c.run_id,
)
# "One host over a year".
sa.Index(
    "ix_compliance_findings_host",
    compliance_findings.c.host,
    compliance_findings.c.run_id,
)

compliance_control_totals = sa.Table(
    "compliance_control_totals",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("compliance_runs.id"), primary_key=True),
    sa.Column("control", sa.String(100), primary_key=True),
    sa.Column("severity", sa.String(20), nullable=True),
    sa.Column("n_pass", sa.Integer, nullable=False, server_default="0"),
    sa.Column("n_fail", sa.Integer, nullable=False, server_default="0"),
    sa.Column("n_error", sa.Integer, nullable=False, server_default="0"),
    sa.Column("n_waived", sa.Integer, nullable=False, server_default="0"),
    sa.Column("n_unreachable", sa.Integer, nullable=False, server_default="0"),
    sa.Column("n_no_report", sa.Integer, nullable=False, server_default="0"),
    sa.Column("n_not_applicable", sa.Integer, nullable=False, server_default="0"),
)

compliance_place_totals = sa.Table(
    "compliance_place_totals",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("compliance_runs.id"), primary_key=True),
    sa.Column("level", sa.String(20), primary_key=True),  # all, division, ..., site
    sa.Column("path", sa.Text, primary_key=True),  # JSON list of names, division down
    sa.Column("hosts", sa.Integer, nullable=False),
    sa.Column("reported", sa.Integer, nullable=False),
    sa.Column("unreachable", sa.Integer, nullable=False),
    sa.Column("errored", sa.Integer, nullable=False),
    # Hosts in pull mode silent past their keep-last window (version 9).
    sa.Column("no_report", sa.Integer, nullable=False, server_default="0"),
    sa.Column("compliant", sa.Integer, nullable=False),
    sa.Column("critical", sa.Integer, nullable=False),
    sa.Column("median_score", sa.Float, nullable=True),
    sa.Column("lowest_score", sa.Float, nullable=True),
    # Hosts whose evidence was fresh (the default window) when the run finished.
    sa.Column("fresh", sa.Integer, nullable=False),
    sa.Column("oldest_collected", sa.DateTime(timezone=True), nullable=True),
    sa.Column("median_collected", sa.DateTime(timezone=True), nullable=True),
    sa.Column("statuses", sa.Text, nullable=False),  # JSON {status: count}
    sa.Column("worst", sa.Text, nullable=False),  # JSON [[control, fail, error], ...]
)

compliance_stretches = sa.Table(
    "compliance_stretches",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("env", sa.String(100), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("control", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("severity", sa.String(20), nullable=True),
    sa.Column("expected", sa.Text, nullable=True),
    sa.Column("actual", sa.Text, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("waiver", sa.String(200), nullable=True),
    # The stretch holds in every run of `env` from first_run to last_run.
    sa.Column("first_run", sa.Integer, nullable=False),
    sa.Column("last_run", sa.Integer, nullable=False),
    sa.Column("first_collected", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_collected", sa.DateTime(timezone=True), nullable=True),
    # The smallest power of two >= last_run - first_run + 1 (`span_bucket`); no
    # default, so that a writer that forgets it fails rather than hides the row.
    sa.Column("span_bucket", sa.Integer, nullable=False),
)
# A run being pruned extends the stretches that end at the run before it.
sa.Index(
    "ix_compliance_stretches_last",
    compliance_stretches.c.last_run,
    compliance_stretches.c.host,
    compliance_stretches.c.control,
)
sa.Index(
    "ix_compliance_stretches_control",
    compliance_stretches.c.control,
    compliance_stretches.c.last_run,
)
sa.Index(
    "ix_compliance_stretches_host",
    compliance_stretches.c.host,
    compliance_stretches.c.last_run,
)

#: The largest length class: run ids are 32-bit, and no stretch spans more than 2**30 runs.
MAX_BUCKET = 2**30


def span_bucket(span: int) -> int:
    """The length class of a stretch of `span` run ids (last - first + 1): the smallest
    power of two at least `span`."""
    bucket = 1
    while bucket < span and bucket < MAX_BUCKET:
        bucket *= 2
    return bucket


def span_bucket_sql(span: Any) -> Any:
    """`span_bucket` as SQL, for an expression of the span (the same on SQLite and
    PostgreSQL: neither has a portable base-two logarithm)."""
    whens = []
    bucket = 1
    while bucket < MAX_BUCKET:
        whens.append((span <= bucket, bucket))
        bucket *= 2
    return sa.case(*whens, else_=MAX_BUCKET)


def holding_run(table: Any, env: str, run_id: int, severity: str | None = None) -> Any:
    """The condition that picks the rows of `table` (compliance_stretches or an alias of
    it) that are stretches of `env`, of one `severity` if given, holding `run_id`
    (first_run <= run_id <= last_run): found by bounded ranges of the index by (env,
    [severity,] span_bucket, first_run, last_run).

    A stretch of class b that holds the run began at most b - 1 runs before it, so
    for each class the search reads first_run in [run_id - b + 1, run_id] only: one
    range per class, about log2(run_id) of them, in which at least half the entries
    hold the run (the others are passed over in the index: last_run is in it). From
    the first class b >= run_id on, that range starts at run 1 already, so those
    classes are one range.

    The ranges are a UNION ALL of ids, each a query of its own, read in the index
    alone: given one OR of the ranges, SQLite's planner may walk a whole (last_run,
    ...) or (host, ...) index instead, for the answer's order.
    """
    s = compliance_stretches.alias()
    held = s.c.last_run >= run_id
    where = [] if severity is None else [s.c.severity == severity]
    ranges = []
    bucket = 1
    while bucket < run_id and bucket < MAX_BUCKET:
        first = s.c.first_run.between(run_id - bucket + 1, run_id)
        ranges.append([s.c.span_bucket == bucket, first])
        bucket *= 2
    ranges.append([s.c.span_bucket >= bucket, s.c.first_run <= run_id])
    ids = sa.union_all(*(sa.select(s.c.id).where(s.c.env == env, *where, *r, held) for r in ranges))
    return table.c.id.in_(ids)


compliance_run_detail = sa.Table(
    "compliance_run_detail",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("compliance_runs.id"), primary_key=True),
    # When the place totals were written (NULL: not yet, roll-ups compute them first).
    sa.Column("aggregated_at", sa.DateTime(timezone=True), nullable=True),
    # The moment the aggregates' evidence ages and freshness are measured at.
    sa.Column("measured_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
)

#: Created, in this order, by their migration in provision/infra/store/migrations.py.
TABLES: tuple[sa.Table, ...] = (
    compliance_findings,
    compliance_control_totals,
    compliance_place_totals,
    compliance_stretches,
    compliance_run_detail,
)

__all__ = [
    "FINDING_STATUSES",
    "KEPT_STATUSES",
    "MAX_BUCKET",
    "TABLES",
    "compliance_control_totals",
    "compliance_findings",
    "compliance_place_totals",
    "compliance_run_detail",
    "compliance_stretches",
    "holding_run",
    "span_bucket",
    "span_bucket_sql",
]
