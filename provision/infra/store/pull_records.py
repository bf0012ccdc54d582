"""The store's pull API: applies the PCs reported, runs per serial, what audits used.

    records = PullRecords(store)
    added = records.record(applies, env="lab", user="ops", node="control")
    newest = records.newest(["dhk-kal-lab01"])          # each host's newest apply
    records.set_compliance_pull(run_id, {"dhk-kal-lab01": state})

Each apply is one row of `pull_applies` (unique on host, serial and the PC's
collection time); the applies of one bundle serial are the host results of one
rollout run of kind ``pull`` (a host's newest apply of that serial is its
result). Recording the same apply again adds nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from provision.infra.store.compliance_codec import decode_results, encode_results
from provision.infra.store.pull_tables import compliance_pull, pull_applies, pull_runs
from provision.infra.store.schema import host_results, run_hosts, runs, waves
from provision.infra.store.store import Store, utcnow
from provision.model.compliance.model import (
    ERROR,
    FAIL,
    HOST_REPORTED,
    NO_REPORT,
    PASS,
    ControlResult,
    HostReport,
)
from provision.model.pull import PulledResult, PullState, stamp

#: Hosts asked about in one IN list.
CHUNK = 500
#: The kind of the rollout runs that record pulled applies.
RUN_KIND = "pull"


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class Apply:
    """One apply to record: the PC's result, where it came from, its judged evidence."""

    result: PulledResult
    server: str
    #: The evidence judged (None when the result brought no evidence).
    report: HostReport | None = None


@dataclass(frozen=True)
class StoredApply:
    """One recorded apply, as the store gives it back."""

    host: str
    serial: int
    bundle: str
    collected_at: datetime
    received_at: datetime
    server: str
    file: str
    status: str
    changed: int
    failed: int
    offline: bool
    expired: bool
    run_id: int
    standard_id: str | None
    standard_version: str | None
    os_release: str | None
    evidence_digest: str | None
    score: float | None
    compliant: bool | None
    results: tuple[ControlResult, ...] | None


def _outcome(result: PulledResult) -> str:
    if result.status == "failed" or result.failed:
        return "failed"
    return "changed" if result.changed else "ok"


def _score(report: HostReport) -> tuple[float | None, bool]:
    counts = report.counts()
    scored = counts[PASS] + counts[FAIL] + counts[ERROR]
    compliant = report.status == HOST_REPORTED and not (
        counts[FAIL] or counts[ERROR] or counts[NO_REPORT]
    )
    return (counts[PASS] / scored if scored else None), compliant


