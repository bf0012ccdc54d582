"""Runs recorded in a real store, with only what a test cares about spelt out.

A rollout run and a compliance run each need a dozen columns a test rarely looks
at; these builders fill them with plain values so each test names only its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from provision.infra.store import Store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.standards.model import Standard


def record_rollout_run(
    store: Store,
    plan: Sequence[tuple[int, str, list[str]]] = ((1, "wave 1", ["h1"]),),
    *,
    user: str = "u",
    node: str = "n",
    playbook: str = "p.yml",
    selection: str = "",
    options: Mapping[str, Any] | None = None,
    git_revision: str | None = None,
) -> int:
    """A rollout run of env lab with these waves (number, label, hosts); its id."""
    return store.create_run(
        kind="rollout",
        user=user,
        node=node,
        env="lab",
        playbook=playbook,
        selection=selection,
        options=dict(options or {}),
        git_revision=git_revision,
        plan=list(plan),
    )


def record_compliance_run(
    records: ComplianceRecords,
    *,
    selection: str = "",
    user: str = "tester",
    node: str = "node",
    started_at: datetime | None = None,
    env: str = "lab",
    standard: Standard | None = None,
) -> int:
    """A compliance run of `env` against `standard` (bd-ict-baseline 2026.1 by
    default), no waivers; its id."""
    return records.create_run(
        env=env,
        selection=selection,
        standard_id=standard.id if standard else "bd-ict-baseline",
        standard_version=standard.version if standard else "2026.1",
        standard_digest=standard.digest if standard else "d" * 64,
        waivers_digest=None,
        user=user,
        node=node,
        started_at=started_at,
    )
