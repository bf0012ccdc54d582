"""Scores from compliance results: per host here; roll-ups along the admin tree too.

Pure functions over `provision.compliance.model` data. A host's score is
pass / (pass + fail + error) over its applicable controls; waived, unreachable,
no_report and not_applicable results do not count in it. Any failing critical
control makes the host non-compliant whatever its score.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.compliance.model import (
    ERROR,
    FAIL,
    HOST_REPORTED,
    NO_REPORT,
    PASS,
    HostReport,
)


@dataclass(frozen=True)
class HostScore:
    #: pass / (pass + fail + error), from 0.0 to 1.0; None when nothing counted
    #: (an unreachable host, or one whose every control was waived).
    score: float | None
    #: True only for a reported host with no fail, error or no_report result.
    compliant: bool
    #: Ids of the critical controls that failed.
    critical_failures: tuple[str, ...] = ()


def host_score(report: HostReport) -> HostScore:
    """The score and verdict of one host's audit."""
    counts = report.counts()
    scored = counts[PASS] + counts[FAIL] + counts[ERROR]
    score = counts[PASS] / scored if scored else None
    critical = tuple(
        r.control for r in report.results if r.status == FAIL and r.severity == "critical"
    )
    compliant = (
        report.status == HOST_REPORTED
        and counts[FAIL] == 0
        and counts[ERROR] == 0
        and counts[NO_REPORT] == 0
    )
    return HostScore(score=score, compliant=compliant, critical_failures=critical)
