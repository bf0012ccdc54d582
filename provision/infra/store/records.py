"""What the store hands back: plain dataclasses, the same ones the CLI and tests read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

#: A run's status: planned (not started), running, succeeded (every host ok or
#: changed), failed (finished, some hosts failed or unreachable), stopped (a
#: threshold, the canary or Ctrl-C stopped it; resumable), crashed (the process
#: driving it died; resumable).
RUN_STATUSES = ("planned", "running", "succeeded", "failed", "stopped", "crashed")
#: A host's final outcome in a run.
OUTCOMES = ("ok", "changed", "failed", "unreachable", "skipped")


@dataclass(frozen=True)
class RunInfo:
    id: int
    parent_id: int | None
    kind: str
    status: str
    user: str
    node: str
    pid: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    env: str
    playbook: str
    selection: str
    options: dict[str, Any]
    git_revision: str | None
    stop_reason: str | None
    attempts: int
    #: Hosts planned, and hosts with a final result per outcome.
    planned: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(self.outcomes.values())


@dataclass(frozen=True)
class WaveInfo:
    run_id: int
    number: int  # 0 is the canary when there is one
    label: str
    status: str  # pending, running, done, stopped
    hosts: tuple[str, ...]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    artifacts: str | None = None


@dataclass(frozen=True)
class HostResult:
    """One host's final result in one run."""

    host: str
    wave: int
    outcome: str  # one of OUTCOMES
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failed_task: str | None = None
    message: str | None = None
    attempt: int = 1
    #: The execution node that ran the host; None for the control node.
    node: str | None = None

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class TaskRow(NamedTuple):
    """One task result on one host, as it arrived from Ansible.

    A NamedTuple, not a dataclass: a rollout makes one per event, and the store
    hands these tuples to the database driver as they are.
    """

    run_id: int
    wave: int
    attempt: int
    counter: int
    host: str
    task: str | None
    action: str | None
    status: str  # ok, changed, failed, unreachable, skipped, ignored
    at: datetime
    duration: float | None = None
    message: str | None = None


class ShardEvent(NamedTuple):
    """One event of an execution node's stream whose task row is committed."""

    run_id: int
    wave: int
    node: str
    counter: int
    uuid: str


@dataclass(frozen=True)
class LockHolder:
    host: str
    run_id: int
    user: str
    node: str
    pid: int
    acquired_at: datetime
