"""The one door to ansible-runner: run a playbook, stream its events, return its stats.

Only this module imports ansible_runner. Each run gets a private data dir under the
state directory, so two runs never share artifacts and a crashed run leaves its
events on disk for inspection.

Traps this module exists to avoid:

* ansible-runner looks up `ansible-playbook` on PATH. Called from a virtual
  environment that is not activated, that lookup fails with rc 127. We hand it the
  binary that sits beside our own Python and put that folder first on PATH.
* ansible-runner starts Ansible with the whole environment of the control node
  and writes that environment into every run's artifacts (`artifacts/*/command`):
  PGPASSWORD, a db_url with a password, any token. Ansible gets an environment
  chosen here instead (`ansible_environment`), env files are suppressed, and host
  key checking is switched on explicitly (ansible-runner turns it off unless told).
* Ansible prints a decrypted vault value in the clear wherever a task shows it.
  Every event goes through the run's `Masker` before a callback, the store, the
  terminal or the artifacts see it; the stdout artifact is written here, from the
  masked events, not by ansible-runner.
* SSH masters (ControlPersist) in one folder shared by every workspace would let a
  connection verified for one environment serve another's run, and a master opened
  before a host key changed keep serving it. Each run has a folder of its own for
  its masters, and closes them when it ends.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ansible_runner.interface import init_runner

from provision.errors import (
    ExitStatus,
    InputError,
    PrerequisiteError,
    RunnerError,
    exit_status_for,
)
from provision.infra import strategy as strategies
from provision.infra.masking import NO_MASKER, Masker
from provision.infra.private import private_dir
from provision.infra.processes import MARK_VARIABLE, stop_run_processes
from provision.infra.streaming import (
    SHARD_IDENT,
    NodeLink,
    NodeLinkError,
    ShardHandle,
    StreamParser,
    cleanup_job,
    follow_job,
    job_state,
    secret_file,
    settings_for,
    start_job,
)

#: Seconds between two looks at a run's cancel callback.
CANCEL_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class HostStats:
    """Ansible's play recap for one host."""

    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    @property
    def outcome(self) -> str:
        """One word for the host: unreachable, failed, changed or ok."""
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"


@dataclass(frozen=True)
class PlaybookEvent:
    """The part of an ansible-runner event that callers act on."""

    kind: str  # e.g. runner_on_ok, runner_on_failed, playbook_on_task_start
    host: str | None
    task: str | None
    counter: int
    data: Mapping[str, Any] = field(repr=False)
    #: The event's own uuid: with `counter`, what tells a replayed event from a new one.
    uuid: str = ""


@dataclass(frozen=True)
class PlaybookResult:
    """What a playbook run came to."""

    status: str  # successful, failed, timeout, canceled
    rc: int
    hosts: dict[str, HostStats]
    private_data_dir: Path

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.status == "successful"

    def hosts_with(self, outcome: str) -> list[str]:
        return sorted(h for h, s in self.hosts.items() if s.outcome == outcome)

    @property
    def exit_status(self) -> ExitStatus:
        """130 cancelled, 4 a host failed, 5 one unreachable (none failed), else 0."""
        return exit_status_for(
            failed=bool(self.hosts_with("failed")),
            unreachable=bool(self.hosts_with("unreachable")),
            interrupted=self.status == "canceled",
        )


EventCallback = Callable[[PlaybookEvent], None]


