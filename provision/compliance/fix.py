"""Remediation: a rollout that enforces only a run's failing controls on its failing hosts.

    plan = plan_fix(settings, run_id)                 # what would run, nothing touched
    prepare_fix(settings, plan)                       # confirmed: portal certificates, vars
    result = run_rollout(settings, plan.rollout)      # the ordinary rollout machinery
    verdict = verify_fix(settings, plan)              # audit the fixed hosts again

The rollout runs `site.yml` with the failing controls' enforce tags over the
hosts where they failed (or errored), so everything a rollout gives (waves,
the store, locks, resume) applies. Controls no role enforces (the hardware
minimums) are listed as not fixable.

Hosts in pull mode (`provision_pull_mode`, docs/pull.md) are left out of the
rollout: the control node does not open SSH to them after bootstrap. They get
the fix through their next bundle (`provision bundle build` and `publish`);
`FixPlan.pulled` names them.

A control the `portal_host` role enforces (WEB-001) needs the portal register:
the role serves exactly the portals it is given. So when such a control is
fixed, the rollout gets the same generated variables file as `provision portal
deploy` for every portal host of the fix (certificates near expiry are renewed
once the fix is confirmed, by `prepare_fix`, as a deploy does); without it
`site.yml` would serve no portal and repair nothing.

A rollout that succeeds has only shown that its tasks ran, not that the
controls pass now (a setting something else overrides, a package that comes
back). So `verify_fix` audits the fix's hosts again (an ordinary, recorded
compliance run of those hosts) and says, per control and host, whether it is
repaired: passing now. Anything else (still failing, an error, unreachable)
is not repaired, and `provision compliance fix` exits 6 for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from provision.compliance.service import AuditResult, ProgressCallback, plan_audit, run_audit
from provision.errors import ExitStatus, InputError, StateError
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.inventory import select_hosts, slice_inventory
from provision.inventory.targets import load_environment
from provision.model.compliance.model import ERROR, FAIL, NO_REPORT, PASS, ComplianceRunInfo
from provision.model.pull import is_pull_mode
from provision.model.standards.model import Standard
from provision.portal import ca
from provision.portal.service import ROLE_SELECTION, DeployPlan, plan_deploy, prepare_deploy
from provision.rollout.service import RolloutOptions, RolloutPlan, plan_rollout
from provision.settings import Settings
from provision.standards.service import pick_standard

PLAYBOOK = "site.yml"
#: Results a fix tries to repair.
FIXABLE_STATUSES = (FAIL, ERROR)
#: Roles whose tasks serve what the portal register says: a fix passes them its variables.
REGISTER_ROLES = frozenset({"portal_host"})
#: The standard's parameter for the fewest days a portal certificate may have left.
CERT_MIN_DAYS = "portal_host_cert_min_days"


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
    #: The portal variables file the rollout passes (fixing a portal_host control), or None.
    vars_file: str | None = None
    #: (control, host) -> its status in the run (fail or error), for the fixable ones.
    before: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: The portal deploy whose register the fix passes: its certificates are issued and
    #: its variables file written by `prepare_fix`, once the fix is confirmed.
    deploy: DeployPlan | None = None
    #: Hosts in pull mode that failed a fixable control: left out of the rollout (no
    #: SSH to them), they get the fix through their next bundle.
    pulled: tuple[str, ...] = ()


@dataclass(frozen=True)
class Repair:
    """One control on one host that a fix set out to repair, and what the audit after it says."""

    control: str
    host: str
    #: Its status in the run that was fixed (fail or error).
    before: str
    #: Its status in the audit after the fix.
    after: str
    message: str = ""

    @property
    def repaired(self) -> bool:
        return self.after == PASS

    def as_dict(self) -> dict[str, object]:
        return {
            "control": self.control,
            "host": self.host,
            "before": self.before,
            "after": self.after,
            "repaired": self.repaired,
            "message": self.message,
        }


@dataclass(frozen=True)
class FixVerdict:
    """The audit after a fix, and per control and host whether the fix repaired it."""

    audit: AuditResult
    repairs: tuple[Repair, ...]

    @property
    def not_repaired(self) -> list[Repair]:
        return [r for r in self.repairs if not r.repaired]

    def exit_status(self, rollout: ExitStatus = ExitStatus.SUCCESS) -> ExitStatus:
        """The fix's exit status, given its rollout's: the rollout's failure first (130
        interrupted, 4 failed, 5 unreachable: its controls are not repaired either), then
        the audit after it (130 interrupted), then 6 for a control still not passing."""
        if rollout != ExitStatus.SUCCESS:
            return rollout
        if self.audit.run.status == "interrupted":
            return ExitStatus.INTERRUPTED
        if self.not_repaired:
            return ExitStatus.BELOW_THRESHOLD
        return ExitStatus.SUCCESS


def _standard_of(settings: Settings, run: ComplianceRunInfo) -> Standard:
    standard = pick_standard(settings.standards_path, run.standard_id)
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
        statuses: dict[tuple[str, str], str] = {}
        for report in records.host_reports(run_id):
            for result in report.results:
                if result.status in FIXABLE_STATUSES and control in (None, result.control):
                    failing.setdefault(result.control, []).append(report.host)
                    statuses[(result.control, report.host)] = result.status
    fixed_settings = settings if settings.env == run.env else replace(settings, env=run.env)
    enforced = {c for c in failing if standard.control(c).enforce is not None}
    pulled = _pulled(fixed_settings, {h for c in enforced for h in failing[c]})
    fixable: dict[str, tuple[str, ...]] = {}
    not_fixable: dict[str, tuple[str, ...]] = {}
    tags: list[str] = []
    needs_register = False
    for control_id in sorted(failing, key=lambda c: _order(standard, c)):
        hosts = tuple(sorted(failing[control_id]))
        enforce = standard.control(control_id).enforce
        if enforce is None:
            not_fixable[control_id] = hosts
            continue
        pushed = tuple(h for h in hosts if h not in pulled)
        if not pushed:
            continue
        fixable[control_id] = pushed
        needs_register = needs_register or enforce.role in REGISTER_ROLES
        if enforce.tag not in tags:
            tags.append(enforce.tag)
    hosts = tuple(sorted({h for hs in fixable.values() for h in hs}))
    rollout = None
    vars_file = None
    deploy = None
    if hosts:
        if needs_register:
            deploy = _portal_deploy(fixed_settings, standard, hosts)
            vars_file = None if deploy is None else str(deploy.vars_file)
        rollout = plan_rollout(
            fixed_settings,
            RolloutOptions(
                playbook=PLAYBOOK,
                selection=";".join(hosts),
                tags=tuple(tags),
                vars_file=vars_file,
            ),
        )
    before = {k: v for k, v in statuses.items() if k[1] in fixable.get(k[0], ())}
    return FixPlan(
        run,
        fixable,
        not_fixable,
        tuple(tags),
        hosts,
        rollout,
        vars_file,
        before,
        deploy,
        tuple(sorted(pulled)),
    )


def _pulled(settings: Settings, hosts: set[str]) -> set[str]:
    """Which of `hosts` the inventory puts into pull mode (a host no longer in it is not)."""
    if not hosts:
        return set()
    loaded = load_environment(settings.inventory_path)
    known = sorted(h for h in hosts if h in loaded.inventory.hosts)
    if not known:
        return set()
    hostvars = slice_inventory(loaded.inventory, known, loaded.folder)["all"]["hosts"]
    return {h for h in known if is_pull_mode(hostvars[h])}


def prepare_fix(settings: Settings, plan: FixPlan) -> None:
    """What a confirmed fix does on the control node before its rollout: the portal
    certificates it needs issued or renewed, its variables file written (`prepare_deploy`)."""
    if plan.deploy is not None:
        fixed = settings if settings.env == plan.run.env else replace(settings, env=plan.run.env)
        prepare_deploy(fixed, plan.deploy)


def verify_fix(
    settings: Settings, plan: FixPlan, *, on_progress: ProgressCallback | None = None
) -> FixVerdict:
    """Audit the fix's hosts again (a recorded run) and judge every control it was to repair."""
    if not plan.hosts:
        raise StateError(
            f"the fix of run {plan.run.id} touched no host", hint="there is nothing to verify"
        )
    checked = settings if settings.env == plan.run.env else replace(settings, env=plan.run.env)
    audit = run_audit(
        checked,
        plan_audit(checked, ";".join(plan.hosts), standard=plan.run.standard_id),
        on_progress=on_progress,
    )
    after: dict[tuple[str, str], tuple[str, str]] = {}
    with open_store(checked) as store:
        for report in ComplianceRecords(store).host_reports(audit.run_id, plan.hosts):
            for result in report.results:
                after[(result.control, report.host)] = (result.status, result.message)
    repairs = []
    for control_id, hosts in plan.failing.items():
        for host in hosts:
            status, message = after.get((control_id, host), (NO_REPORT, "not in the audit"))
            repairs.append(
                Repair(control_id, host, plan.before.get((control_id, host), FAIL), status, message)
            )
    return FixVerdict(audit, tuple(repairs))


def _portal_deploy(
    settings: Settings, standard: Standard, hosts: tuple[str, ...]
) -> DeployPlan | None:
    """The deploy plan of the register for every portal host among `hosts` (None when none).

    Every portal host of the fix gets its portals, not only those failing a portal
    control: the tags run on all of the fix's hosts, and the role retires what a
    run given the register does not list.
    """
    loaded = load_environment(settings.inventory_path)
    serving = set(select_hosts(loaded.inventory, ROLE_SELECTION))
    chosen = [h for h in hosts if h in serving]
    if not chosen:
        return None
    parameter = standard.parameters.get(CERT_MIN_DAYS)
    minimum = float(parameter.default) if parameter is not None else 0.0
    return plan_deploy(
        settings, ";".join(chosen), renew_within_days=max(ca.RENEW_WITHIN_DAYS, minimum)
    )


def _order(standard: Standard, control_id: str) -> int:
    ids = [c.id for c in standard.controls]
    return ids.index(control_id) if control_id in ids else len(ids)
