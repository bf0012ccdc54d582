"""Compliance runs: a read-only audit of a selection against a standard, recorded as it goes.

    plan = plan_audit(settings, "district:gazipur")
    result = run_audit(settings, plan, on_progress=print)

For each selected host, `plan_audit` decides which controls apply (by role;
OS release is known only once the host answered), resolves the control's
parameters with the host's inventory overrides, and derives the one module
request that collects all the evidence those checks need. `run_audit` runs
`playbooks/compliance.yml` (one `provision_evidence` call per host) through
ansible-runner, judges each host's evidence on the control node as its result
event arrives, and commits host reports in small batches: a run that dies
keeps what it had collected. With execution nodes, the hosts a node serves are
audited from that node (the rollout's shards, `provision.rollout.shards`) and
their events come home to the same collector; each host's report names the
node that ran it.

Some evidence is the control node's own (`CONTROL_NODE_SECTIONS`): for hosts
with a `portal_https` check (WEB-001), each portal the register gives the host
is asked over HTTPS from here (`provision.portal.health.check_portals`), in a
thread that runs beside the playbook; its answer joins the host's evidence
before the host is judged. A host that does not answer stays unreachable.

Module results are read from the event stream and kept nowhere else: the run
keeps no event files (`keep_events=False`), its stdout holds no results (the
default callback prints them only when verbose), and the store keeps only each
control's evaluated expected and actual values and a digest of the evidence.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from provision.access import secrets
from provision.errors import ExitStatus, InputError, ProvisionError, exit_status_for
from provision.infra import runner
from provision.infra.identity import current_user
from provision.infra.processes import stop_run_processes
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords, HostRow
from provision.infra.store.pull_records import PullRecords, StoredApply
from provision.inventory import slice_inventory
from provision.inventory.files import LoadedInventory
from provision.inventory.targets import select_targets
from provision.model.compliance.evaluate import (
    control_node_sections,
    declared_equipment,
    evaluate_control,
    evidence_request,
    release_name,
    with_declared_equipment,
)
from provision.model.compliance.model import (
    HOST_ERROR,
    HOST_NO_REPORT,
    HOST_REPORTED,
    HOST_UNREACHABLE,
    NO_REPORT,
    NOT_APPLICABLE,
    UNREACHABLE,
    WAIVED,
    ComplianceRunInfo,
    ControlResult,
    HostReport,
)
from provision.model.places import LEVELS
from provision.model.pull import PullState, is_pull_mode, is_within, keep_window
from provision.model.standards.model import Check, Control, Standard
from provision.model.standards.params import (
    VarLayer,
    control_parameters,
    resolve_control_checks,
    resolve_parameters,
)
from provision.model.waivers import WaiverSet
from provision.portal.ca import whole_days
from provision.portal.health import PortalHealth, check_portals
from provision.portal.service import list_portals
from provision.rollout import shards
from provision.rollout.revision import git_revision
from provision.rollout.shards import ExecutionNodes
from provision.settings import Settings
from provision.standards.hostvars import host_layers
from provision.standards.service import pick_standard
from provision.standards.waivers import load_waivers

PLAYBOOK = "compliance.yml"
#: Host reports are committed every this many hosts, or this many seconds.
FLUSH_HOSTS = 50
FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class HostPlan:
    """What one host is audited for."""

    host: str
    role: str | None
    place: Mapping[str, str]
    groups: frozenset[str]
    #: Controls that apply by role, each with its checks resolved for this host.
    controls: tuple[tuple[Control, tuple[Check, ...]], ...]
    #: Controls whose applies_to excludes the host's role.
    not_applicable: tuple[Control, ...]
    #: The module's request (what to collect) and its key among the run's requests.
    request: Mapping[str, Any]
    request_key: str
    #: Evidence sections the control node collects itself for this host ("portals").
    control_node: frozenset[str] = frozenset()
    #: The equipment the host's register row declares (judged for containers only).
    equipment: Mapping[str, int] | None = None
    #: For a host in pull mode (never contacted by an audit): how long its newest
    #: pulled evidence counts (`provision_pull_keep_days`); None for a pushed host.
    pull_keep: timedelta | None = None


@dataclass(frozen=True)
class AuditPlan:
    env: str
    selection: str
    standard: Standard
    hosts: tuple[HostPlan, ...]
    waivers: WaiverSet
    today: date

    @property
    def requests(self) -> dict[str, Mapping[str, Any]]:
        return {h.request_key: h.request for h in self.hosts}


@dataclass(frozen=True)
class AuditProgress:
    """What an audit reports while it runs; the CLI draws it."""

    kind: str  # started, host, finished
    run_id: int
    total: int
    done: int = 0
    host: str | None = None
    #: The host's status (reported, unreachable, error) and its result counts.
    status: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    #: The execution node that ran the host (None: the control node).
    node: str | None = None


ProgressCallback = Callable[[AuditProgress], None]


@dataclass(frozen=True)
class AuditResult:
    run: ComplianceRunInfo
    #: Every host's line (score, counts, status), ordered by name.
    hosts: tuple[HostRow, ...]

    @property
    def run_id(self) -> int:
        return self.run.id

    def hosts_with(self, status: str) -> list[str]:
        return [h.host for h in self.hosts if h.status == status]

    def exit_status(self, threshold: float = 100.0, *, new_drift: bool = False) -> ExitStatus:
        """What the run says to a script: 130 interrupted; 6 a reached host below
        `threshold` (0 to 100) or failing a critical control, or `new_drift`; 4 some
        host's evidence could not be collected; 5 some host unreachable; else 0."""
        interrupted = self.run.status == "interrupted"
        if not interrupted and (new_drift or self.below(threshold)):
            return ExitStatus.BELOW_THRESHOLD
        return exit_status_for(
            failed=bool(self.hosts_with(HOST_ERROR)),
            # A pulled host silent past its window is as unheard as an unreachable one.
            unreachable=bool(self.hosts_with(HOST_UNREACHABLE) or self.hosts_with(HOST_NO_REPORT)),
            interrupted=interrupted,
        )

    def below(self, threshold: float) -> list[str]:
        """Reported hosts scoring under `threshold` (0 to 100) or failing a critical control."""
        return [
            h.host
            for h in self.hosts
            if h.status == HOST_REPORTED
            and (
                h.critical_failures
                or (h.score is not None and h.score * 100 < threshold - 1e-9)
                or (threshold >= 100 and not h.compliant)
            )
        ]


