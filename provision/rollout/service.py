"""Rollouts: run one playbook over a selection in waves, recording every host's result.

    plan = plan_rollout(settings, RolloutOptions("site.yml", "district:gazipur", canary="1"))
    result = run_rollout(settings, plan, on_progress=print)

A run is created in the store with its whole plan before anything touches a
host. Each wave gets an inventory of just its hosts (a slice, variables
resolved) and its own ansible-runner private data dir. Task results are
committed in batches as they arrive and each host's final result as soon as
the play recap names it, so a control node that dies mid-wave loses at most
the wave's hosts that had not finished: `resume_rollout` runs those again.

Between waves the run stops when the canary did not succeed entirely, when
the share of failed and unreachable hosts so far is above `max_fail`, or when
the caller asked it to (Ctrl-C): a stopped run is resumed with `resume_rollout`.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from provision.access import secrets
from provision.errors import ExitStatus, InputError, StateError, exit_status_for
from provision.infra import runner, syntax_cache
from provision.infra.identity import current_user
from provision.infra.processes import RunProcess, stop_run_processes
from provision.infra.store import (
    BatchWriter,
    HostResult,
    LockHolder,
    RunInfo,
    Store,
    WaveInfo,
    open_store,
    pid_alive,
)
from provision.inventory import select_hosts, slice_inventory
from provision.inventory.files import LoadedInventory
from provision.inventory.targets import load_environment, select_targets
from provision.model.places import LEVELS
from provision.rollout import shards
from provision.rollout.plan import (
    Wave,
    check_level,
    parse_percent,
    parse_size,
    plan_waves,
)
from provision.rollout.recorder import WaveRecorder, outcome_of
from provision.rollout.revision import git_revision
from provision.rollout.shards import ExecutionNodes
from provision.settings import Settings

#: How many rollout private data dirs (one per wave) to keep under <state>/runs.
#: The kind of run a rollout's wave folders are (`runner.prune_run_dirs`).
RUN_KIND = "rollout"
_CONTROL_ID = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True)
class RolloutOptions:
    """What the user asked for. Stored with the run (no extravars, no secrets)."""

    playbook: str
    selection: str = ""
    canary: str | None = None
    batch: str | None = None
    by: str | None = None
    max_fail: str = "0%"
    check: bool = False
    diff: bool = False
    tags: tuple[str, ...] = ()
    control: str | None = None
    #: A YAML file of variables passed to every wave as extravars (portal deploys):
    #: its path is recorded, its contents are not. Never put secrets in it.
    vars_file: str | None = None

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("playbook")
        data.pop("selection")
        data["tags"] = list(self.tags)
        return data


@dataclass(frozen=True)
class RolloutPlan:
    options: RolloutOptions
    playbook: Path
    waves: list[Wave]
    env: str
    parent_id: int | None = None
    kind: str = "rollout"

    @property
    def hosts(self) -> list[str]:
        return [h for w in self.waves for h in w.hosts]


@dataclass(frozen=True)
class Progress:
    """What a rollout reports while it runs; the CLI draws it."""

    kind: str  # run, note, wave_start, task, results, wave_done, stopping, finished
    run_id: int
    wave: int | None = None
    waves: int = 0
    label: str = ""
    wave_hosts: int = 0
    task: str | None = None
    results: tuple[HostResult, ...] = ()
    message: str | None = None
    #: The wave's position in the run, 1-based ("wave 2 of 5").
    index: int = 0


ProgressCallback = Callable[[Progress], None]
TakeoverCallback = Callable[[Sequence[LockHolder]], None]


class StopSignal:
    """Set from a signal handler: `after_wave` lets the current wave finish, `now` cancels it."""

    def __init__(self) -> None:
        self.after_wave = threading.Event()
        self.now = threading.Event()

    def request(self) -> None:
        """First call: stop after this wave. A second: stop the wave now."""
        if self.after_wave.is_set():
            self.now.set()
        self.after_wave.set()


@dataclass(frozen=True)
class RolloutResult:
    run: RunInfo
    waves: list[WaveInfo]
    results: dict[str, HostResult] = field(default_factory=dict)
    #: The user stopped the run (Ctrl-C: after a wave, or at once).
    interrupted: bool = False

    @property
    def exit_status(self) -> ExitStatus:
        """130 stopped by the user, 4 a host failed, 5 one unreachable (none failed), else 0.

        A run that stopped with hosts it never reached (an execution node that
        could not be reached or lost its shard) is 5 as well: those hosts were not
        run, and a script must not read the run as a success.
        """
        never_reached = self.status == "stopped" and bool(self.pending)
        return exit_status_for(
            failed=bool(self.hosts_with("failed")),
            unreachable=bool(self.hosts_with("unreachable")) or never_reached,
            interrupted=self.interrupted,
        )

    @property
    def run_id(self) -> int:
        return self.run.id

    @property
    def status(self) -> str:
        return self.run.status

    def hosts_with(self, outcome: str) -> list[str]:
        return sorted(h for h, r in self.results.items() if r.outcome == outcome)

    @property
    def pending(self) -> list[str]:
        return [h for w in self.waves for h in w.hosts if h not in self.results]


# -- planning -------------------------------------------------------------------


def resolve_playbook(settings: Settings, playbook: str) -> Path:
    """A playbook path as given (from the current folder), or under playbooks/."""
    for candidate in (Path(playbook), settings.playbooks_path / playbook):
        if candidate.is_file():
            return candidate.resolve()
    raise InputError(
        f"playbook {playbook!r} was found neither here nor in {settings.playbooks_path}",
        hint="give a path to the playbook, or its name under playbooks/ (site.yml)",
    )


def _stored_path(settings: Settings, path: Path) -> str:
    """Playbooks inside the workspace are recorded relative to it, so runs read well."""
    try:
        return str(path.relative_to(settings.workspace))
    except ValueError:
        return str(path)


def _load(settings: Settings) -> LoadedInventory:
    return load_environment(settings.inventory_path)


def _places(loaded: LoadedInventory, hosts: Sequence[str]) -> dict[str, dict[str, str]]:
    """Each host's place names by level, from its resolved variables."""
    data = slice_inventory(loaded.inventory, hosts, loaded.folder)
    hostvars = data["all"]["hosts"]
    return {
        h: {
            lv: str(hostvars[h][f"provision_{lv}"])
            for lv in LEVELS
            if hostvars[h].get(f"provision_{lv}")
        }
        for h in hosts
    }


