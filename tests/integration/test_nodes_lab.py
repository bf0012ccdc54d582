"""Rollouts in shards on a real lab: two execution nodes and the control node.

The lab of `tests/helpers/nodes_lab.py`: node gazipur (on dhk-gaz-fs01) runs
dhk-gaz-portal01, node kaliganj (on dhk-kal-fs01) runs dhk-kal-lab01, the
control node runs every other host. A rollout over all of them records every
host once, with the node that ran it; the events per host are those of the same
rollout run locally (`--local`); no job folder is left on the nodes after.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.infra.store import open_store
from provision.nodes import layout
from tests.helpers.lab import lab_unavailable_reason
from tests.helpers.nodes_lab import NodesLab, nodes_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(2400)]

RAN_ON = {"dhk-gaz-portal01": "gazipur", "dhk-kal-lab01": "kaliganj"}
NODE_HOSTS = ("dhk-gaz-fs01", "dhk-kal-fs01")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodesLab]:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with nodes_lab(tmp_path_factory.mktemp("shards")) as booted:
        yield booted


def run(lab: NodesLab, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["--workspace", str(lab.settings.workspace), *args],
        env={
            "PROVISION_LAB_SUBNET": lab.settings.lab_subnet,
            "PROVISION_STATE_DIR": str(lab.settings.state_dir),
        },
        catch_exceptions=False,
    )


def _latest_run(lab: NodesLab) -> int:
    with open_store(lab.settings) as store:
        return max(r.id for r in store.list_runs(limit=1))


def _events_per_host(lab: NodesLab, run_id: int) -> dict[str, int]:
    import sqlalchemy as sa

    from provision.infra.store.schema import task_results

    with open_store(lab.settings) as store, store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(task_results.c.host, sa.func.count())
            .where(task_results.c.run_id == run_id)
            .group_by(task_results.c.host)
        )
        return {str(host): int(count) for host, count in rows}


def test_a_rollout_over_two_nodes_and_the_control_node_records_each_host_once(
    lab: NodesLab,
) -> None:
    sharded = run(lab, "rollout", "run", "ping.yml", "--yes")
    assert sharded.exit_code == 0, sharded.output
    sharded_id = _latest_run(lab)
    with open_store(lab.settings) as store:
        results = store.host_results(sharded_id)
        planned = [h for w in store.waves(sharded_id) for h in w.hosts]
    assert sorted(results) == sorted(planned)
    for host, result in results.items():
        assert result.outcome == "ok", (host, result)
        assert result.node == RAN_ON.get(host), host
    shown = run(lab, "runs", "show", str(sharded_id))
    assert "node gazipur" in shown.output and "node kaliganj" in shown.output
    assert "control node" in shown.output

    local = run(lab, "rollout", "run", "ping.yml", "--yes", "--local")
    assert local.exit_code == 0, local.output
    local_id = _latest_run(lab)
    with open_store(lab.settings) as store:
        assert all(r.node is None for r in store.host_results(local_id).values())
    assert _events_per_host(lab, sharded_id) == _events_per_host(lab, local_id)


def test_no_job_is_left_on_the_nodes(lab: NodesLab) -> None:
    for host in NODE_HOSTS:
        left = lab.ssh(host, f"find {layout.WORK_DIR} -mindepth 1 -maxdepth 1 | wc -l")
        assert left.strip() == "0", host
