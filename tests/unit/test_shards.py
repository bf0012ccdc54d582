"""Shards: which node runs which host of a wave, and the node column of older stores."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from provision.infra.store import HostResult, Store
from provision.infra.store.engine import migrate
from provision.infra.store.migrations import LATEST, MIGRATIONS
from provision.rollout.shards import JobBook, recorded_jobs, split


def test_without_nodes_every_host_runs_from_the_control_node() -> None:
    assert split(None, ["a", "b"], None) == {None: ["a", "b"]}  # type: ignore[arg-type]
    assert split(None, [], None) == {}  # type: ignore[arg-type]


def test_an_older_store_gets_the_node_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    before = [m for m in MIGRATIONS if m[1] != "host_node"]
    with engine.begin() as conn:
        for _version, _name, step in before:
            step(conn)
        conn.execute(sa.text("DROP TABLE host_results"))
        conn.execute(sa.text("CREATE TABLE host_results (run_id INTEGER, host VARCHAR(255))"))
    engine.dispose()
    step = next(m[2] for m in MIGRATIONS if m[1] == "host_node")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        step(conn)
        step(conn)  # a store made by today's version 1 has it already: no second column
        columns = [c["name"] for c in sa.inspect(conn).get_columns("host_results")]
    assert columns.count("node") == 1


def test_the_node_is_stored_with_the_host_result(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    assert migrate(store.engine) == LATEST
    run = store.create_run(
        kind="rollout",
        user="u",
        node="control",
        env="lab",
        playbook="site.yml",
        selection="",
        options={},
        git_revision=None,
        plan=[(1, "wave 1", ["a", "b"])],
    )
    store.add_host_results(
        run, [HostResult("a", 1, "ok", ok=1, node="gazipur"), HostResult("b", 1, "ok", ok=1)]
    )
    got = store.host_results(run)
    assert got["a"].node == "gazipur" and got["b"].node is None


def test_the_jobs_a_wave_started_are_read_back(tmp_path: Path) -> None:
    book = JobBook(tmp_path, {"old": "j0"})
    book.note("gazipur", "j1")
    assert recorded_jobs(str(tmp_path)) == {"old": "j0", "gazipur": "j1"}
    assert recorded_jobs(None) == {} and recorded_jobs(str(tmp_path / "none")) == {}