def _check_options(options: RolloutOptions) -> None:
    if options.batch is not None:
        parse_size(options.batch, "--batch")
    if options.by is not None:
        check_level(options.by)
    parse_percent(options.max_fail, "--max-fail")
    if options.control is not None and (
        not options.control or not set(options.control) <= _CONTROL_ID
    ):
        raise InputError(
            f"--control {options.control!r} is not a control id",
            hint="give one control's id from the standards, e.g. --control SSH-001",
        )


def plan_rollout(settings: Settings, options: RolloutOptions) -> RolloutPlan:
    """Check the options, pick the hosts and cut them into waves. Touches nothing."""
    _check_options(options)
    playbook = resolve_playbook(settings, options.playbook)
    loaded, hosts = select_targets(settings.inventory_path, options.selection)
    waves = plan_waves(
        hosts,
        places=_places(loaded, hosts) if options.by else {},
        canary=options.canary,
        batch=parse_size(options.batch, "--batch") if options.batch else None,
        by=options.by,
        select=lambda text: select_hosts(loaded.inventory, text),
    )
    return RolloutPlan(options, playbook, waves, settings.env)


def plan_retry(settings: Settings, run_id: int, which: Sequence[str]) -> RolloutPlan:
    """A new run of the same playbook and options over the hosts of `run_id` that ended `which`."""
    with open_store(settings) as store:
        run = store.get_run(run_id)
        results = store.host_results(run_id)
    hosts = [h for h, r in results.items() if r.outcome in which]
    if not hosts:
        raise StateError(
            f"run {run_id} has no {' or '.join(which)} hosts to retry",
            hint=f"see its results with provision runs show {run_id}",
        )
    stored = dict(run.options)
    options = RolloutOptions(
        playbook=run.playbook
        if Path(run.playbook).is_absolute()
        else str(settings.workspace / run.playbook),
        selection=",".join(hosts) if len(hosts) < 20 else f"retry of run {run_id}",
        max_fail=str(stored.get("max_fail", "0%")),
        check=bool(stored.get("check")),
        diff=bool(stored.get("diff")),
        tags=tuple(stored.get("tags") or ()),
        control=stored.get("control"),
        vars_file=stored.get("vars_file"),
    )
    playbook = resolve_playbook(settings, options.playbook)
    label = f"retry of run {run_id} ({' and '.join(which)})"
    ordered = sorted(hosts, key=lambda h: (results[h].wave, h))
    return RolloutPlan(
        options, playbook, [Wave(1, label, tuple(ordered))], run.env, parent_id=run_id, kind="retry"
    )


