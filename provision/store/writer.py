"""Write task results in batches from a thread of their own.

Ansible's events arrive one by one, sometimes thousands a second. One
transaction per event would make the database the bottleneck (an fsync each);
keeping them all until the end would lose them in a crash and grow without
bound. The writer takes rows from a bounded queue and commits them together:
every `batch` rows, or `interval` seconds after the first row of a batch
arrived, whichever comes first. A producer that outruns the database waits on
the full queue (back-pressure) instead of growing memory.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from types import TracebackType

from provision.store.records import TaskRow
from provision.store.store import Store


class BatchWriter:
    """`put(row)` from any thread; `close()` flushes what is left and stops."""

    _STOP = object()

    def __init__(
        self, store: Store, *, batch: int = 500, interval: float = 0.5, capacity: int = 20_000
    ) -> None:
        self._store = store
        self._batch = batch
        self._interval = interval
        self._queue: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._error: BaseException | None = None
        self.written = 0
        self.batches = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="provision-store", daemon=True)
        self._thread.start()

    def put(self, row: TaskRow) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(row)

    def put_many(self, rows: Sequence[TaskRow]) -> None:
        for row in rows:
            self.put(row)

    def _run(self) -> None:
        pending: list[TaskRow] = []
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is self._STOP:
                self._flush(pending)
                return
            if isinstance(item, TaskRow):
                pending.append(item)
                if deadline is None:
                    deadline = time.monotonic() + self._interval
            if len(pending) >= self._batch or (
                deadline is not None and time.monotonic() >= deadline
            ):
                self._flush(pending)
                pending = []
                deadline = None

    def _flush(self, rows: list[TaskRow]) -> None:
        if not rows or self._error is not None:
            return
        try:
            self._store.add_task_rows(rows)
            self.written += len(rows)
            self.batches += 1
        except BaseException as exc:  # raised to the producer on its next put or close
            self._error = exc

    def close(self) -> None:
        """Flush and stop; raise the first write error, if there was one."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
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
