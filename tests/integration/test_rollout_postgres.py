"""The same rollouts with the state store in PostgreSQL, as on a shared control node.

The test starts a throwaway PostgreSQL server (tests/helpers/postgres.py) and
stops it at the end. Each test gets a database of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa

from provision.infra.store import ShardEvent, Store, TaskRow, utcnow
from provision.settings import Settings
from tests.helpers.lab import Lab
from tests.helpers.lock_race import check_one_winner_per_round
from tests.helpers.postgres import PostgresServer, running_postgres
from tests.helpers.rollout_lab import (
    check_canary_and_two_waves,
    check_failing_canary_stops,
    check_max_fail_stops,
    check_sigkill_then_resume,
    clean_hosts,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    yield from running_postgres()


@pytest.fixture
def pg_settings(lab: Lab, postgres: PostgresServer) -> Iterator[Settings]:
    clean_hosts(lab)
    yield replace(lab.settings, db_url=postgres.create_database())
    clean_hosts(lab)


def test_the_store_is_postgresql(pg_settings: Settings) -> None:
    with Store.open(pg_settings.database_url) as store:
        assert store.engine.dialect.name == "postgresql"
        assert store.list_runs() == []


def test_two_processes_asking_at_the_same_instant_one_wins_in_postgresql(
    postgres: PostgresServer,
) -> None:
    check_one_winner_per_round(postgres.create_database())


def test_canary_and_two_waves_in_postgresql(lab: Lab, pg_settings: Settings) -> None:
    check_canary_and_two_waves(lab, pg_settings)


def test_failing_canary_in_postgresql(lab: Lab, pg_settings: Settings) -> None:
    check_failing_canary_stops(lab, pg_settings)


def test_max_fail_in_postgresql(lab: Lab, pg_settings: Settings) -> None:
    check_max_fail_stops(lab, pg_settings)


def test_sigkill_then_resume_in_postgresql(lab: Lab, pg_settings: Settings) -> None:
    check_sigkill_then_resume(lab, pg_settings)


def test_shard_events_are_committed_with_their_rows_in_postgresql(
    postgres: PostgresServer,
) -> None:
    with Store.open(postgres.create_database()) as store:
        run = store.create_run(
            kind="rollout",
            user="u",
            node="control",
            env="lab",
            playbook="site.yml",
            selection="",
            options={},
            git_revision=None,
            plan=[(1, "wave 1", ["a"])],
        )
        row = TaskRow(run, 1, 1, 2, "a", "t", None, "ok", utcnow())
        event = ShardEvent(run, 1, "gazipur", 2, "u2")
        with pytest.raises(sa.exc.IntegrityError):
            store.add_task_rows([row, row], [event, event])  # the second mark is refused
        assert store.task_rows(run) == [] and store.shard_events(run, 1, "gazipur") == set()
        store.add_task_rows([row], [event])
        assert [r.counter for r in store.task_rows(run)] == [2]
        assert store.shard_events(run, 1, "gazipur") == {(2, "u2")}
