"""`provision compliance`: audit hosts against the standards, drift, reports, fixes."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import (
    env_option,
    execution_nodes,
    local_option,
    selection_argument,
    strategy_option,
)
from provision.errors import ExitStatus, InputError
from provision.model.words import plural

if TYPE_CHECKING:  # imported when a command runs: `provision --help` stays quick
    from provision.compliance.drift import DriftReport
    from provision.compliance.service import AuditProgress, AuditResult
    from provision.infra.store.compliance_records import HostRow
    from provision.model.compliance.model import ComplianceRunInfo, HostReport
    from provision.model.scoring import Rollup


@click.group()
def compliance() -> None:
    """Check hosts against the published standards: audit, drift, reports, fixes.

    A run is read-only: one module call per host collects the evidence its
    controls need, and provision judges every control on the control node.
    Runs are recorded in the state store; see docs/compliance.md.

    \b
    Example:
      provision compliance run district:gazipur
      provision compliance drift --since 2026-11-27
      provision compliance fix 12 --control SSH-002
    """


# -- run ------------------------------------------------------------------------------


class AuditDisplay:
    """Draws an audit's progress: a bar on a terminal, one plain line per host elsewhere."""

    def __init__(self, total: int, *, live: bool, quiet: bool = False) -> None:
        self.total = total
        self.live = live
        self.quiet = quiet
        self._progress: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> AuditDisplay:
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("auditing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                console=console.err,
                transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def __call__(self, p: AuditProgress) -> None:
        with self._lock:
            if p.kind == "started":
                if not self.quiet:
                    console.err.print(
                        f"compliance run {p.run_id}: auditing {plural(p.total, 'host')}",
                        markup=False,
                    )
            elif p.kind == "host":
                if self._progress is not None:
                    self._progress.update(self._task, completed=p.done, description=p.host or "")
                elif not self.quiet:
                    counts = p.counts
                    console.err.print(
                        f"  {p.host} {p.status}: {counts.get('pass', 0)} pass, "
                        f"{counts.get('fail', 0)} fail, {counts.get('error', 0)} error"
                        + (f" (on node {p.node})" if p.node else ""),
                        markup=False,
                    )


@contextmanager
def _ctrl_c(stop: threading.Event) -> Iterator[None]:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _percent(score: float | None) -> str:
    return "-" if score is None else f"{score * 100:.0f}%"


_HOST_STYLE = {
    "reported": "",
    "unreachable": "magenta",
    "error": "bold red",
    "no_report": "magenta",
}


def ran_on(row: HostRow) -> str:
    """Where a host's audit ran, as `runs show` says it for rollouts."""
    return f"node {row.node}" if row.node else "control node"


def hosts_table(rows: list[HostRow], title: str | None = None) -> Table:
    """The run's hosts; with a "ran on" column when execution nodes ran some of them."""
    table = Table(title=title)
    for column in ("host", "role", "status", "score", "pass", "fail", "error", "other", "verdict"):
        table.add_column(column, justify="right" if column in ("score", "pass") else "left")
    sharded = any(r.node for r in rows)
    if sharded:
        table.add_column("ran on")
    for r in rows:
        other = sum(r.counts[s] for s in ("waived", "unreachable", "no_report"))
        if r.status != "reported":
            verdict = f"[magenta]{r.message or r.status}[/]"
        elif r.compliant:
            verdict = "[green]compliant[/]"
        elif r.critical_failures:
            verdict = "[bold red]critical: " + ", ".join(r.critical_failures) + "[/]"
        else:
            verdict = "[red]not compliant[/]"
        style = _HOST_STYLE.get(r.status, "")
        table.add_row(
            r.host,
            r.role or "-",
            f"[{style}]{r.status}[/]" if style else r.status,
            _percent(r.score),
            str(r.counts["pass"]),
            str(r.counts["fail"]),
            str(r.counts["error"]),
            str(other),
            verdict,
            *([ran_on(r)] if sharded else []),
        )
    return table


#: The statuses `--failing` lists: a control that was judged and did not pass.
BAD_STATUSES = ("fail", "error")


def failing_controls_table(reports: Iterable[HostReport], title: str | None = None) -> Table:
    """One line per control that failed or errored somewhere: how many hosts, and why.

    The reason shown is the first failing host's (hosts in name order), which is
    what a person reads first; `--host` gives every host's own.
    """
    from provision.model.standards.model import SEVERITIES

    severity: dict[str, str] = {}
    hosts: dict[str, list[str]] = {}
    why: dict[str, str] = {}
    reported = 0
    for report in reports:
        reported += 1
        for r in report.results:
            if r.status in BAD_STATUSES:
                severity[r.control] = r.severity
                hosts.setdefault(r.control, []).append(report.host)
                why.setdefault(r.control, r.message)
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    table = Table(title=title)
    for column in ("control", "severity", "hosts", "why (first host)"):
        table.add_column(column, justify="right" if column == "hosts" else "left")
    for control in sorted(hosts, key=lambda c: (rank.get(severity[c], 9), -len(hosts[c]), c)):
        style = _SEVERITY_STYLE.get(severity[control], "")
        table.add_row(
            control,
            f"[{style}]{severity[control]}[/]" if style else severity[control],
            f"{len(hosts[control])} of {reported}",
            _short(why[control], 90),
        )
    return table


_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow"}


def run_json(run: ComplianceRunInfo) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "env": run.env,
        "selection": run.selection,
        "standard": {
            "id": run.standard_id,
            "version": run.standard_version,
            "digest": run.standard_digest,
        },
        "waivers_digest": run.waivers_digest,
        "user": run.user,
        "node": run.node,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "git_revision": run.git_revision,
        "hosts": run.hosts,
    }


