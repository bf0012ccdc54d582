"""Find and stop every process of one Ansible run on this control node.

ansible-runner starts ansible-playbook in a session of its own (on a pty that
ignores SIGHUP), and Ansible forks one worker per host and task, each of which
calls `setsid()` and starts its ssh client inside its own session. So neither
the death of provision (a crash, `kill -9`) nor ansible-runner's cancel (which
kills ansible-playbook's process group only) reaches the workers: they go on
acting on the hosts.

A run's processes are recognised by a mark in their environment,
`PROVISION_RUN_MARK=<the run's private data dir>`, which the runner sets for
ansible-playbook; workers (forks) and the ssh clients they start inherit it.
Every process of a session whose leader carries the mark is the run's too (a
child that cleared its environment). Two kinds are left alone: ssh
ControlMaster processes (`ssh: … [mux]`), which only relay for clients and
may serve other runs, and anything in this process's own session.

A process of another user (a run started with sudo, say) cannot have its
environment read: it counts as the run's when its command line names the
private data dir, as ansible-playbook's and its workers' do, and since it
cannot be killed from here either, stopping refuses at once, naming it.

Stopping is SIGKILL, repeated until a scan finds nothing (ansible-playbook may
fork a worker between a scan and its kill), so nothing of the run can start
another task. A module already running on a host when its ssh client dies
finishes there on its own: nothing of the run starts after it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from provision.errors import StateError

#: The environment variable that marks a run's processes.
MARK_VARIABLE = "PROVISION_RUN_MARK"

_PROC = Path("/proc")


@dataclass(frozen=True)
class RunProcess:
    pid: int
    session: int
    started: int  # clock ticks after boot: parents before their children
    command: str


@dataclass(frozen=True)
class _Seen:
    process: RunProcess
    marked: bool
    relay: bool  # an ssh ControlMaster


def _scan(mark: str) -> Iterator[_Seen]:
    wanted = f"{MARK_VARIABLE}={mark}".encode()
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
            try:
                marked = wanted in (entry / "environ").read_bytes().split(b"\0")
            except PermissionError:
                # Another user's: its environment is not ours to read, its command
                # line is. ansible-playbook and its workers name the run's private
                # data dir there (their inventory lies in it).
                marked = mark.encode() in cmdline
        except OSError:  # gone meanwhile
            continue
        # The command name in brackets may hold spaces and brackets: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] in ("Z", "X"):
            continue  # dead, waiting to be reaped: it acts on nothing
        command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
        yield _Seen(
            RunProcess(int(entry.name), int(fields[3]), int(fields[19]), command),
            marked=marked,
            relay=command.startswith("ssh: ") and command.endswith("[mux]"),
        )


def find_run_processes(mark: str) -> list[RunProcess]:
    """The live processes of the run marked `mark`, oldest first."""
    me, my_session = os.getpid(), os.getsid(0)
    seen = [s for s in _scan(mark) if s.process.pid != me and s.process.session != my_session]
    leaders = {s.process.pid for s in seen if s.marked and not s.relay}
    found = [s.process for s in seen if not s.relay and (s.marked or s.process.session in leaders)]
    return sorted(found, key=lambda p: (p.started, p.pid))


def stop_run_processes(mark: str, *, timeout: float = 30.0) -> list[RunProcess]:
    """Kill every process of the run marked `mark`; return them once all are gone.

    Raises StateError naming the processes that could not be stopped in time
    (another user's, or stuck in the kernel).
    """
    stopped: dict[int, RunProcess] = {}
    deadline = time.monotonic() + timeout
    while True:
        found = find_run_processes(mark)
        if not found:
            return sorted(stopped.values(), key=lambda p: (p.started, p.pid))
        if time.monotonic() > deadline:
            raise StateError(
                f"{len(found)} processes of an earlier run could not be stopped: {_shown(found)}",
                hint="stop them (kill -9 PID) and run the command again",
            )
        refused: list[RunProcess] = []
        for process in found:
            stopped.setdefault(process.pid, process)
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            except PermissionError:
                refused.append(process)
        if refused:
            raise StateError(
                f"{len(refused)} processes of an earlier run belong to another user "
                f"and cannot be stopped from here: {_shown(refused)}",
                hint="stop them as that user (or root) and run the command again",
            )
        time.sleep(0.05)  # let the kernel take them down before the next scan


def _shown(processes: list[RunProcess]) -> str:
    return ", ".join(f"{p.pid} ({p.command[:60]})" for p in processes[:5]) + (
        f" and {len(processes) - 5} more" if len(processes) > 5 else ""
    )
