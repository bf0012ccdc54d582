"""CSV for spreadsheets: one row per host and control, UTF-8 with a byte-order mark.

The mark makes Excel read the file as UTF-8 (Bangla place names survive); other
readers should open it as `utf-8-sig`. Text from hosts (expected, actual,
message) that a spreadsheet would take for a formula (starting with = + - @) is
prefixed with an apostrophe. A host with no control results (unreachable) gets
one row with an empty control.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from provision.model.compliance.model import PLACE_LEVELS, HostReport
from provision.model.scoring import RollupBuilder
from provision.reports.common import ReportInput, atomic_text, value_text

COLUMNS: tuple[str, ...] = (
    "run_id",
    "standard_id",
    "standard_version",
    "host",
    "host_status",
    "role",
    "os_release",
    *PLACE_LEVELS,
    "collected_at",
    "host_score",
    "host_compliant",
    "control",
    "title",
    "severity",
    "status",
    "message",
    "expected",
    "actual",
    "waiver",
    "waiver_expired",
    # Last, so that readers of the columns before it keep their places.
    "node",
)

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _safe(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA) else text


def write_csv(data: ReportInput, reports: Iterable[HostReport], out: Path) -> None:
    run = data.run
    builder = RollupBuilder(run, now=data.now, freshness=data.freshness, levels=("all",))
    with atomic_text(out, encoding="utf-8-sig", newline="", compress=data.compress) as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for report in reports:
            scored = builder.add(report)
            head: list[Any] = [
                run.id,
                run.standard_id,
                run.standard_version,
                report.host,
                report.status,
                report.role or "",
                report.os_release or "",
                *(report.place.get(level, "") for level in PLACE_LEVELS),
                "" if report.collected_at is None else report.collected_at.isoformat(),
                "" if scored.score is None else f"{scored.score:.4f}",
                "yes" if scored.compliant else "no",
            ]
            ran_on = report.node or ""  # the execution node that ran the audit; "" the control node
            if not report.results:
                writer.writerow(
                    [*head, "", "", "", report.status, _safe(report.message)] + [""] * 4 + [ran_on]
                )
                continue
            for r in report.results:
                writer.writerow(
                    [
                        *head,
                        r.control,
                        data.title(r.control),
                        r.severity,
                        r.status,
                        _safe(r.message),
                        _safe(value_text(r.expected)),
                        _safe(value_text(r.actual)),
                        r.waiver or "",
                        ("yes" if r.waiver_expired else "no") if r.waiver else "",
                        ran_on,
                    ]
                )
