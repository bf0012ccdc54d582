"""Preflight sweeps and their per-host results (migration 3).

Tables are defined on the store's one `metadata`; `TABLES` lists them in the
order their migration creates them. A released migration is never edited.

* `preflight_sweeps`: one sweep: who, where, when, which selection, how many
  hosts it set out to reach, and whether it finished.
* `preflight_results`: one row per host per sweep, written as the host answers
  (so a sweep cut short keeps what it learned): reachable or why not, latency,
  what the host is, and whether it meets its role's equipment minimum.

No column holds a password, key or command output: only the figures the sweep
reports.
"""

from __future__ import annotations

import sqlalchemy as sa

from provision.infra.store.schema import metadata

preflight_sweeps = sa.Table(
    "preflight_sweeps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("env", sa.String(100), nullable=False),
    sa.Column("selection", sa.Text, nullable=False),
    sa.Column("user", sa.String(100), nullable=False),
    sa.Column("node", sa.String(255), nullable=False),  # the control node's host name
    sa.Column("status", sa.String(20), nullable=False),  # running, done, interrupted
    sa.Column("hosts", sa.Integer, nullable=False),  # hosts the sweep set out to reach
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("seconds", sa.Float, nullable=True),
)

preflight_results = sa.Table(
    "preflight_results",
    metadata,
    sa.Column("sweep_id", sa.Integer, sa.ForeignKey("preflight_sweeps.id"), primary_key=True),
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("address", sa.String(255), nullable=False),
    sa.Column("role", sa.String(100), nullable=False),
    sa.Column("district", sa.String(100), nullable=False),
    # reachable, refused, timeout, unreachable, auth_failed, host_key_mismatch, …
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("os_release", sa.String(255), nullable=False),
    sa.Column("cpu_cores", sa.Integer, nullable=True),
    sa.Column("memory_mb", sa.Integer, nullable=True),
    sa.Column("disk_gb", sa.Integer, nullable=True),
    sa.Column("meets_minimum", sa.Boolean, nullable=True),  # None: unknown or no minimum
    sa.Column("minimum_control", sa.String(50), nullable=False),  # e.g. HW-001, or ""
    sa.Column("shortfalls", sa.Text, nullable=False),  # "; "-joined, "" when none
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_preflight_results_host", preflight_results.c.host)

#: Created, in this order, by their migration in provision/infra/store/migrations.py.
TABLES: tuple[sa.Table, ...] = (preflight_sweeps, preflight_results)

__all__ = ["TABLES", "metadata", "preflight_results", "preflight_sweeps"]
