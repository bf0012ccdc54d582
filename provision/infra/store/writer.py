"""Write task results in batches from a thread of their own.

Ansible's events arrive one by one, sometimes thousands a second. One
transaction per event would make the database the bottleneck (an fsync each);
keeping them all until the end would lose them in a crash and grow without
bound. The writer takes rows from a bounded buffer and commits them together:
every `batch` rows, or `interval` seconds after the first row of a batch
arrived (at most), whichever comes first. A producer that outruns the database
waits on the full buffer (back-pressure) instead of growing memory.

`queued` counts the rows put, `written` the rows committed, and `on_commit`
is told `written` after each commit.

An execution node's shard has a writer of its own (`node=`): each row is put
with the uuid of the stream event that made it, and the batch's events are
marked in the store (`shard_events`) in the same transaction as its rows, so
a resume that replays the node's stream skips exactly the events whose rows
the store holds, whenever the control node died.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import cast

from provision.infra.store.records import ShardEvent, TaskRow
from provision.infra.store.store import Store


class BatchWriter:
    """`put(row)` from any thread; `close()` flushes what is left and stops.

    The hand-over is a deque (appends and pops are atomic under the GIL) and an
    Event that wakes the writer when a batch is full: cheaper per row than
    queue.Queue's lock and condition, which showed in benchmarks/store_ingest.py.
    """

    def __init__(
        self,
        store: Store,
        *,
        batch: int = 500,
        interval: float = 0.5,
        capacity: int = 20_000,
        on_commit: Callable[[int], None] | None = None,
        node: str | None = None,
    ) -> None:
        self._store = store
        self._on_commit = on_commit
        #: The execution node whose shard's rows this writer commits (None: the control node).
        self.node = node
        self._batch = batch
        self._interval = interval
        self._capacity = capacity
        # A node's writer holds (row, event uuid) pairs: the two are committed together.
        self._rows: deque[TaskRow | tuple[TaskRow, str | None]] = deque()
        self._wake = threading.Event()
        self._drained = threading.Event()
        self._closing = False
        self._error: BaseException | None = None
        self.queued = 0
        self.written = 0
        self.batches = 0
        self._thread = threading.Thread(target=self._run, name="provision-store", daemon=True)
        self._thread.start()

    def put(self, row: TaskRow, event: str | None = None) -> None:
        """Queue `row`; `event`: the uuid of the node's stream event that made it."""
        if self._error is not None:
            raise self._error
        rows = self._rows
        rows.append(row if self.node is None else (row, event))
        self.queued += 1
        if len(rows) >= self._batch:
            self._wake.set()
            while len(rows) >= self._capacity and self._thread.is_alive():
                # Back-pressure: the database is behind; wait instead of growing.
                self._drained.clear()
                self._drained.wait(0.05)

    def put_many(self, rows: Sequence[TaskRow]) -> None:
        for row in rows:
            self.put(row)

    def _run(self) -> None:
        rows = self._rows
        while True:
            # Wakes when a batch is full, else after `interval`: a quiet stream's
            # last rows are never held longer than that.
            self._wake.wait(self._interval)
            self._wake.clear()
            closing = self._closing
            while rows:
                take = min(len(rows), self._batch)
                self._flush([rows.popleft() for _ in range(take)])
                self._drained.set()
                if len(rows) < self._batch and not closing:
                    break
            if closing and not rows:
                return

    def _flush(self, items: list[TaskRow | tuple[TaskRow, str | None]]) -> None:
        if not items or self._error is not None:
            return
        try:
            events: list[ShardEvent] = []
            if self.node is None:
                rows = cast(list[TaskRow], items)
            else:
                pairs = cast(list[tuple[TaskRow, str | None]], items)
                rows = [row for row, _ in pairs]
                node = self.node
                events = [ShardEvent(r.run_id, r.wave, node, r.counter, u) for r, u in pairs if u]
            self._store.add_task_rows(rows, events)
            self.written += len(rows)
            self.batches += 1
            if self._on_commit is not None:
                self._on_commit(self.written)
        except BaseException as exc:  # raised to the producer on its next put or close
            self._error = exc

    def close(self) -> None:
        """Flush and stop; raise the first write error, if there was one."""
        if self._thread.is_alive():
            self._closing = True
            self._wake.set()
            self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
