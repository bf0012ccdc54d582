"""The same rollouts with the state store in PostgreSQL, as on a shared control node.

The test starts a throwaway PostgreSQL server from Debian's packages
(`postgresql`, installed by scripts/setup.sh): initdb and pg_ctl as the
`postgres` user in a temporary folder, listening only on a unix socket, and
stops it at the end. Each test gets a database of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from provision.infra.store import Store
from provision.settings import Settings
from tests.helpers.lab import Lab
from tests.helpers.lock_race import check_one_winner_per_round
from tests.helpers.rollout_lab import (
    check_canary_and_two_waves,
    check_failing_canary_stops,
    check_max_fail_stops,
    check_sigkill_then_resume,
    clean_hosts,
)

pytestmark = pytest.mark.lab


def _pg_bin() -> Path | None:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


class PostgresServer:
    """A PostgreSQL server in a temp folder, on a unix socket only."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.base = Path(tempfile.mkdtemp(prefix="provision-pg-"))
        self.data = self.base / "data"
        self.socket = self.base / "socket"
        self.socket.mkdir()
        self.port = 5432
        root = os.geteuid() == 0
        self._as = ["runuser", "-u", "postgres", "--"] if root else []
        if root:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.socket, "postgres")

    def _run(self, *argv: str) -> None:
        subprocess.run([*self._as, *argv], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        options = f"-c listen_addresses='' -k {self.socket} -p {self.port} -c fsync=off"
        log = self.base / "server.log"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(log),
            "-w",
            "start",
        )

    def stop(self) -> None:
        subprocess.run(
            [*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket}&port={self.port}"

    def create_database(self) -> str:
        name = "provision_" + uuid.uuid4().hex[:8]
        self._run(
            str(self.bin / "psql"),
            "-h",
            str(self.socket),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-c",
            f"CREATE DATABASE {name}",
        )
        return self.url(name)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are missing: apt-get install postgresql")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("runuser is missing (util-linux), needed to start PostgreSQL as postgres")
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


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
