"""Remediation: a rollout that enforces only a run's failing controls on its failing hosts.

    plan = plan_fix(settings, run_id)                 # what would run, nothing touched
    result = run_rollout(settings, plan.rollout)      # the ordinary rollout machinery

The rollout runs `site.yml` with the failing controls' enforce tags over the
hosts where they failed (or errored), so everything a rollout gives (waves,
the store, locks, resume) applies. Controls no role enforces (the hardware
minimums) are listed as not fixable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from provision.compliance.model import ERROR, FAIL, ComplianceRunInfo
from provision.errors import InputError, StateError
from provision.rollout.service import RolloutOptions, RolloutPlan, plan_rollout
from provision.settings import Settings
from provision.standards.model import Standard
from provision.standards.service import pick_standard
from provision.store import open_store
from provision.store.compliance_records import ComplianceRecords

PLAYBOOK = "site.yml"
#: Results a fix tries to repair.
FIXABLE_STATUSES = (FAIL, ERROR)


@dataclass(frozen=True)
class FixPlan:
    run: ComplianceRunInfo
    #: Failing control id -> hosts it failed on (fixable ones only).
    failing: Mapping[str, tuple[str, ...]]
    #: Failing controls without an enforcing role -> hosts.
    not_fixable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    #: None when there is nothing to fix.
    rollout: RolloutPlan | None = None


def _standard_of(settings: Settings, run: ComplianceRunInfo) -> Standard:
    standard = pick_standard(settings.workspace / "standards", run.standard_id)
    if standard.version != run.standard_version:
        raise StateError(
            f"run {run.id} was judged by {run.standard_id} {run.standard_version}; "
            f"the workspace holds version {standard.version}",
            hint="run a new audit (provision compliance run) and fix that one",
        )
    return standard


def plan_fix(settings: Settings, run_id: int, control: str | None = None) -> FixPlan:
    """What `fix` would enforce where. Touches no host."""
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run = records.get_run(run_id)
        if run.status != "done":
            raise StateError(
                f"compliance run {run_id} is {run.status}, not done",
                hint="fix a finished run (provision compliance runs)",
            )
        standard = _standard_of(settings, run)
        if control is not None:
            try:
                standard.control(control)
            except KeyError:
                raise InputError(
                    f"--control {control!r} is not a control of {standard.id}",
                    hint="see them with: provision standards show",
                ) from None
        failing: dict[str, list[str]] = {}
        for report in records.host_reports(run_id):
            for result in report.results:
                if result.status in FIXABLE_STATUSES and control in (None, result.control):
                    failing.setdefault(result.control, []).append(report.host)
    fixable: dict[str, tuple[str, ...]] = {}
    not_fixable: dict[str, tuple[str, ...]] = {}
    tags: list[str] = []
    for control_id in sorted(failing, key=lambda c: _order(standard, c)):
        hosts = tuple(sorted(failing[control_id]))
        enforce = standard.control(control_id).enforce
        if enforce is None:
            not_fixable[control_id] = hosts
        else:
            fixable[control_id] = hosts
            if enforce.tag not in tags:
                tags.append(enforce.tag)
    hosts = tuple(sorted({h for hs in fixable.values() for h in hs}))
    rollout = None
    if hosts:
        fixed_settings = settings if settings.env == run.env else replace(settings, env=run.env)
        rollout = plan_rollout(
            fixed_settings,
            RolloutOptions(playbook=PLAYBOOK, selection=";".join(hosts), tags=tuple(tags)),
        )
    return FixPlan(run, fixable, not_fixable, tuple(tags), hosts, rollout)


def _order(standard: Standard, control_id: str) -> int:
    ids = [c.id for c in standard.controls]
    return ids.index(control_id) if control_id in ids else len(ids)
