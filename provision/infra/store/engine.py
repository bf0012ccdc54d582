"""Open the database a `Settings.database_url` names, and bring its schema up to date.

SQLite (the default, `<state_dir>/state.db`) is opened in WAL mode so readers
(`provision runs list` in another terminal) never block the rollout writing, and
with `synchronous=NORMAL`: a committed transaction survives the process being
killed, which is the crash this store is for. PostgreSQL URLs (`postgresql://…`)
use psycopg 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from provision.errors import ConfigError, PrerequisiteError, StateError
from provision.infra.private import private_dir, private_file
from provision.infra.store.migrations import LATEST, MIGRATIONS
from provision.infra.store.schema import schema_version


def _normalise_url(url: str) -> sa.URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "db_url is not a database URL",
            hint="use sqlite:////path/state.db or postgresql://user@host/dbname",
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"db_url names a {parsed.get_backend_name()} database; "
            "provision stores its state in SQLite or PostgreSQL",
            hint="use sqlite:///… or postgresql://…",
        )
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _private_database(path: Path) -> None:
    """The SQLite file 0600 before SQLite opens it: SQLite gives its -wal and -shm files
    the database's own mode. Its folder is created 0700 when missing (an existing
    one is the state directory's business, or the user's)."""
    if not path.parent.is_dir():
        private_dir(path.parent)
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if name == path or name.exists():
            private_file(name)


def create_engine(url: str) -> Engine:
    """An engine for `url`; the SQLite file (0600) and its folder are created when missing."""
    parsed = _normalise_url(url)
    shown = parsed.render_as_string(hide_password=True)
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                _private_database(Path(parsed.database))
            # A writer waits for another's transaction instead of failing at once.
            engine = sa.create_engine(parsed, connect_args={"timeout": 30})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(parsed, pool_pre_ping=True)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise PrerequisiteError(
            f"the database driver for {shown} is not installed ({exc})",
            hint="install psycopg into provision's environment: pip install 'psycopg[binary]'",
        ) from None
    return engine


@contextmanager
def write_transaction(engine: Engine, table: sa.Table) -> Iterator[Connection]:
    """A transaction that holds the write lock on `table` from its first statement.

    For check-then-write work that two processes may do at the same instant: the
    second waits until the first committed, then reads what the first wrote.

    SQLite: `BEGIN IMMEDIATE` takes the database's write lock at once (pysqlite's
    own BEGIN is deferred and comes only before the first write, so both could
    read first). The connection is in autocommit mode for this, so the driver
    leaves the transaction to us. PostgreSQL: the table is locked in SHARE ROW
    EXCLUSIVE mode, which conflicts with itself and with writes to the table but
    not with plain reads, so `runs list` never waits.
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                # SQLite may have rolled back by itself already (a full disk, say):
                # the error that got us here is the one to report.
                with suppress(sa.exc.DBAPIError):
                    conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
    else:
        with engine.begin() as conn:
            # The name is one of our own tables', never user input.
            conn.exec_driver_sql(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE")
            yield conn


def current_version(engine: Engine) -> int:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("schema_version"):
            return 0
        value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
        return int(value or 0)


def migrate(engine: Engine) -> int:
    """Apply every migration newer than the database; return the version it is at."""
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.begin() as conn:
            if not sa.inspect(conn).has_table("schema_version"):
                schema_version.create(conn)
        version = current_version(engine)
    except OperationalError as exc:
        raise StateError(
            f"cannot open the state database {shown}: {exc.orig}",
            hint="check db_url (PROVISION_DB_URL) and that the server is running",
        ) from None
    if version > LATEST:
        raise StateError(
            f"the state database {shown} is at schema version {version}, "
            f"newer than this provision knows ({LATEST})",
            hint="upgrade provision on this control node",
        )
    for number, name, apply in MIGRATIONS:
        if number <= version:
            continue
        with engine.begin() as conn:
            apply(conn)
            conn.execute(
                schema_version.insert().values(
                    version=number, name=name, applied_at=datetime.now(UTC)
                )
            )
        version = number
    return version
