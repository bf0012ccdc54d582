"""The state store: runs, waves, host results and host locks, in SQLite or PostgreSQL.

Only this package imports SQLAlchemy. The public surface:

* `Store.open(settings.database_url)` -> Store (migrates the schema to the latest version)
* `open_store(settings)` -> Store
* `BatchWriter(store)`: task results committed in batches from a thread of its own
* records: `RunInfo`, `WaveInfo`, `HostResult`, `TaskRow`, `LockHolder`
"""

from provision.private import private_dir
from provision.settings import Settings
from provision.store.engine import create_engine, current_version, migrate
from provision.store.records import (
    OUTCOMES,
    RUN_STATUSES,
    HostResult,
    LockHolder,
    RunInfo,
    TaskRow,
    WaveInfo,
)
from provision.store.schema import LATEST as SCHEMA_VERSION
from provision.store.store import Store, pid_alive, utcnow
from provision.store.writer import BatchWriter


def open_store(settings: Settings) -> Store:
    """The store `settings` names (SQLite in the state dir unless db_url says otherwise).

    Opening it makes the state directory private to its owner (0700) first."""
    private_dir(settings.state_path)
    return Store.open(settings.database_url)


__all__ = [
    "OUTCOMES",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "BatchWriter",
    "HostResult",
    "LockHolder",
    "RunInfo",
    "Store",
    "TaskRow",
    "WaveInfo",
    "create_engine",
    "current_version",
    "migrate",
    "open_store",
    "pid_alive",
    "utcnow",
]
