"""The state store's tables and the ordered migrations that create them.

The schema is versioned by a `schema_version` table holding one row per applied
migration. `MIGRATIONS` is append-only: a released migration is never edited,
a change is a new function at the end. Each migration runs in its own
transaction together with the row that records it, so a crash half-way leaves
the database at the previous version, never in between (PostgreSQL has
transactional DDL; SQLite too, through SQLAlchemy's own BEGIN).

Tables (all times are UTC):

* `runs`: one rollout: who, where, when, what (playbook, selection, options),
  the git revision of the content, its status, and the run it retries.
* `waves`: the plan of a run, one row per wave, with its status.
* `run_hosts`: which wave each planned host belongs to.
* `host_results`: one final result per host per run (unique), written when
  Ansible's play recap for that host arrives.
* `task_results`: one row per task result event (host, task, status), written
  in batches while the run goes, so a crash loses at most the last batch.
* `host_locks`: which run holds which host: two rollouts never touch one host.
* `shard_events`: which events of an execution node's stream made task rows,
  by (counter, uuid), committed in the same transaction as those rows, so that
  `rollout resume` replays the node's stream without recording an event twice.

No column holds extravars values, module arguments or module results: only
names, counts, times and a failing task's short message.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("kind", sa.String(20), nullable=False),  # rollout, retry
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("user", sa.String(100), nullable=False),
    sa.Column("node", sa.String(255), nullable=False),  # the control node's host name
    sa.Column("pid", sa.Integer, nullable=True),  # of the process driving the run now
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("env", sa.String(100), nullable=False),
    sa.Column("playbook", sa.String(1000), nullable=False),
    sa.Column("selection", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),  # JSON of the rollout options
    sa.Column("git_revision", sa.String(64), nullable=True),
    sa.Column("stop_reason", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
)

waves = sa.Table(
    "waves",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),  # 0: canary
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # pending, running, done, stopped
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("artifacts", sa.String(1000), nullable=True),
)

run_hosts = sa.Table(
    "run_hosts",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)

host_results = sa.Table(
    "host_results",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("host", sa.String(255), primary_key=True),  # one final result per host
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("ok", sa.Integer, nullable=False),
    sa.Column("changed", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("unreachable", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("rescued", sa.Integer, nullable=False),
    sa.Column("ignored", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("failed_task", sa.Text, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    # The execution node that ran the host (None: the control node).
    sa.Column("node", sa.String(100), nullable=True),
)

task_results = sa.Table(
    "task_results",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("counter", sa.Integer, nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("task", sa.Text, nullable=True),
    sa.Column("action", sa.String(200), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # ok, changed, failed, …
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duration", sa.Float, nullable=True),
    sa.Column("message", sa.Text, nullable=True),  # failures only, short
)
sa.Index("ix_task_results_run_host", task_results.c.run_id, task_results.c.host)

shard_events = sa.Table(
    "shard_events",
    metadata,
    # The events of one node's shard of one wave whose task rows are committed: a
    # resume replaying the node's stream skips them (rows and marks share a commit).
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("wave", sa.Integer, primary_key=True),
    sa.Column("node", sa.String(100), primary_key=True),
    sa.Column("uuid", sa.String(64), primary_key=True),
    sa.Column("counter", sa.Integer, nullable=False),
)

host_locks = sa.Table(
    "host_locks",
    metadata,
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("user", sa.String(100), nullable=False),
    sa.Column("node", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_runs_status", runs.c.status)
