"""A lab of its own whose two field servers are execution nodes (`lab up --nodes`).

    gazipur   on dhk-gaz-fs01   serves district:gazipur          runs dhk-gaz-portal01
    kaliganj  on dhk-kal-fs01   serves upazila:gazipur/kaliganj  runs dhk-kal-lab01

Tests that need nodes take `nodes_lab(root, hosts_spec)`: it claims a test
subnet, boots the lab, sets both nodes up with the role, and takes it all down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provision.infra.store import open_store
from provision.lab import service
from provision.lab.inventory import ssh_options
from provision.nodes import layout
from provision.nodes.lab import LabNodesResult, up_with_nodes
from provision.settings import Settings
from tests.helpers.lab import Lab, claim_test_subnet, lab_settings, release_test_subnet
from tests.helpers.workspace import FIXTURES


@dataclass
class NodesLab(Lab):
    nodes: LabNodesResult | None = None

    def push(self, name: str, source: Path, target: str) -> None:
        """Copy a control-node file to a lab host (over SSH, strict host keys)."""
        with source.open("rb") as stream:
            subprocess.run(
                [
                    "ssh",
                    *ssh_options(self.inventory),
                    f"root@{self.address(name)}",
                    f"cat > {target}",
                ],
                stdin=stream,
                check=True,
                timeout=120,
            )


@contextmanager
def nodes_lab(root: Path, hosts_spec: str | None = None) -> Iterator[NodesLab]:
    subnet = claim_test_subnet()
    settings = lab_settings(root / "workspace", subnet)
    # A shard carries the workspace's playbooks/ folder: a copy of the repository's
    # here (not its symlink), so that tests add playbooks of their own to it.
    playbooks = settings.workspace / "playbooks"
    source = playbooks.resolve()
    playbooks.unlink()
    shutil.copytree(source, playbooks, ignore=shutil.ignore_patterns("__pycache__"))
    try:
        result = up_with_nodes(settings, hosts_spec)
        yield NodesLab(settings, result.up.hosts, result)
    finally:
        service.down(settings)
        release_test_subnet(subnet)


# -- shards cut mid-run: the gated playbook, the follows, the store -------------------

#: The playbook that holds still until a release file is on the host (its start
#: marker first: a task row the test waits for), copied into the workspace's own
#: playbooks/ (see `nodes_lab`) since a shard carries only that folder.
GATED = "rollout_block.yml"
GATE = "/var/tmp/provision-rollout"


def workspace_playbook(lab: Lab, name: str) -> Path:
    """Where a test's own playbook goes: the lab workspace's playbooks/, never the repository's."""
    folder = lab.settings.workspace / "playbooks"
    assert not folder.is_symlink(), f"{folder} is the repository's own folder"
    return folder / name


def install_gated_playbook(lab: Lab) -> str:
    shutil.copyfile(FIXTURES / "playbooks" / GATED, workspace_playbook(lab, GATED))
    return GATED


def close_gates(lab: Lab, hosts: Iterable[str]) -> None:
    for host in hosts:
        lab.ssh(host, f"rm -rf {GATE}")


def open_gates(lab: Lab, hosts: Iterable[str]) -> None:
    for host in hosts:
        lab.ssh(host, f"mkdir -p {GATE} && touch {GATE}/release")


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (children, theirs, …), read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def follows(run_pid: int, node_address: str) -> list[int]:
    """The ssh clients of run `run_pid` that follow a job's output on the node at that address."""
    found = []
    for pid in descendants(run_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if (
            words
            and Path(words[0]).name == "ssh"
            and any(w.endswith(f"@{node_address}") for w in words)
        ) and any("tail -c +" in w for w in words):
            found.append(pid)
    return found


def kill_follows_until_exit(proc: subprocess.Popen[str], node_address: str) -> int:
    """Kill every follow of the node the run starts, until the run gives up and exits.

    The run follows again after a killed session (a few times); killing each
    one is a link that stays down. Returns how many were killed.
    """
    killed = 0
    while proc.poll() is None:
        for pid in follows(proc.pid, node_address):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.1)
    return killed


def latest_run(settings: Settings) -> int:
    with open_store(settings) as store:
        runs = store.list_runs(limit=1)
    return runs[0].id if runs else 0


def task_rows_of(settings: Settings, run_id: int, host: str) -> int:
    with open_store(settings) as store:
        return len(store.task_rows(run_id, host))


def events_per_host(settings: Settings, run_id: int) -> dict[str, int]:
    """Task rows per host of a run, over all its attempts."""
    with open_store(settings) as store:
        return dict(Counter(row.host for row in store.task_rows(run_id)))


def jobs_left(lab: Lab, host: str) -> list[str]:
    out = lab.ssh(host, f"find {layout.WORK_DIR} -mindepth 1 -maxdepth 1")
    return out.split()
