"""Compliance runs and their host and control results (migration 2).

Tables are defined on the store's one `metadata`; `TABLES` lists them in the
order their migration creates them. A released migration is never edited.

* `compliance_runs`: one audit: what was judged (env, selection), by which
  standard (id, version, digest of its text) and waivers file (digest), who ran
  it, where and when, and how it ended.
* `compliance_hosts`: one row per host per run: its place in the admin tree,
  how the audit went, its score and status counts (so roll-ups and trends read
  columns, not results), the digest of the evidence collected, and every
  control's result as zlib-compressed JSON (`results`): 50,000 hosts x 100
  controls is 50,000 rows, not five million.

No column holds module arguments or raw module results: only the evaluated
expected and actual values of each control, which are what an auditor reads.
"""

from __future__ import annotations

import sqlalchemy as sa

from provision.infra.store.schema import metadata

compliance_runs = sa.Table(
    "compliance_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),  # running, done, interrupted, crashed
    sa.Column("env", sa.String(100), nullable=False),
    sa.Column("selection", sa.Text, nullable=False),
    sa.Column("standard_id", sa.String(200), nullable=False),
    sa.Column("standard_version", sa.String(100), nullable=False),
    sa.Column("standard_digest", sa.String(64), nullable=False),
    sa.Column("waivers_digest", sa.String(64), nullable=True),
    sa.Column("user", sa.String(100), nullable=False),
    sa.Column("node", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("git_revision", sa.String(64), nullable=True),
    sa.Column("hosts", sa.Integer, nullable=False, server_default="0"),
)
sa.Index(
    "ix_compliance_runs_env_started",
    compliance_runs.c.env,
    compliance_runs.c.started_at,
)

compliance_hosts = sa.Table(
    "compliance_hosts",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("compliance_runs.id"), primary_key=True),
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),  # reported, unreachable, error
    sa.Column("role", sa.String(100), nullable=True),
    sa.Column("os_release", sa.String(100), nullable=True),
    sa.Column("division", sa.String(200), nullable=True),
    sa.Column("district", sa.String(200), nullable=True),
    sa.Column("upazila", sa.String(200), nullable=True),
    sa.Column("union", sa.String(200), nullable=True),
    sa.Column("site", sa.String(200), nullable=True),
    sa.Column("collected_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("evidence_digest", sa.String(64), nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    # pass / (pass + fail + error); NULL when nothing counted.
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("compliant", sa.Boolean, nullable=False),
    sa.Column("critical_failures", sa.Text, nullable=True),  # comma-separated control ids
    sa.Column("n_pass", sa.Integer, nullable=False),
    sa.Column("n_fail", sa.Integer, nullable=False),
    sa.Column("n_error", sa.Integer, nullable=False),
    sa.Column("n_waived", sa.Integer, nullable=False),
    sa.Column("n_unreachable", sa.Integer, nullable=False),
    sa.Column("n_no_report", sa.Integer, nullable=False),
    sa.Column("n_not_applicable", sa.Integer, nullable=False),
    sa.Column("results", sa.LargeBinary, nullable=False),  # zlib(JSON) of the results
    # The execution node that ran the host's audit (NULL: the control node; migration 10).
    sa.Column("node", sa.String(100), nullable=True),
)

#: Created, in this order, by their migration in provision/infra/store/migrations.py.
TABLES: tuple[sa.Table, ...] = (compliance_runs, compliance_hosts)

__all__ = ["TABLES", "compliance_hosts", "compliance_runs", "metadata"]
