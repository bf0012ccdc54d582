"""Resume a compliance run that did not finish: audit only the hosts it has no report of.

    plan = plan_resume(settings)            # the env's newest unfinished run
    result = resume_audit(settings, plan, on_progress=print)

A run cancelled (`interrupted`) or whose control node process died (`crashed`,
or still `running` with its process gone from this node) keeps every host it
recorded. At fleet scale re-auditing all of them is hours lost, so a resume
plans the run's selection again from the inventory and audits, into the same
run, the hosts of it that have no host row yet; hosts already recorded are not
contacted again, pulled hosts already judged are kept.

A run is continued only where its results stay one judgement: the same
standard (id, version, digest) and the same waivers (digest), judged as of the
day the run started. Anything else is refused before the store changes, with a
new `compliance run` as the way on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from provision.compliance.service import (
    AuditPlan,
    AuditResult,
    HostPlan,
    ProgressCallback,
    continue_audit,
    plan_audit,
)
from provision.errors import InputError, StateError
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.model import ComplianceRunInfo
from provision.model.standards.model import Standard
from provision.rollout.shards import ExecutionNodes
from provision.settings import Settings

#: Statuses of a run that may be resumed.
RESUMABLE = ("interrupted", "crashed")


@dataclass(frozen=True)
class ResumePlan:
    """What a resume does: the run, and the plan of the hosts it still lacks."""

    run: ComplianceRunInfo
    #: The run's selection planned again, with only the hosts that have no report.
    plan: AuditPlan
    #: Hosts of the selection (as planned now) and how many of them the run recorded.
    planned: int
    recorded: int

    @property
    def remaining(self) -> int:
        return len(self.plan.hosts)


def remaining_hosts(planned: Sequence[HostPlan], recorded: Collection[str]) -> tuple[HostPlan, ...]:
    """The hosts of `planned` without a report among `recorded`, in the plan's order."""
    done = set(recorded)
    return tuple(h for h in planned if h.host not in done)


def _new_run(run: ComplianceRunInfo) -> str:
    scope = f" {run.selection}" if run.selection else ""
    return f"start a new audit: provision compliance run{scope}"


def check_resumable(run: ComplianceRunInfo, *, pruned: bool = False) -> None:
    """StateError unless `run` is one a resume may continue (its status, its detail)."""
    if run.status == "done":
        raise StateError(
            f"compliance run {run.id} is done: every host of it has a report",
            hint=_new_run(run),
        )
    if run.status == "running":
        raise StateError(
            f"compliance run {run.id} is still running (on {run.node})",
            hint="wait for it, or stop it with Ctrl-C where it runs; a run whose "
            "process died elsewhere is resumed on the node that ran it",
        )
    if run.status not in RESUMABLE:
        raise StateError(f"compliance run {run.id} is {run.status}", hint=_new_run(run))
    if pruned:
        raise StateError(
            f"the host detail of compliance run {run.id} was pruned: "
            "which hosts it recorded is gone",
            hint=_new_run(run),
        )


def check_same_judgement(
    run: ComplianceRunInfo, standard: Standard, waivers_digest: str | None, waivers_name: str = ""
) -> None:
    """StateError unless `standard` and the waivers are the ones the run was judged by.

    A run's hosts are one judgement: hosts judged by another text of the standard,
    or other waivers, would make its scores and totals a mix nobody can read.
    """
    was = (run.standard_id, run.standard_version, run.standard_digest)
    now = (standard.id, standard.version, standard.digest)
    if was != now:
        what = (
            f"version {run.standard_version}, now {standard.version}"
            if run.standard_version != standard.version
            else f"digest {run.standard_digest[:12]}, now {standard.digest[:12]}"
        )
        raise StateError(
            f"compliance run {run.id} was judged by standard {run.standard_id} "
            f"{what} in standards/: its hosts cannot be judged alike",
            hint=_given_or_new(run, "--standard FILE"),
        )
    if run.waivers_digest != waivers_digest:

        def shown(digest: str | None) -> str:
            return "no waivers file" if digest is None else f"digest {digest[:12]}"

        raise StateError(
            f"{waivers_name or 'waivers.yml'} changed since compliance run {run.id} "
            f"(then {shown(run.waivers_digest)}, now {shown(waivers_digest)}): "
            "its hosts cannot be judged alike",
            hint=_given_or_new(run, "--waivers FILE"),
        )