# -- running --------------------------------------------------------------------


def create_run(settings: Settings, plan: RolloutPlan, store: Store) -> int:
    options = plan.options.record()
    options["forks"] = settings.forks
    return store.create_run(
        kind=plan.kind,
        user=current_user(),
        node=socket.gethostname(),
        env=plan.env,
        playbook=_stored_path(settings, plan.playbook),
        selection=plan.options.selection,
        options=options,
        git_revision=git_revision(settings.workspace, settings.state_path),
        plan=[(w.number, w.label, w.hosts) for w in plan.waves],
        parent_id=plan.parent_id,
    )


def check_run_inputs(settings: Settings, playbook: Path, options: Mapping[str, Any]) -> None:
    """Refuse a run before it is recorded when what it would read is broken.

    The playbook must parse (Ansible's own `--syntax-check`: YAML, a list of
    plays, modules and roles that exist), the rollout's variables file must be
    a readable mapping and the environment's inventory must load. Each failure
    is an InputError (exit 3) naming the file and line: no run is created, so
    none is left in the history to resume.
    """
    vault = secrets.configured_source(settings)
    # A missing vault password file is refused by its own check, with its own words.
    vault_file = vault if vault is not None and vault.exists() else None
    # Unchanged content that parsed before is not parsed again (syntax_cache).
    known = syntax_cache.fingerprint(
        playbook, workspace=settings.workspace, vault_password_file=vault_file
    )
    if not syntax_cache.passed(settings.state_path, known):
        runner.check_syntax(playbook, workspace=settings.workspace, vault_password_file=vault_file)
        syntax_cache.remember(settings.state_path, known)
    _vars_file(options.get("vars_file"))
    _load(settings)


def _run_playbook_path(settings: Settings, run: RunInfo) -> Path:
    playbook = Path(run.playbook)
    return playbook if playbook.is_absolute() else settings.workspace / playbook


def run_rollout(
    settings: Settings,
    plan: RolloutPlan,
    *,
    on_progress: ProgressCallback | None = None,
    stop: StopSignal | None = None,
    on_created: Callable[[int], None] | None = None,
    nodes: ExecutionNodes | None = None,
) -> RolloutResult:
    """Record the run, then run its waves. Returns when it finished or stopped.

    With `nodes`, each wave's hosts served by a node run there (`shards`); the
    caller has checked that the nodes are ready. Without, all run from here.
    """
    _check_vault(settings, plan.env, plan.hosts, plan.playbook)
    check_run_inputs(replace(settings, env=plan.env), plan.playbook, plan.options.record())
    with open_store(settings) as store:
        run_id = create_run(settings, plan, store)
        if on_created:
            on_created(run_id)
        return _drive(
            settings, store, run_id, on_progress, stop or StopSignal(), resumed=False, nodes=nodes
        )


