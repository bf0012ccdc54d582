"""`provision compliance prune`: old compliance detail out of the store, what matters kept.

A year of daily 50,000-host audits is mostly passing results nobody will read
again. Pruning a run removes its host rows (each host's every result, the
blob) and its waived findings, in one transaction; it keeps the run itself,
its per-run aggregates (place and control totals: what `compliance show`, the
trend and the roll-ups read) and every fail, error and no_report finding with
its expected and actual values (the evidence of each host's failures, what
`compliance query` answers from). The audit's own run folders older than the
same age go too; no other kind of run folder is touched.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.infra import runner
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.settings import Settings

#: The kind of run folder an audit makes (`runner.new_run_dir`).
RUN_KIND = "compliance"


@dataclass(frozen=True)
class PruneResult:
    before: datetime
    dry_run: bool
    runs: tuple[int, ...]
    host_rows: int
    findings: int
    folders: tuple[Path, ...]
    #: Place totals at the finest level (sites) removed; the levels above are kept.
    place_rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.isoformat(),
            "dry_run": self.dry_run,
            "runs": list(self.runs),
            "host_rows": self.host_rows,
            "findings": self.findings,
            "place_rows": self.place_rows,
            "folders": [str(p) for p in self.folders],
        }


def _folder_time(path: Path) -> datetime | None:
    try:
        return datetime.strptime(path.name.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def old_run_folders(state_path: Path, before: datetime) -> list[Path]:
    """The audits' run folders made before `before`, oldest first."""
    folder = state_path / "runs"
    if not folder.is_dir():
        return []
    old = []
    for path in sorted(folder.iterdir()):
        made = _folder_time(path)
        if path.is_dir() and runner.run_kind(path) == RUN_KIND and made and made < before:
            old.append(path)
    return old


def prune(
    settings: Settings, keep_days: int, *, dry_run: bool = False, now: datetime | None = None
) -> PruneResult:
    """Prune the detail of compliance runs started more than `keep_days` days ago."""
    if keep_days < 1:
        raise InputError(f"--keep {keep_days} would prune today's runs", hint="keep at least 1 day")
    before = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    with open_store(settings) as store:
        counts = ComplianceRecords(store).prune(before, dry_run=dry_run)
    folders = old_run_folders(settings.state_path, before)
    if not dry_run:
        for path in folders:
            shutil.rmtree(path, ignore_errors=True)
    return PruneResult(
        before=before,
        dry_run=dry_run,
        runs=tuple(counts.runs),
        host_rows=counts.host_rows,
        findings=counts.findings,
        folders=tuple(folders),
        place_rows=counts.place_rows,
    )


__all__ = ["RUN_KIND", "PruneResult", "old_run_folders", "prune"]