def _given_or_new(run: ComplianceRunInfo, option: str) -> str:
    return f"if run {run.id} was given {option}, give resume the same; else " + _new_run(run)


def find_run(records: ComplianceRecords, env: str, run_id: int | None) -> ComplianceRunInfo:
    """Run `run_id`, or the newest unfinished run of `env`; StateError when there is none."""
    if run_id is not None:
        named = records.get_run(run_id)
        # The run's hosts, its execution nodes and its reports are all of its own
        # environment: resumed from another, they would be looked up in the wrong one.
        if named.env != env:
            raise StateError(
                f"compliance run {named.id} is of environment {named.env}, not {env}",
                hint=f"resume it there: provision compliance resume {named.id} --env {named.env}",
            )
        return named
    run = records.unfinished_run(env)
    if run is None:
        raise StateError(
            f"no unfinished compliance run in environment {env}: nothing to resume",
            hint="list them with provision compliance runs",
        )
    # An unfinished run older than the latest finished one is not what "resume"
    # means by default: its hosts' new evidence would rank behind that later run.
    later = records.latest_run(env)
    if later is not None and later.id > run.id:
        raise StateError(
            f"the newest unfinished compliance run of environment {env}, {run.id}, "
            f"is older than run {later.id}, which finished",
            hint=f"to continue it all the same, name it: provision compliance resume {run.id}",
        )
    return run


def plan_resume(
    settings: Settings,
    run_id: int | None = None,
    *,
    standard: str | None = None,
    waivers: Path | None = None,
) -> ResumePlan:
    """Decide what resuming run `run_id` (default: the env's newest unfinished) audits.

    `standard` and `waivers` are `compliance run`'s options of the same names, for a
    run that was given them (default: the run's standard by id from standards/, and
    waivers.yml); what they name must still be what the run was judged by.

    Changes nothing: every refusal (the run done, still running, pruned; the
    standard or the waivers changed since) is a StateError before the store or
    any host is touched.
    """
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run = find_run(records, settings.env, run_id)
        check_resumable(run, pruned=records.pruned_at(run.id) is not None)
        try:
            # Judged as of the day the run started, as its first hosts were (waiver expiry).
            plan = plan_audit(
                settings,
                run.selection,
                standard=standard or run.standard_id,
                waivers=waivers,
                today=run.started_at.date(),
            )
        except InputError as exc:
            if standard is not None or "no standard with id" not in exc.message:
                raise
            raise StateError(
                f"compliance run {run.id} was judged by standard {run.standard_id}, "
                "which is no longer in standards/",
                hint=_new_run(run),
            ) from None
        check_same_judgement(
            run, plan.standard, plan.waivers.digest, str(waivers) if waivers else ""
        )
        recorded = records.host_names(run.id)
    left = remaining_hosts(plan.hosts, recorded)
    return ResumePlan(
        run=run,
        plan=replace(plan, hosts=left),
        planned=len(plan.hosts),
        recorded=len(plan.hosts) - len(left),
    )


def resume_audit(
    settings: Settings,
    resume: ResumePlan,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    nodes: ExecutionNodes | None = None,
) -> AuditResult:
    """Audit the hosts `resume` left into its run, and finish the run (done, or
    interrupted again on a cancel)."""
    return continue_audit(
        settings,
        resume.run,
        resume.plan,
        on_progress=on_progress,
        cancel=cancel,
        nodes=nodes,
    )