def row_json(r: HostRow) -> dict[str, Any]:
    return {
        "host": r.host,
        "status": r.status,
        "role": r.role,
        "place": r.place,
        "score": r.score,
        "compliant": r.compliant,
        "critical_failures": list(r.critical_failures),
        "counts": r.counts,
        "collected_at": r.collected_at.isoformat() if r.collected_at else None,
        "message": r.message,
        # The execution node that ran the host (None: the control node).
        "node": r.node,
    }


def _threshold(text: str) -> float:
    value = text.strip().rstrip("%")
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 100:
        raise InputError(
            f"--threshold {text!r} is not a percentage from 0 to 100", hint="e.g. --threshold 90"
        )
    return number


def _outcome_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """What `run` and `resume` do with a finished audit: its threshold, drift check,
    reports and output (see `_conclude`)."""
    for option in reversed(
        [
            click.option(
                "--threshold",
                metavar="PCT",
                default="100",
                show_default=True,
                help="Exit 6 if a reached host scores below PCT (or fails a critical control).",
            ),
            click.option(
                "--fail-on-drift",
                is_flag=True,
                help="Exit 6 if a control got worse (into fail/error/no_report) since the "
                "host's last evidence; a repair is not drift.",
            ),
            click.option(
                "--report-dir",
                type=click.Path(path_type=Path, file_okay=False),
                help="Also write the whole run's reports into this folder.",
            ),
            click.option(
                "--format",
                "formats",
                default="json,html",
                show_default=True,
                help="Report formats for --report-dir (json, junit, csv, html; comma-separated).",
            ),
            click.option(
                "--json", "as_json", is_flag=True, help="Print the run and every host as JSON."
            ),
        ]
    ):
        command = option(command)
    return command


