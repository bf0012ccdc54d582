"""A run's hosts cut into shards: each execution node runs the hosts it serves.

`ExecutionNodes` is what the caller (`provision.nodes.links`, after `nodes
check`'s readiness and version checks) hands a rollout or an audit: the nodes and how to reach
each. `split` says which node runs which of a wave's hosts (the control node
runs the rest). `ShardSet` starts each node's share of one step of a run (a
rollout's wave, or an audit) on a thread of its own and waits for them all.
`run_node_shard` runs one node's share through ansible-runner's
streaming (`runner.run_shard`) into the wave's recorder, and writes down the
job it started in the wave's run folder (`shards.json`), so that `rollout
resume` can re-attach to a worker that went on while the link was down instead
of running it twice, and replay only what the store does not hold: the events
whose rows are committed are marked in the store with them (`recorded_events`).
A node that cannot be reached when a run resumes, or when an audit starts, is
`ExecutionNodes.down`: its hosts stay without a result, with the reason, and
are not sent elsewhere.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.access import secrets
from provision.errors import ProvisionError
from provision.infra import runner
from provision.infra.store import Store
from provision.infra.streaming import (
    NodeLink,
    NodeLinkError,
    ShardHandle,
    cleanup_job,
    job_state,
    sweep_secrets,
)
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
    #: Nodes that did not answer when a run resumed -> why: their hosts stay not run.
    down: Mapping[str, str] = field(default_factory=dict)


def split(
    nodes: ExecutionNodes | None, hosts: Sequence[str], inventory: Inventory
) -> dict[str | None, list[str]]:
    """Node name (None: the control node) -> the hosts of `hosts` it runs."""
    if nodes is None or not nodes.nodes:
        return {CONTROL: list(hosts)} if hosts else {}
    usable = [n for n in nodes.nodes if n.name in nodes.links or n.name in nodes.down]
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
        if self._jobs:
            # Carried over at once: an attempt that starts no shard (its node down)
            # must not make the next resume forget the jobs still on the nodes.
            self._write()

    def note(self, node: str, job: str) -> None:
        with self._lock:
            self._jobs[node] = job
            self._write()

    def _write(self) -> None:
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._jobs), encoding="utf-8")
        tmp.replace(self._path)


#: An older provision's list of a shard's recorded events, in the wave's run folder.
SEEN_SUFFIX = ".seen"


def read_seen(path: Path | None) -> set[tuple[int, str]]:
    """The (counter, uuid) pairs an older `<node>.seen` file lists (none when it is missing)."""
    known: set[tuple[int, str]] = set()
    if path is None:
        return known
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return known
    for line in text.splitlines():
        counter, _, event_uuid = line.partition(" ")
        if counter.isdigit() and event_uuid:
            known.add((int(counter), event_uuid))
    return known


def recorded_events(
    store: Store,
    *,
    run_id: int,
    wave: int,
    node: str,
    folder: Path,
    earlier_folder: str | None,
) -> frozenset[tuple[int, str]]:
    """The (counter, uuid) of node `node`'s events in this wave whose rows the store holds.

    A node's shard writer marks each event in the store in the same transaction
    as the task row it made (`BatchWriter(node=...)`), so a control node that
    dies at any point has marked exactly what it recorded: a resume replaying
    the node's stream skips those events and records every other once. An event
    that made no row (a task's start, the play recap, whose host results the
    store keeps once per host) is replayed, to no effect on the store.

    A wave folder written by an older provision lists its recorded events in
    `<node>.seen` instead: read, and copied into `folder`, so that every later
    resume of that run still skips them.
    """
    known = store.shard_events(run_id, wave, node)
    if earlier_folder:
        earlier = Path(earlier_folder) / f"{node}{SEEN_SUFFIX}"
        listed = read_seen(earlier)
        if listed:
            known |= listed
            with contextlib.suppress(OSError):
                shutil.copyfile(earlier, folder / earlier.name)
    return frozenset(known)


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
    seen: frozenset[tuple[int, str]] = frozenset(),
    strategy: str = "plain",
) -> None:
    """Run (or re-attach to) one node's shard; never raises, the outcome says.

    A node in `nodes.down` gets nothing: its hosts stay without a result.
    """
    if outcome.node in nodes.down:
        outcome.error = nodes.down[outcome.node]
        return
    link = nodes.links[outcome.node]
    shard_dir = private / f"shard-{outcome.node}"
    shard_dir.mkdir(mode=0o700)
    earlier_job = recorded_jobs(earlier_folder).get(outcome.node)
    try:
        with secrets.vault_for_run(settings) as vault:
            masker = secrets.inventory_masker(vault, inventory, extravars, playbook)
            if earlier_job is not None:
                outcome.result = _reattach(link, earlier_job, book, on_event, masker, nodes, seen)
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
                strategy=strategy,
            )
    except ProvisionError as error:
        outcome.error = error.message
    except Exception as error:  # a shard's crash must not take the other shards down
        outcome.error = f"{type(error).__name__}: {error}"
    if outcome.result is not None and outcome.result.state == "lost":
        # Its shell died with the worker, before it could remove the job's secret.
        with contextlib.suppress(NodeLinkError):
            sweep_secrets(link)


def _reattach(
    link: NodeLink,
    job: str,
    book: JobBook,
    on_event: runner.EventCallback,
    masker: Any,
    nodes: ExecutionNodes,
    seen: frozenset[tuple[int, str]],
) -> runner.ShardResult | None:
    """Follow an earlier attempt's worker again; None when it must run anew.

    A job the node no longer has, or whose worker died without an end (the
    node was stopped), runs again: its stream ends where the worker died, so
    its hosts have no result to replay. A dead job's folder is removed first,
    and the node's secrets of jobs no longer alive before anything else.
    """
    try:
        # The secrets of jobs no longer alive (this one's too, if it died) go first.
        sweep_secrets(link)
        state = job_state(link, job)
    except NodeLinkError:
        return None
    if not state["exists"]:
        return None
    if not state["running"] and state["rc"] is None:
        with contextlib.suppress(NodeLinkError):
            cleanup_job(link, job)
        return None
    book.note(link.name, job)
    return runner.collect_shard(
        link, job, on_event=on_event, masker=masker, reattach=nodes.reattach, seen=seen
    )


def start(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=f"provision-shard-{name}", daemon=True)
    thread.start()
    return thread


@dataclass
class ShardSet:
    """The shards of one step of a run (a rollout's wave, an audit), each on a thread.

    Made with what every shard of the step shares; `start` sends one node's hosts
    (their inventory slice) to it with the events going to `on_event`, `join`
    waits for all. The job book (`shards.json` in `private`) is written only once
    a shard starts, carrying `earlier_folder`'s jobs along.
    """

    settings: Settings
    nodes: ExecutionNodes
    playbook: Path
    private: Path
    options: Mapping[str, Any]
    extravars: Mapping[str, Any]
    tags: Sequence[str] = ()
    earlier_folder: str | None = None
    #: The run's strategy ("plain" or "fast"); a node runs fast only with our mitogen.
    strategy: str = "plain"
    outcomes: list[ShardOutcome] = field(default_factory=list, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False, repr=False)
    _book: JobBook | None = field(default=None, init=False, repr=False)

    def start(
        self,
        node: str,
        hosts: Sequence[str],
        inventory: Mapping[str, Any],
        on_event: runner.EventCallback,
        *,
        seen: frozenset[tuple[int, str]] = frozenset(),
        extravars: Mapping[str, Any] | None = None,
    ) -> ShardOutcome:
        """Start node `node`'s shard over `hosts` (`extravars`: this shard's, else the set's)."""
        if self._book is None:
            self._book = JobBook(self.private, recorded_jobs(self.earlier_folder))
        outcome = ShardOutcome(node, list(hosts))
        self.outcomes.append(outcome)
        self._threads.append(
            start(
                functools.partial(
                    run_node_shard,
                    outcome,
                    settings=self.settings,
                    nodes=self.nodes,
                    playbook=self.playbook,
                    inventory=inventory,
                    private=self.private,
                    earlier_folder=self.earlier_folder,
                    book=self._book,
                    options=self.options,
                    extravars=self.extravars if extravars is None else extravars,
                    tags=self.tags,
                    on_event=on_event,
                    seen=seen,
                    strategy=self.strategy,
                ),
                node,
            )
        )
        return outcome

    def join(self) -> None:
        """Wait until every shard started has come to its end (never raises)."""
        for thread in self._threads:
            thread.join()


__all__ = [
    "ExecutionNodes",
    "JobBook",
    "ShardOutcome",
    "ShardSet",
    "read_seen",
    "recorded_events",
    "recorded_jobs",
    "run_node_shard",
    "split",
    "start",
]
