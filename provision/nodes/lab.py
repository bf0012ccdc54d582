"""`provision lab up --nodes`: the lab's two field servers as execution nodes.

The default lab has a district field server (Gazipur district data centre) and
an upazila one (Kaliganj). With `--nodes` they become the nodes of the lab's
nodes.yml, nested as in the field, and each is set up with the role:

    gazipur   on dhk-gaz-fs01   serves district:gazipur          runs dhk-gaz-portal01
    kaliganj  on dhk-kal-fs01   serves upazila:gazipur/kaliganj  runs dhk-kal-lab01, ...

Kaliganj is the more specific, so its sites go to its own node; the nodes'
hosts run from the control node. Extra hosts (`--hosts default,lab_pc:3`)
stand in Kaliganj and go to its node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from provision.errors import InputError
from provision.infra.atomic import write_atomic
from provision.lab import service as lab_service
from provision.lab.spec import parse_hosts_spec
from provision.model.nodes import Node
from provision.nodes import registry
from provision.nodes.setup import setup_node
from provision.rollout import RolloutResult, run_rollout
from provision.settings import Settings

LAB_NODES: tuple[Node, ...] = (
    Node("gazipur", "dhk-gaz-fs01", "district:gazipur"),
    Node("kaliganj", "dhk-kal-fs01", "upazila:gazipur/kaliganj"),
)


@dataclass(frozen=True)
class LabNodesResult:
    up: lab_service.UpResult
    #: Node name -> the run that set it up.
    setups: dict[str, RolloutResult]

    @property
    def ok(self) -> bool:
        return all(r.exit_status == 0 for r in self.setups.values())


def check_spec(hosts_spec: str | None) -> None:
    """Refuse, before anything boots, a lab that lacks the nodes' hosts."""
    names = {h.name for h in parse_hosts_spec(hosts_spec) if not h.new}
    missing = [n.host for n in LAB_NODES if n.host not in names]
    if missing:
        raise InputError(
            f"--nodes needs the field servers {', '.join(missing)} in the lab",
            hint="add them to --hosts (or use 'default')",
        )


def set_up_lab_nodes(
    settings: Settings, on_step: Callable[[str], None] = lambda _: None
) -> dict[str, RolloutResult]:
    """Write the lab's nodes.yml and set each node up (a recorded rollout each)."""
    path = registry.nodes_path(settings)
    write_atomic(path, registry.render_nodes(LAB_NODES), mode=0o644)
    registry.checked_nodes(settings)  # the lab's own file keeps every rule
    results: dict[str, RolloutResult] = {}
    for node in LAB_NODES:
        on_step(f"setting up node {node.name} on {node.host}")
        _plan, result = setup_node(
            settings, node.name, run=lambda plan: run_rollout(settings, plan), on_step=on_step
        )
        results[node.name] = result
    return results


def up_with_nodes(
    settings: Settings, hosts_spec: str | None, on_step: Callable[[str], None] = lambda _: None
) -> LabNodesResult:
    """`lab up`, then its field servers as nodes. A failed setup leaves the lab up, to look at."""
    check_spec(hosts_spec)
    up = lab_service.up(settings, hosts_spec, on_step)
    return LabNodesResult(up, set_up_lab_nodes(settings, on_step))
