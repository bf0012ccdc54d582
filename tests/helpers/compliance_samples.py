"""Hand-built compliance runs and host reports for the scoring and report tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from provision.model.compliance.model import (
    HOST_REPORTED,
    HOST_UNREACHABLE,
    ComplianceRunInfo,
    ControlResult,
    HostReport,
)
from provision.reports import RunPoint

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

RUN = ComplianceRunInfo(
    id=42,
    status="done",
    env="production",
    selection="all",
    standard_id="bd-ict-baseline",
    standard_version="2026.1",
    standard_digest="a" * 64,
    waivers_digest="b" * 64,
    user="auditor",
    node="control-01",
    started_at=NOW - timedelta(minutes=30),
    finished_at=NOW - timedelta(minutes=5),
    hosts=4,
)

LEVELS = ("division", "district", "upazila", "union", "site")
GAZIPUR = dict(zip(LEVELS, ("Dhaka", "Gazipur", "Kaliganj", "Bahadursadi", "DHK-014"), strict=True))
JASHORE = dict(
    zip(LEVELS, ("Khulna", "Jashore", "Chougachha", "Narayanpur", "KHU-014"), strict=True)
)


def sample_reports() -> list[HostReport]:
    """Four hosts: one clean, one failing sshd (critical), one with an expired waiver, one down."""
    collected = NOW - timedelta(hours=1)

    def ok(control: str, severity: str = "medium") -> ControlResult:
        return ControlResult(control, "pass", severity, expected=True, actual=True)

    return [
        HostReport(
            host="gaz-003-lab01",
            status=HOST_REPORTED,
            role="lab_pc",
            os_release="debian-12",
            place=GAZIPUR,
            collected_at=collected,
            evidence_digest="c" * 64,
            results=(ok("OS-001", "critical"), ok("SSH-001", "critical"), ok("PKG-002")),
        ),
        HostReport(
            host="gaz-003-lab02",
            status=HOST_REPORTED,
            role="lab_pc",
            os_release="debian-12",
            place=GAZIPUR,
            collected_at=collected,
            evidence_digest="d" * 64,
            results=(
                ok("OS-001", "critical"),
                ControlResult(
                    "SSH-001",
                    "fail",
                    "critical",
                    expected={"permitrootlogin": "no"},
                    actual={"permitrootlogin": "yes"},
                    message="sshd allows root login <script>alert(1)</script>",
                ),
                ControlResult(
                    "PKG-002",
                    "waived",
                    "medium",
                    expected={"absent": ["telnet"]},
                    actual={"installed": ["telnet"]},
                    waiver="W-001",
                ),
            ),
        ),
        HostReport(
            host="jas-001-fs01",
            status=HOST_REPORTED,
            role="field_server",
            os_release="debian-12",
            place=JASHORE,
            collected_at=NOW - timedelta(days=3),
            evidence_digest="e" * 64,
            results=(
                ok("OS-001", "critical"),
                ok("SSH-001", "critical"),
                ControlResult(
                    "PKG-002",
                    "fail",
                    "medium",
                    expected={"absent": ["telnet"]},
                    actual={"installed": ["telnet"]},
                    message='=HYPERLINK("x") forbidden package telnet is installed',
                    waiver="W-000",
                    waiver_expired=True,
                ),
            ),
        ),
        HostReport(
            host="jas-001-fs02",
            status=HOST_UNREACHABLE,
            role="field_server",
            place=JASHORE,
            message="ssh: connect to host 10.0.1.11 port 22: No route to host",
            results=tuple(
                ControlResult(c, "unreachable", s)
                for c, s in (("OS-001", "critical"), ("SSH-001", "critical"), ("PKG-002", "medium"))
            ),
        ),
    ]


def sample_history() -> list[RunPoint]:
    return [
        RunPoint(40, NOW - timedelta(days=2), "bd-ict-baseline", "2026.1", 4, 4, 1, 0.6, 1.0),
        RunPoint(41, NOW - timedelta(days=1), "bd-ict-baseline", "2026.1", 4, 4, 2, 0.8, 1.0),
        RunPoint(39, NOW - timedelta(days=9), "bd-ict-baseline", "2025.2", 4, 4, 4, 1.0, 1.0),
    ]
