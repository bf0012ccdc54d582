"""The exit status of an audit and of a fix, read off their results (one ladder each)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from provision.compliance.fix import FixVerdict, Repair
from provision.compliance.service import AuditResult
from provision.errors import ExitStatus
from provision.infra.store.compliance_records import HostRow
from provision.model.compliance.model import STATUSES
from tests.helpers.compliance_samples import RUN


def row(host: str, status: str = "reported", score: float | None = 1.0, **over: object) -> HostRow:
    values: dict[str, object] = {
        "host": host,
        "status": status,
        "role": "lab_pc",
        "place": {},
        "score": score if status == "reported" else None,
        "compliant": status == "reported" and score == 1.0,
        "counts": dict.fromkeys(STATUSES, 0),
        "critical_failures": (),
        "collected_at": None,
        "message": "",
    }
    values.update(over)
    return HostRow(**values)  # type: ignore[arg-type]


def audit(*rows: HostRow, status: str = "done") -> AuditResult:
    return AuditResult(replace(RUN, status=status), rows)


@pytest.mark.parametrize(
    ("result", "threshold", "expected"),
    [
        (audit(row("a"), row("b")), 100, ExitStatus.SUCCESS),
        (audit(row("a"), row("b", score=0.8)), 100, ExitStatus.BELOW_THRESHOLD),
        (audit(row("a"), row("b", score=0.8)), 80, ExitStatus.SUCCESS),
        (audit(row("a", critical_failures=("SSH-001",)), row("b")), 0, ExitStatus.BELOW_THRESHOLD),
        (audit(row("a"), row("b", "error")), 100, ExitStatus.HOSTS_FAILED),
        (audit(row("a"), row("b", "unreachable")), 100, ExitStatus.HOSTS_UNREACHABLE),
        (audit(row("a", "error"), row("b", "unreachable")), 100, ExitStatus.HOSTS_FAILED),
        # Worse than a host below the threshold, an error or an unreachable host:
        (audit(row("a", score=0.1), row("b", "error"), status="interrupted"), 100, 130),
        (audit(status="interrupted"), 100, ExitStatus.INTERRUPTED),
    ],
)
def test_audit_exit_status(result: AuditResult, threshold: float, expected: int) -> None:
    assert result.exit_status(threshold) == expected


def test_new_drift_is_below_threshold_but_not_above_interrupted() -> None:
    assert audit(row("a")).exit_status(new_drift=True) == ExitStatus.BELOW_THRESHOLD
    assert audit(row("a"), row("b", "unreachable")).exit_status(new_drift=True) == 6
    assert audit(row("a"), status="interrupted").exit_status(new_drift=True) == 130


def test_fix_exit_status() -> None:
    repaired = Repair("SSH-001", "a", "fail", "pass")
    missed = Repair("PKG-002", "a", "fail", "fail")
    done = audit(row("a"))
    assert FixVerdict(done, (repaired,)).exit_status() == ExitStatus.SUCCESS
    assert FixVerdict(done, (repaired, missed)).exit_status() == ExitStatus.BELOW_THRESHOLD
    # The rollout's failure comes first: its controls are not repaired either.
    failed = FixVerdict(done, (missed,))
    assert failed.exit_status(ExitStatus.HOSTS_FAILED) == ExitStatus.HOSTS_FAILED
    assert failed.exit_status(ExitStatus.HOSTS_UNREACHABLE) == ExitStatus.HOSTS_UNREACHABLE
    assert failed.exit_status(ExitStatus.INTERRUPTED) == ExitStatus.INTERRUPTED
    stopped = FixVerdict(audit(row("a"), status="interrupted"), (repaired,))
    assert stopped.exit_status() == ExitStatus.INTERRUPTED
