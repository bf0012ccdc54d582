"""Turn one wave's Ansible events into task rows and final host results.

Runs on the runner's event thread: it only builds small rows and hands them to
the store's batch writer (which commits them from its own thread), and keeps
per host what the final result needs (first event time, the failing task and
its message). The play recap (`playbook_on_stats`) makes each host's result
final; it is written to the store at once, before ansible-playbook has even
exited.

Never recorded: module arguments, module results, extravars. A failing task's
message is Ansible's short `msg`, cut to a few hundred characters. Events arrive
masked (`provision.infra.runner` applies the run's `Masker`): a vaulted or secret-named
value in a message is `********` already.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from provision.infra.runner import PlaybookEvent
from provision.infra.store import BatchWriter, HostResult, Store, TaskRow, utcnow
from provision.rollout.hostkey import HOST_KEY_REFUSED, host_key_refused

MESSAGE_LIMIT = 400
_CENSORED = "the output has been hidden due to the fact that 'no_log: true'"

_STATUS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
    "runner_on_async_failed": "failed",
}


def short_message(res: Any) -> str | None:
    """Ansible's one-line reason, never the whole result."""
    if not isinstance(res, Mapping):
        return None
    if res.get("censored"):
        return _CENSORED
    msg = res.get("msg")
    text = str(msg).strip() if msg else ""
    if text in ("", "non-zero return code"):
        # A command that failed says why on stderr: its last line.
        stderr = str(res.get("stderr") or "").strip().splitlines()
        if stderr:
            text = (text + ": " if text else "") + stderr[-1].strip()
    if not text:
        return None
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def outcome_of(ok: int, changed: int, failed: int, unreachable: int) -> str:
    if unreachable:
        return "unreachable"
    if failed:
        return "failed"
    if changed:
        return "changed"
    return "ok" if ok else "skipped"


@dataclass
class _HostTrack:
    started: datetime
    failed_task: str | None = None
    message: str | None = None


class WaveRecorder:
    """The `on_event` callback for one wave of one run."""

    def __init__(
        self,
        store: Store,
        writer: BatchWriter,
        *,
        run_id: int,
        wave: int,
        attempt: int,
        hosts: set[str],
        on_task: Callable[[str], None] | None = None,
        on_results: Callable[[list[HostResult]], None] | None = None,
        node: str | None = None,
    ) -> None:
        self._store = store
        self._writer = writer
        self._run_id = run_id
        self._wave = wave
        self._attempt = attempt
        self._hosts = hosts
        self._on_task = on_task
        self._on_results = on_results
        #: The execution node this recorder's events come from (None: the control node).
        self.node = node
        self._track: dict[str, _HostTrack] = {}
        self._lock = threading.Lock()
        self.started = utcnow()
        self.recap_seen = False
        self.results: dict[str, HostResult] = {}

    def __call__(self, event: PlaybookEvent) -> None:
        kind = event.kind
        if kind == "playbook_on_task_start":
            if self._on_task and event.task:
                self._on_task(event.task)
            return
        if kind == "playbook_on_stats":
            self._recap(event.data)
            return
        if kind == "runner_on_start" and event.host:
            # The host's clock starts with its first task, not with the wave.
            self._track.setdefault(event.host, _HostTrack(started=utcnow()))
            return
        status = _STATUS.get(kind)
        if status is None or not event.host:
            return
        data = event.data
        res = data.get("res")
        now = utcnow()
        track = self._track.get(event.host)
        if track is None:
            track = self._track[event.host] = _HostTrack(started=now)
        message = None
        # `type(...) is dict`: Mapping's ABC check is slow on the hot path.
        if status == "ok" and type(res) is dict and res.get("changed"):
            status = "changed"
        elif status == "failed" and data.get("ignore_errors"):
            status = "ignored"
        elif status in ("failed", "unreachable"):
            message = short_message(res)
            if status == "unreachable" and host_key_refused(message):
                message = HOST_KEY_REFUSED  # one wording under either strategy
            track.failed_task = event.task
            track.message = message
        duration = data.get("duration")
        self._writer.put(
            TaskRow(
                run_id=self._run_id,
                wave=self._wave,
                attempt=self._attempt,
                counter=event.counter,
                host=event.host,
                task=event.task,
                action=data.get("task_action"),
                status=status,
                at=now,
                duration=float(duration) if isinstance(duration, int | float) else None,
                message=message,
            ),
            event.uuid,
        )

    def _recap(self, data: Mapping[str, Any]) -> None:
        """The play recap: every host the play reached has its final result now."""

        def count(key: str, host: str) -> int:
            table = data.get(key) or {}
            return int(table.get(host, 0)) if isinstance(table, Mapping) else 0

        names: set[str] = set()
        for key in ("ok", "changed", "failures", "dark", "skipped", "processed"):
            table = data.get(key) or {}
            if isinstance(table, Mapping):
                names.update(str(h) for h in table)
        now = utcnow()
        results: list[HostResult] = []
        for host in sorted(names & self._hosts):
            track = self._track.get(host)
            ok, changed = count("ok", host), count("changed", host)
            failed, unreachable = count("failures", host), count("dark", host)
            outcome = outcome_of(ok, changed, failed, unreachable)
            bad = outcome in ("failed", "unreachable")
            results.append(
                HostResult(
                    host=host,
                    wave=self._wave,
                    outcome=outcome,
                    ok=ok,
                    changed=changed,
                    failed=failed,
                    unreachable=unreachable,
                    skipped=count("skipped", host),
                    rescued=count("rescued", host),
                    ignored=count("ignored", host),
                    started_at=track.started if track else self.started,
                    finished_at=now,
                    failed_task=track.failed_task if track and bad else None,
                    message=track.message if track and bad else None,
                    attempt=self._attempt,
                )
            )
        self.finish(results)
        self.recap_seen = True

    def finish(self, results: list[HostResult]) -> None:
        """Record final results (once per host, with the node that ran it) and tell the listener."""
        with self._lock:
            fresh = [
                r if r.node or not self.node else replace(r, node=self.node)
                for r in results
                if r.host not in self.results
            ]
            if not fresh:
                return
            self._store.add_host_results(self._run_id, fresh)
            for r in fresh:
                self.results[r.host] = r
        if self._on_results:
            self._on_results(fresh)
