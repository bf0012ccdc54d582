"""What every report writer shares: its input, run summaries, atomic files, value text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from provision.errors import InputError, StateError
from provision.infra.atomic import atomic_output
from provision.model.compliance.model import PLACE_LEVELS, ComplianceRunInfo
from provision.model.standards.model import Standard
from provision.model.waivers import WaiverSet

#: The canonical JSON's format name; a reader checks it before anything else.
FORMAT_VERSION = "provision-compliance/1"

FORMATS: tuple[str, ...] = ("json", "junit", "csv", "html")


@dataclass(frozen=True)
class RunPoint:
    """One earlier run, summed up: a point of the HTML trend chart."""

    run_id: int
    started_at: datetime
    standard_id: str
    standard_version: str
    hosts: int
    reported: int
    compliant: int
    median_score: float | None = None
    coverage: float | None = None

    @property
    def compliant_share(self) -> float | None:
        return self.compliant / self.reported if self.reported else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "standard_id": self.standard_id,
            "standard_version": self.standard_version,
            "hosts": self.hosts,
            "reported": self.reported,
            "compliant": self.compliant,
            "median_score": self.median_score,
            "coverage": self.coverage,
        }


@dataclass(frozen=True)
class ReportInput:
    """Everything a writer needs besides the stream of host reports."""

    run: ComplianceRunInfo
    by: str
    standard: Standard | None
    history: tuple[RunPoint, ...]
    now: datetime
    freshness: timedelta
    waivers: WaiverSet | None = None

    def title(self, control: str) -> str:
        if self.standard is None:
            return ""
        try:
            return self.standard.control(control).title
        except KeyError:
            return ""


def check_by(by: str) -> None:
    if by not in PLACE_LEVELS:
        raise InputError(
            f"cannot group a report by {by!r}", hint="--by one of: " + ", ".join(PLACE_LEVELS)
        )


def check_standard(run: ComplianceRunInfo, standard: Standard | None) -> None:
    """The standard given must be the one the run was judged by."""
    if standard is None:
        return
    if (standard.id, standard.version) != (run.standard_id, run.standard_version) or (
        standard.digest and run.standard_digest and standard.digest != run.standard_digest
    ):
        raise StateError(
            f"run {run.id} was judged by {run.standard_id} {run.standard_version} "
            f"({run.standard_digest[:12]}), not by {standard.id} {standard.version} "
            f"({standard.digest[:12]})",
            hint="report without the standard's titles, or check out the standard's "
            "file as it was for that run",
        )


def run_dict(run: ComplianceRunInfo) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "env": run.env,
        "selection": run.selection,
        "standard_id": run.standard_id,
        "standard_version": run.standard_version,
        "standard_digest": run.standard_digest,
        "waivers_digest": run.waivers_digest,
        "user": run.user,
        "node": run.node,
        "started_at": run.started_at.isoformat(),
        "finished_at": None if run.finished_at is None else run.finished_at.isoformat(),
        "git_revision": run.git_revision,
        "hosts": run.hosts,
    }


def value_text(value: Any, limit: int | None = None) -> str:
    """Evidence as one line of text: strings as they are, anything else as compact JSON."""
    if value is None:
        return ""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    )
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


@contextmanager
def atomic_text(
    out: Path, *, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[IO[str]]:
    """A text file that becomes `out` only when the block ends without an error."""
    folder = out.parent
    if not folder.is_dir():
        raise InputError(
            f"folder {folder} does not exist", hint="create it or choose another --out"
        )
    with atomic_output(out, mode=0o644, encoding=encoding, newline=newline) as handle:
        yield handle
