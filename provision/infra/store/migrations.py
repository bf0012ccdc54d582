"""The schema's history: each version's migration, applied in order by `engine.migrate`.

The tables are defined in `schema` (runs and hosts), `compliance_tables`,
`preflight_tables` and `pull_tables`, all on one `schema.metadata`; a migration creates or alters
them. Append only: a released migration never changes.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from provision.infra.store import (
    compliance_detail_tables,
    compliance_tables,
    preflight_tables,
    pull_tables,
)
from provision.infra.store.schema import (
    host_locks,
    host_results,
    run_hosts,
    runs,
    task_results,
    waves,
)

Migration = Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    """Runs, waves, planned hosts, host and task results, host locks."""
    for table in (runs, waves, run_hosts, host_results, task_results, host_locks):
        table.create(conn)


def _v2_compliance(conn: Connection) -> None:
    """Compliance runs, host reports and control results."""
    for table in compliance_tables.TABLES:
        table.create(conn)


def _v3_preflight(conn: Connection) -> None:
    """Preflight sweeps and their per-host results."""
    for table in preflight_tables.TABLES:
        table.create(conn)


def _v4_compliance_detail(conn: Connection) -> None:
    """Queryable compliance detail: findings, per-run aggregates, prune marks.

    Runs recorded before this version get their findings and aggregates the first
    time they are asked for (`ComplianceRecords.backfill`), not here: decoding
    every old blob would hold the upgrade for minutes on a big store.
    """
    for table in compliance_detail_tables.TABLES:
        table.create(conn)
    # One host's history reads its rows across runs.
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_compliance_hosts_host ON compliance_hosts (host, run_id)"
        )
    )


def _v5_host_node(conn: Connection) -> None:
    """Which execution node ran each host's result (NULL: the control node).

    A new store's host_results is created from today's table by version 1 and has
    the column already; an older store gets it here.
    """
    columns = {column["name"] for column in sa.inspect(conn).get_columns("host_results")}
    if "node" not in columns:
        conn.execute(sa.text("ALTER TABLE host_results ADD COLUMN node VARCHAR(100)"))


def _v6_compliance_query_indexes(conn: Connection) -> None:
    """Indexes for `compliance query failing` and `drifted` on a year of daily runs:
    one run's findings of one severity, and the stretches holding a pruned run,
    without reading the rest.

    * findings (run_id, severity, host, control): a kept run's critical findings,
      already in the answer's order;
    * stretches (env, severity, last_run, first_run): the stretches of one severity
      holding a pruned run are found in the index alone; only they are read;
    * stretches (env, last_run, first_run): every stretch holding a pruned run (what
      `drifted` compares), found in the index alone.

    Self-contained (nothing but these indexes); IF NOT EXISTS, so a store whose
    indexes were made by hand upgrades too.
    """
    for statement in (
        "CREATE INDEX IF NOT EXISTS ix_compliance_findings_severity "
        "ON compliance_findings (run_id, severity, host, control)",
        "CREATE INDEX IF NOT EXISTS ix_compliance_stretches_severity "
        "ON compliance_stretches (env, severity, last_run, first_run)",
        "CREATE INDEX IF NOT EXISTS ix_compliance_stretches_run "
        "ON compliance_stretches (env, last_run, first_run)",
    ):
        conn.execute(sa.text(statement))


def _v7_pull(conn: Connection) -> None:
    """What hosts in pull mode reported: their applies, a run per bundle serial, and
    what each compliance run used of them."""
    for table in pull_tables.TABLES:
        table.create(conn)


def _v8_compliance_drift_index(conn: Connection) -> None:
    """An index for `compliance query drifted` from a pruned run: stretches by (env,
    host, control, last run, first run), so that whether a pruned run had one host's
    failure of one control is one lookup, and drift is compared in the database.

    Self-contained (nothing but this index); IF NOT EXISTS, as version 6.
    """
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_compliance_stretches_key "
            "ON compliance_stretches (env, host, control, last_run, first_run)"
        )
    )


def _v9_place_no_report(conn: Connection) -> None:
    """Place totals count hosts in pull mode silent past their window as no_report, apart
    from errored hosts.

    A new store's table is created from today's definition by version 4 and has the
    column already; an older store gets it here. Runs aggregated before, whose host
    detail is still kept and which hold a no_report host, are aggregated again the
    next time they are asked for; a pruned run keeps its figures (its silent hosts
    stay among the errored ones: its host rows are gone).
    """
    columns = {c["name"] for c in sa.inspect(conn).get_columns("compliance_place_totals")}
    if "no_report" not in columns:
        conn.execute(
            sa.text(
                "ALTER TABLE compliance_place_totals "
                "ADD COLUMN no_report INTEGER NOT NULL DEFAULT 0"
            )
        )
    conn.execute(
        sa.text(
            "UPDATE compliance_run_detail SET aggregated_at = NULL "
            "WHERE pruned_at IS NULL AND run_id IN "
            "(SELECT DISTINCT run_id FROM compliance_hosts WHERE status = 'no_report')"
        )
    )


def _v10_compliance_host_node(conn: Connection) -> None:
    """Which execution node ran each host's audit (NULL: the control node).

    A new store's compliance_hosts is created from today's table by version 2 and
    has the column already; an older store gets it here.
    """
    columns = {c["name"] for c in sa.inspect(conn).get_columns("compliance_hosts")}
    if "node" not in columns:
        conn.execute(sa.text("ALTER TABLE compliance_hosts ADD COLUMN node VARCHAR(100)"))


def _v11_stretch_span_bucket(conn: Connection) -> None:
    """Each stretch's length class, and the indexes that bound a search by it.

    Which stretches hold a pruned run R is first_run <= R <= last_run: two ranges,
    and one b-tree bounds one of them only, so the (env, last_run, first_run) indexes
    of version 6 read every stretch ending after R, about half of them for a day in
    the middle of the year. A stretch's class `span_bucket` is the smallest power of
    two at least its length; one of class b that holds R began in [R - b + 1, R], so
    the stretches holding R are one bounded range of (env, span_bucket, first_run)
    per class (`compliance_detail_tables.holding_run`), about a dozen in all.

    * stretches gain `span_bucket`, filled for the stretches already there (a store
      made by today's version 4 has the column already, with nothing to fill);
    * stretches (env, span_bucket, first_run, last_run) for every stretch holding a
      run (`query drifted`), (env, severity, span_bucket, first_run, last_run) for
      one severity's (`query failing --critical`), both read in the index alone;
    * version 6's two stretch indexes go: the new ones answer what they did.

    On SQLite the added column keeps the default 0 the ALTER needs (its table cannot
    drop one); every writer sets it, as on a new store, whose column has no default.
    """
    columns = {c["name"] for c in sa.inspect(conn).get_columns("compliance_stretches")}
    if "span_bucket" not in columns:
        conn.execute(
            sa.text(
                "ALTER TABLE compliance_stretches ADD COLUMN span_bucket INTEGER NOT NULL DEFAULT 0"
            )
        )
        s = compliance_detail_tables.compliance_stretches
        conn.execute(
            s.update().values(
                span_bucket=compliance_detail_tables.span_bucket_sql(
                    s.c.last_run - s.c.first_run + 1
                )
            )
        )
        if conn.dialect.name == "postgresql":
            conn.execute(
                sa.text("ALTER TABLE compliance_stretches ALTER COLUMN span_bucket DROP DEFAULT")
            )
    for statement in (
        "CREATE INDEX IF NOT EXISTS ix_compliance_stretches_bucket "
        "ON compliance_stretches (env, span_bucket, first_run, last_run)",
        "CREATE INDEX IF NOT EXISTS ix_compliance_stretches_bucket_severity "
        "ON compliance_stretches (env, severity, span_bucket, first_run, last_run)",
        "DROP INDEX IF EXISTS ix_compliance_stretches_severity",
        "DROP INDEX IF EXISTS ix_compliance_stretches_run",
    ):
        conn.execute(sa.text(statement))


def _v12_shard_events(conn: Connection) -> None:
    """Which events of an execution node's stream made task rows, committed with them.

    Replaces the run folder's `<node>.seen` list, which was written after the
    commit and so could miss an event whose rows a crash had just committed.
    Self-contained (one new table, its own DDL); IF NOT EXISTS, as version 6.
    """
    conn.execute(
        sa.text(
            "CREATE TABLE IF NOT EXISTS shard_events ("
            "run_id INTEGER NOT NULL, wave INTEGER NOT NULL, node VARCHAR(100) NOT NULL, "
            "uuid VARCHAR(64) NOT NULL, counter INTEGER NOT NULL, "
            "PRIMARY KEY (run_id, wave, node, uuid))"
        )
    )


def _v13_compliance_drift_covering_index(conn: Connection) -> None:
    """On SQLite, version 8's (env, host, control, last_run, first_run) stretch index
    becomes a covering one, (env, host, control, last_run, first_run, status, actual):
    `compliance query drifted` from a pruned run asks, for each of the later run's
    failures, whether the pruned run had it the same way (status and actual value).
    The probe seeks to the first stretch of the host's control ending at or after the
    run, the only one that can hold it (one host's stretches of one control never
    overlap), and answers from the index entry, without reading the table's row.

    PostgreSQL keeps version 8's index: a b-tree entry there is capped at about a
    third of a page (2.7 kB) and `actual` is a JSON value of no bounded length, so a
    long one would make the fold that writes it fail. Its planner answers the probe
    from version 8's index and one heap row each.

    A store analysed before (`ANALYZE`: sqlite_stat1 is there) has the new index
    analysed too. Without its figures SQLite's planner takes an equality on `env`
    alone for a selective one and reads one control's stretches of a pruned run
    (`query failing --control`) through the new index, the whole environment,
    instead of by (control, last run): 0.05 s became 0.25 s at 50,000 hosts.

    Self-contained (nothing but these indexes); IF EXISTS / IF NOT EXISTS, as version 6.
    """
    if conn.dialect.name != "sqlite":
        return
    for statement in (
        "CREATE INDEX IF NOT EXISTS ix_compliance_stretches_drift ON compliance_stretches "
        "(env, host, control, last_run, first_run, status, actual)",
        "DROP INDEX IF EXISTS ix_compliance_stretches_key",
    ):
        conn.execute(sa.text(statement))
    analysed = sa.text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
    if conn.execute(analysed).first() is not None:
        conn.execute(sa.text("ANALYZE ix_compliance_stretches_drift"))


#: (version, name, function), in order. Append only.
MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "initial", _v1_initial),
    (2, "compliance", _v2_compliance),
    (3, "preflight", _v3_preflight),
    (4, "compliance detail", _v4_compliance_detail),
    (5, "host_node", _v5_host_node),
    (6, "compliance query indexes", _v6_compliance_query_indexes),
    (7, "pull", _v7_pull),
    (8, "compliance drift index", _v8_compliance_drift_index),
    (9, "place no_report", _v9_place_no_report),
    (10, "compliance host node", _v10_compliance_host_node),
    (11, "stretch length bucket", _v11_stretch_span_bucket),
    (12, "shard events", _v12_shard_events),
    (13, "compliance drift covering index", _v13_compliance_drift_covering_index),
)

LATEST = MIGRATIONS[-1][0]
