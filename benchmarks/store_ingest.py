"""Event ingest of the state store: events/s on a synthetic stream, and memory.

A synthetic stream of task-result events (default 1,000,000: 10,000 hosts x 100
tasks) goes through the same path a rollout uses: `WaveRecorder` turns each
runner event into a row, `BatchWriter` commits rows in batches from its own
thread. The stream is a generator, so memory stays bounded whatever its length;
the figure printed is the process's peak RSS. Prints comparable figures, no
verdicts.

    .venv/bin/python benchmarks/store_ingest.py [--events 1000000] [--db-url URL]

Without --db-url, a fresh SQLite store in a temporary folder (the default store).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from provision.infra.runner import PlaybookEvent  # noqa: E402
from provision.infra.store import BatchWriter, Store  # noqa: E402
from provision.rollout.recorder import WaveRecorder  # noqa: E402

TASKS = 100


def events(total: int) -> Iterator[PlaybookEvent]:
    """Runner events as ansible-runner delivers them: mostly ok, some changed and failed."""
    hosts = max(1, total // TASKS)
    counter = 0
    for task in range(TASKS):
        name = f"Ensure setting {task} is applied"
        for host in range(hosts):
            if counter >= total:
                return
            counter += 1
            kind = "runner_on_failed" if (host + task) % 997 == 0 else "runner_on_ok"
            res = {"changed": (host + task) % 7 == 0, "msg": "failed on purpose"}
            yield PlaybookEvent(
                kind,
                f"host-{host:05d}",
                name,
                counter,
                {"task_action": "ansible.builtin.lineinfile", "res": res, "duration": 0.2},
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db-url", help="a database URL (default: SQLite in a temp folder)")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="provision-ingest-") as tmp:
        url = args.db_url or f"sqlite:///{Path(tmp) / 'state.db'}"
        store = Store.open(url)
        hosts = max(1, args.events // TASKS)
        run_id = store.create_run(
            kind="rollout",
            user="bench",
            node="bench",
            env="bench",
            playbook="bench.yml",
            selection="",
            options={},
            git_revision=None,
            plan=[(1, "wave 1", [f"host-{h:05d}" for h in range(hosts)])],
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        writer = BatchWriter(store, batch=args.batch)
        recorder = WaveRecorder(
            store,
            writer,
            run_id=run_id,
            wave=0,
            attempt=1,
            hosts={f"host-{h:05d}" for h in range(hosts)},
        )
        produced = 0
        for event in events(args.events):
            recorder(event)
            produced += 1
        enqueued = time.perf_counter() - started
        writer.close()
        seconds = time.perf_counter() - started
        stored = store.count_task_rows(run_id)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        db = store.engine.url.render_as_string(hide_password=True)
        store.close()
    assert stored == produced, (stored, produced)
    print(f"store {db.split('://')[0]}: {produced:,} events in {seconds:.1f}s")
    print(f"  ingest rate        {produced / seconds:,.0f} events/s (committed)")
    print(f"  producer alone     {produced / enqueued:,.0f} events/s (recorder + queue)")
    print(f"  batches            {writer.batches:,} of up to {args.batch} rows")
    print(f"  peak RSS           {peak:.0f} MB (before the stream: {rss_before:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
