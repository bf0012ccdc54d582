"""One shard of a run on an execution node: ansible-runner's transmit | worker | process, over SSH.

The control node builds the shard's private data dir (its hosts' inventory slice,
the playbooks, a settings file), and `runner.transmit_job` turns it into
ansible-runner's transmit stream. The node runs `ansible-runner worker` on that
stream, detached from the SSH session (setsid), with the worker's output stream
written to the node's own disk, as Receptor does. The control node follows that
file over SSH (`tail -c +OFFSET -F --pid`), so a dropped link loses nothing: the
worker goes on, and following again from any offset replays the stream, whose
events are told apart by (counter, uuid).

What ansible-runner's own Processor would do with the stream is not wanted here:
it writes every event and the node's artifacts (unmasked output) to the control
node's disk. `StreamParser` reads the same protocol, tolerates a line cut in two
by a dropped link, skips keepalives and the artifacts zip, and hands each event
to the run's masker and recorder.

Secrets: the vault password is never in the transmit stream. It is written over
SSH's stdin into a 0600 file on the node's tmpfs (`secret_file`: /dev/shm, never
on its disk, so a node that dies or is powered off keeps no copy), outside the
private data dir the worker zips back, and the job's shell removes it when the
worker exits; `cleanup_job` removes it too, with the whole job folder, once the
shard is collected.

Job folder on the node (`<work dir>/<job id>/`)::

    job.in      the transmit stream (its name removed as the worker opens it)
    out         the worker's output stream, what the control node follows
    err         the worker's stderr
    pid         the pid of the job's shell (tail's --pid)
    rc          the worker's exit status, written when it ends
    pdd/        the worker's private data dir

and on the tmpfs `/dev/shm/provision-node-<job id>.secret`, the vault
password, 0600, and `.events/`, where Ansible drops each event (unmasked)
until the worker reads it (`pdd/artifacts/shard/job_events` links to it):
both removed when the worker ends. A job whose shell was killed with its worker
cannot remove them: `sweep_secrets` removes every secret and events folder
whose job is not alive, and runs as each job starts (`start_job`), when the control node finds
a worker dead and when `resume` reaches a node; the node's cleanup timer runs
the same script (the `execution_node` role's `provision-node-sweep`). Starts
and sweeps hold one lock (`.secrets.lock` beside the work dir), so that a sweep never
takes the secret of a job whose shell has not written its pid yet.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from provision.errors import RunnerError
from provision.infra import node_mask

#: The output filter's program, run with the node's Python (`node_mask`: stdlib only).
_MASK_SOURCE = Path(node_mask.__file__).read_text(encoding="utf-8")

#: Seconds between the worker's keepalive lines: a quiet task never looks like a dead link.
KEEPALIVE_SECONDS = 15
#: OpenSSH's own keepalives: a link silent for interval x count seconds is given up.
SERVER_ALIVE_INTERVAL = 10
SERVER_ALIVE_COUNT = 3
#: How long one SSH command that is not the follow may take.
COMMAND_TIMEOUT = 120
#: A tmpfs on the node: what is written there is gone when the node stops.
SECRET_DIR = PurePosixPath("/dev/shm")  # noqa: S108 (on the node; 0600, named by job id)


#: Beside the work dir (in the worker account's home): held by a job's start and
#: by a sweep of the secrets.
SECRETS_LOCK = ".secrets.lock"


#: The ident of a shard's artifacts in its worker's private data dir (`pdd/artifacts/shard`).
SHARD_IDENT = "shard"


#: What a job keeps on the tmpfs, as `provision-node-<job>.<kind>`: its vault password,
#: the values its output filter masks, the folder its events pass through.
_TMPFS_KINDS = ("secret", "mask", "events")


def _on_tmpfs(job_dir: PurePosixPath, kind: str) -> PurePosixPath:
    """The job's `kind` (one of `_TMPFS_KINDS`) on the node's tmpfs, named by its job id."""
    return SECRET_DIR / f"provision-node-{job_dir.name}.{kind}"


def secret_file(job_dir: PurePosixPath) -> PurePosixPath:
    """Where the vault password of the job in `job_dir` waits for its worker, on the node."""
    return _on_tmpfs(job_dir, "secret")


def events_dir(job_dir: PurePosixPath) -> PurePosixPath:
    """Where the job's Ansible drops each event for its worker, on the node's tmpfs.

    Ansible's callback writes every event there, unmasked, before the worker reads
    it (and removes it) and the output filter masks it: on the tmpfs, a node that is
    powered off mid-job keeps none on its disk. The worker's `job_events` folder is a
    symlink to it."""
    return _on_tmpfs(job_dir, "events")


def sweep_script(work_dir: PurePosixPath, secret_dir: PurePosixPath = SECRET_DIR) -> str:
    """Shell that removes what each job keeps on the node's tmpfs once it is not alive.

    That is its secret, the values its filter masks and its events folder.

    A job is alive while its folder's pid names its shell and it has no exit
    status yet (as `job_state` says "running"); a secret with no such job (the
    shell killed, the folder gone) is removed. Run as the worker's account,
    after taking the lock that a job's start holds from writing its secret
    until its shell has written its pid. The role's sweep script is this text.
    """
    work = shlex.quote(str(work_dir))
    kept = " ".join(
        f"{shlex.quote(str(secret_dir))}/provision-node-*.{kind}" for kind in _TMPFS_KINDS
    )
    return (
        f"exec 9>>{shlex.quote(str(work_dir.parent / SECRETS_LOCK))} && flock 9 || exit 1\n"
        f"for f in {kept}; do\n"
        '  [ -e "$f" ] || continue\n'
        "  job=${f##*/provision-node-}; job=${job%.*}\n"
        f'  d={work}/"$job"\n'
        '  if [ -s "$d/pid" ] && [ ! -s "$d/rc" ] &&\n'
        '    grep -qaF "$job" "/proc/$(cat "$d/pid")/cmdline" 2>/dev/null; then\n'
        "    continue\n"
        "  fi\n"
        '  rm -rf -- "$f"\n'
        "done\n"
    )


@dataclass(frozen=True)
class NodeLink:
    """How the control node reaches one execution node and where its worker lives."""

    name: str
    address: str
    port: int
    user: str
    key: Path
    known_hosts: Path
    #: On the node: the account the worker runs as, its ansible-runner, its jobs folder.
    account: str
    runner: PurePosixPath
    work_dir: PurePosixPath
    #: On the node: the key and known_hosts the node reaches its sites with.
    site_key: PurePosixPath
    site_known_hosts: PurePosixPath
    #: The node has the control node's mitogen: its shards may run the fast strategy.
    fast: bool = False

    def ssh_argv(self, *, follow: bool = False) -> list[str]:
        """The ssh command line to the node (a follow gets OpenSSH's keepalives)."""
        argv = [
            "ssh",
            "-p",
            str(self.port),
            "-i",
            str(self.key),
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "ConnectTimeout=15",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
        ]
        if follow:
            argv += [
                "-o",
                f"ServerAliveInterval={SERVER_ALIVE_INTERVAL}",
                "-o",
                f"ServerAliveCountMax={SERVER_ALIVE_COUNT}",
            ]
        return [*argv, f"{self.user}@{self.address}"]

    def as_account(self, script: str) -> str:
        """A remote command that runs `script` as the worker's account."""
        runner = "runuser -u" if self.user == "root" else "sudo -n -u"
        return f"{runner} {shlex.quote(self.account)} -- sh -c {shlex.quote(script)}"

    def job_dir(self, job: str) -> PurePosixPath:
        return self.work_dir / job


class NodeLinkError(RunnerError):
    """The node could not be reached, or a command on it failed."""


def run_on_node(
    link: NodeLink, script: str, *, stdin: bytes | None = None, timeout: float = COMMAND_TIMEOUT
) -> str:
    """Run `script` as the worker's account on the node; its stdout, or NodeLinkError."""
    try:
        proc = subprocess.run(
            [*link.ssh_argv(), link.as_account(script)],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise NodeLinkError(
            f"node {link.name} did not answer within {timeout:g} s",
            hint=f"check the link to {link.address} (provision nodes check {link.name})",
        ) from None
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip().splitlines()
        raise NodeLinkError(
            f"node {link.name}: {why[-1] if why else f'exit {proc.returncode}'}",
            hint=f"check the node (provision nodes check {link.name})",
        )
    return proc.stdout.decode(errors="replace")


def mask_file(job_dir: PurePosixPath) -> PurePosixPath:
    """Where the values the job's output filter masks wait for it, on the node's tmpfs."""
    return _on_tmpfs(job_dir, "mask")


def start_job(
    link: NodeLink,
    job: str,
    stream: Path,
    secret: bytes | None,
    mask: Sequence[str] = (),
) -> None:
    """Send the transmit stream and the secret, then start the worker detached.

    The worker runs in a session of its own (setsid, stdin from the stream file,
    output to `out`), so it outlives the SSH session that started it. With
    `mask` (the run's `Masker` values), its output reaches `out` through
    `node_mask`'s filter, which masks them; they wait on the tmpfs beside the
    secret until the filter has read them. Before the secret is written, the
    secrets of jobs no longer alive are swept away; the lock is held until the
    job's shell has written its pid.
    """
    folder = link.job_dir(job)
    pdd = folder / "pdd"
    q = shlex.quote
    run_on_node(
        link,
        f"umask 077 && mkdir -p {q(str(folder))} && cat > {q(str(folder))}/job.in",
        stdin=stream.read_bytes(),
    )
    worker = (
        f"{q(str(link.runner))} worker --private-data-dir {q(str(pdd))}"
        f" --keepalive-seconds {KEEPALIVE_SECONDS}"
    )
    secret_path, mask_path = q(str(secret_file(folder))), q(str(mask_file(folder)))
    events = q(str(events_dir(folder)))
    # Ansible's events land on the tmpfs (see `events_dir`): the worker finds its
    # job_events folder already there, a link to it.
    drop = q(str(pdd / "artifacts" / SHARD_IDENT))
    links_events = (
        f"mkdir -m 700 {events} && mkdir -p {drop} && ln -s {events} {drop}/job_events || exit 1\n"
    )
    # The stream's name goes as soon as the worker's stdin is open on it: the extravars
    # it holds in clear are then reachable only through that open file, until the
    # worker has read it (its folder `pdd/` holds them unpacked while it runs).
    reads = f"{{ rm -f job.in; {worker}; }} < job.in"
    if mask:
        python = q(str(link.runner.parent / "python3"))
        masked = f"{python} -c {q(_MASK_SOURCE)} {mask_path}"
        # The worker's status, not the filter's: kept aside until the filter is done too.
        run = f"{{ {reads} 2> err; echo $? > rc.part; }} | {masked} > out; mv rc.part rc"
    else:
        run = f"{reads} > out 2> err; echo $? > rc"
    # The job's shell: records its pid, runs the worker, records its status, and
    # removes what must not outlive it (the secret, the stream holding the zip).
    job_shell = (
        f"cd {q(str(folder))} || exit 1; echo $$ > pid.tmp && mv pid.tmp pid; "
        f"{run}; rm -rf {secret_path} {mask_path} {events} job.in"
    )
    payload = b""
    # noclobber: a file already there (not ours) is refused, never written into.
    writes = ""
    if secret is not None:
        payload += secret
        writes += f"set -C; head -c {len(secret)} > {secret_path} || exit 1; set +C\n"
    if mask:
        values = json.dumps(list(mask)).encode()
        payload += values
        writes += f"set -C; head -c {len(values)} > {mask_path} || exit 1; set +C\n"
    run_on_node(
        link,
        f"cd {q(str(folder))} || exit 1\numask 077\n"
        + sweep_script(link.work_dir)
        + links_events
        + writes
        # The shell must not hold the lock (fd 9) for as long as it runs.
        + f"setsid nohup sh -c {q(job_shell)} > /dev/null 2>&1 < /dev/null 9>&- &\n"
        f"while [ ! -s {q(str(folder))}/pid ]; do sleep 0.1; done",
        stdin=payload,
    )


def sweep_secrets(link: NodeLink) -> None:
    """Remove the node's job secrets whose job is no longer alive (`sweep_script`)."""
    run_on_node(link, sweep_script(link.work_dir))


def job_state(link: NodeLink, job: str) -> dict[str, Any]:
    """What the node says of a job: exists, running, rc (None while it runs)."""
    folder = shlex.quote(str(link.job_dir(job)))
    out = run_on_node(
        link,
        f"if [ ! -d {folder} ]; then echo missing; exit 0; fi; cd {folder}; "
        "if [ -s rc ]; then echo rc=$(cat rc); "
        # The pid must still be the job's shell (whose command line names the
        # folder): after the node rebooted, another process may have its number.
        f"elif [ -s pid ] && grep -qaF {shlex.quote(job)} /proc/$(cat pid)/cmdline 2>/dev/null;"
        " then echo running; "
        "else echo dead; fi",
    ).strip()
    if out == "missing":
        return {"exists": False, "running": False, "rc": None}
    if out.startswith("rc="):
        return {"exists": True, "running": False, "rc": int(out[3:] or 1)}
    return {"exists": True, "running": out == "running", "rc": None}


def cleanup_job(link: NodeLink, job: str) -> None:
    """Remove the job's folder on the node (stream, output, artifacts), its secret and its
    events folder."""
    folder = link.job_dir(job)
    places = (folder, secret_file(folder), events_dir(folder))
    run_on_node(link, "rm -rf " + " ".join(shlex.quote(str(p)) for p in places))


def follow_argv(link: NodeLink, job: str, offset: int) -> list[str]:
    """The ssh command that streams the job's output from byte `offset` until the worker ends."""
    folder = shlex.quote(str(link.job_dir(job)))
    script = (
        f"cd {folder} || exit 3; while [ ! -s pid ]; do sleep 0.2; done; "
        f"touch out; exec tail -c +{offset + 1} -F --pid=$(cat pid) out 2>/dev/null"
    )
    return [*link.ssh_argv(follow=True), link.as_account(script)]


EventSink = Callable[[dict[str, Any]], None]


@dataclass
class StreamParser:
    """ansible-runner's worker stream, fed in chunks of any size, cut anywhere.

    Counts the bytes of whole lines it has taken (`offset`: where to follow
    from again), skips keepalives and the artifacts zip that ends a job, and
    hands each event not seen before (by counter and uuid) to `on_event`.
    """

    on_event: EventSink
    on_status: Callable[[dict[str, Any]], None] | None = None
    seen: set[tuple[int, str]] = field(default_factory=set)
    offset: int = 0
    eof: bool = False
    status: str = "unstarted"
    explanation: str | None = None
    _buffer: bytes = b""
    _skip: int = 0

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while self._buffer and not self.eof:
            if self._skip:
                taken = self._buffer[: self._skip]
                self._buffer = self._buffer[len(taken) :]
                self._skip -= len(taken)
                self.offset += len(taken)
                continue
            end = self._buffer.find(b"\n")
            if end < 0:
                return  # a partial line: wait for the rest
            line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            self.offset += end + 1
            self._line(line)

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            data = json.loads(line)
        except ValueError:
            raise RunnerError(
                "the worker's stream holds a line that is not JSON",
                hint="see the job's err file on the node; rerun the shard",
            ) from None
        if not isinstance(data, dict):
            return
        if "zipfile" in data:
            # The node's artifacts, base64 of `zipfile` bytes: not brought home.
            size = int(data["zipfile"])
            self._skip = 4 * ((size + 2) // 3)
        elif "eof" in data:
            self.eof = True
        elif "status" in data:
            self.status = str(data["status"])
            self.explanation = data.get("job_explanation") or self.explanation
            if self.on_status:
                self.on_status(data)
        elif data.get("event") == "keepalive":
            return
        else:
            counter, uuid = data.get("counter"), data.get("uuid")
            if not counter or not uuid:
                return
            key = (int(counter), str(uuid))
            if key in self.seen:
                return
            self.seen.add(key)
            self.on_event(data)


def follow_job(
    link: NodeLink,
    job: str,
    parser: StreamParser,
    *,
    on_process: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> bool:
    """Follow the job's output over SSH from `parser.offset`; True when its eof came.

    False means the SSH session ended first (a dropped link, a killed client):
    the worker goes on, and following again resumes where the parser stopped.
    """
    proc = subprocess.Popen(
        follow_argv(link, job, parser.offset),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    if on_process:
        on_process(proc)
    assert proc.stdout is not None
    try:
        for chunk in _chunks(proc.stdout):
            parser.feed(chunk)
            if parser.eof:
                break
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait()
    return parser.eof


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            return
        yield chunk


@dataclass
class ShardHandle:
    """A running follow, for a caller that must be able to stop it (Ctrl-C, tests)."""

    process: subprocess.Popen[bytes] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        with self.lock:
            self.process = proc

    def cut(self) -> None:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                self.process.kill()


def settings_for(mapping: Mapping[str, Any]) -> str:
    """JSON text for one of the worker's private data dir files."""
    return json.dumps(dict(mapping))