def resume_rollout(
    settings: Settings,
    run_id: int,
    *,
    on_progress: ProgressCallback | None = None,
    stop: StopSignal | None = None,
    nodes: ExecutionNodes | None = None,
) -> RolloutResult:
    """Continue a stopped, failed or crashed run with the hosts that have no result yet.

    A node's shard whose worker went on while the link was down is re-attached
    to (its events not yet recorded are replayed, then the rest collected); a
    shard whose node lost the job runs again for its hosts without a result.
    """
    with open_store(settings) as store:
        run = store.get_run(run_id)
        playbook = Path(run.playbook)
        pending = store.host_results(run_id)
        _check_vault(
            settings,
            run.env,
            [h for w in store.waves(run_id) for h in w.hosts if h not in pending],
            playbook if playbook.is_absolute() else settings.workspace / playbook,
        )
        if run.status == "running":
            if run.node == socket.gethostname() and not pid_alive(run.pid):
                _stop_leftovers(store, [run_id])
                store.mark_crashed(run_id)
            else:
                raise StateError(
                    f"run {run_id} is still running (pid {run.pid} on {run.node})",
                    hint="wait for it, or stop it with Ctrl-C where it runs",
                )
        elif run.status == "succeeded" or run.planned == run.done:
            raise StateError(
                f"run {run_id} has a result for every host; nothing to resume",
                hint=f"rerun failed hosts with provision rollout retry {run_id} --failed",
            )
        run_settings = _settings_for(settings, run)
        check_run_inputs(run_settings, _run_playbook_path(run_settings, run), run.options)
        return _drive(
            settings, store, run_id, on_progress, stop or StopSignal(), resumed=True, nodes=nodes
        )


def _check_vault(settings: Settings, env: str, hosts: Sequence[str], playbook: Path) -> None:
    """A pre-run check: the run can open every vaulted value it will meet (see
    `secrets.require_vault`), or it is refused before anything is recorded."""
    secrets.require_vault(replace(settings, env=env), hosts, playbook)


def _stop_leftovers(store: Store, runs: Sequence[int]) -> list[RunProcess]:
    """Stop whatever the waves of `runs` left running on this control node.

    ansible-playbook and its workers outlive a provision process that was killed
    (see provision.infra.processes): before another process works on those hosts, or
    resumes the run, they are found by the mark of each wave's private data dir
    and killed.
    """
    stopped: list[RunProcess] = []
    for run_id in sorted(set(runs)):
        for wave in store.waves(run_id):
            if wave.artifacts:
                stopped += stop_run_processes(wave.artifacts)
    return stopped


def _take_over(store: Store, report: ProgressCallback, run_id: int) -> TakeoverCallback:
    """What a run does before it takes over the stale locks of runs whose process died."""

    def before_takeover(stale: Sequence[LockHolder]) -> None:
        here = socket.gethostname()
        # Another node's locks are taken over only once its run finished: its
        # processes are not on this machine, and ended with it.
        dead = sorted({lock.run_id for lock in stale if lock.node == here})
        stopped = _stop_leftovers(store, dead)
        if stopped:
            runs = ", ".join(str(r) for r in dead)
            report(
                Progress(
                    "note",
                    run_id,
                    message=f"stopped {len(stopped)} processes left running by run {runs}",
                )
            )

    return before_takeover


def _settings_for(settings: Settings, run: RunInfo) -> Settings:
    return settings if settings.env == run.env else replace(settings, env=run.env)