@compliance.command("run")
@selection_argument()
@click.option("--standard", metavar="ID|FILE", help="The standard (default: the only one).")
@click.option(
    "--waivers",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The waivers file (default: waivers.yml in the workspace).",
)
@_outcome_options
@local_option
@env_option
@pass_app
def run_command(
    app: AppContext,
    selection: str,
    standard: str | None,
    waivers: Path | None,
    threshold: str,
    fail_on_drift: bool,
    report_dir: Path | None,
    formats: str,
    as_json: bool,
    local: bool,
) -> None:
    """Audit SELECTION (default: every host) against the standard, read-only.

    Every result is recorded as it arrives. Exit codes: 0 every reached host at
    or above --threshold (default 100: fully compliant); 6 a host below it, a
    failing critical control, or (with --fail-on-drift) a control newly failing
    since that host's last evidence (whatever run held it); otherwise 4 if the
    evidence of some hosts could not be collected, 5 if some hosts were
    unreachable (or not run: an execution node down).

    Hosts an execution node serves are audited from that node, the rest from
    here, all in one run (docs/nodes.md); --local audits every host from here.

    \b
    Example:
      provision compliance run
      provision compliance run district:gazipur,role:lab_pc --threshold 90
      provision compliance run --report-dir reports/ --format json,html,junit
      provision compliance run --fail-on-drift --json > today.json
    """
    from provision.compliance.service import plan_audit, run_audit
    from provision.reports.service import parse_formats

    pct = _threshold(threshold)
    wanted = parse_formats(formats)  # a bad one is refused before anything runs
    plan = plan_audit(app.settings, selection, standard=standard, waivers=waivers)
    # A node that does not answer leaves its hosts not run (unreachable), not the audit.
    pushed = [h.host for h in plan.hosts if h.pull_keep is None]
    nodes = execution_nodes(app.settings, pushed, local, down_ok=True)
    stop = threading.Event()
    display = AuditDisplay(len(plan.hosts), live=console.is_interactive() and not as_json)
    with display, _ctrl_c(stop):
        result = run_audit(app.settings, plan, on_progress=display, cancel=stop.is_set, nodes=nodes)
    _conclude(app, result, pct, fail_on_drift, report_dir, wanted, as_json)


def _conclude(
    app: AppContext,
    result: AuditResult,
    pct: float,
    fail_on_drift: bool,
    report_dir: Path | None,
    wanted: tuple[str, ...],
    as_json: bool,
) -> None:
    """What `run` and `resume` do with a finished audit: drift, reports, notices, the
    table or JSON, and the exit status (the whole run's, not the last audit's)."""
    from provision.reports.service import write_run_reports

    settings = app.settings
    notify = bool(settings.notify_webhook or settings.notify_email_to)
    drift_report = _drift_after(app, result) if fail_on_drift or notify else None
    written = (
        write_run_reports(settings, result.run, report_dir, wanted).paths if report_dir else []
    )
    if notify:
        _notify(app, result, drift_report, written)
    below = result.below(pct)
    unreachable = result.hosts_with("unreachable")
    silent = result.hosts_with("no_report")
    if as_json:
        console.print_json(
            {
                "run": run_json(result.run),
                "hosts": [row_json(r) for r in result.hosts],
                "below_threshold": below,
                "threshold": pct,
                "new_drift": None
                if drift_report is None
                else [c.as_dict() for c in drift_report.new_drift],
                "repaired": None
                if drift_report is None
                else [c.as_dict() for c in drift_report.repaired],
                "reports": [str(p) for p in written],
            }
        )
    else:
        console.out.print(hosts_table(list(result.hosts)))
        reported = result.hosts_with("reported")
        compliant = sum(1 for r in result.hosts if r.compliant)
        console.out.print(
            f"compliance run {result.run.id} {result.run.status}: {compliant} of "
            f"{len(result.hosts)} hosts compliant, {len(reported)} reported, "
            f"{len(unreachable)} unreachable"
            + (f", {len(silent)} pulled hosts silent past their window" if silent else ""),
            markup=False,
        )
        for path in written:
            console.out.print(f"report: {path}", markup=False)
        if result.run.status == "interrupted":
            console.out.print(
                f"continue with: provision compliance resume {result.run.id}", markup=False
            )
        if drift_report is not None and drift_report.new_drift:
            console.out.print(
                "newly failing since each host's last evidence: "
                + ", ".join(f"{c.host} {c.control}" for c in drift_report.new_drift),
                markup=False,
            )
        if drift_report is not None and drift_report.repaired:
            console.out.print(
                "repaired since each host's last evidence: "
                + ", ".join(f"{c.host} {c.control}" for c in drift_report.repaired),
                markup=False,
            )
    new_drift = fail_on_drift and drift_report is not None and bool(drift_report.new_drift)
    status = result.exit_status(pct, new_drift=new_drift)
    if status != ExitStatus.SUCCESS:
        raise click.exceptions.Exit(int(status))


