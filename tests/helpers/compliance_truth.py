"""A small compliance store whose truth is known: three daily audits of four hosts.

Names and places from tests/helpers/inventory (so a selection works on them):

    day          1 June        2 June        3 June
    lab01        SSH-001 fail  SSH-001 fail  pass
    lab02        pass          PKG-002 fail  PKG-002 error (actual changed)
    fs01         waived        waived        waived
    khu lab01    unreachable   pass          SSH-001 fail (critical)
"""

from __future__ import annotations

from datetime import UTC, datetime

from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.model import ControlResult, HostReport
from provision.model.scoring import ROLLUP_LEVELS

#: The roll-up levels prune keeps for a pruned run: all but the finest (sites).
ABOVE_SITES = ROLLUP_LEVELS[:-1]

CONTROLS = ("SSH-001", "PKG-002", "OS-001")
SEVERITY = {"SSH-001": "critical", "PKG-002": "medium", "OS-001": "high"}
GAZ = {"division": "Dhaka", "district": "Gazipur", "upazila": "Kaliganj", "site": "GAZ-003"}
KHU = {"division": "Khulna", "district": "Khulna", "upazila": "Digholia", "site": "KHU-014"}
PLACES = {
    "gaz-003-lab01": GAZ,
    "gaz-003-lab02": GAZ,
    "gaz-001-fs01": {"division": "Dhaka", "district": "Gazipur", "site": "GAZ-001"},
    "khu-014-lab01": KHU,
}
#: day -> host -> {control: (status, actual)}; controls not named pass.
TRUTH: dict[int, dict[str, dict[str, tuple[str, object]]]] = {
    1: {
        "gaz-003-lab01": {"SSH-001": ("fail", "yes")},
        "gaz-003-lab02": {},
        "gaz-001-fs01": {"PKG-002": ("waived", "old")},
        "khu-014-lab01": {"*": ("unreachable", None)},
    },
    2: {
        "gaz-003-lab01": {"SSH-001": ("fail", "yes")},
        "gaz-003-lab02": {"PKG-002": ("fail", "1.0")},
        "gaz-001-fs01": {"PKG-002": ("waived", "old")},
        "khu-014-lab01": {},
    },
    3: {
        "gaz-003-lab01": {},
        "gaz-003-lab02": {"PKG-002": ("error", "unreadable")},
        "gaz-001-fs01": {"PKG-002": ("waived", "old")},
        "khu-014-lab01": {"SSH-001": ("fail", "yes")},
    },
}
EXPECTED = {"SSH-001": "no", "PKG-002": "2.0", "OS-001": "12"}


def at(day: int, hour: int = 2) -> datetime:
    return datetime(2026, 6, day, hour, tzinfo=UTC)


def report(day: int, host: str) -> HostReport:
    plan = TRUTH[day][host]
    unreachable = "*" in plan
    results = []
    for control in CONTROLS:
        if unreachable:
            results.append(ControlResult(control, "unreachable", SEVERITY[control]))
            continue
        status, actual = plan.get(control, ("pass", EXPECTED[control]))
        results.append(
            ControlResult(
                control,
                status,
                SEVERITY[control],
                expected=EXPECTED[control],
                actual=actual,
                message="" if status == "pass" else f"{control} differs",
                waiver="W-7" if status == "waived" else None,
            )
        )
    return HostReport(
        host=host,
        status="unreachable" if unreachable else "reported",
        role="lab_pc",
        os_release="debian-12",
        place=PLACES[host],
        collected_at=None if unreachable else at(day, 3),
        evidence_digest=None if unreachable else "e" * 64,
        results=tuple(results),
    )


def fill(records: ComplianceRecords, days: tuple[int, ...] = (1, 2, 3)) -> list[int]:
    runs = []
    for day in days:
        run_id = records.create_run(
            env="lab",
            selection="",
            standard_id="bd-ict-baseline",
            standard_version=f"2026.{day}",
            standard_digest="d" * 64,
            waivers_digest=None,
            user="auditor",
            node="node",
            started_at=at(day),
        )
        records.add_host_reports(run_id, [report(day, h) for h in TRUTH[day]])
        records.finish_run(run_id, "done")
        runs.append(run_id)
    return runs