def _drive(
    settings: Settings,
    store: Store,
    run_id: int,
    on_progress: ProgressCallback | None,
    stop: StopSignal,
    *,
    resumed: bool,
    nodes: ExecutionNodes | None = None,
) -> RolloutResult:
    report = on_progress or (lambda _p: None)
    run = store.get_run(run_id)
    settings = _settings_for(settings, run)
    waves = store.waves(run_id)
    results = store.host_results(run_id)
    pending = [h for w in waves for h in w.hosts if h not in results]
    options = run.options
    max_fail = parse_percent(str(options.get("max_fail", "0%")), "--max-fail")
    playbook = _run_playbook_path(settings, run)
    loaded = _load(settings)

    pid = os.getpid()
    try:
        store.acquire_locks(
            run_id,
            pending,
            user=current_user(),
            node=socket.gethostname(),
            pid=pid,
            before_takeover=_take_over(store, report, run_id),
        )
    except StateError:
        if not resumed:
            store.delete_unstarted_run(run_id)  # refused before it began: no history to keep
        raise
    attempt = store.start_attempt(run_id, pid)
    report(Progress("run", run_id, waves=len(waves), message="resumed" if resumed else None))
    status, reason = "running", None
    writer = BatchWriter(store)
    try:
        for index, wave in enumerate(waves, 1):
            todo = [h for h in wave.hosts if h not in results]
            if not todo:
                store.complete_wave(run_id, wave.number)
                continue
            if stop.after_wave.is_set():
                status, reason = "stopped", "stopped by the user (Ctrl-C) between waves"
                break
            problems: list[str] = []
            outcome = _run_wave(
                settings,
                store,
                writer,
                run,
                wave,
                index,
                todo,
                attempt,
                loaded,
                playbook,
                report,
                stop,
                nodes,
                problems,
            )
            results.update(outcome)
            if stop.now.is_set():
                status, reason = "stopped", "stopped by the user (Ctrl-C) during a wave"
                break
            if problems:
                # Its hosts are not run, neither failed nor passed: resume runs them.
                status = "stopped"
                reason = "; ".join(problems) + f" (provision rollout resume {run_id})"
                break
            remaining = any(h not in results for w in waves for h in w.hosts)
            if not remaining:
                break
            reason = _threshold(wave, outcome, results, max_fail, waves)
            if reason:
                status = "stopped"
                break
            if stop.after_wave.is_set():
                status, reason = "stopped", "stopped by the user (Ctrl-C) after a wave"
                break
        if status == "running":
            bad = [r for r in results.values() if r.outcome in ("failed", "unreachable")]
            missing = [h for w in waves for h in w.hosts if h not in results]
            if missing:
                status, reason = "stopped", f"{len(missing)} hosts have no result"
            else:
                status = "failed" if bad else "succeeded"
                if bad:
                    reason = f"{len(bad)} of {len(results)} hosts failed or were unreachable"
    except BaseException:
        status, reason = "stopped", "stopped by an error on the control node"
        raise
    finally:
        try:
            writer.close()
        finally:
            store.finish_run(run_id, status, reason)
            store.release_locks(run_id)
            runner.prune_run_dirs(settings.state_path, RUN_KIND)
    final = store.get_run(run_id)
    report(Progress("finished", run_id, waves=len(waves), message=reason))
    return RolloutResult(
        final,
        store.waves(run_id),
        store.host_results(run_id),
        interrupted=status == "stopped" and stop.after_wave.is_set(),
    )


