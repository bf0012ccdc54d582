"""How a host's results become rows: the compact blob, its findings, its tallies.

One pass over a host's results builds everything ingest writes for it: the
zlib(JSON) blob of every result, the findings rows (the results that are not
the passing majority, `compliance_detail_tables.FINDING_STATUSES`), the status
counts and score columns, and the per-control status tallies of the run. At
50,000 hosts x 100 controls this loop is most of ingest's time, so it walks
the results once and does no more per result than it must.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

from provision.infra.store.compliance_detail_tables import FINDING_STATUSES
from provision.model.compliance.model import (
    ERROR,
    FAIL,
    HOST_REPORTED,
    NO_REPORT,
    PASS,
    PLACE_LEVELS,
    STATUSES,
    ControlResult,
    HostReport,
)

#: Results hold plain JSON data (no cycles): skipping the cycle check saves a fifth.
ENCODER = json.JSONEncoder(separators=(",", ":"), default=str, check_circular=False)

COUNT_COLUMNS = {status: f"n_{status}" for status in STATUSES}
#: The order of a findings row's values.
FINDING_COLUMNS = (
    "run_id",
    "host",
    "control",
    "status",
    "severity",
    "expected",
    "actual",
    "message",
    "waiver",
    "collected_at",
)
_INDEX = {status: i for i, status in enumerate(STATUSES)}
_FINDING = frozenset(FINDING_STATUSES)


class ControlTallies:
    """A run's (or a batch's) results counted per control and status."""

    __slots__ = ("counts", "severity")

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.severity: dict[str, str] = {}

    def by_control(self) -> dict[str, tuple[str | None, list[int]]]:
        """control -> (severity, its count of each status in STATUSES order)."""
        out: dict[str, tuple[str | None, list[int]]] = {}
        for (control, status), n in self.counts.items():
            entry = out.get(control)
            if entry is None:
                entry = out[control] = (self.severity.get(control), [0] * len(STATUSES))
            entry[1][_INDEX[status]] += n
        return out


#: The first byte of a blob in the current form; older blobs are bare zlib streams
#: (their first byte is zlib's 0x78) of [control, status, severity, expected, actual,
#: message, waiver(, waiver_expired)] lists.
_V2 = b"\x02"


def _same(actual: Any, expected: Any) -> bool:
    return actual is expected or (type(actual) is type(expected) and actual == expected)


def _rows(results: Iterable[ControlResult]) -> list[tuple[Any, ...]]:
    """The stored rows: [control, status, severity, expected, actual, message, waiver,
    waiver_expired], with `actual` left out (7 items) where it equals `expected`,
    as it does for nearly every passing result: the passing majority stored compactly."""
    return [
        (r.control, r.status, r.severity, r.expected, r.message, r.waiver, r.waiver_expired)
        if _same(r.actual, r.expected)
        else (
            r.control,
            r.status,
            r.severity,
            r.expected,
            r.actual,
            r.message,
            r.waiver,
            r.waiver_expired,
        )
        for r in results
    ]


def encode_results(results: Iterable[ControlResult]) -> bytes:
    """The compact stored form of a host's results: a version byte, then zlib(JSON)."""
    return _V2 + zlib.compress(ENCODER.encode(_rows(results)).encode(), 1)


def decode_results(blob: bytes) -> tuple[ControlResult, ...]:
    """The results from their stored form (the current one, or the form before it).

    Built without calling the frozen dataclass's __init__ (which sets each field
    through object.__setattr__): reading a 50,000-host run decodes five million
    results, and this halves the time. The objects are the same in every way.
    """
    make = object.__new__
    results: list[ControlResult] = []
    if blob[:1] == _V2:
        for row in json.loads(zlib.decompress(blob[1:])):
            result = make(ControlResult)
            if len(row) == 7:
                control, status, severity, expected, message, waiver, expired = row
                actual = expected
            else:
                control, status, severity, expected, actual, message, waiver, expired = row
            result.__dict__.update(
                control=control,
                status=status,
                severity=severity,
                expected=expected,
                actual=actual,
                message=message or "",
                waiver=waiver,
                waiver_expired=bool(expired),
            )
            results.append(result)
        return tuple(results)
    for row in json.loads(zlib.decompress(blob)):
        result = make(ControlResult)
        result.__dict__.update(
            control=row[0],
            status=row[1],
            severity=row[2],
            expected=row[3],
            actual=row[4],
            message=row[5] or "",
            waiver=row[6],
            waiver_expired=len(row) > 7 and bool(row[7]),
        )
        results.append(result)
    return tuple(results)


def _json(value: Any) -> str | None:
    return None if value is None else ENCODER.encode(value)


def host_rows(
    run_id: int, report: HostReport, tallies: ControlTallies
) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """The host's `compliance_hosts` row, its findings rows (`FINDING_COLUMNS` in order),
    and its results counted into `tallies`.

    The score follows `provision.model.scoring.host_score` (a unit test holds the
    two together): pass / (pass + fail + error); compliant only for a reported
    host with no fail, error or no_report; failing critical controls listed.
    Every pass over the results is a comprehension or a C-level count: this is
    five million results a run.
    """
    results = report.results
    statuses = [r.status for r in results]
    counts = Counter(statuses)
    tallies.counts.update(zip([r.control for r in results], statuses, strict=True))
    if len(tallies.severity) < len(results):
        tallies.severity.update((r.control, r.severity) for r in results)
    finding = _FINDING
    found = [r for r in results if r.status in finding]
    collected = report.collected_at
    host = report.host
    findings = [
        (
            run_id,
            host,
            r.control,
            r.status,
            r.severity,
            _json(r.expected),
            _json(r.actual),
            r.message or None,
            r.waiver,
            collected,
        )
        for r in found
    ]
    critical = [r.control for r in found if r.status == FAIL and r.severity == "critical"]
    n_pass, n_fail, n_error = counts[PASS], counts[FAIL], counts[ERROR]
    scored = n_pass + n_fail + n_error
    compliant = report.status == HOST_REPORTED and not (n_fail or n_error or counts[NO_REPORT])
    row_: dict[str, Any] = {
        "run_id": run_id,
        "host": host,
        "status": report.status,
        "role": report.role,
        "os_release": report.os_release,
        "collected_at": collected,
        "evidence_digest": report.evidence_digest,
        "message": report.message or None,
        "node": report.node,
        "score": n_pass / scored if scored else None,
        "compliant": compliant,
        "critical_failures": ",".join(critical) or None,
        "results": encode_results(results),
    }
    place = report.place
    for level in PLACE_LEVELS:
        row_[level] = place.get(level)
    for status, column in COUNT_COLUMNS.items():
        row_[column] = counts[status]
    return row_, findings


__all__ = [
    "COUNT_COLUMNS",
    "ENCODER",
    "FINDING_COLUMNS",
    "ControlTallies",
    "decode_results",
    "encode_results",
    "host_rows",
]