@compliance.command("resume")
@click.argument("run_id", metavar="[RUN]", type=int, required=False)
@click.option(
    "--standard",
    metavar="ID|FILE",
    help="The standard, as given to the run (default: the run's, by id).",
)
@click.option(
    "--waivers",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The waivers file, as given to the run (default: waivers.yml in the workspace).",
)
@_outcome_options
@local_option
@env_option
@pass_app
def resume_command(
    app: AppContext,
    run_id: int | None,
    standard: str | None,
    waivers: Path | None,
    threshold: str,
    fail_on_drift: bool,
    report_dir: Path | None,
    formats: str,
    as_json: bool,
    local: bool,
) -> None:
    """Finish an interrupted or crashed audit RUN: audit only the hosts it has no report of.

    RUN defaults to the environment's newest unfinished compliance run (unless
    a later run finished: name the older one then). A run given --standard FILE
    or --waivers FILE is resumed with the same. Its
    selection is planned again from the inventory; hosts the run recorded are
    kept and not contacted again (pulled hosts already judged too), the others
    are audited into the same run, which then ends as an audit does: done, with
    its totals and roll-ups over all its hosts (or interrupted again on Ctrl-C).

    Refused (exit 3), with nothing changed, when the run is done or still
    running, or when the standard (id, version, text) or waivers.yml is no
    longer what the run was judged by: start a new `provision compliance run`.

    Exit codes are those of `compliance run`, for the whole run: 0, 6 below
    --threshold (or new drift with --fail-on-drift), 4 evidence not collected,
    5 hosts unreachable, 130 interrupted.

    \b
    Example:
      provision compliance resume
      provision compliance resume 41 --report-dir reports/
    """
    from provision.compliance.resume import plan_resume, resume_audit
    from provision.reports.service import parse_formats

    pct = _threshold(threshold)
    wanted = parse_formats(formats)
    resume = plan_resume(app.settings, run_id, standard=standard, waivers=waivers)
    pushed = [h.host for h in resume.plan.hosts if h.pull_keep is None]
    nodes = execution_nodes(app.settings, pushed, local, down_ok=True) if pushed else None
    if not as_json:
        console.err.print(
            f"compliance run {resume.run.id} ({resume.run.status}): "
            f"{resume.recorded} of {plural(resume.planned, 'host')} recorded, resuming",
            markup=False,
        )
    stop = threading.Event()
    display = AuditDisplay(resume.remaining, live=console.is_interactive() and not as_json)
    with display, _ctrl_c(stop):
        result = resume_audit(
            app.settings, resume, on_progress=display, cancel=stop.is_set, nodes=nodes
        )
    _conclude(app, result, pct, fail_on_drift, report_dir, wanted, as_json)


def _drift_after(app: AppContext, result: AuditResult) -> DriftReport | None:
    from provision.compliance.drift import drift
    from provision.errors import StateError

    try:
        return drift(app.settings, run=result.run.id)
    except StateError:
        return None  # the first run: nothing to compare with


def _notify(
    app: AppContext, result: AuditResult, report: DriftReport | None, written: list[Path]
) -> None:
    """Tell the configured channels what got worse and what was repaired (a failing one warns)."""
    from provision.compliance.notice import compliance_notice
    from provision.compliance.notify import notify_compliance

    html = [p for p in written if p.suffix == ".html"]
    notice = compliance_notice(result, report, (html or written)[0] if written else None)
    for warning in notify_compliance(app.settings, notice):
        console.err.print(f"warning: {warning}", markup=False)


