"""A wave's hosts cut into shards: each execution node runs the hosts it serves.

`ExecutionNodes` is what the caller (the command line, after `nodes check`'s
readiness and version checks) hands a rollout: the nodes and how to reach
each. `split` says which node runs which of a wave's hosts (the control node
runs the rest). `run_node_shard` runs one node's share through ansible-runner's
streaming (`runner.run_shard`) into the wave's recorder, and writes down the
job it started in the wave's run folder (`shards.json`), with the events
already handed on (`<node>.seen`), so that `rollout resume` can re-attach to a
worker that went on while the link was down instead of running it twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.access import secrets
from provision.errors import ProvisionError
from provision.infra import runner
from provision.infra.streaming import NodeLink, NodeLinkError, ShardHandle, job_state
from provision.model.inventory.model import Inventory
from provision.model.nodes import CONTROL, Node, assign_hosts
from provision.settings import Settings

JOBS_FILE = "shards.json"


@dataclass(frozen=True)
class ExecutionNodes:
    """The nodes a run may send shards to, and how to reach each (by node name)."""

    nodes: tuple[Node, ...]
    links: Mapping[str, NodeLink]
    #: How many times a follow whose SSH session ended is started again in the run.
    reattach: int = 3


def split(
    nodes: ExecutionNodes | None, hosts: Sequence[str], inventory: Inventory
) -> dict[str | None, list[str]]:
    """Node name (None: the control node) -> the hosts of `hosts` it runs."""
    if nodes is None or not nodes.nodes:
        return {CONTROL: list(hosts)} if hosts else {}
    usable = [n for n in nodes.nodes if n.name in nodes.links]
    return assign_hosts(usable, hosts, inventory)


def recorded_jobs(folder: str | None) -> dict[str, str]:
    """Node name -> job id of the shards a wave's earlier attempt started."""
    if not folder:
        return {}
    path = Path(folder) / JOBS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


@dataclass
class ShardOutcome:
    """What became of one node's shard, for the wave and the run's reason."""

    node: str
    hosts: list[str]
    result: runner.ShardResult | None = None
    error: str | None = None
    handle: ShardHandle = field(default_factory=ShardHandle)

    @property
    def problem(self) -> str | None:
        """Why some of this shard's hosts may have no result, or None."""
        if self.error:
            return f"node {self.node}: {self.error}"
        if self.result is None:
            return f"node {self.node}: the shard did not run"
        if self.result.state != "done":
            return f"node {self.node}: {self.result.reason or self.result.state}"
        return None


class JobBook:
    """The wave's shards.json, written as each shard's worker starts (threads share it)."""

    def __init__(self, folder: Path, earlier: Mapping[str, str]) -> None:
        self._path = folder / JOBS_FILE
        self._jobs = dict(earlier)
        self._lock = threading.Lock()

    def note(self, node: str, job: str) -> None:
        with self._lock:
            self._jobs[node] = job
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._jobs), encoding="utf-8")
            tmp.replace(self._path)


def run_node_shard(
    outcome: ShardOutcome,
    *,
    settings: Settings,
    nodes: ExecutionNodes,
    playbook: Path,
    inventory: Mapping[str, Any],
    private: Path,
    earlier_folder: str | None,
    book: JobBook,
    options: Mapping[str, Any],
    extravars: Mapping[str, Any],
    tags: Sequence[str],
    on_event: runner.EventCallback,
) -> None:
    """Run (or re-attach to) one node's shard; never raises, the outcome says."""
    link = nodes.links[outcome.node]
    shard_dir = private / f"shard-{outcome.node}"
    shard_dir.mkdir(mode=0o700)
    earlier_job = recorded_jobs(earlier_folder).get(outcome.node)
    try:
        with secrets.vault_for_run(settings) as vault:
            masker = secrets.inventory_masker(vault, inventory, extravars, playbook)
            if earlier_job is not None:
                outcome.result = _reattach(
                    link, earlier_job, earlier_folder, shard_dir, book, on_event, masker, nodes
                )
                if outcome.result is not None and outcome.result.state != "lost":
                    return
            outcome.result = runner.run_shard(
                link,
                playbook,
                workspace=settings.workspace,
                private_data_dir=shard_dir,
                inventory=inventory,
                tags=tags,
                check=bool(options.get("check")),
                diff=bool(options.get("diff")),
                extravars=extravars,
                forks=int(options.get("forks") or settings.forks),
                on_event=on_event,
                on_started=lambda job: book.note(outcome.node, job),
                vault_password_file=vault,
                masker=masker,
                handle=outcome.handle,
                reattach=nodes.reattach,
                seen_file=private / f"{outcome.node}.seen",
            )
    except ProvisionError as error:
        outcome.error = error.message
    except Exception as error:  # a shard's crash must not take the other shards down
        outcome.error = f"{type(error).__name__}: {error}"


def _reattach(
    link: NodeLink,
    job: str,
    earlier_folder: str | None,
    shard_dir: Path,
    book: JobBook,
    on_event: runner.EventCallback,
    masker: Any,
    nodes: ExecutionNodes,
) -> runner.ShardResult | None:
    """Follow an earlier attempt's worker again; None when the node has no such job."""
    try:
        state = job_state(link, job)
    except NodeLinkError:
        return None
    if not state["exists"]:
        return None
    book.note(link.name, job)
    seen = Path(earlier_folder or shard_dir) / f"{link.name}.seen"
    return runner.collect_shard(
        link, job, on_event=on_event, masker=masker, reattach=nodes.reattach, seen_file=seen
    )


def start(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=f"provision-shard-{name}", daemon=True)
    thread.start()
    return thread


__all__ = [
    "ExecutionNodes",
    "JobBook",
    "ShardOutcome",
    "recorded_jobs",
    "run_node_shard",
    "split",
    "start",
]