# -- planning --------------------------------------------------------------------------


def _request_key(request: Mapping[str, Any]) -> str:
    text = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _place(hostvars: Mapping[str, Any]) -> dict[str, str]:
    place = {
        level: str(hostvars[f"provision_{level}"])
        for level in LEVELS
        if hostvars.get(f"provision_{level}")
    }
    if hostvars.get("provision_site_code"):
        place["site"] = str(hostvars["provision_site_code"])
    return place


def plan_host(
    standard: Standard,
    host: str,
    hostvars: Mapping[str, Any],
    groups: Collection[str] = (),
    *,
    layers: Callable[[], Sequence[VarLayer]] | None = None,
) -> HostPlan:
    """One host's controls, resolved checks and module request, from its variables.

    `hostvars` are the host's merged inventory variables; `layers`, when given,
    re-resolves a bad override through the host's variable files so the error
    names the file that set it.
    """
    role = hostvars.get("provision_role")
    role = str(role) if role else None
    pull_keep = plan_host_keep(host, hostvars)
    applicable = standard.applicable(role=role)
    names = sorted({n for c in applicable for n in control_parameters(c)})
    try:
        values = resolve_parameters(standard, [VarLayer(f"host {host}", hostvars)], names)
    except InputError:
        if layers is None:
            raise
        values = resolve_parameters(standard, layers(), names)
    plain = {n: p.value for n, p in values.items()}
    controls = tuple((c, resolve_control_checks(c, plain)) for c in applicable)
    ids = {c.id for c in applicable}
    request = evidence_request(check for _, checks in controls for check in checks)
    local = control_node_sections(check for _, checks in controls for check in checks)
    return HostPlan(
        host=host,
        role=role,
        place=_place(hostvars),
        groups=frozenset(groups),
        controls=controls,
        not_applicable=tuple(c for c in standard.controls if c.id not in ids),
        request=request,
        request_key=_request_key(request),
        control_node=local,
        equipment=declared_equipment(hostvars),
        pull_keep=pull_keep,
    )


