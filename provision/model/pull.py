"""Hosts in pull mode and the results they queue, as data (docs/pull.md).

A PC in pull mode applies its signed bundle by itself and writes one JSON result
per apply into its outbox; the field server keeps what it uploaded under
``outbox/HOST/``. This module reads such a file (`parse_result`), says which
results are new (`result_key`, `new_results`), and decides what compliance
expects of a pulled host: its newest evidence within its keep-last window
(`keep_window`), else no report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

#: Inventory variable that puts a host into pull mode (a host is pushed or pulled).
PULL_MODE = "provision_pull_mode"
#: Inventory variable (group or host): how many days a pulled host's newest evidence counts.
KEEP_DAYS = "provision_pull_keep_days"
DEFAULT_KEEP_DAYS = 14
#: The result file format the pull agent writes.
RESULT_FORMAT = 1
#: Statuses of a result's tasks that count as failed.
FAILED_TASKS = ("failed", "unreachable")


class BadResult(ValueError):
    """A result file that is not one of the pull agent's; the text says why."""


def is_on(value: object) -> bool:
    return value is True or str(value).lower() in ("true", "yes", "1")


def is_pull_mode(hostvars: Mapping[str, Any]) -> bool:
    """Whether the host's resolved variables put it into pull mode."""
    return is_on(hostvars.get(PULL_MODE))


def keep_window(hostvars: Mapping[str, Any]) -> timedelta:
    """How long a pulled host's newest evidence counts; ValueError for a bad value."""
    value = hostvars.get(KEEP_DAYS, DEFAULT_KEEP_DAYS)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{KEEP_DAYS} must be a number of days, not {value!r}")
    try:
        days = float(value)
    except ValueError:
        raise ValueError(f"{KEEP_DAYS} must be a number of days, not {value!r}") from None
    if not math.isfinite(days) or days <= 0:
        raise ValueError(f"{KEEP_DAYS} must be more than 0 days, not {value!r}")
    return timedelta(days=days)


@dataclass(frozen=True)
class PulledTask:
    task: str
    status: str
    message: str = ""


@dataclass(frozen=True)
class PulledResult:
    """One apply on a PC, as its agent reported it."""

    host: str
    bundle: str
    serial: int
    #: The PC's own time of collection (of the evidence, else of the result).
    collected_at: datetime
    started_at: datetime | None
    status: str  # ok, failed
    rc: int
    changed: int
    failed: int
    offline: bool
    expired: bool
    #: The file it came in (outbox/HOST/NAME), for messages.
    name: str
    #: The standard the bundle carried (id, version), as its manifest named it.
    standard_id: str | None = None
    standard_version: str | None = None
    tasks: tuple[PulledTask, ...] = ()
    evidence: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, int, str]:
        return result_key(self.host, self.serial, self.collected_at)

    @property
    def failed_task(self) -> PulledTask | None:
        return next((t for t in self.tasks if t.status in FAILED_TASKS), None)

    def counts(self) -> dict[str, int]:
        """Task outcomes as a rollout counts them (ok includes changed)."""
        tally = dict.fromkeys(("ok", "changed", "failed", "unreachable", "skipped", "ignored"), 0)
        for task in self.tasks:
            if task.status == "changed":
                tally["ok"] += 1
                tally["changed"] += 1
            elif task.status in tally:
                tally[task.status] += 1
        return tally


