"""The notice a compliance run sends: what changed since each host's last evidence, by direction.

    notice = compliance_notice(result, drift_report, report_path)
    warnings = notify_compliance(settings, notice)   # provision.compliance.notify

Newly failing controls (drift) and repaired ones are listed apart, so that a
repair is never announced as drift; sideways changes (pass to unreachable, fail
to error) are in `provision compliance drift`, not in the notice.
"""

from __future__ import annotations

from pathlib import Path

from provision.compliance.drift import DriftReport
from provision.compliance.notify import ComplianceNotice
from provision.compliance.service import AuditResult
from provision.model.compliance.model import HOST_REPORTED

#: Districts named in a notice, worst first.
WORST_DISTRICTS = 5


def compliance_notice(
    result: AuditResult, report: DriftReport | None, report_path: Path | None = None
) -> ComplianceNotice:
    """The notice of `result`, with `report`'s changes (None: the first run, no changes)."""
    districts: dict[str, list[bool]] = {}
    for row in result.hosts:
        if row.status == HOST_REPORTED and row.place.get("district"):
            districts.setdefault(row.place["district"], []).append(row.compliant)
    worst = sorted(
        ((d, sum(flags) / len(flags)) for d, flags in districts.items()), key=lambda x: x[1]
    )
    reported = result.hosts_with(HOST_REPORTED)
    compliant = sum(1 for r in result.hosts if r.compliant)
    worse = [] if report is None else report.new_drift
    better = [] if report is None else report.repaired
    return ComplianceNotice(
        run_id=result.run.id,
        new_failures=[(c.host, c.control) for c in worse],
        drifted_hosts=sorted({c.host for c in worse}),
        repaired=[(c.host, c.control) for c in better],
        report_path=report_path,
        env=result.run.env,
        counts={
            "hosts": len(result.hosts),
            "compliant": compliant,
            "non_compliant": len(reported) - compliant,
            "unreachable": len(result.hosts_with("unreachable")),
        },
        worst_districts=worst[:WORST_DISTRICTS],
        compared_with=None if report is None else report.since.id,
    )