# -- drift ----------------------------------------------------------------------------


def _short(value: Any, limit: int = 60) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@compliance.command("drift")
@click.option("--since", metavar="RUN|DATE", help="Compare with this run, or the last before DATE.")
@click.option("--run", "run_id", type=int, metavar="RUN", help="The later run (default: latest).")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
@env_option
@pass_app
def drift_command(app: AppContext, since: str | None, run_id: int | None, as_json: bool) -> None:
    """What changed on each host of the latest run (or --run) since its own last evidence.

    Each host is compared with its newest earlier report with evidence, from
    any finished run of the same standard whatever that run's selection; with
    --since, its last evidence as of that run or date. A change is a different
    status, or the same status with a different actual value, and has a
    direction: worse (newly failing: drift), repaired, or other. Exit 6 if
    something is newly failing; a repair alone is not drift (exit 0).

    \b
    Example:
      provision compliance drift
      provision compliance drift --since 12
      provision compliance drift --since 2026-11-27 --json
    """
    from provision.compliance.drift import drift

    report = drift(app.settings, since=since, run=run_id)
    if as_json:
        console.print_json(report.as_dict())
    else:
        since = ", ".join(str(i) for i in report.compared_with) or "none: every host is new"
        table = Table(
            title=f"drift of run {report.run.id}, each host against its last evidence "
            f"(runs {since})"
        )
        for column in (
            "host",
            "control",
            "severity",
            "direction",
            "change",
            "since run",
            "before",
            "now",
            "message",
        ):
            table.add_column(column)
        for c in report.changes:
            if c.kind == "status":
                change = f"{c.before} → {c.after}"
            else:
                change = f"{c.after}, actual changed"
            table.add_row(
                c.host,
                c.control,
                c.severity,
                c.direction,
                change,
                str(c.since_run or report.since.id),
                _short(c.before_actual),
                _short(c.after_actual),
                _short(c.message, 80),
                style="red" if c.is_new_drift else ("green" if c.is_repaired else None),
            )
        console.out.print(table)
        for label, names in (("new hosts", report.added_hosts), ("gone", report.removed_hosts)):
            if names:
                console.out.print(f"{label}: {', '.join(names)}", markup=False)
        console.out.print(
            f"{plural(len(report.changes), 'change')} on {plural(len(report.hosts()), 'host')}: "
            f"{len(report.new_drift)} newly failing (drift), {len(report.repaired)} repaired",
            markup=False,
        )
    if report.new_drift:
        raise click.exceptions.Exit(int(ExitStatus.BELOW_THRESHOLD))


# -- fix --------------------------------------------------------------------------------


