"""The canonical report: versioned JSON, written host by host as the reports stream by.

Layout (`"format": "provision-compliance/1"`)::

    {"format": ..., "generated_at": ..., "by": "district", "freshness_seconds": ...,
     "place": "district_gazipur",   # only when the report is limited to one place
     "run": {...}, "standard": {"id", "version", "digest", "title", "controls": [...]},
     "hosts": [{"host", "status", "role", "os_release", "place", "collected_at",
                "evidence_digest", "message", "node", "score", "compliant",
                "critical_failures", "counts", "results": [ControlResult.as_dict()],
                "pull": {"mode", "serial", "reported_at", "report_age_seconds",
                         "keep_days", "within_window"}}],   # pulled hosts only
     "rollups": {"standard_id", "standard_version", "levels": {"all": [...], ...}}}

The roll-ups come last: they are known only once every host has been read.
Written gzip-compressed when asked (`ReportInput.compress`): the same text,
streamed through gzip.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provision.model.compliance.model import HostReport
from provision.model.scoring import HostScore, RollupBuilder
from provision.reports.common import (
    FORMAT_VERSION,
    JSON_ENCODER,
    ReportInput,
    atomic_text,
    run_dict,
)


def _dumps(value: Any) -> str:
    return JSON_ENCODER.encode(value)


def host_dict(report: HostReport, scored: HostScore, now: datetime | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "host": report.host,
        "status": report.status,
        "role": report.role,
        "os_release": report.os_release,
        "place": dict(report.place),
        "collected_at": None if report.collected_at is None else report.collected_at.isoformat(),
        "evidence_digest": report.evidence_digest,
        "message": report.message,
        "node": report.node,  # the execution node that ran the audit; null: the control node
        "score": scored.score,
        "compliant": scored.compliant,
        "critical_failures": list(scored.critical_failures),
        "counts": report.counts(),
        "results": [r.as_dict() for r in report.results],
    }
    if report.pull is not None:
        # Pull mode: the serial of its newest report and how old that report is.
        data["pull"] = report.pull.as_dict(now or datetime.now(UTC))
    return data


def standard_dict(data: ReportInput) -> dict[str, Any]:
    run, standard = data.run, data.standard
    result: dict[str, Any] = {
        "id": run.standard_id,
        "version": run.standard_version,
        "digest": run.standard_digest,
    }
    if standard is not None:
        result["title"] = standard.title
        result["controls"] = [
            {"id": c.id, "title": c.title, "severity": c.severity} for c in standard.controls
        ]
    return result


def write_json(data: ReportInput, reports: Iterable[HostReport], out: Path) -> None:
    builder = RollupBuilder(data.run, now=data.now, freshness=data.freshness)
    with atomic_text(out, compress=data.compress) as handle:
        head = {
            "format": FORMAT_VERSION,
            "generated_at": data.now.isoformat(),
            "by": data.by,
            "freshness_seconds": data.freshness.total_seconds(),
            "run": run_dict(data.run),
            "standard": standard_dict(data),
        }
        if data.place is not None:
            head["place"] = data.place
        # Write the head as an object left open, then the hosts one by one.
        handle.write(_dumps(head)[:-1] + ', "hosts": [')
        first = True
        for report in reports:
            scored = builder.add(report)
            handle.write(("\n" if first else ",\n") + _dumps(host_dict(report, scored, data.now)))
            first = False
        handle.write('\n], "rollups": ' + _dumps(builder.result().as_dict()) + "}\n")
