"""The results of a compliance run, as data.

Plain frozen dataclasses with no I/O: the audit service produces them, the
store keeps them, scoring and drift compute over them, and the report writers
(JSON, JUnit, CSV, HTML) and the CLI read them. Every value in `expected` and
`actual` is JSON-serialisable: it is the evidence an auditor reads later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from provision.model import places
from provision.model.pull import PullState

# -- statuses --------------------------------------------------------------------

PASS = "pass"  # noqa: S105 (a status, not a password)
FAIL = "fail"
ERROR = "error"
NOT_APPLICABLE = "not_applicable"
WAIVED = "waived"
UNREACHABLE = "unreachable"
NO_REPORT = "no_report"

#: Every status a control result can have, in report order.
STATUSES: tuple[str, ...] = (PASS, FAIL, ERROR, WAIVED, UNREACHABLE, NO_REPORT, NOT_APPLICABLE)

#: The statuses that count in a host's score: pass / (pass + fail + error).
SCORED: tuple[str, ...] = (PASS, FAIL, ERROR)

#: How a host's audit went as a whole.
HOST_REPORTED = "reported"  # evidence collected and evaluated
HOST_UNREACHABLE = "unreachable"  # no connection: every applicable control is unreachable
HOST_ERROR = "error"  # connected, but the evidence could not be collected
#: A host in pull mode whose newest report is older than its keep-last window (or
#: that never reported): every applicable control is no_report.
HOST_NO_REPORT = "no_report"

#: Levels a host's place is named by, top down (defined with the tree's levels).
PLACE_LEVELS: tuple[str, ...] = places.PLACE_LEVELS


@dataclass(frozen=True)
class ControlResult:
    """The verdict on one control for one host, with its evidence."""

    control: str
    status: str
    severity: str
    #: What the standard asks for, with the host's parameter values filled in.
    expected: Any = None
    #: What the host showed (None when nothing was collected).
    actual: Any = None
    #: One line for people: why it failed, errored or does not apply.
    message: str = ""
    #: The id of the waiver that applied (status waived), or of an expired one that
    #: matched but no longer applies (then `waiver_expired` is True and the status is
    #: the evaluated one).
    waiver: str | None = None
    waiver_expired: bool = False

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "control": self.control,
            "status": self.status,
            "severity": self.severity,
            "expected": self.expected,
            "actual": self.actual,
            "message": self.message,
        }
        if self.waiver is not None:
            data["waiver"] = self.waiver
            data["waiver_expired"] = self.waiver_expired
        return data


@dataclass(frozen=True)
class HostReport:
    """One host's audit in one run: where it is, how the audit went, every control's result."""

    host: str
    status: str  # HOST_REPORTED, HOST_UNREACHABLE, HOST_ERROR or HOST_NO_REPORT
    role: str | None = None
    os_release: str | None = None
    #: Place names by level (PLACE_LEVELS), as the inventory gives them.
    place: Mapping[str, str] = field(default_factory=dict)
    #: When the evidence was collected on the host (None if it was not).
    collected_at: datetime | None = None
    #: sha256 of the canonical JSON of the collected evidence (None if none).
    evidence_digest: str | None = None
    #: Why the host was unreachable or errored.
    message: str = ""
    results: tuple[ControlResult, ...] = ()
    #: For a host in pull mode: its newest report's serial and age, and its window.
    pull: PullState | None = None
    #: The execution node that ran the host's audit (None: the control node).
    node: str | None = None

    def counts(self) -> dict[str, int]:
        """How many results have each status (every status present, zeros included)."""
        tally = dict.fromkeys(STATUSES, 0)
        for result in self.results:
            tally[result.status] += 1
        return tally

    def result(self, control: str) -> ControlResult | None:
        return next((r for r in self.results if r.control == control), None)


@dataclass(frozen=True)
class ComplianceRunInfo:
    """One compliance run as recorded: what was judged, by which standard, when."""

    id: int
    status: str  # running, done, interrupted, crashed
    env: str
    selection: str
    standard_id: str
    standard_version: str
    #: sha256 of the standard file: which exact text the results were judged by.
    standard_digest: str
    #: sha256 of waivers.yml as it was read (None when there was none).
    waivers_digest: str | None
    user: str
    node: str
    started_at: datetime
    finished_at: datetime | None = None
    git_revision: str | None = None
    #: Number of hosts recorded so far.
    hosts: int = 0