@compliance.command("fix")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--control", metavar="ID", help="Fix only this control.")
@click.option("--yes", is_flag=True, help="Start without showing the plan for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the rollout and the repairs as JSON.")
@strategy_option
@pass_app
def fix_command(
    app: AppContext, run_id: int, control: str | None, yes: bool, as_json: bool
) -> None:
    """Enforce RUN's failing controls on the hosts they failed on, then audit them again.

    It runs site.yml with only the failing controls' tags (see `provision
    rollout`), then audits the hosts it touched (a recorded compliance run)
    and says per control and host whether it is repaired. Controls no role
    enforces (hardware) are listed as not fixable. Hosts in pull mode are left
    out, with one line naming them: they get the fix through their next
    bundle (docs/pull.md). Exit codes: 0 every control
    repaired; 6 some control still not passing (named); 4 / 5 the rollout
    failed on / could not reach a host (its controls are not repaired
    either); 130 interrupted (no audit then).

    \b
    Example:
      provision compliance fix 12
      provision compliance fix 12 --control SSH-002 --yes
    """
    from provision.cli.rollout import Display, _confirm, _print_result, rollout_exit
    from provision.cli.rollout import _ctrl_c as rollout_ctrl_c
    from provision.cli.runs import run_json as rollout_json
    from provision.compliance.fix import plan_fix, prepare_fix, verify_fix
    from provision.rollout import StopSignal, run_rollout

    plan = plan_fix(app.settings, run_id, control)
    for control_id, hosts in plan.not_fixable.items():
        console.err.print(
            f"not fixable by a role: {control_id} on {', '.join(hosts)}", markup=False
        )
    if plan.pulled:
        console.err.print(
            f"left out, in pull mode (no SSH to them): {', '.join(plan.pulled)}; "
            "they get the fix through their next bundle (provision bundle build, then publish)",
            markup=False,
        )
    if plan.rollout is None:
        console.err.print(f"compliance run {run_id}: nothing to fix", markup=False)
        return
    for control_id, hosts in plan.failing.items():
        console.err.print(f"fixing {control_id} on {', '.join(hosts)}", markup=False)
    rollout = plan.rollout
    _confirm(rollout, yes)
    prepare_fix(app.settings, plan)
    stop = StopSignal()
    display = Display(len(rollout.hosts), live=console.is_interactive() and not as_json)
    with display, rollout_ctrl_c(stop, display):
        result = run_rollout(app.settings, rollout, on_progress=display, stop=stop)
    if not as_json:
        _print_result(result)
    status = rollout_exit(result, stop)
    if status == ExitStatus.INTERRUPTED:
        if as_json:
            console.print_json({"rollout": rollout_json(result.run, result.waves, result.results)})
        raise click.exceptions.Exit(int(status))
    audit_display = AuditDisplay(
        len(plan.hosts), live=console.is_interactive() and not as_json, quiet=as_json
    )
    with audit_display:
        verdict = verify_fix(app.settings, plan, on_progress=audit_display)
    missed = verdict.not_repaired
    if as_json:
        console.print_json(
            {
                "rollout": rollout_json(result.run, result.waves, result.results),
                "audit": verdict.audit.run_id,
                "controls": [r.as_dict() for r in verdict.repairs],
                "not_repaired": [r.as_dict() for r in missed],
                "pulled": list(plan.pulled),
            }
        )
    else:
        repaired = [r for r in verdict.repairs if r.repaired]
        for r in repaired:
            console.out.print(f"repaired: {r.control} on {r.host}", markup=False)
        for r in missed:
            console.out.print(
                f"NOT repaired: {r.control} on {r.host} is {r.after}"
                + (f" ({_short(r.message, 120)})" if r.message else ""),
                markup=False,
            )
        console.out.print(
            f"compliance run {verdict.audit.run_id} after the fix: {len(repaired)} of "
            f"{len(verdict.repairs)} failing controls repaired",
            markup=False,
        )
    final = verdict.exit_status(status)
    if final != ExitStatus.SUCCESS:
        raise click.exceptions.Exit(int(final))


# -- runs and show ----------------------------------------------------------------------


