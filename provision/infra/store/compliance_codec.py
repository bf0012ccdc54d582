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
_INDEX = {status: i for i, status in enumerate(STATUSES)}
_FINDING = frozenset(FINDING_STATUSES)

#: control -> [severity, count per status in STATUSES order]
ControlTallies = dict[str, list[Any]]


def encode_results(results: Iterable[ControlResult]) -> bytes:
    """The compact stored form: zlib(JSON list of [control, status, severity, expected,
    actual, message, waiver, waiver_expired])."""
    rows = [
        [r.control, r.status, r.severity, r.expected, r.actual, r.message, r.waiver]
        + ([True] if r.waiver_expired else [])
        for r in results
    ]
    return zlib.compress(ENCODER.encode(rows).encode(), 1)


def decode_results(blob: bytes) -> tuple[ControlResult, ...]:
    """The results from their stored form.

    Built without calling the frozen dataclass's __init__ (which sets each field
    through object.__setattr__): reading a 50,000-host run decodes five million
    results, and this halves the time. The objects are the same in every way.
    """
    make = object.__new__
    results: list[ControlResult] = []
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
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The host's `compliance_hosts` row and its findings rows; counts into `tallies`.

    The score follows `provision.model.scoring.host_score` (a unit test holds the
    two together): pass / (pass + fail + error); compliant only for a reported
    host with no fail, error or no_report; failing critical controls listed.
    """
    counts = [0] * len(STATUSES)
    index = _INDEX
    finding = _FINDING
    encoded: list[list[Any]] = []
    findings: list[dict[str, Any]] = []
    critical: list[str] = []
    collected = report.collected_at
    host = report.host
    for r in report.results:
        status = r.status
        i = index[status]
        counts[i] += 1
        control = r.control
        tally = tallies.get(control)
        if tally is None:
            tally = tallies[control] = [r.severity, [0] * len(STATUSES)]
        tally[1][i] += 1
        row = [control, status, r.severity, r.expected, r.actual, r.message, r.waiver]
        if r.waiver_expired:
            row.append(True)
        encoded.append(row)
        if status in finding:
            if status == FAIL and r.severity == "critical":
                critical.append(control)
            findings.append(
                {
                    "run_id": run_id,
                    "host": host,
                    "control": control,
                    "status": status,
                    "severity": r.severity,
                    "expected": _json(r.expected),
                    "actual": _json(r.actual),
                    "message": r.message or None,
                    "waiver": r.waiver,
                    "collected_at": collected,
                }
            )
    n_pass, n_fail, n_error = counts[index[PASS]], counts[index[FAIL]], counts[index[ERROR]]
    scored = n_pass + n_fail + n_error
    unjudged = counts[index[NO_REPORT]]
    compliant = report.status == HOST_REPORTED and not (n_fail or n_error or unjudged)
    row_: dict[str, Any] = {
        "run_id": run_id,
        "host": host,
        "status": report.status,
        "role": report.role,
        "os_release": report.os_release,
        "collected_at": collected,
        "evidence_digest": report.evidence_digest,
        "message": report.message or None,
        "score": n_pass / scored if scored else None,
        "compliant": compliant,
        "critical_failures": ",".join(critical) or None,
        "results": zlib.compress(ENCODER.encode(encoded).encode(), 1),
    }
    place = report.place
    for level in PLACE_LEVELS:
        row_[level] = place.get(level)
    for status, n in zip(STATUSES, counts, strict=True):
        row_[COUNT_COLUMNS[status]] = n
    return row_, findings


__all__ = [
    "COUNT_COLUMNS",
    "ENCODER",
    "ControlTallies",
    "decode_results",
    "encode_results",
    "host_rows",
]