class HostPlanner:
    """`plan_host` for many hosts, resolving the checks once per role and parameter values.

    Hosts of one role whose variables give every parameter of the standard the same
    value get the same controls, checks and request; only their name, place,
    groups, declared equipment and keep-last window differ. Planning 50,000 PCs
    then resolves the checks a few times, not 50,000.
    """

    def __init__(self, standard: Standard) -> None:
        self.standard = standard
        self._names = sorted(standard.parameters)
        self._plans: dict[tuple[Any, ...], HostPlan] = {}

    def plan(
        self,
        host: str,
        hostvars: Mapping[str, Any],
        groups: Collection[str] = (),
        *,
        layers: Callable[[], Sequence[VarLayer]] | None = None,
    ) -> HostPlan:
        key = (
            hostvars.get("provision_role"),
            json.dumps([hostvars.get(n) for n in self._names], sort_keys=True, default=repr),
        )
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = plan_host(
                self.standard, host, hostvars, groups, layers=layers
            )
            return found
        pull_keep = plan_host_keep(host, hostvars)
        return replace(
            found,
            host=host,
            place=_place(hostvars),
            groups=frozenset(groups),
            equipment=declared_equipment(hostvars),
            pull_keep=pull_keep,
        )


def plan_host_keep(host: str, hostvars: Mapping[str, Any]) -> timedelta | None:
    """A pulled host's keep-last window (None for a pushed host); InputError naming it."""
    if not is_pull_mode(hostvars):
        return None
    try:
        return keep_window(hostvars)
    except ValueError as exc:
        raise InputError(
            f"host {host}: {exc}",
            hint="set provision_pull_keep_days to a number of days in its group_vars "
            "or host_vars (default 14)",
        ) from None


def waivers_path(settings: Settings) -> Path:
    """The waivers file of the workspace: waivers.yml at its root."""
    return settings.waivers_path


def plan_audit(
    settings: Settings,
    selection: str = "",
    *,
    standard: str | None = None,
    waivers: Path | None = None,
    today: date | None = None,
) -> AuditPlan:
    """Pick the hosts and the standard, resolve every host's checks. Touches no host.

    `standard` is a standard's id or file (default: the only one in standards/);
    `waivers` the waivers file (default: waivers.yml in the workspace; a missing
    file is no waiver). Bad parameters or waivers raise `InputError` before any
    host is contacted.
    """
    chosen = pick_standard(settings.standards_path, standard)
    loaded, hosts = select_targets(settings.inventory_path, selection)
    day = today or datetime.now(UTC).date()
    waiver_set = load_waivers(
        waivers or waivers_path(settings),
        chosen,
        known_hosts=set(loaded.inventory.hosts),
        known_groups=set(loaded.inventory.groups),
        today=day,
    )
    planned = tuple(_plan_hosts(chosen, loaded, hosts))
    if any("portals" in h.control_node for h in planned):
        list_portals(settings)  # a broken portal register is bad input, before any host
    return AuditPlan(
        env=settings.env,
        selection=selection,
        standard=chosen,
        hosts=planned,
        waivers=waiver_set,
        today=day,
    )


def _plan_hosts(standard: Standard, loaded: LoadedInventory, hosts: list[str]) -> list[HostPlan]:
    hostvars = slice_inventory(loaded.inventory, hosts, loaded.folder)["all"]["hosts"]
    groups = loaded.inventory.memberships(hosts)
    return [
        plan_host(
            standard,
            h,
            hostvars[h],
            groups.get(h, set()),
            layers=lambda h=h: host_layers(loaded, h),  # type: ignore[misc]
        )
        for h in hosts
    ]


# -- judging ----------------------------------------------------------------------------