class PullRecords:
    """Pulled applies in one state store (`provision.infra.store.Store`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # -- what is there -----------------------------------------------------------------

    def known_files(self, hosts: Collection[str]) -> set[tuple[str, str]]:
        """(host, file) of every apply recorded for `hosts`: what need not be fetched again."""
        found: set[tuple[str, str]] = set()
        with self.engine.connect() as conn:
            for part in _chunks(sorted(hosts)):
                query = sa.select(pull_applies.c.host, pull_applies.c.file).where(
                    pull_applies.c.host.in_(list(part))
                )
                found.update((str(h), str(f)) for h, f in conn.execute(query))
        return found

    def _known_keys(self, conn: Connection, hosts: Collection[str]) -> set[tuple[str, int, str]]:
        found: set[tuple[str, int, str]] = set()
        for part in _chunks(sorted(hosts)):
            query = sa.select(
                pull_applies.c.host, pull_applies.c.serial, pull_applies.c.collected_key
            ).where(pull_applies.c.host.in_(list(part)))
            found.update((str(h), int(s), str(k)) for h, s, k in conn.execute(query))
        return found

    # -- recording -----------------------------------------------------------------

    def record(
        self,
        applies: Iterable[Apply],
        *,
        env: str,
        user: str,
        node: str,
        received_at: datetime | None = None,
    ) -> int:
        """Record the applies not yet recorded, in one transaction; returns how many were new.

        Each serial's run is made the first time one of its applies arrives; a host's
        result in it is its newest apply of that serial.
        """
        items = list(applies)
        if not items:
            return 0
        now = received_at or utcnow()
        with self.engine.begin() as conn:
            known = self._known_keys(conn, {a.result.host for a in items})
            fresh: list[Apply] = []
            for item in items:
                key = item.result.key
                if key in known:
                    continue
                known.add(key)
                fresh.append(item)
            if not fresh:
                return 0
            run_ids = self._runs_for(conn, {a.result.serial for a in fresh}, env, user, node)
            rows = []
            for item in fresh:
                result, report = item.result, item.report
                task = result.failed_task
                row: dict[str, Any] = {
                    "host": result.host,
                    "serial": result.serial,
                    "bundle": result.bundle,
                    "collected_at": result.collected_at,
                    "collected_key": stamp(result.collected_at),
                    "started_at": result.started_at,
                    "received_at": now,
                    "server": item.server,
                    "file": result.name,
                    "status": result.status,
                    "rc": result.rc,
                    "changed": result.changed,
                    "failed": result.failed,
                    "offline": result.offline,
                    "expired": result.expired,
                    "failed_task": task.task if task else None,
                    "message": (task.message[:300] or None) if task else None,
                    "run_id": run_ids[result.serial],
                    "standard_id": None,
                    "standard_version": None,
                    "os_release": None,
                    "evidence_digest": None,
                    "score": None,
                    "compliant": None,
                    "results": None,
                }
                if report is not None:
                    score, compliant = _score(report)
                    row.update(
                        standard_id=result.standard_id,
                        standard_version=result.standard_version,
                        os_release=report.os_release,
                        evidence_digest=report.evidence_digest,
                        score=score,
                        compliant=compliant,
                        results=encode_results(report.results),
                    )
                rows.append(row)
            conn.execute(pull_applies.insert(), rows)
            self._host_results(conn, fresh, run_ids)
        return len(fresh)

    def _runs_for(
        self, conn: Connection, serials: Collection[int], env: str, user: str, node: str
    ) -> dict[int, int]:
        found = {
            int(s): int(r)
            for s, r in conn.execute(
                sa.select(pull_runs.c.serial, pull_runs.c.run_id).where(
                    pull_runs.c.serial.in_(sorted(serials))
                )
            )
        }
        for serial in sorted(set(serials) - set(found)):
            now = utcnow()
            run_id = conn.execute(
                runs.insert()
                .values(
                    kind=RUN_KIND,
                    status="succeeded",
                    user=user,
                    node=node,
                    created_at=now,
                    started_at=now,
                    finished_at=now,
                    env=env,
                    playbook=f"bundle serial {serial}",
                    selection="",
                    options=f'{{"serial": {serial}}}',
                    attempts=1,
                )
                .returning(runs.c.id)
            ).scalar_one()
            conn.execute(
                waves.insert().values(
                    run_id=run_id,
                    number=0,
                    label="applied by the hosts themselves",
                    status="done",
                    started_at=now,
                    finished_at=now,
                )
            )
            conn.execute(pull_runs.insert().values(serial=serial, run_id=run_id))
            found[serial] = int(run_id)
        return found

    def _host_results(
        self, conn: Connection, fresh: Sequence[Apply], run_ids: Mapping[int, int]
    ) -> None:
        newest: dict[tuple[int, str], PulledResult] = {}
        for item in fresh:
            result = item.result
            key = (run_ids[result.serial], result.host)
            if key not in newest or result.collected_at > newest[key].collected_at:
                newest[key] = result
        for run_id in sorted({r for r, _ in newest}):
            hosts = sorted(h for r, h in newest if r == run_id)
            have: dict[str, datetime] = {}
            for part in _chunks(hosts):
                for host, finished in conn.execute(
                    sa.select(host_results.c.host, host_results.c.finished_at).where(
                        host_results.c.run_id == run_id, host_results.c.host.in_(list(part))
                    )
                ):
                    have[str(host)] = _aware(finished) or utcnow()
            planned = conn.execute(
                sa.select(sa.func.count())
                .select_from(run_hosts)
                .where(run_hosts.c.run_id == run_id)
            ).scalar_one()
            inserts, new_hosts = [], []
            for host in hosts:
                result = newest[(run_id, host)]
                counts = result.counts()
                task = result.failed_task
                values = {
                    "wave": 0,
                    "attempt": 1,
                    "outcome": _outcome(result),
                    "ok": counts["ok"],
                    "changed": counts["changed"],
                    "failed": max(counts["failed"], result.failed),
                    "unreachable": counts["unreachable"],
                    "skipped": counts["skipped"],
                    "rescued": 0,
                    "ignored": counts["ignored"],
                    "started_at": result.started_at,
                    "finished_at": result.collected_at,
                    "failed_task": task.task if task else None,
                    "message": (task.message[:300] or None)
                    if task
                    else ("applied offline" if result.offline else None),
                    # The host ran its own apply.
                    "node": host,
                }
                if host not in have:
                    inserts.append({"run_id": run_id, "host": host, **values})
                    new_hosts.append(host)
                elif result.collected_at > have[host]:
                    conn.execute(
                        host_results.update()
                        .where(host_results.c.run_id == run_id, host_results.c.host == host)
                        .values(**values)
                    )
            if inserts:
                conn.execute(host_results.insert(), inserts)
                conn.execute(
                    run_hosts.insert(),
                    [
                        {"run_id": run_id, "host": h, "wave": 0, "position": planned + i}
                        for i, h in enumerate(new_hosts)
                    ],
                )
            failed = conn.execute(
                sa.select(sa.func.count())
                .select_from(host_results)
                .where(host_results.c.run_id == run_id, host_results.c.outcome == "failed")
            ).scalar_one()
            last = conn.execute(
                sa.select(sa.func.max(host_results.c.finished_at)).where(
                    host_results.c.run_id == run_id
                )
            ).scalar()
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status="failed" if failed else "succeeded", finished_at=last)
            )

    # -- reading ---------------------------------------------------------------------

    def run_for_serial(self, serial: int) -> int | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(pull_runs.c.run_id).where(pull_runs.c.serial == serial)
            ).scalar()
        return None if found is None else int(found)

    def applies(self, host: str) -> list[StoredApply]:
        """Every recorded apply of `host`, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(pull_applies)
                .where(pull_applies.c.host == host)
                .order_by(pull_applies.c.collected_at, pull_applies.c.id)
            ).mappings()
            return [self._stored(row) for row in rows]

    def newest(
        self, hosts: Collection[str], *, before: datetime | None = None
    ) -> dict[str, StoredApply]:
        """Each host's newest apply (collected before `before`, when given); hosts
        that never reported are left out."""
        found: dict[str, StoredApply] = {}
        with self.engine.connect() as conn:
            for part in _chunks(sorted(hosts)):
                when: sa.ColumnElement[bool] = pull_applies.c.host.in_(list(part))
                if before is not None:
                    when = sa.and_(when, pull_applies.c.collected_at <= before)
                ranked = (
                    sa.select(
                        pull_applies.c.id,
                        sa.func.row_number()
                        .over(
                            partition_by=pull_applies.c.host,
                            order_by=(pull_applies.c.collected_at.desc(), pull_applies.c.id.desc()),
                        )
                        .label("rank"),
                    )
                    .where(when)
                    .subquery()
                )
                query = sa.select(pull_applies).join(
                    ranked, sa.and_(ranked.c.id == pull_applies.c.id, ranked.c.rank == 1)
                )
                for row in conn.execute(query).mappings():
                    found[str(row["host"])] = self._stored(row)
        return found

    @staticmethod
    def _stored(row: Any) -> StoredApply:
        blob = row["results"]
        return StoredApply(
            host=row["host"],
            serial=int(row["serial"]),
            bundle=row["bundle"],
            collected_at=_aware(row["collected_at"]) or utcnow(),
            received_at=_aware(row["received_at"]) or utcnow(),
            server=row["server"],
            file=row["file"],
            status=row["status"],
            changed=int(row["changed"]),
            failed=int(row["failed"]),
            offline=bool(row["offline"]),
            expired=bool(row["expired"]),
            run_id=int(row["run_id"]),
            standard_id=row["standard_id"],
            standard_version=row["standard_version"],
            os_release=row["os_release"],
            evidence_digest=row["evidence_digest"],
            score=row["score"],
            compliant=row["compliant"],
            results=None if blob is None else decode_results(blob),
        )

    # -- what a compliance run used ------------------------------------------------

    def set_compliance_pull(self, run_id: int, states: Mapping[str, PullState]) -> None:
        if not states:
            return
        rows = [
            {
                "run_id": run_id,
                "host": host,
                "serial": state.serial,
                "reported_at": state.reported_at,
                "keep_seconds": state.keep.total_seconds(),
                "within": state.within,
            }
            for host, state in sorted(states.items())
        ]
        with self.engine.begin() as conn:
            conn.execute(
                compliance_pull.delete().where(
                    compliance_pull.c.run_id == run_id,
                    compliance_pull.c.host.in_([r["host"] for r in rows]),
                )
            )
            conn.execute(compliance_pull.insert(), rows)

    def compliance_pull(self, run_id: int) -> dict[str, PullState]:
        """The pulled hosts of a compliance run and what the run knew of each."""
        with self.engine.connect() as conn:
            return {
                str(row.host): PullState(
                    serial=row.serial,
                    reported_at=_aware(row.reported_at),
                    keep=timedelta(seconds=float(row.keep_seconds)),
                    within=bool(row.within),
                )
                for row in conn.execute(
                    sa.select(compliance_pull).where(compliance_pull.c.run_id == run_id)
                )
            }
