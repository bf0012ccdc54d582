"""`provision rollout`: run a playbook over a selection in waves, and resume or retry runs."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import FrameType
from typing import TYPE_CHECKING, Any

import click
from rich.console import Group as RichGroup
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import (
    env_option,
    execution_nodes,
    local_option,
    selection_argument,
    strategy_option,
)
from provision.cli.runs import results_table, run_json, styled
from provision.errors import ExitStatus, InputError
from provision.model.words import plural
from provision.settings import Settings

if TYPE_CHECKING:  # imported when a command runs: `provision --help` stays quick
    from provision.rollout import Progress, RolloutPlan, RolloutResult, StopSignal


class RolloutGroup(click.Group):
    """`rollout` is a verb with subcommands: a first argument that is not one is a playbook.

    So `provision rollout site.yml district:gazipur` runs the `run` command, and
    `provision rollout resume 12` the `resume` command.
    """

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in self.commands:
            return super().resolve_command(ctx, args)
        return "run", self.commands["run"], args


@click.group(cls=RolloutGroup, context_settings={"ignore_unknown_options": True})
def rollout() -> None:
    """Roll a playbook out over a selection in waves; resume or retry a run.

    A canary first (it must succeed entirely), then waves of --batch hosts,
    following the administrative tree with --by. The rollout stops launching
    waves once more than --max-fail of the hosts failed or were unreachable.
    Every host's result is recorded in the state store as it arrives; see
    `provision runs`. Ctrl-C stops after the current wave (twice: at once).
    Exit codes: 4 some hosts failed, 5 some unreachable (none failed), 130
    stopped by Ctrl-C.

    \b
    Example:
      provision rollout site.yml district:gazipur --canary GAZ-001 --by upazila
      provision rollout site.yml 'division:dhaka' --batch 10% --max-fail 5%
      provision rollout resume 12
      provision rollout retry 12 --unreachable
    """


class Display:
    """Draws a rollout's progress: a live panel on a terminal, plain lines elsewhere."""

    def __init__(self, total: int, *, live: bool) -> None:
        self.total = total
        self.live_mode = live
        self.run_id: int | None = None
        self.wave = ""
        self.wave_index = 0
        self.waves = 0
        self.task = ""
        self.counts = {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0}
        #: Hosts done per execution node (None: the control node), shown once a
        #: node has done one: a shard's progress, or its silence, is visible.
        self.by_node: dict[str | None, int] = {}
        self._lock = threading.Lock()
        self._live: Live | None = None

    def __rich__(self) -> RichGroup:
        with self._lock:
            done = sum(self.counts.values())
            head = Text.from_markup(
                f"[bold]run {self.run_id}[/]  wave {self.wave_index} of {self.waves}: {self.wave}"
            )
            bar = Table.grid(padding=(0, 1))
            bar.add_row(
                ProgressBar(total=max(self.total, 1), completed=done, width=50),
                f"{done}/{self.total} hosts done",
            )
            line = Text.from_markup(
                f"[green]{self.counts['ok'] + self.counts['changed']} ok[/]  "
                f"[bold red]{self.counts['failed']} failed[/]  "
                f"[magenta]{self.counts['unreachable']} unreachable[/]  "
                f"[dim]{self.counts['skipped']} skipped[/]"
            )
            task = Text(f"task: {self.task}" if self.task else "", style="dim")
            if any(node is not None for node in self.by_node):
                return RichGroup(head, bar, line, Text(self.node_line(), style="cyan"), task)
            return RichGroup(head, bar, line, task)

    def node_line(self) -> str:
        """Hosts done where they ran: "done on: control node 3 · gazipur 5"."""
        parts = [
            f"{'control node' if node is None else node} {done}"
            for node, done in sorted(self.by_node.items(), key=lambda item: item[0] or "")
        ]
        return "done on: " + " · ".join(parts)

    def __enter__(self) -> Display:
        if self.live_mode:
            self._live = Live(self, console=console.err, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def note(self, text: str) -> None:
        console.err.print(text, markup=False, highlight=False)

    def __call__(self, p: Progress) -> None:
        with self._lock:
            self.run_id = p.run_id
            self.waves = p.waves or self.waves
            if p.kind == "wave_start":
                self.wave_index = p.index
                self.wave, self.task = p.label, ""
            elif p.kind == "task":
                self.task = p.task or ""
            elif p.kind == "results":
                for r in p.results:
                    self.counts[r.outcome] = self.counts.get(r.outcome, 0) + 1
                    self.by_node[r.node] = self.by_node.get(r.node, 0) + 1
        if p.kind == "run":
            self.note(f"run {p.run_id}" + (" resumed" if p.message else " started"))
        elif p.kind == "note":
            self.note(p.message or "")
        elif p.kind == "wave_start":
            hosts = plural(p.wave_hosts, "host")
            self.note(f"wave {self.wave_index} of {self.waves}: {p.label} ({hosts})")
        elif p.kind == "results" and not self.live_mode:
            for r in p.results:
                extra = f" at {r.failed_task!r}: {r.message}" if r.failed_task else ""
                self.note(f"  {r.host} {r.outcome}{extra}{_on_node(r.node)}")
        elif p.kind == "results":
            for r in p.results:
                if r.outcome in ("failed", "unreachable"):
                    self.note(
                        f"  {r.host} {r.outcome} at {r.failed_task!r}: {r.message or ''}"
                        f"{_on_node(r.node)}"
                    )


def _on_node(node: str | None) -> str:
    return f" (on node {node})" if node else ""


@contextmanager
def _ctrl_c(stop: StopSignal, display: Display) -> Iterator[None]:
    """Ctrl-C asks the rollout to stop after the current wave; a second one, at once."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        first = not stop.after_wave.is_set()
        stop.request()
        display.note(
            "stopping after this wave (Ctrl-C again to stop now)"
            if first
            else "stopping now; the hosts of this wave without a result stay pending"
        )

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _show_plan(plan: RolloutPlan) -> None:
    o = plan.options
    console.err.print(
        f"rollout of {plan.playbook.name} over {plural(len(plan.hosts), 'host')} "
        f"({o.selection or 'all hosts'}) in env {plan.env}" + (" [check mode]" if o.check else ""),
        markup=False,
    )
    table = Table(title="plan")
    for column in ("wave", "label", "hosts", "first hosts"):
        table.add_column(column)
    for w in plan.waves:
        shown = ", ".join(w.hosts[:4]) + (f", … (+{len(w.hosts) - 4})" if len(w.hosts) > 4 else "")
        table.add_row(str(w.number), w.label, str(len(w.hosts)), shown)
    console.err.print(table)
    console.err.print(
        ("stops after the canary unless it succeeds entirely, and " if o.canary else "stops ")
        + f"once more than {o.max_fail} of the hosts so far failed or were unreachable",
        markup=False,
    )


def _confirm(plan: RolloutPlan, yes: bool) -> None:
    _show_plan(plan)
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(
            "refusing to change hosts without confirmation: input is not a terminal",
            hint="review the plan above, then run again with --yes",
        )
    if not click.confirm("start this rollout?", default=False, err=True):
        raise click.exceptions.Exit(int(ExitStatus.SUCCESS))


_ASK_VAULT_PASS = click.option(
    "--ask-vault-pass",
    is_flag=True,
    help="Ask for the vault password (not echoed) instead of using vault_password_file.",
)


@contextmanager
def _vault_settings(
    app: AppContext, ask: bool, hosts: list[str], env: str | None = None
) -> Iterator[Settings]:
    """The settings for the run; with `ask`, the prompted vault password is handed to
    Ansible as an anonymous in-memory file (see secrets.password_file) that is closed
    when the run ends: never an argument, an environment variable or a file under
    the state directory, so never in the run's artifacts, logs or the store.

    A password (typed, or from vault_password_file) that does not open the hosts'
    vaulted variables is refused before the run starts (one line, no host touched)."""
    from provision.access import secrets

    settings = app.settings if env is None else replace(app.settings, env=env)
    if not ask:
        source = secrets.configured_source(settings)
        if source is not None and source.exists():  # a missing one: the service says so
            secrets.check_password(settings, hosts, secrets.read_password(source))
        yield app.settings
        return
    from provision.cli.secrets import vault_password

    password = vault_password(app, None, True)
    secrets.check_password(settings, hosts, password)
    with secrets.password_file(password) as path:
        del password
        yield replace(app.settings, vault_password_file=str(path))


def _drive(app: AppContext, total: int, as_json: bool, action: Any) -> None:
    from provision.rollout import StopSignal

    stop = StopSignal()
    display = Display(total, live=console.is_interactive() and not as_json)
    with display, _ctrl_c(stop, display):
        result: RolloutResult = action(display, stop)
    _finish(result, as_json)


def _finish(result: RolloutResult, as_json: bool) -> None:
    if as_json:
        console.print_json(run_json(result.run, result.waves, result.results))
    else:
        _print_result(result)
    if result.exit_status != ExitStatus.SUCCESS:
        raise click.exceptions.Exit(int(result.exit_status))


def rollout_exit(result: RolloutResult, stop: StopSignal | None = None) -> ExitStatus:
    """The exit status a finished rollout gives: the result's own (`RolloutResult.exit_status`).

    `stop` is not needed any more (the result knows it was interrupted); kept for callers.
    """
    return result.exit_status


def _print_result(result: RolloutResult) -> None:
    """The results table, the run's line and what to do next."""
    console.out.print(results_table(result.waves, result.results))
    run = result.run
    counts = ", ".join(f"{n} {k}" for k, n in sorted(run.outcomes.items()))
    console.out.print(
        f"run {run.id} {styled(run.status)}: {counts or 'no results'}"
        + (f"; {len(result.pending)} pending" if result.pending else "")
    )
    if run.stop_reason:
        console.out.print(f"  {run.stop_reason}", markup=False)
    if result.pending:
        console.out.print(f"continue with: provision rollout resume {run.id}", markup=False)
    if result.hosts_with("failed") or result.hosts_with("unreachable"):
        console.out.print(
            f"details: provision runs show {run.id}; rerun: provision rollout retry {run.id} "
            "--failed (or --unreachable)",
            markup=False,
        )


@rollout.command("run")
@click.argument("playbook")
@selection_argument()
@click.option(
    "--canary",
    metavar="N|SITE",
    help="Run first on N hosts, or on a site (site code or any selection); "
    "stop unless every canary host succeeds.",
)
@click.option(
    "--batch", metavar="N|P%", help="Wave size: N hosts, or P% of the hosts after the canary."
)
@click.option(
    "--by",
    type=click.Choice(["division", "district", "upazila", "union"]),
    help="Waves follow the administrative tree: one place of this level after another.",
)
@click.option(
    "--max-fail",
    metavar="P%",
    default="0%",
    show_default=True,
    help="Stop launching waves once more than P% of the hosts so far failed or were unreachable.",
)
@click.option("--check", is_flag=True, help="Preview: Ansible's check mode, nothing is changed.")
@click.option(
    "--diff", is_flag=True, help="Show what would change in files (with --check: a preview)."
)
@click.option("--tags", metavar="TAG[,TAG]", help="Run only tasks with these tags.")
@click.option(
    "--control",
    metavar="ID",
    help="Enforce one control of the standard (its tasks carry its id as a tag).",
)
@click.option("--yes", is_flag=True, help="Start without showing the plan for confirmation.")
@_ASK_VAULT_PASS
@local_option
@click.option("--json", "as_json", is_flag=True, help="Print the run's results as JSON at the end.")
@env_option
@strategy_option
@pass_app
def run_command(
    app: AppContext,
    playbook: str,
    selection: str,
    canary: str | None,
    batch: str | None,
    by: str | None,
    max_fail: str,
    check: bool,
    diff: bool,
    tags: str | None,
    control: str | None,
    yes: bool,
    ask_vault_pass: bool,
    local: bool,
    as_json: bool,
) -> None:
    """Run PLAYBOOK over SELECTION in waves (the default command of `provision rollout`).

    PLAYBOOK is a path, or a name under playbooks/. SELECTION uses the selection
    language of docs/inventory.md; none means every host. Without --yes the plan
    is shown and confirmed first (and refused when input is not a terminal).
    Vaulted variables are opened with the vault_password_file setting, or with
    a password asked for after the plan is confirmed (--ask-vault-pass).

    \b
    Example:
      provision rollout site.yml district:gazipur --canary 1 --batch 25%
      provision rollout site.yml division:dhaka --by district --max-fail 10% --yes
      provision rollout site.yml role:field_server --control SSH-001 --check --diff
      provision rollout portal.yml role:portal_host --ask-vault-pass
    """
    from provision.rollout import RolloutOptions, plan_rollout, run_rollout

    options = RolloutOptions(
        playbook=playbook,
        selection=selection,
        canary=canary,
        batch=batch,
        by=by,
        max_fail=max_fail,
        check=check,
        diff=diff,
        tags=tuple(t.strip() for t in (tags or "").split(",") if t.strip()),
        control=control,
    )
    plan = plan_rollout(app.settings, options)
    _confirm(plan, yes)
    nodes = execution_nodes(app.settings, plan.hosts, local)
    with _vault_settings(app, ask_vault_pass, list(plan.hosts)) as settings:
        _drive(
            app,
            len(plan.hosts),
            as_json,
            lambda display, stop: run_rollout(
                settings, plan, on_progress=display, stop=stop, nodes=nodes
            ),
        )


@rollout.command("resume")
@click.argument("run_id", metavar="RUN", type=int)
@_ASK_VAULT_PASS
@local_option
@click.option("--json", "as_json", is_flag=True, help="Print the run's results as JSON at the end.")
@strategy_option
@pass_app
def resume(app: AppContext, run_id: int, ask_vault_pass: bool, local: bool, as_json: bool) -> None:
    """Continue a stopped, failed or crashed run with the hosts that have no result yet.

    Hosts that already have a result keep it (rerun failed ones with `retry`).
    A run whose control node process died (a crash, a kill) is resumed from
    the wave it was in. A node's shard whose SSH session dropped is re-attached
    to (the worker went on on the node); one whose node lost it runs again.

    \b
    Example:
      provision rollout resume 12
    """
    from provision.infra.store import open_store
    from provision.rollout import resume_rollout

    with open_store(app.settings) as store:
        run = store.get_run(run_id)
        planned = [h for wave in store.waves(run_id) for h in wave.hosts]
    nodes = execution_nodes(app.settings, planned, local, down_ok=True)
    with _vault_settings(app, ask_vault_pass, planned, run.env) as settings:
        _drive(
            app,
            run.planned,
            as_json,
            lambda display, stop: resume_rollout(
                settings, run_id, on_progress=display, stop=stop, nodes=nodes
            ),
        )


@rollout.command("retry")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--failed", "failed", is_flag=True, help="Rerun the hosts that failed.")
@click.option(
    "--unreachable", "unreachable", is_flag=True, help="Rerun the hosts that were unreachable."
)
@click.option("--yes", is_flag=True, help="Start without showing the plan for confirmation.")
@_ASK_VAULT_PASS
@click.option("--json", "as_json", is_flag=True, help="Print the run's results as JSON at the end.")
@strategy_option
@pass_app
def retry(
    app: AppContext,
    run_id: int,
    failed: bool,
    unreachable: bool,
    yes: bool,
    ask_vault_pass: bool,
    as_json: bool,
) -> None:
    """Rerun the failed and/or unreachable hosts of RUN as a new run linked to it.

    Without --failed or --unreachable, both. The new run uses the same playbook
    and options (check, diff, tags, control).

    \b
    Example:
      provision rollout retry 12 --unreachable
    """
    from provision.rollout import plan_retry, run_rollout

    which = [w for w, on in (("failed", failed), ("unreachable", unreachable)) if on] or [
        "failed",
        "unreachable",
    ]
    plan = plan_retry(app.settings, run_id, which)
    _confirm(plan, yes)
    with _vault_settings(app, ask_vault_pass, list(plan.hosts), plan.env) as settings:
        _drive(
            app,
            len(plan.hosts),
            as_json,
            lambda display, stop: run_rollout(settings, plan, on_progress=display, stop=stop),
        )