def stamp(moment: datetime) -> str:
    """A collection time as text that sorts and compares exactly (microseconds, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def result_key(host: str, serial: int, collected_at: datetime) -> tuple[str, int, str]:
    """What makes one apply one: the same host, serial and collection time is the same apply."""
    return (host, serial, stamp(collected_at))


def _int(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadResult(f"{name!r} is not a whole number ({value!r})")
    return value


def _moment(value: Any, name: str) -> datetime:
    if isinstance(value, bool):
        raise BadResult(f"{name!r} is not a time ({value!r})")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise BadResult(f"{name!r} is not a time ({value!r})") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadResult(f"{name!r} is not a time ({value!r})") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise BadResult(f"{name!r} is not a time ({value!r})")


def parse_result(data: bytes, *, host: str, name: str) -> PulledResult:
    """One result file from ``outbox/HOST/NAME``; BadResult saying why it is not one.

    The folder is the host the field server authenticated (a PC can write only
    under its own name): a file whose `host` names another is refused.
    """
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadResult(f"not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadResult("not a JSON object")
    if body.get("format") != RESULT_FORMAT:
        raise BadResult(f"format {body.get('format')!r} is not {RESULT_FORMAT}")
    if body.get("host") != host:
        raise BadResult(f"it names host {body.get('host')!r} but came from {host}'s outbox")
    bundle = body.get("bundle")
    if not isinstance(bundle, str) or not bundle:
        raise BadResult("'bundle' is missing")
    serial = _int(body, "serial")
    if serial < 1:
        raise BadResult(f"'serial' {serial} is not a bundle serial")
    tasks = []
    for item in body.get("tasks") or []:
        if not isinstance(item, dict) or not isinstance(item.get("status"), str):
            raise BadResult("a task in 'tasks' has no status")
        tasks.append(
            PulledTask(str(item.get("task") or ""), item["status"], str(item.get("msg") or ""))
        )
    evidence = body.get("evidence")
    if evidence is not None and not isinstance(evidence, dict):
        raise BadResult("'evidence' is not an object")
    status = body.get("status")
    if status not in ("ok", "failed"):
        raise BadResult(f"'status' {status!r} is neither ok nor failed")
    started = body.get("started_at")
    standard = body.get("standard")
    if standard is not None and not (
        isinstance(standard, dict) and isinstance(standard.get("id"), str)
    ):
        raise BadResult("'standard' is not an object with an id")
    return PulledResult(
        host=host,
        bundle=bundle,
        serial=serial,
        collected_at=_moment(body.get("collected_at"), "collected_at"),
        started_at=None if started is None else _moment(started, "started_at"),
        status=status,
        rc=_int(body, "rc"),
        changed=_int(body, "changed"),
        failed=_int(body, "failed"),
        offline=bool(body.get("offline")),
        expired=bool(body.get("expired")),
        name=name,
        standard_id=None if standard is None else standard["id"],
        standard_version=None if standard is None else str(standard.get("version", "")),
        tasks=tuple(tasks),
        evidence=evidence,
    )


def new_results(
    results: Iterable[PulledResult], known: Collection[tuple[str, int, str]]
) -> list[PulledResult]:
    """The results not yet recorded, each once, oldest first per host.

    The same apply uploaded twice (under one name or two) has one key: it is
    kept once.
    """
    seen = set(known)
    fresh: list[PulledResult] = []
    for result in results:
        if result.key in seen:
            continue
        seen.add(result.key)
        fresh.append(result)
    fresh.sort(key=lambda r: (r.host, r.collected_at, r.serial))
    return fresh


@dataclass(frozen=True)
class PullState:
    """What compliance knows of a pulled host at one moment."""

    #: The serial of the newest apply it reported (None: never reported).
    serial: int | None
    #: The PC's collection time of that newest report.
    reported_at: datetime | None
    keep: timedelta
    #: Whether its evidence was used (it is within the window).
    within: bool

    def silent_for(self, now: datetime) -> timedelta | None:
        return None if self.reported_at is None else max(now - self.reported_at, timedelta(0))

    def as_dict(self, now: datetime) -> dict[str, Any]:
        age = self.silent_for(now)
        return {
            "mode": "pull",
            "serial": self.serial,
            "reported_at": None if self.reported_at is None else self.reported_at.isoformat(),
            "report_age_seconds": None if age is None else age.total_seconds(),
            "keep_days": self.keep.total_seconds() / 86400,
            "within_window": self.within,
        }


def is_within(reported_at: datetime | None, now: datetime, keep: timedelta) -> bool:
    """Whether evidence collected at `reported_at` still counts at `now`.

    Evidence from the future (a PC's clock ahead) counts as fresh as now, never longer.
    """
    return reported_at is not None and now - reported_at <= keep
