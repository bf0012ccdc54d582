"""A compliance run's control totals as stored, and as its host reports count them.

The totals are added batch by batch as hosts arrive; a run continued later
(`compliance resume`) must still count each host once. Tests compare the two.
"""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from provision.infra.store.compliance_codec import COUNT_COLUMNS
from provision.infra.store.compliance_detail_tables import compliance_control_totals
from provision.infra.store.compliance_records import ComplianceRecords


def stored_totals(records: ComplianceRecords, run_id: int) -> Counter[tuple[str, str]]:
    """(control, status) -> hosts, from the run's control totals (zeros left out)."""
    table = compliance_control_totals
    with records.engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.run_id == run_id)).mappings().all()
    found: Counter[tuple[str, str]] = Counter()
    for row in rows:
        for status, column in COUNT_COLUMNS.items():
            if row[column]:
                found[(str(row["control"]), status)] += int(row[column])
    return found


def counted_totals(records: ComplianceRecords, run_id: int) -> Counter[tuple[str, str]]:
    """(control, status) -> hosts, counted from the run's host reports themselves."""
    found: Counter[tuple[str, str]] = Counter()
    for report in records.host_reports(run_id):
        for result in report.results:
            found[(result.control, result.status)] += 1
    return found
