"""Two real processes asking for the same hosts' locks at the same instant.

Used by the store's tests on SQLite (tests/unit/test_store.py) and on
PostgreSQL (tests/integration/test_rollout_postgres.py). Two contender
processes are started once; each round they each record a run of their own,
meet the test at a barrier, and ask for the round's hosts as soon as it
opens. Each round uses hosts of its own, so rounds never see each other's
locks; with `stale`, the round's hosts are first locked by a run whose
process on this node is gone (a crash), which both contenders may take over.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

from provision.errors import StateError
from provision.infra.store import Store
from tests.helpers.runs import record_rollout_run

HOSTS_PER_ROUND = 3


@dataclass(frozen=True)
class Outcome:
    contender: str
    run_id: int
    won: bool
    message: str  # the refusal (or an unexpected error: its type and text)


def _hosts(round_number: int) -> list[str]:
    return [f"r{round_number}-h{i}" for i in range(HOSTS_PER_ROUND)]


def _record_run(store: Store, user: str) -> int:
    return record_rollout_run(
        store, [(1, "wave 1", ["x"])], user=user, node=socket.gethostname(), playbook="site.yml"
    )


def _contender(url: str, name: str, rounds: int, barrier: Barrier, out: Any) -> None:
    store = Store.open(url)
    try:
        for number in range(rounds):
            run_id = _record_run(store, name)
            barrier.wait()  # the test set the round up; go at the same instant
            try:
                store.acquire_locks(
                    run_id,
                    _hosts(number),
                    user=name,
                    node=socket.gethostname(),
                    pid=os.getpid(),
                )
            except StateError as exc:
                out.put(Outcome(name, run_id, False, exc.message))
            except Exception as exc:  # what the race must never produce; reported, not lost
                out.put(Outcome(name, run_id, False, f"{type(exc).__name__}: {exc}"))
            else:
                out.put(Outcome(name, run_id, True, ""))
    finally:
        store.close()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def race(url: str, *, rounds: int, stale: bool) -> list[tuple[Outcome, Outcome]]:
    """Run `rounds` rounds; return the two outcomes of each, contender a first."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3, timeout=120)
    out = context.Queue()
    contenders = [
        context.Process(target=_contender, args=(url, name, rounds, barrier, out))
        for name in ("a", "b")
    ]
    store = Store.open(url)
    for proc in contenders:
        proc.start()
    results: list[tuple[Outcome, Outcome]] = []
    try:
        for number in range(rounds):
            if stale:
                crashed = _record_run(store, "crashed")
                dead = _dead_pid()
                store.start_attempt(crashed, dead)
                store.acquire_locks(
                    crashed, _hosts(number), user="crashed", node=socket.gethostname(), pid=dead
                )
            barrier.wait()
            got = sorted((out.get(timeout=120) for _ in contenders), key=lambda o: o.contender)
            results.append((got[0], got[1]))
    finally:
        for proc in contenders:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
        store.close()
    return results


def check_one_winner_per_round(url: str, *, rounds: int = 20) -> None:
    """With and without a stale lock: one contender wins, the other is told who holds."""
    for stale in (False, True):
        for number, (a, b) in enumerate(race(url, rounds=rounds, stale=stale)):
            where = f"round {number} ({'stale lock' if stale else 'no lock'}): {a}, {b}"
            winners = [o for o in (a, b) if o.won]
            assert len(winners) == 1, where
            winner = winners[0]
            loser = b if winner is a else a
            assert (
                f"{HOSTS_PER_ROUND} of the hosts are in another rollout: "
                f"run {winner.run_id} ({winner.contender} on " in loser.message
            ), where
            with Store.open(url) as store:
                holders = {lock.host: lock.run_id for lock in store.locks()}
            assert all(holders[h] == winner.run_id for h in _hosts(number)), where
