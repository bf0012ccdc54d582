"""What hosts in pull mode reported (migration 7; docs/pull.md).

Tables are defined on the store's one `metadata`; `TABLES` lists them in the
order their migration creates them. A released migration is never edited.

* `pull_applies`: one row per apply a PC reported, once (unique on host, bundle
  serial and the PC's collection time, so a result uploaded or collected twice
  is one row): how the apply went, which field server it came through, when it
  arrived, and its evidence judged as a compliance report (score, counts and
  every control's result as `compliance_codec` encodes them; the evidence itself
  is not kept, as a pushed audit keeps none).
* `pull_runs`: the rollout run (`runs`, kind ``pull``) that records the applies
  of one bundle serial as host results.
* `compliance_pull`: for each pulled host of a compliance run, what the run used:
  the serial and collection time of the host's newest report, its keep-last
  window, and whether that report was within it.
"""

from __future__ import annotations

import sqlalchemy as sa

from provision.infra.store.schema import metadata

pull_applies = sa.Table(
    "pull_applies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("serial", sa.Integer, nullable=False),
    sa.Column("bundle", sa.String(255), nullable=False),
    # The PC's own time, and the same as exact text (microseconds, UTC) for the key.
    sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("collected_key", sa.String(40), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("server", sa.String(255), nullable=False),  # the field server it came through
    sa.Column("file", sa.String(255), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # ok, failed
    sa.Column("rc", sa.Integer, nullable=False),
    sa.Column("changed", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("offline", sa.Boolean, nullable=False),
    sa.Column("expired", sa.Boolean, nullable=False),
    sa.Column("failed_task", sa.Text, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    # Its evidence as judged (NULL when it brought none).
    sa.Column("standard_id", sa.String(200), nullable=True),
    sa.Column("standard_version", sa.String(100), nullable=True),
    sa.Column("os_release", sa.String(100), nullable=True),
    sa.Column("evidence_digest", sa.String(64), nullable=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("compliant", sa.Boolean, nullable=True),
    sa.Column("results", sa.LargeBinary, nullable=True),
    sa.UniqueConstraint("host", "serial", "collected_key", name="uq_pull_applies_apply"),
)
sa.Index("ix_pull_applies_host_collected", pull_applies.c.host, pull_applies.c.collected_at)

pull_runs = sa.Table(
    "pull_runs",
    metadata,
    sa.Column("serial", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
)

compliance_pull = sa.Table(
    "compliance_pull",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("compliance_runs.id"), primary_key=True),
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("serial", sa.Integer, nullable=True),
    sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("keep_seconds", sa.Float, nullable=False),
    sa.Column("within", sa.Boolean, nullable=False),
)

#: Created, in this order, by their migration in provision/infra/store/migrations.py.
TABLES: tuple[sa.Table, ...] = (pull_applies, pull_runs, compliance_pull)

__all__ = ["TABLES", "compliance_pull", "pull_applies", "pull_runs"]
