"""The execution nodes a run sends shards to, checked ready, and how to reach each.

One function for every command that runs shards (`rollout run`, `rollout
resume`, `compliance run`): `for_run` reads nodes.yml, keeps the nodes that
serve some of the run's hosts, checks them over SSH (`check.ensure_nodes_ready`:
other versions or no worker is refused before anything is sent) and returns
`ExecutionNodes` for `provision.rollout.shards`. None when the run has no node
to use (`local`, no nodes.yml, no node serving its hosts): it then runs every
host from the control node.
"""

from __future__ import annotations

from collections.abc import Sequence

from provision.access import keys
from provision.infra.streaming import NodeLink
from provision.model.nodes import assign_hosts
from provision.nodes import layout, registry
from provision.nodes.check import (
    ensure_nodes_ready,
    fast_versions,
    nodes_for_resume,
    targets_of,
)
from provision.rollout.shards import ExecutionNodes
from provision.settings import Settings


def for_run(
    settings: Settings, hosts: Sequence[str], *, local: bool = False, down_ok: bool = False
) -> ExecutionNodes | None:
    """The nodes that take shards of a run over `hosts`; None to run them all from here.

    A node that does not answer is refused, unless `down_ok` (a resumed
    rollout, an audit): then it is `down`, and its hosts stay not run with the
    reason while the others go on. A node that answers with other versions, or
    without a worker, is always refused.
    """
    if local or not registry.nodes_path(settings).exists():
        return None
    found, loaded = registry.checked_nodes(settings)
    if not found.nodes:
        return None
    known = [h for h in hosts if h in loaded.inventory.hosts]
    serving = assign_hosts(found.nodes, known, loaded.inventory)
    chosen = [n for n in found.nodes if n.name in serving]
    if not chosen:
        return None
    down: dict[str, str] = {}
    if down_ok:
        ready, down = nodes_for_resume(settings, loaded, chosen, found.nodes)
    else:
        ready = ensure_nodes_ready(settings, loaded, chosen, found.nodes)
    mitogen = fast_versions().get("mitogen")
    up = [n for n in chosen if n.name not in down]
    targets = {t.host: t for t in targets_of(settings, loaded, [n.host for n in up])}
    links = {
        node.name: NodeLink(
            name=node.name,
            address=targets[node.host].address,
            port=targets[node.host].port,
            user=targets[node.host].user,
            key=targets[node.host].key,
            known_hosts=keys.known_hosts_path(settings.inventory_path),
            account=layout.USER,
            runner=layout.RUNNER,
            work_dir=layout.WORK_DIR,
            site_key=layout.KEY,
            site_known_hosts=layout.KNOWN_HOSTS,
            fast=node.name in ready and ready[node.name].fast(mitogen),
        )
        for node in up
    }
    return ExecutionNodes(tuple(chosen), links, down=down)