def _vars_file(path: Any) -> dict[str, Any]:
    """The variables of a rollout's `vars_file` (none without one)."""
    if not path:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(str(path)).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(
            f"cannot read the rollout's variables file {path}: {exc}",
            hint="run the command that wrote it again (provision portal deploy)",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(
            f"the rollout's variables file {path} is not a mapping of variables",
            hint="run the command that wrote it again (provision portal deploy)",
        )
    return dict(data)


def _threshold(
    wave: WaveInfo,
    outcome: dict[str, HostResult],
    results: dict[str, HostResult],
    max_fail: float,
    waves: list[WaveInfo],
) -> str | None:
    """Why the rollout must stop before the next wave, or None."""
    if wave.number == 0 and wave.label.startswith("canary"):
        bad = sorted(h for h, r in outcome.items() if r.outcome in ("failed", "unreachable"))
        missing = sorted(h for h in wave.hosts if h not in results)
        if bad or missing:
            return "the canary did not succeed: " + ", ".join(
                [f"{h} {outcome[h].outcome}" for h in bad] + [f"{h} no result" for h in missing]
            )
    done = len(results)
    bad_count = sum(1 for r in results.values() if r.outcome in ("failed", "unreachable"))
    if done and bad_count * 100 / done > max_fail:
        return (
            f"{bad_count} of {done} hosts so far failed or were unreachable "
            f"({bad_count * 100 / done:.0f}%), more than --max-fail {max_fail:g}%"
        )
    return None


def _settle(
    recorder: WaveRecorder,
    stats: Mapping[str, runner.HostStats],
    hosts: Sequence[str],
    wave: WaveInfo,
    attempt: int,
) -> None:
    """Final results the event stream did not give: a missed recap, hosts never matched."""
    late = [
        HostResult(
            host=h,
            wave=wave.number,
            outcome=outcome_of(s.ok, s.changed, s.failed, s.unreachable),
            ok=s.ok,
            changed=s.changed,
            failed=s.failed,
            unreachable=s.unreachable,
            skipped=s.skipped,
            rescued=s.rescued,
            ignored=s.ignored,
            started_at=recorder.started,
            attempt=attempt,
        )
        for h, s in stats.items()
        if h in hosts and h not in recorder.results
    ]
    untouched = [
        HostResult(
            host=h,
            wave=wave.number,
            outcome="skipped",
            message="the playbook did not run on this host",
            started_at=recorder.started,
            attempt=attempt,
        )
        for h in hosts
        if h not in stats and h not in recorder.results
    ]
    recorder.finish(late + untouched)


def _run_wave(
    settings: Settings,
    store: Store,
    writer: BatchWriter,
    run: RunInfo,
    wave: WaveInfo,
    index: int,
    hosts: list[str],
    attempt: int,
    loaded: LoadedInventory,
    playbook: Path,
    report: ProgressCallback,
    stop: StopSignal,
    nodes: ExecutionNodes | None = None,
    problems: list[str] | None = None,
) -> dict[str, HostResult]:
    """Run the playbook on one wave's hosts that have no result yet; return their results.

    With `nodes`, each node runs the hosts it serves (its shard, on a thread of
    its own) while the control node runs the rest; all results go to the same
    store. A shard that could not finish leaves its hosts without a result and
    says why in `problems`.
    """
    known = [h for h in hosts if h in loaded.inventory.hosts]
    gone = [h for h in hosts if h not in loaded.inventory.hosts]
    count = len(store.waves(run.id))
    report(Progress("wave_start", run.id, wave.number, count, wave.label, len(hosts), index=index))
    earlier_folder = wave.artifacts
    private = runner.new_run_dir(settings.state_path, RUN_KIND, f"{run.id}-w{wave.number}")
    store.set_wave(run.id, wave.number, "running", artifacts=str(private))

    def on_results(fresh: list[HostResult]) -> None:
        report(Progress("results", run.id, wave.number, count, wave.label, results=tuple(fresh)))

    def recorder_for(
        shard_hosts: Sequence[str], node: str | None, rows: BatchWriter = writer
    ) -> WaveRecorder:
        return WaveRecorder(
            store,
            rows,
            run_id=run.id,
            wave=wave.number,
            attempt=attempt,
            hosts=set(shard_hosts),
            on_task=lambda task: report(
                Progress("task", run.id, wave.number, count, wave.label, task=task)
            ),
            on_results=on_results,
            node=node,
        )

    groups = shards.split(nodes, known, loaded.inventory)
    local = groups.pop(None, [])
    recorder = recorder_for(local, None)
    if gone:
        recorder.finish(
            [
                HostResult(
                    host=h,
                    wave=wave.number,
                    outcome="skipped",
                    message="no longer in the inventory",
                    attempt=attempt,
                )
                for h in gone
            ]
        )
    options = run.options
    tags = list(options.get("tags") or [])
    if options.get("control"):
        tags.append(str(options["control"]))
    extravars = _vars_file(options.get("vars_file"))
    outcomes: list[tuple[shards.ShardOutcome, WaveRecorder]] = []
    # Each shard has its own writer, which marks in the store, with each task row,
    # the node's event that made it: what a resume's replay skips (shards.recorded_events).
    node_writers: list[BatchWriter] = []
    shard_set: shards.ShardSet | None = None
    if groups:
        assert nodes is not None
        shard_set = shards.ShardSet(
            settings,
            nodes,
            playbook,
            private,
            options,
            extravars,
            tags,
            earlier_folder,
            strategy=settings.strategy,
        )
        for name, shard_hosts in groups.items():
            assert name is not None
            seen = shards.recorded_events(
                store,
                run_id=run.id,
                wave=wave.number,
                node=name,
                folder=private,
                earlier_folder=earlier_folder,
            )
            node_writer = BatchWriter(store, node=name)
            node_writers.append(node_writer)
            node_recorder = recorder_for(shard_hosts, name, node_writer)
            outcome = shard_set.start(
                name,
                shard_hosts,
                slice_inventory(loaded.inventory, shard_hosts, loaded.folder),
                node_recorder,
                seen=seen,
            )
            outcomes.append((outcome, node_recorder))
    canceled = False
    try:
        if local:
            inventory = slice_inventory(loaded.inventory, local, loaded.folder)
            # The vault password reaches Ansible as a file (or client script) outside the
            # run's folder: never in its extravars, environment, artifacts or the store.
            # What it decrypts, and secret-named values, are masked in all Ansible says.
            with secrets.vault_for_run(settings) as vault:
                masker = secrets.inventory_masker(vault, inventory, extravars, playbook)
                result = runner.run_playbook(
                    playbook,
                    workspace=settings.workspace,
                    private_data_dir=private,
                    inventory=inventory,
                    tags=tags,
                    check=bool(options.get("check")),
                    diff=bool(options.get("diff")),
                    forks=int(options.get("forks") or settings.forks),
                    on_event=recorder,
                    cancel=stop.now.is_set,
                    keep_events=False,
                    fact_cache_type="memory",  # no facts file per host per wave on disk
                    vault_password_file=vault,
                    extravars=extravars,
                    masker=masker,
                    state_path=settings.state_path,
                    strategy=settings.strategy,
                )
            canceled = result.status == "canceled"
            if not canceled:
                # The recap normally made these final already; this catches a recap the
                # event stream missed, and hosts the play never matched (skipped).
                _settle(recorder, result.hosts, local, wave, attempt)
    finally:
        if shard_set is not None:
            shard_set.join()
        for node_writer in node_writers:
            node_writer.close()
    results = dict(recorder.results)
    for outcome, node_recorder in outcomes:
        if outcome.result is not None and outcome.result.state == "done":
            _settle(node_recorder, outcome.result.hosts, outcome.hosts, wave, attempt)
        results.update(node_recorder.results)
        problem = outcome.problem
        missing = [h for h in outcome.hosts if h not in results]
        if problem and missing and problems is not None:
            problems.append(f"{problem}; {len(missing)} of its hosts not run")
    if canceled:
        store.set_wave(run.id, wave.number, "stopped")
    elif all(h in results for h in hosts):
        store.complete_wave(run.id, wave.number)
    else:  # a shard left hosts not run: a resume may replay its node's stream
        store.set_wave(run.id, wave.number, "done")
    report(Progress("wave_done", run.id, wave.number, count, wave.label, len(hosts), index=index))
    return results
