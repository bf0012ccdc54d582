"""The state store: runs, waves, host results and host locks, in SQLite or PostgreSQL.

Only this package imports SQLAlchemy. The public surface:

* `Store.open(settings.database_url)` -> Store (migrates the schema to the latest version)
* `open_store(settings)` -> Store
* `BatchWriter(store)`: task results committed in batches from a thread of its own
* records: `RunInfo`, `WaveInfo`, `HostResult`, `TaskRow`, `ShardEvent`, `LockHolder`
"""

from pathlib import Path
from typing import Protocol

from provision.infra.private import private_dir
from provision.infra.store.engine import create_engine, current_version, migrate
from provision.infra.store.migrations import LATEST as SCHEMA_VERSION
from provision.infra.store.records import (
    OUTCOMES,
    RUN_STATUSES,
    HostResult,
    LockHolder,
    RunInfo,
    ShardEvent,
    TaskRow,
    WaveInfo,
)
from provision.infra.store.store import Store, pid_alive, utcnow
from provision.infra.store.writer import BatchWriter


class StoreLocation(Protocol):
    """Where the store is: what `open_store` needs of the workspace's settings."""

    @property
    def state_path(self) -> Path: ...

    @property
    def database_url(self) -> str: ...


def open_store(settings: StoreLocation) -> Store:
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
    "ShardEvent",
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