def tool_path(name: str) -> Path | None:
    """An Ansible command that belongs to this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


def _event_from(raw: Mapping[str, Any]) -> PlaybookEvent:
    data = raw.get("event_data") or {}
    return PlaybookEvent(
        kind=str(raw.get("event", "")),
        host=data.get("host"),
        task=data.get("task"),
        counter=int(raw.get("counter", 0)),
        data=data,
        uuid=str(raw.get("uuid") or ""),
    )


class _EventPump:
    """Hands events to a slow callback on its own thread so Ansible never waits.

    ansible-runner calls the event handler on the thread that reads Ansible's
    output; a callback that writes to a database or redraws a table there would
    stall the run. The pump queues each event and a worker thread delivers them
    in order.
    """

    _STOP = object()

    def __init__(self, callback: EventCallback) -> None:
        self._callback = callback
        self._queue: queue.Queue[object] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._deliver, name="provision-events", daemon=True)
        self._thread.start()

    def __call__(self, raw: dict[str, Any]) -> None:
        self._queue.put(raw)

    def _deliver(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            if self._error is not None:
                continue  # drain without calling a callback that already broke
            try:
                assert isinstance(item, dict)
                self._callback(_event_from(item))
            except BaseException as exc:  # reported after the run, not lost on a thread
                self._error = exc

    def close(self) -> None:
        self._queue.put(self._STOP)
        self._thread.join()
        if self._error is not None:
            raise self._error


class _EventFilter:
    """ansible-runner's event handler: mask each event in place, then pass it on.

    ansible-runner writes the very dict it handed us as the event's JSON file, so
    masking it in place masks the artifact too. Each event's display text goes to
    the stdout artifact from here, masked (ansible-runner's own copy is suppressed:
    it would hold Ansible's output as printed).
    """

    def __init__(
        self, masker: Masker, stdout: IO[str], pump: _EventPump | None, keep_events: bool
    ) -> None:
        self._masker = masker
        self._stdout = stdout
        self._pump = pump
        self._keep_events = keep_events

    def __call__(self, raw: dict[str, Any]) -> bool:
        self._masker.scrub(raw)
        text = raw.get("stdout")
        if text and text != "{}":
            self._stdout.write(f"{text}\n")
            self._stdout.flush()
        if self._pump is not None:
            self._pump(raw)
        # True keeps the event as a JSON file in the artifacts too. The play recap
        # is always kept: ansible-runner reads its stats back from that file.
        return self._keep_events or raw.get("event") == "playbook_on_stats"


# -- the environment Ansible runs with -------------------------------------------

#: What Ansible and ssh need from the control node's environment: where home is
#: (~/.ssh, ~/.ansible/tmp), the locale (Ansible refuses a non-UTF-8 one), the time
#: zone, the temporary folder, the SSH agent's socket (a path: the agent's keys
#: never leave it), and provision's own switch for mitogen (docs/standards.md).
PASSED_VARIABLES = (
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "PROVISION_MITOGEN",
)
#: LC_* (locale) and ANSIBLE_* (Ansible's own settings, e.g. ANSIBLE_STRATEGY) pass
#: too, except an ANSIBLE_* whose name says it holds a secret (ANSIBLE_BECOME_PASS):
#: a secret belongs in the vault, never in an environment written to disk.
PASSED_PREFIXES = ("LC_", "ANSIBLE_")
_SECRET_SETTING = re.compile(r"PASS|SECRET|TOKEN|CREDENTIAL", re.IGNORECASE)
#: Set for every run below; what the caller's environment says of them is ignored.
_OWN_SETTINGS = ("ANSIBLE_SSH_CONTROL_PATH", "ANSIBLE_SSH_CONTROL_PATH_DIR")
#: What ansible-runner itself sets for Ansible (its callback plugin, where events go).
_RUNNER_SETTINGS = frozenset(
    {
        "ANSIBLE_STDOUT_CALLBACK",
        "ANSIBLE_CALLBACK_PLUGINS",
        "AWX_ISOLATED_DATA_DIR",
        "ANSIBLE_CACHE_PLUGIN",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION",
        "ANSIBLE_RETRY_FILES_ENABLED",
        "ANSIBLE_HOST_KEY_CHECKING",
        "ANSIBLE_ROLES_PATH",
        "RUNNER_OMIT_EVENTS",
        "RUNNER_ONLY_FAILED_EVENTS",
    }
)


def ansible_environment(
    environ: Mapping[str, str], own: Mapping[str, str], binary_dir: Path
) -> dict[str, str]:
    """The environment a run hands Ansible: `own` settings over what passes of `environ`."""
    chosen = {
        name: value
        for name, value in environ.items()
        if (name in PASSED_VARIABLES or name.startswith(PASSED_PREFIXES))
        and not (name.startswith("ANSIBLE_") and _SECRET_SETTING.search(name))
        and name not in _OWN_SETTINGS
    }
    # The folder of our own Python first: ansible-playbook's helpers and modules
    # run from the same environment as provision.
    chosen["PATH"] = os.pathsep.join([str(binary_dir), environ.get("PATH", "/usr/bin:/bin")])
    chosen.update(own)
    return chosen


# -- SSH masters, one folder per run ----------------------------------------------

#: A unix socket path holds 107 bytes; ssh binds "<path>.<16 random>" first, and
#: Ansible names each master "<folder>/<10 hex>": the folder may have 79.
_MAX_MASTERS_DIR = 107 - 17 - 11
#: An empty masters folder older than this is a crashed run's: it is removed.
_STALE_MASTERS_SECONDS = 3600


@contextlib.contextmanager
def ssh_masters(state_path: Path | None) -> Iterator[Path]:
    """A private folder for one run's SSH master connections, closed and removed after.

    Under `<state>/ssh/` (so per workspace and, a run being of one environment, per
    environment); a private temporary folder instead when that path is too long for
    a socket, or without a state directory. Masters die with the run: the next run
    connects afresh and checks the host key again.
    """
    root = state_path / "ssh" if state_path is not None else None
    folder: Path
    if root is not None and len(str(root)) + 9 <= _MAX_MASTERS_DIR:
        private_dir(root)
        _remove_stale_masters(root)
        folder = root / uuid.uuid4().hex[:8]
        folder.mkdir(mode=0o700)
    else:
        folder = Path(tempfile.mkdtemp(prefix="provision-ssh-"))  # 0700, a random name
    try:
        yield folder
    finally:
        close_masters(folder)
        shutil.rmtree(folder, ignore_errors=True)


def close_masters(folder: Path) -> list[Path]:
    """Ask every SSH master with a socket in `folder` to exit (`ssh -O exit`)."""
    closed: list[Path] = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        try:
            if not stat.S_ISSOCK(path.lstat().st_mode):
                continue
        except OSError:
            continue
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                ["ssh", "-o", f"ControlPath={path}", "-O", "exit", "provision-master"],
                capture_output=True,
                check=False,
                timeout=15,
            )
            closed.append(path)
    return closed


def _remove_stale_masters(root: Path) -> None:
    """Folders of runs that died: a master removes its socket when it exits."""
    now = time.time()
    for folder in root.iterdir():
        with contextlib.suppress(OSError):
            old = folder.is_dir() and now - folder.stat().st_mtime > _STALE_MASTERS_SECONDS
            if old and not any(folder.iterdir()):
                folder.rmdir()


# -- run folders: one per run, pruned per kind --------------------------------------
#
# Each run gets a private data dir `<state>/runs/<utc time>-<kind>[-<detail>]-<id>`
# holding Ansible's stdout, useful to read a failure right after a run. The store
# keeps the results for good; the folders are pruned per kind of run (rollout,
# compliance, lab, ...) to that kind's newest `keep`, so a daily audit neither
# grows the state directory without bound nor eats the rollout history. The name
# starts with the UTC time, so names sort by age; the kind is the word after it
# (folders of earlier versions are named the same way and are pruned with their kind).

#: How many run folders each kind of run keeps.
KEEP_RUN_DIRS = 50
_KIND = re.compile(r"[a-z0-9]+")


def new_run_dir(state_path: Path, kind: str = "run", detail: str = "") -> Path:
    """A fresh private data dir for one run: `<state>/runs/<utc time>-<kind>[-<detail>]-<id>`.

    `kind` is what housekeeping keys on (`prune_run_dirs`): its first word, up
    to a dash, is the run's kind ("lab-ping" is of kind "lab").
    """
    private_dir(state_path)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    label = f"{kind}-{detail}" if detail else kind
    path = state_path / "runs" / f"{stamp}-{label}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True, mode=0o700)
    return path


def run_kind(path: Path) -> str:
    """The kind of run a run folder is of: the word after its time ("" if none)."""
    parts = path.name.split("-")
    return parts[1] if len(parts) > 2 else ""


def prune_run_dirs(state_path: Path, kind: str, keep: int = KEEP_RUN_DIRS) -> list[Path]:
    """Remove the run folders of `kind` but its newest `keep`; return those removed, oldest first.

    Folders of other kinds are never touched.
    """
    if not _KIND.fullmatch(kind):
        raise ValueError(f"a run kind is one word of a-z and 0-9, not {kind!r}")
    folder = state_path / "runs"
    if not folder.is_dir():
        return []
    ours = sorted(p for p in folder.iterdir() if p.is_dir() and run_kind(p) == kind)
    removed = ours[: max(0, len(ours) - keep)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def run_playbook(
    playbook: Path,
    *,
    workspace: Path,
    private_data_dir: Path,
    inventory: Path | Mapping[str, Any] | Sequence[Path],
    limit: str | None = None,
    tags: Sequence[str] = (),
    check: bool = False,
    diff: bool = False,
    extravars: Mapping[str, Any] | None = None,
    forks: int = 20,
    on_event: EventCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    keep_events: bool = True,
    vault_password_file: Path | None = None,
    fact_cache_type: str = "jsonfile",
    masker: Masker = NO_MASKER,
    state_path: Path | None = None,
    strategy: str = "plain",
) -> PlaybookResult:
    """Run one playbook through ansible-runner and return its per-host stats.

    `inventory` is an inventory path, a list of them, or an inventory as a dict
    (written to the private data dir as JSON, so Ansible loads only those hosts).
    `on_event` receives every event on a separate thread; `cancel` is polled by
    ansible-runner and stops the run when it returns True. `keep_events=False`
    (with `on_event`) leaves each event's JSON file out of the artifacts, for a
    caller that records events itself: one file write and read less per event.
    `vault_password_file` is a file holding the vault password or a client script
    printing it (see `provision.access.secrets.password_file` for a prompted one): only its
    name reaches the command line recorded in the artifacts, never the password.
    `fact_cache_type="memory"` keeps gathered facts in memory, as plain
    ansible-playbook does with our ansible.cfg, instead of ansible-runner's
    default of a JSON file per host in the artifacts.
    `masker` hides the run's secret values (`provision.access.secrets.run_masker`) in every
    event and artifact. `state_path` is where the run's SSH masters live
    (`ssh_masters`); the environment Ansible gets is `ansible_environment`'s.
    `strategy` is "plain" or "fast" (`provision.infra.strategy`): "fast" runs
    through mitogen where the installed versions allow, else plain with a warning.

    Every process of the run carries `PROVISION_RUN_MARK=<private_data_dir>`
    in its environment; when the run returns (done, cancelled or broken), any
    that are left are killed (see provision.infra.processes). A cancelled run returns
    status "canceled" with the hosts' stats it has, never an error.
    """
    binary = tool_path("ansible-playbook")
    if binary is None:
        raise PrerequisiteError(
            "ansible-playbook was not found beside this Python nor on PATH",
            hint="install ansible-core into the same environment as provision (make setup)",
        )
    if not playbook.is_file():
        raise RunnerError(f"playbook {playbook} does not exist", hint="check the playbook path")

    cmdline: list[str] = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")
    if tags:
        cmdline += ["--tags", ",".join(tags)]
    if vault_password_file is not None:
        cmdline += ["--vault-password-file", shlex.quote(str(vault_password_file))]

    if isinstance(inventory, Path):
        inventory_arg: Any = str(inventory)
    elif isinstance(inventory, Mapping):
        inventory_arg = dict(inventory)
    else:
        inventory_arg = [str(p) for p in inventory]

    ident = uuid.uuid4().hex
    artifacts = private_data_dir / "artifacts" / ident
    artifacts.mkdir(parents=True, mode=0o700)
    stdout_fd = os.open(artifacts / "stdout", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with (
        ssh_masters(state_path) as masters,
        os.fdopen(stdout_fd, "w", encoding="utf-8") as stdout,
    ):
        envvars = ansible_environment(
            os.environ,
            {
                "ANSIBLE_CONFIG": str(workspace / "ansible.cfg"),
                "ANSIBLE_HOST_KEY_CHECKING": "True",
                "ANSIBLE_NOCOLOR": "True",
                "ANSIBLE_RETRY_FILES_ENABLED": "False",
                "ANSIBLE_SSH_CONTROL_PATH_DIR": str(masters),
                # Every process of this run carries the mark, so none outlives it
                # (see provision.infra.processes).
                MARK_VARIABLE: str(private_data_dir),
                **strategies.resolve(strategy).environment,
            },
            binary.parent,
        )
        pump = _EventPump(on_event) if on_event else None
        try:
            runner = init_runner(
                private_data_dir=str(private_data_dir),
                ident=ident,
                project_dir=str(workspace / "playbooks"),
                playbook=str(playbook.resolve()),
                inventory=inventory_arg,
                limit=limit,
                forks=forks,
                cmdline=" ".join(cmdline) if cmdline else None,
                extravars=dict(extravars or {}),
                envvars=envvars,
                suppress_env_files=True,
                suppress_output_file=True,
                quiet=True,
                event_handler=_EventFilter(masker, stdout, pump, keep_events),
                cancel_callback=cancel,
                fact_cache_type=fact_cache_type,
                # How often the cancel callback is asked (default 5 s): Ctrl-C stops at once.
                settings={"pexpect_timeout": CANCEL_POLL_SECONDS},
            )
            # ansible-runner seeds the run's environment with all of os.environ; keep
            # ours and what it sets itself. It is what Ansible runs with and what the
            # `command` artifact records.
            runner.config.env = {
                k: v for k, v in runner.config.env.items() if k in envvars or k in _RUNNER_SETTINGS
            }
            runner.run()
        finally:
            try:
                # A cancel kills ansible-playbook's own process group only; its workers
                # run in sessions of their own and would go on working on the hosts.
                stop_run_processes(str(private_data_dir))
            finally:
                if pump is not None:
                    pump.close()
            # An event ansible-runner never collected (a cancelled run) leaves the
            # callback's unmasked copy behind.
            for partial in artifacts.glob("job_events/*-partial.json*"):
                partial.unlink(missing_ok=True)

    stats: Mapping[str, Mapping[str, int]] = runner.stats or {}
    hosts: dict[str, HostStats] = {}
    names = set().union(
        *(stats.get(k, {}) for k in ("ok", "changed", "failures", "dark", "skipped"))
    )
    for host in names:
        hosts[host] = HostStats(
            host=host,
            ok=stats.get("ok", {}).get(host, 0),
            changed=stats.get("changed", {}).get(host, 0),
            failed=stats.get("failures", {}).get(host, 0),
            unreachable=stats.get("dark", {}).get(host, 0),
            skipped=stats.get("skipped", {}).get(host, 0),
            rescued=stats.get("rescued", {}).get(host, 0),
            ignored=stats.get("ignored", {}).get(host, 0),
        )
    if runner.rc != 0 and not hosts and runner.status != "canceled":
        # Ansible stopped before any host was touched: a syntax error, a bad
        # inventory. Its own words are in the stdout artifact.
        raise RunnerError(
            f"ansible-playbook stopped before reaching any host (rc {runner.rc}): "
            + _last_lines(private_data_dir),
            hint=f"see {private_data_dir}/artifacts for the whole output",
        )
    return PlaybookResult(
        status=str(runner.status),
        rc=int(runner.rc),
        hosts=dict(sorted(hosts.items())),
        private_data_dir=private_data_dir,
    )


#: Where Ansible says its error lies: "Origin: FILE:LINE:COLUMN" (ansible-core 2.19),
#: or "The error appears to be in 'FILE': line LINE" (earlier releases).
_ORIGIN = re.compile(r"^Origin: (?P<path>.+?):(?P<line>\d+)(?::\d+)?\s*$", re.M)
_APPEARS = re.compile(r"The error appears to be in '(?P<path>[^']+)': line (?P<line>\d+)")


def check_syntax(
    playbook: Path, *, workspace: Path, vault_password_file: Path | None = None
) -> None:
    """Let Ansible parse `playbook` and what it imports (`--syntax-check`), running nothing.

    A YAML error, a file that is not a list of plays, a module or role that
    does not exist: an InputError with Ansible's own first error line, at the
    file and line Ansible points at (an imported file's, when the error is there).
    No host is contacted: the inventory is one host that is never used.
    """
    binary = tool_path("ansible-playbook")
    if binary is None:
        raise PrerequisiteError(
            "ansible-playbook was not found beside this Python nor on PATH",
            hint="install ansible-core into the same environment as provision (make setup)",
        )
    argv = [str(binary), "--syntax-check", "-i", "localhost,", str(playbook.resolve())]
    if vault_password_file is not None:
        argv += ["--vault-password-file", str(vault_password_file)]
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(binary.parent), os.environ.get("PATH", "/usr/bin:/bin")]),
        "ANSIBLE_CONFIG": str(workspace / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "True",
    }
    proc = subprocess.run(
        argv,
        cwd=workspace / "playbooks" if (workspace / "playbooks").is_dir() else workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=600,
        check=False,
    )
    if proc.returncode == 0:
        return
    output = proc.stderr + proc.stdout
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("[ERROR]", "ERROR!"))]
    message = errors[0] if errors else " | ".join(lines[-3:]) or f"rc {proc.returncode}"
    message = re.sub(r"^(\[ERROR\]:|ERROR!)\s*", "", message)
    # "got a <class '…_AnsibleTaggedDict'>": the plain type name says it.
    message = re.sub(
        r"<class '(?:[\w.]+\.)?_?(?:AnsibleTagged)?(\w+)'>", lambda m: m[1].lower(), message
    )
    where = _ORIGIN.search(output) or _APPEARS.search(output)
    raise InputError(
        f"the playbook does not parse: {message}",
        hint=f"fix it; ansible-playbook --syntax-check {playbook} shows Ansible's whole report",
        path=where.group("path") if where else playbook,
        line=int(where.group("line")) if where else None,
    )


def _last_lines(private_data_dir: Path, count: int = 3) -> str:
    """Ansible's own error line if it printed one, else its last few lines."""
    for stdout in sorted(private_data_dir.glob("artifacts/*/stdout")):
        lines = [ln.strip() for ln in stdout.read_text(errors="replace").splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith(("ERROR", "[ERROR]"))]
        return errors[0] if errors else " | ".join(lines[-count:])
    return "no output"


# -- shards on execution nodes (see provision.infra.streaming) --------------------

#: What a node's ansible.cfg holds: the workspace's settings that matter on the node,
#: with paths inside the shard's project folder.
_NODE_CFG = """[defaults]
roles_path = roles
host_key_checking = True
interpreter_python = auto_silent
retry_files_enabled = False
gathering = smart
fact_caching = memory
callback_result_format = yaml
strategy_plugins = plugins/strategy

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=120s -o ServerAliveInterval=15
"""


@dataclass(frozen=True)
class ShardResult:
    """What one shard on a node came to.

    `state` is "done" (the worker's stream ended), "detached" (the link broke
    while the worker goes on: `resume` can re-attach to `job`) or "lost" (the
    worker is gone without an end: the node or the worker died).
    """

    node: str
    job: str
    state: str
    status: str
    hosts: dict[str, HostStats]
    reason: str | None = None
    offset: int = 0
    seen: frozenset[tuple[int, str]] = frozenset()


def transmit_job(
    playbook: Path,
    *,
    workspace: Path,
    folder: Path,
    inventory: Mapping[str, Any],
    node_job_dir: PurePosixPath,
    node_home: PurePosixPath,
    node_bin: PurePosixPath,
    tags: Sequence[str] = (),
    check: bool = False,
    diff: bool = False,
    extravars: Mapping[str, Any] | None = None,
    forks: int = 20,
    vault: bool = False,
    strategy: Mapping[str, str] | None = None,
) -> Path:
    """Write ansible-runner's transmit stream for one shard to `folder/job.in`.

    `strategy` is the shard's strategy variables (`strategy.node_environment`).

    The zip holds the shard's inventory slice, the playbooks folder and a node
    ansible.cfg, never a secret: the vault password is named by path only
    (`streaming.secret_file`, on the node's tmpfs, sent apart by `streaming.start_job`).
    """
    playbooks = workspace / "playbooks"
    pdd = folder / "pdd"
    project = pdd / "project"
    shutil.copytree(
        playbooks, project, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git")
    )
    (project / "ansible.cfg").write_text(_NODE_CFG, encoding="utf-8")
    # The worker would keep what tasks said, in clear, in its artifacts' stdout file
    # on the node's disk: ansible-runner takes this setting from env/settings only.
    (pdd / "env").mkdir()
    (pdd / "env" / "settings").write_text(settings_for({"suppress_output_file": True}))
    cmdline: list[str] = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")
    if tags:
        cmdline += ["--tags", ",".join(tags)]
    if vault:
        cmdline += ["--vault-password-file", str(secret_file(node_job_dir))]
    node_pdd = node_job_dir / "pdd"
    stream = folder / "job.in"
    with stream.open("wb") as out:
        transmitter = init_runner(
            private_data_dir=str(pdd),
            streamer="transmit",
            _output=out,
            ident=SHARD_IDENT,
            playbook=str(playbook.resolve().relative_to(playbooks.resolve())),
            # A dict: ansible-runner writes it as inventory/hosts (JSON) in the zip.
            inventory=dict(inventory),
            forks=forks,
            cmdline=" ".join(cmdline) if cmdline else None,
            extravars=dict(extravars or {}),
            envvars={
                "ANSIBLE_CONFIG": str(node_pdd / "project" / "ansible.cfg"),
                "ANSIBLE_HOST_KEY_CHECKING": "True",
                "ANSIBLE_NOCOLOR": "True",
                "ANSIBLE_RETRY_FILES_ENABLED": "False",
                "HOME": str(node_home),
                "PATH": f"{node_bin}:/usr/local/bin:/usr/bin:/bin",
                "LANG": "C.UTF-8",
                **dict(strategy or {}),
            },
            suppress_env_files=True,
            suppress_output_file=True,
            fact_cache_type="memory",
            quiet=True,
        )
        transmitter.run()
    shutil.rmtree(pdd)
    return stream


def _secret_of(vault_password_file: Path) -> bytes:
    """The vault password a file holds, or a client script prints."""
    if os.access(vault_password_file, os.X_OK):
        proc = subprocess.run(
            [str(vault_password_file)], capture_output=True, check=False, timeout=120
        )
        if proc.returncode != 0:
            raise RunnerError(
                "the vault password client script failed",
                hint=f"run {vault_password_file} by hand to see why",
            )
        return proc.stdout.strip() + b"\n"
    return vault_password_file.read_bytes().strip() + b"\n"


def stats_of(recap: Mapping[str, Any]) -> dict[str, HostStats]:
    """Per-host stats from a `playbook_on_stats` event's data."""

    def table(key: str) -> Mapping[str, int]:
        value = recap.get(key) or {}
        return value if isinstance(value, Mapping) else {}

    names = set().union(*(table(k) for k in ("ok", "changed", "failures", "dark", "skipped")))
    return {
        host: HostStats(
            host=host,
            ok=table("ok").get(host, 0),
            changed=table("changed").get(host, 0),
            failed=table("failures").get(host, 0),
            unreachable=table("dark").get(host, 0),
            skipped=table("skipped").get(host, 0),
            rescued=table("rescued").get(host, 0),
            ignored=table("ignored").get(host, 0),
        )
        for host in sorted(names)
    }


def collect_shard(
    link: NodeLink,
    job: str,
    *,
    on_event: EventCallback | None,
    masker: Masker = NO_MASKER,
    seen: frozenset[tuple[int, str]] = frozenset(),
    handle: ShardHandle | None = None,
    reattach: int = 3,
) -> ShardResult:
    """Follow a started job until its stream ends, re-attaching up to `reattach` times.

    Events in `seen` (by counter and uuid: recorded by an earlier attempt, which
    a follow from the stream's start replays) are skipped, and so is each event
    already handed on when a follow starts again. `on_event` is called on a
    thread of its own, in the stream's order; every call has returned when this
    returns. The job's folder is removed from the node once its stream has ended.
    """
    recap: dict[str, Any] = {}
    pump = _EventPump(on_event) if on_event else None

    def deliver(raw: dict[str, Any]) -> None:
        masker.scrub(raw)
        if raw.get("event") == "playbook_on_stats":
            recap.update(raw.get("event_data") or {})
        if pump is not None:
            pump(raw)

    parser = StreamParser(on_event=deliver, seen=set(seen))
    reason: str | None = None
    state = "detached"
    try:
        for _ in range(max(1, reattach + 1)):
            if follow_job(link, job, parser, on_process=handle.attach if handle else None):
                state = "done"
                break
            try:
                now = job_state(link, job)
            except NodeLinkError as error:
                reason = f"the link to node {link.name} broke: {error.message}"
                continue
            if not now["running"] and now["rc"] is None:
                state, reason = "lost", f"the worker on node {link.name} died"
                break
            reason = f"the SSH session to node {link.name} ended before the shard did"
    finally:
        if pump is not None:
            pump.close()
    if state == "done":
        reason = parser.explanation if parser.status in ("error", "failed") else None
        with contextlib.suppress(NodeLinkError):
            cleanup_job(link, job)
    return ShardResult(
        node=link.name,
        job=job,
        state=state,
        status=parser.status,
        hosts=stats_of(recap),
        reason=reason,
        offset=parser.offset,
        seen=frozenset(parser.seen),
    )


def run_shard(
    link: NodeLink,
    playbook: Path,
    *,
    workspace: Path,
    private_data_dir: Path,
    inventory: Mapping[str, Any],
    tags: Sequence[str] = (),
    check: bool = False,
    diff: bool = False,
    extravars: Mapping[str, Any] | None = None,
    forks: int = 20,
    on_event: EventCallback | None = None,
    on_started: Callable[[str], None] | None = None,
    vault_password_file: Path | None = None,
    masker: Masker = NO_MASKER,
    handle: ShardHandle | None = None,
    reattach: int = 3,
    strategy: str = "plain",
) -> ShardResult:
    """Run one playbook on `inventory`'s hosts from execution node `link`.

    Connection variables are the node's own: the node reaches its sites with its
    key and known_hosts (extravars, so they win over the inventory's control-node
    paths). `on_started(job)` is told the job's id once the worker runs, so a
    caller can record it for `resume`. `strategy` is the run's ("plain" or
    "fast"); the node runs fast only if it has the control node's mitogen.
    """
    job = uuid.uuid4().hex
    shard_vars = {
        **dict(extravars or {}),
        "ansible_ssh_private_key_file": str(link.site_key),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={link.site_known_hosts}",
    }
    stream = transmit_job(
        playbook,
        workspace=workspace,
        folder=private_data_dir,
        inventory=inventory,
        node_job_dir=link.job_dir(job),
        node_home=link.work_dir.parent,
        node_bin=link.runner.parent,
        tags=tags,
        check=check,
        diff=diff,
        extravars=shard_vars,
        forks=forks,
        vault=vault_password_file is not None,
        strategy=strategies.node_environment(strategy, node_fast=link.fast),
    )
    try:
        secret = _secret_of(vault_password_file) if vault_password_file else None
        start_job(link, job, stream, secret, masker.values)
    finally:
        stream.unlink(missing_ok=True)
    if on_started:
        on_started(job)
    return collect_shard(
        link,
        job,
        on_event=on_event,
        masker=masker,
        handle=handle,
        reattach=reattach,
    )