@compliance.command("runs")
@click.option("--limit", type=int, default=20, show_default=True, help="How many runs to list.")
@click.option("--all-envs", is_flag=True, help="List runs of every environment.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@env_option
@pass_app
def runs_command(app: AppContext, limit: int, all_envs: bool, as_json: bool) -> None:
    """List compliance runs, newest first.

    \b
    Example:
      provision compliance runs
      provision compliance runs --limit 5 --json
    """
    from provision.infra.store import open_store
    from provision.infra.store.compliance_records import ComplianceRecords

    with open_store(app.settings) as store:
        runs = ComplianceRecords(store).list_runs(
            None if all_envs else app.settings.env, limit=limit
        )
    if as_json:
        console.print_json([run_json(r) for r in runs])
        return
    table = Table()
    for column in ("run", "status", "env", "selection", "standard", "hosts", "started", "user"):
        table.add_column(column)
    for r in runs:
        table.add_row(
            str(r.id),
            r.status,
            r.env,
            r.selection or "(all)",
            f"{r.standard_id} {r.standard_version}",
            str(r.hosts),
            r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.user,
        )
    console.out.print(table)


@compliance.command("show")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--host", "host", help="Show every control's result for this host.")
@click.option(
    "--failing",
    is_flag=True,
    help="Only the controls that failed or errored, each with why (with --host: that host's).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run (and host) as JSON.")
@pass_app
def show_command(
    app: AppContext, run_id: int, host: str | None, failing: bool, as_json: bool
) -> None:
    """Show one compliance run: its hosts, or one host's results in detail.

    \b
    Example:
      provision compliance show 12
      provision compliance show 12 --failing
      provision compliance show 12 --host dhk-kal-lab01 --json
    """
    from provision.infra.store import open_store
    from provision.infra.store.compliance_records import ComplianceRecords

    with open_store(app.settings) as store:
        records = ComplianceRecords(store)
        run = records.get_run(run_id)
        pruned = records.pruned_at(run_id)
        if pruned is not None:
            _show_pruned(run, records.rollups(run_id, ("all",)).total, pruned, as_json)
            return
        rows = records.host_rows(run_id)
        detail = records.host_report(run_id, host) if host else None
        if failing and not host and not as_json:
            table = failing_controls_table(
                records.host_reports(run_id), title=f"failing controls in run {run.id}"
            )
            if table.row_count:
                console.out.print(table)
            else:
                console.out.print(f"no control failed or errored in compliance run {run.id}")
            return
    if host and detail is None:
        raise InputError(
            f"compliance run {run_id} has no host {host!r}",
            hint=f"see its hosts with provision compliance show {run_id}",
        )
    if as_json:
        data: dict[str, Any] = {"run": run_json(run), "hosts": [row_json(r) for r in rows]}
        if detail is not None:
            data["host"] = {
                "host": detail.host,
                "status": detail.status,
                "evidence_digest": detail.evidence_digest,
                "results": [r.as_dict() for r in detail.results],
            }
        console.print_json(data)
        return
    if detail is None:
        console.out.print(
            hosts_table(rows, title=f"compliance run {run.id} ({run.status}, {run.env})")
        )
        return
    table = Table(title=f"{detail.host} in compliance run {run.id}")
    for column in ("control", "severity", "status", "expected", "actual", "message"):
        table.add_column(column)
    for r in detail.results:
        if failing and r.status not in BAD_STATUSES:
            continue
        table.add_row(
            r.control,
            r.severity,
            r.status + (f" ({r.waiver})" if r.waiver else ""),
            _short(r.expected),
            _short(r.actual),
            _short(r.message, 80),
        )
    console.out.print(table)


def _show_pruned(run: ComplianceRunInfo, total: Rollup, pruned: datetime, as_json: bool) -> None:
    """A pruned run: its totals, which is what is left of its hosts."""
    if as_json:
        console.print_json(
            {"run": run_json(run), "pruned_at": pruned.isoformat(), "totals": total.as_dict()}
        )
        return
    worst = ", ".join(f"{t.control} ({t.total})" for t in total.worst_controls[:5])
    console.out.print(
        f"compliance run {run.id} ({run.status}, {run.env}, {run.standard_id} "
        f"{run.standard_version}, {run.started_at:%Y-%m-%d %H:%M}): "
        f"{plural(total.hosts, 'host')}, {total.reported:,} reported, "
        f"{total.compliant:,} compliant, {total.unreachable:,} unreachable"
        + (f", {total.no_report:,} no_report" if total.no_report else "")
        + "; "
        f"median score {_percent(total.median_score)}"
        + (f"; most failed: {worst}" if worst else "")
    )
    console.out.print(
        f"its host detail was pruned on {pruned:%Y-%m-%d}; each host's failures are kept: "
        f"provision compliance query failing --as-of {run.started_at:%Y-%m-%d} ..."
    )


def _add_subcommands() -> None:
    # The report writer lives in its own module: it is the largest subcommand.
    from provision.cli.compliance_query import prune_command, query
    from provision.cli.compliance_report import report

    compliance.add_command(report)
    compliance.add_command(query)
    compliance.add_command(prune_command)


_add_subcommands()