def evidence_digest(evidence: Mapping[str, Any]) -> str:
    """sha256 of the evidence's canonical JSON (without the collection time)."""
    body = {k: v for k, v in evidence.items() if k != "collected_at"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _waive(
    result: ControlResult, plan: HostPlan, waivers: WaiverSet | None, today: date
) -> ControlResult:
    if waivers is None or not len(waivers):
        return result
    active, expired = waivers.match(result.control, plan.host, plan.groups, plan.place, today)
    if active is not None:
        return ControlResult(
            result.control,
            WAIVED,
            result.severity,
            result.expected,
            result.actual,
            f"waived by {active.id} until {active.expires.isoformat()}"
            + (f" (evaluated: {result.status})" if result.status != WAIVED else ""),
            waiver=active.id,
        )
    if expired is not None:
        return ControlResult(
            result.control,
            result.status,
            result.severity,
            result.expected,
            result.actual,
            result.message,
            waiver=expired.id,
            waiver_expired=True,
        )
    return result


def judge_host(
    plan: HostPlan,
    evidence: Mapping[str, Any] | None,
    *,
    status: str = HOST_REPORTED,
    message: str = "",
    waivers: WaiverSet | None = None,
    today: date | None = None,
) -> HostReport:
    """A host's report from its evidence (None when there is none: unreachable, error).

    Controls the host's role or OS release excludes are not_applicable; every
    applicable control of an unreachable host is unreachable, of a host that
    gave no evidence no_report. Waivers apply to evaluated results only.
    """
    day = today or datetime.now(UTC).date()
    os_release = release_name(evidence.get("os_release")) if evidence else None
    results: list[ControlResult] = [
        ControlResult(c.id, NOT_APPLICABLE, c.severity, message="not for this role")
        for c in plan.not_applicable
    ]
    collected_at: datetime | None = None
    if evidence is not None and status == HOST_REPORTED:
        stamp = evidence.get("collected_at")
        if isinstance(stamp, int | float):
            collected_at = datetime.fromtimestamp(stamp, UTC)
    # What the controls are judged on; the digest stays that of the evidence as collected.
    judged = with_declared_equipment(evidence, plan.equipment) if evidence is not None else {}
    for control, checks in plan.controls:
        if os_release is not None and not control.applies_to.matches(plan.role, os_release):
            results.append(
                ControlResult(
                    control.id, NOT_APPLICABLE, control.severity, message="not for this OS"
                )
            )
        elif status == HOST_UNREACHABLE:
            results.append(
                ControlResult(control.id, UNREACHABLE, control.severity, message=message)
            )
        elif evidence is None:
            results.append(
                ControlResult(
                    control.id, NO_REPORT, control.severity, message=message or "no evidence"
                )
            )
        else:
            result = evaluate_control(control, checks, judged)
            results.append(_waive(result, plan, waivers, day))
    order = {c.id: i for i, c in enumerate(c for c in _all_controls(plan))}
    results.sort(key=lambda r: order.get(r.control, len(order)))
    return HostReport(
        host=plan.host,
        status=status,
        role=plan.role,
        os_release=os_release,
        place=dict(plan.place),
        collected_at=collected_at,
        evidence_digest=evidence_digest(evidence) if evidence is not None else None,
        message=message,
        results=tuple(results),
    )


def _all_controls(plan: HostPlan) -> list[Control]:
    return sorted([c for c, _ in plan.controls] + list(plan.not_applicable), key=_line)


def _line(control: Control) -> int:
    return control.line or 0


# -- evidence from the control node ---------------------------------------------------------


def portal_item(health: PortalHealth) -> dict[str, Any]:
    """One portal's health as evidence (whole days left, so that it is stable within a day)."""
    days = None if health.days_left is None else whole_days(health.days_left)
    return {
        "domain": health.domain,
        "status": health.status,
        "days_left": days,
        "http_status": health.http_status,
        "department_ca": health.department_ca,
        "message": health.message,
    }


class _PortalEvidence:
    """Each host's `portals` section, checked over HTTPS from here beside the playbook."""

    def __init__(self, settings: Settings, hosts: Sequence[str], timeout: float = 10.0) -> None:
        self._sections: dict[str, dict[str, Any]] = {}
        self._done = threading.Event()
        if not hosts:
            self._done.set()
            return
        thread = threading.Thread(
            target=self._run, args=(settings, list(hosts), timeout), daemon=True
        )
        thread.start()

    def _run(self, settings: Settings, hosts: list[str], timeout: float) -> None:
        try:
            found: dict[str, list[dict[str, Any]]] = {h: [] for h in hosts}
            for health in check_portals(settings, ";".join(hosts), timeout=timeout, empty_ok=True):
                found.setdefault(health.host, []).append(portal_item(health))
            self._sections = {h: {"portals": items} for h, items in found.items()}
        except ProvisionError as exc:
            self._sections = {h: {"error": exc.message} for h in hosts}
        except Exception as exc:
            # Anything else is the hosts' error (WEB-001 errors), not a crash of the audit.
            self._sections = {h: {"error": f"portal health failed: {exc!r}"} for h in hosts}
        finally:
            self._done.set()

    def add_to(self, host: str, evidence: Mapping[str, Any]) -> Mapping[str, Any]:
        """The host's evidence with its portal section (waits for the checks to finish)."""
        self._done.wait()
        section = self._sections.get(host)
        return evidence if section is None else {**evidence, "portals": section}


# -- running -----------------------------------------------------------------------------


class _Collector:
    """Turns result events into host reports and commits them in small batches."""

    def __init__(
        self,
        records: ComplianceRecords,
        run_id: int,
        plan: AuditPlan,
        report: ProgressCallback,
        local: _PortalEvidence | None = None,
    ) -> None:
        self.local = local
        self.records = records
        self.run_id = run_id
        self.plan = plan
        self.by_host = {h.host: h for h in plan.hosts}
        self.report = report
        self.done: set[str] = set()
        #: Host -> the execution node its shard went to (hosts run from here: absent).
        self.node_of: dict[str, str] = {}
        self._pending: list[HostReport] = []
        self._last_flush = time.monotonic()
        #: Writes a batch no later host fills, FLUSH_SECONDS after its first report.
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        # Shards report on threads of their own: one batch is written at a time.
        self._writing = threading.Lock()

    def __call__(self, event: runner.PlaybookEvent) -> None:
        host = event.host
        if host not in self.by_host or host in self.done:
            return
        res = event.data.get("res") or {}
        if event.kind == "runner_on_ok":
            evidence = res.get("evidence")
            if isinstance(evidence, Mapping):
                self.add(host, evidence, HOST_REPORTED, "")
            else:
                self.add(host, None, HOST_ERROR, "the evidence module returned no evidence")
        elif event.kind == "runner_on_unreachable":
            self.add(host, None, HOST_UNREACHABLE, _short(res.get("msg")) or "unreachable")
        elif event.kind == "runner_on_failed":
            why = _short(res.get("msg")) or _short(res.get("module_stderr")) or "module failed"
            self.add(host, None, HOST_ERROR, why)

    def add(self, host: str, evidence: Mapping[str, Any] | None, status: str, message: str) -> None:
        if evidence is not None and self.local is not None and status == HOST_REPORTED:
            evidence = self.local.add_to(host, evidence)
        report = judge_host(
            self.by_host[host],
            evidence,
            status=status,
            message=message,
            waivers=self.plan.waivers,
            today=self.plan.today,
        )
        node = self.node_of.get(host)
        self.keep(report if node is None else replace(report, node=node))

    def keep(self, report: HostReport) -> None:
        """Count a host's report in and commit it with the next batch."""
        host, status = report.host, report.status
        with self._lock:
            self.done.add(host)
            self._pending.append(report)
            due = (
                len(self._pending) >= FLUSH_HOSTS
                or time.monotonic() - self._last_flush > FLUSH_SECONDS
            )
            if not due and self._timer is None:
                # A host that hangs (or the last ones of a slow run) must not keep the
                # reports that came before it out of the store: a crash or Ctrl-C then
                # would audit them again on resume.
                self._timer = threading.Timer(FLUSH_SECONDS, self._timed_flush)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.flush()
        self.report(
            AuditProgress(
                "host",
                self.run_id,
                len(self.plan.hosts),
                len(self.done),
                host,
                status,
                report.counts(),
                report.node,
            )
        )

    def flush(self) -> None:
        """Commit the reports waiting; a write that fails keeps them waiting, and raises."""
        with self._writing:
            with self._lock:
                batch, self._pending = self._pending, []
                self._last_flush = time.monotonic()
                timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()  # this batch is written now (a no-op from the timer itself)
            if batch:
                try:
                    self.records.add_host_reports(self.run_id, batch)
                except BaseException:
                    with self._lock:
                        self._pending[:0] = batch
                    raise

    def _timed_flush(self) -> None:
        """The timer's write: one that fails (the store busy) leaves its batch to the
        next write, at the latest the run's last, which raises if it fails too."""
        with contextlib.suppress(Exception):
            self.flush()

    def settle(
        self,
        names: Sequence[str],
        stats: Mapping[str, runner.HostStats] | None,
        problem: str | None,
    ) -> None:
        """Give each host of `names` still without a report one, never a pass or a fail.

        `stats` is the play recap of the run that had them (a host it counts as
        unreachable is unreachable, any other errored); None when that run did not
        come to its end (a node's shard that could not finish): its hosts were
        never reached, and are unreachable with `problem` as the reason.
        """
        for name in names:
            if name in self.done:
                continue
            host_stats = stats.get(name) if stats is not None else None
            if stats is None:
                self.add(name, None, HOST_UNREACHABLE, f"not run: {problem or 'no result'}")
            elif host_stats is not None and host_stats.unreachable:
                self.add(name, None, HOST_UNREACHABLE, "unreachable")
            else:
                self.add(name, None, HOST_ERROR, problem or "the audit did not run on this host")


def _short(value: Any, limit: int = 300) -> str:
    text = " ".join(str(value or "").split())
    return text[:limit]


def pulled_report(
    plan: HostPlan, newest: StoredApply | None, at: datetime
) -> tuple[HostReport, PullState]:
    """A pulled host's report at `at`: its newest pulled evidence while within its
    keep-last window, else no_report for every applicable control."""
    keep = plan.pull_keep or timedelta(0)
    reported_at = newest.collected_at if newest is not None else None
    usable = newest is not None and newest.results is not None
    within = usable and is_within(reported_at, at, keep)
    state = PullState(
        serial=newest.serial if newest is not None else None,
        reported_at=reported_at,
        keep=keep,
        within=within,
    )
    if within and newest is not None and newest.results is not None:
        report = HostReport(
            host=plan.host,
            status=HOST_REPORTED,
            role=plan.role,
            os_release=newest.os_release,
            place=dict(plan.place),
            collected_at=newest.collected_at,
            evidence_digest=newest.evidence_digest,
            message=f"pulled: bundle serial {newest.serial}",
            results=newest.results,
        )
        return report, state
    days = f"{keep.total_seconds() / 86400:g}"
    if reported_at is None:
        why = f"pull mode: no report yet (keep-last {days} days)"
    elif not usable:
        why = f"pull mode: its report of {reported_at:%Y-%m-%d %H:%M} UTC held no evidence"
    else:
        why = (
            f"pull mode: silent since {reported_at:%Y-%m-%d %H:%M} UTC, "
            f"past its keep-last window of {days} days"
        )
    return judge_host(plan, None, status=HOST_NO_REPORT, message=why), state


def _add_pulled(
    records: ComplianceRecords, run_id: int, plans: Sequence[HostPlan], collector: _Collector
) -> None:
    """Judge the pulled hosts from the store (no SSH), as of the run's start."""
    if not plans:
        return
    at = records.get_run(run_id).started_at
    pulls = PullRecords(records.store)
    for start in range(0, len(plans), 500):
        part = plans[start : start + 500]
        newest = pulls.newest([p.host for p in part])
        judged = [pulled_report(plan, newest.get(plan.host), at) for plan in part]
        # Each host's pull state is written before its report can be: a run that
        # crashes between the two never has a pulled host recorded without it.
        pulls.set_compliance_pull(run_id, {report.host: state for report, state in judged})
        for report, _ in judged:
            collector.keep(report)
    collector.flush()


def _evidence_inventory(
    loaded: LoadedInventory, hosts: Sequence[str], keys: Mapping[str, str]
) -> dict[str, Any]:
    """The inventory slice of `hosts`, each told which evidence request is its own."""
    inventory = slice_inventory(loaded.inventory, hosts, loaded.folder)
    for name in hosts:
        inventory["all"]["hosts"][name]["provision_evidence_key"] = keys[name]
    return inventory


def _evidence_vars(plan: AuditPlan, hosts: Sequence[str]) -> dict[str, Any]:
    """The extra vars of a run over `hosts`: the evidence requests they use, only those."""
    wanted = {h.host: h.request_key for h in plan.hosts}
    requests = plan.requests
    return {"provision_evidence_requests": {wanted[h]: requests[wanted[h]] for h in hosts}}


def _run_pushed(
    settings: Settings,
    plan: AuditPlan,
    run_id: int,
    names: Sequence[str],
    loaded: LoadedInventory,
    collector: _Collector,
    cancel: Callable[[], bool] | None,
    nodes: ExecutionNodes | None = None,
) -> bool:
    """Collect the pushed hosts' evidence over SSH; True when the run was cancelled.

    With `nodes`, the hosts a node serves are audited by that node (its shard,
    through `rollout.shards` as a rollout's are) while the control node audits
    the rest; every event comes to the same collector and store.
    """
    playbook = settings.playbooks_path / PLAYBOOK
    private = runner.new_run_dir(settings.state_path, "compliance", str(run_id))
    keys = {h.host: h.request_key for h in plan.hosts}
    groups = shards.split(nodes, names, loaded.inventory)
    local = groups.pop(None, [])
    shard_set: shards.ShardSet | None = None
    if groups:
        assert nodes is not None
        forks = {"forks": settings.forks}
        shard_set = shards.ShardSet(settings, nodes, playbook, private, forks, extravars={})
        for node, hosts in groups.items():
            assert node is not None
            collector.node_of.update(dict.fromkeys(hosts, node))
            shard_set.start(
                node,
                hosts,
                _evidence_inventory(loaded, hosts, keys),
                collector,
                extravars=_evidence_vars(plan, hosts),
            )
    canceled = False
    try:
        if local:
            inventory = _evidence_inventory(loaded, local, keys)
            extravars = _evidence_vars(plan, local)
            # Vaulted variables (a become password, say) open with the vault password,
            # handed over as a file name outside the run's folder, as rollouts do.
            # What the vault opens, and secret-named values, are masked in all Ansible says.
            with secrets.vault_for_run(settings) as vault:
                result = runner.run_playbook(
                    playbook,
                    workspace=settings.workspace,
                    private_data_dir=private,
                    inventory=inventory,
                    extravars=extravars,
                    masker=secrets.inventory_masker(vault, inventory, extravars, playbook),
                    state_path=settings.state_path,
                    forks=settings.forks,
                    on_event=collector,
                    cancel=cancel,
                    keep_events=False,
                    fact_cache_type="memory",
                    vault_password_file=vault,
                )
            canceled = result.status == "canceled"
            if not canceled:
                collector.settle(local, result.hosts, None)
    finally:
        if shard_set is not None:
            shard_set.join()
    for outcome in shard_set.outcomes if shard_set is not None else []:
        finished = outcome.result is not None and outcome.result.state == "done"
        stats = outcome.result.hosts if finished and outcome.result is not None else None
        collector.settle(outcome.hosts, stats, outcome.problem)
    return canceled


def run_audit(
    settings: Settings,
    plan: AuditPlan,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    on_created: Callable[[int], None] | None = None,
    nodes: ExecutionNodes | None = None,
) -> AuditResult:
    """Record a run, collect and judge every host's evidence, and finish the run.

    Read-only on the hosts. Returns when every host has a report (or the run was
    cancelled: the run is then `interrupted` and keeps the hosts it had). With
    `nodes` (`provision.nodes.links.for_run`), each execution node audits the
    hosts it serves; a node's hosts whose shard could not finish (the node down,
    the link broken) are unreachable with the reason, never judged.
    """
    secrets.require_vault_file(settings)  # a missing one is refused before a run is recorded
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run_id = records.create_run(
            env=plan.env,
            selection=plan.selection,
            standard_id=plan.standard.id,
            standard_version=plan.standard.version,
            standard_digest=plan.standard.digest,
            waivers_digest=plan.waivers.digest,
            user=current_user(),
            node=socket.gethostname(),
            git_revision=git_revision(settings.workspace, settings.state_path),
            pid=os.getpid(),
        )
        if on_created:
            on_created(run_id)
        return _audit_into(settings, records, run_id, plan, on_progress, cancel, nodes)


def continue_audit(
    settings: Settings,
    run: ComplianceRunInfo,
    plan: AuditPlan,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    nodes: ExecutionNodes | None = None,
) -> AuditResult:
    """Audit `plan`'s hosts into the unfinished run `run`, and finish it as `run_audit` does.

    `plan` holds only the hosts the run has no report of (`provision.compliance.
    resume` decides which, and whether the run may be continued). The run is
    taken over first (refused if another resume has it), then what its dead
    process left running is stopped. Its
    aggregates are written at the end for all its hosts, old and new.
    """
    secrets.require_vault_file(settings)
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        # Taken over first: a resume refused here (another one drives the run) must
        # not stop what that one runs, whose folders bear the run's mark too.
        records.reopen_run(run.id, was=run, pid=os.getpid(), node=socket.gethostname())
        if run.status == "crashed":
            try:
                stop_leftovers(settings.state_path, run.id)
            except BaseException:
                records.finish_run(run.id, "crashed")  # still resumable
                raise
        return _audit_into(settings, records, run.id, plan, on_progress, cancel, nodes)


def stop_leftovers(state_path: Path, run_id: int) -> None:
    """Stop the Ansible processes a dead audit of run `run_id` left on this control node.

    Each audit of the run ran in a private data dir of its own
    (`<state>/runs/<time>-compliance-<run>-<id>`) whose name marks its processes
    (`provision.infra.processes`): ansible-playbook and its workers outlive a
    killed provision, and must not report into the run beside its resume.
    """
    folder = state_path / "runs"
    for path in sorted(folder.glob(f"*-compliance-{run_id}-*")) if folder.is_dir() else []:
        stop_run_processes(str(path))


def _audit_into(
    settings: Settings,
    records: ComplianceRecords,
    run_id: int,
    plan: AuditPlan,
    on_progress: ProgressCallback | None,
    cancel: Callable[[], bool] | None,
    nodes: ExecutionNodes | None,
) -> AuditResult:
    """Collect and judge `plan`'s hosts into run `run_id` (running), then finish the run."""
    report = on_progress or (lambda _p: None)
    loaded, _ = select_targets(settings.inventory_path, plan.selection)
    everyone = [h.host for h in plan.hosts]
    # Hosts in pull mode are never contacted: their evidence is what they reported.
    pulled = [h for h in plan.hosts if h.pull_keep is not None]
    names = [h.host for h in plan.hosts if h.pull_keep is None]
    report(AuditProgress("started", run_id, len(everyone)))
    local = _PortalEvidence(
        settings,
        [h.host for h in plan.hosts if "portals" in h.control_node and h.pull_keep is None],
    )
    collector = _Collector(records, run_id, plan, report, local)
    status = "running"
    try:
        _add_pulled(records, run_id, pulled, collector)
        canceled = bool(names) and _run_pushed(
            settings, plan, run_id, names, loaded, collector, cancel, nodes
        )
        status = "interrupted" if canceled else "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException:
        status = "crashed"
        raise
    finally:
        try:
            collector.flush()
        except BaseException:
            # Reports that could not be written: the run must stay resumable, so that
            # a resume audits their hosts again (a `done` run is never resumed).
            status = "crashed"
            raise
        finally:
            # The run's aggregates come from all its host rows: a resumed run's
            # hosts recorded before count as much as the ones just audited.
            records.finish_run(run_id, status)
            runner.prune_run_dirs(settings.state_path, "compliance")
    report(AuditProgress("finished", run_id, len(everyone), len(collector.done)))
    return AuditResult(records.get_run(run_id), tuple(records.host_rows(run_id)))


def audit(
    settings: Settings,
    selection: str = "",
    *,
    standard: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> AuditResult:
    """Plan and run an audit in one call (what a script would use)."""
    return run_audit(
        settings, plan_audit(settings, selection, standard=standard), on_progress=on_progress
    )
