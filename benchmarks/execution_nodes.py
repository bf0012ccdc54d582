"""A rollout over a simulated fleet: everything from the control node, or through two nodes.

Boots a lab of its own (a temporary workspace on a test subnet it claims) whose
two field servers are execution nodes (`lab up --nodes`: node gazipur serves
district:gazipur, node kaliganj upazila:gazipur/kaliganj), then writes the
inventory environment `fleet`: the two nodes' hosts as themselves, and many
inventory hosts (default 1,000) mapped onto the lab's two sites, half in
Kaliganj (on dhk-kal-lab01, served by node kaliganj) and half elsewhere in
Gazipur (on dhk-gaz-portal01, served by node gazipur); see benchmarks/fleet.py.

Then, in rotating order, the same playbook over the same fleet hosts is rolled
out with `provision rollout run --local` (everything on the control node) and
without it (each node runs its own hosts' shard), each as a `provision`
command of its own started in a cpuacct cgroup. Per way and round it prints:

* wall time;
* control-node CPU: everything the command started (provision, Ansible and its
  forks, ssh; with nodes, the ssh sessions that carry the shards), in total and
  per host;
* the nodes' CPU: each node host's container, measured by a cpuacct cgroup its
  processes are moved into for the run (the sites' containers are not counted:
  their work is the same both ways);
* hosts recorded: each fleet host's result, once, and where it ran.

Then the ratios, local / nodes, of control-node CPU per host and of wall time
(median over the rounds), and where the control node's CPU with nodes goes.
The lab's hosts share this machine's cores with the control node, so wall
times say more about the machine than about the topology: in the field each
node is a machine of its own. Prints comparable figures, not verdicts. Needs
root (as the lab does).

    .venv/bin/python benchmarks/execution_nodes.py [--hosts 1000] [--tasks 3]
        [--rounds 1] [--forks 50]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.fleet import CPUACCT, FLEET, cpu_group, write_fleet  # noqa: E402
from benchmarks.lab_workspace import lab_workspace  # noqa: E402
from provision.infra.store import open_store  # noqa: E402
from provision.lab import machine, service, state  # noqa: E402
from provision.nodes.lab import LAB_NODES, up_with_nodes  # noqa: E402
from provision.settings import Settings  # noqa: E402
from tests.helpers.lab import claim_test_subnet, release_test_subnet  # noqa: E402

#: The lab hosts the fleet hosts copy (place and address), one per node.
SITES = ("dhk-kal-lab01", "dhk-gaz-portal01")
PLAYBOOK = "fleet_bench.yml"


def write_playbook(path: Path, tasks: int) -> None:
    """`tasks` small tasks per host: a check-only baseline's shape."""
    lines = ["---", "- name: Fleet benchmark play", "  hosts: all", "  gather_facts: false"]
    lines.append("  tasks:")
    for i in range(tasks):
        lines += [
            f"    - name: Check step {i}",
            "      ansible.builtin.stat:",
            "        path: /etc/hostname",
        ]
    path.write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def host_cpu(settings: Settings, host: str, name: str) -> Iterator[Callable[[], float] | None]:
    """CPU seconds of one lab host's container from now on (None where unmeasurable).

    Its processes are moved into a cpuacct group of their own (new ones inherit
    it), and back to the root group after.
    """
    loaded = state.load(service.LabPaths.of(settings).state_file)
    assert loaded is not None, "the lab is not up"
    tops = [group / host for group in machine.lab_cgroups(loaded.bridge)]
    with cpu_group(name) as read:
        if read is not None:
            for pid in machine.cgroup_pids(tops):
                with contextlib.suppress(OSError):
                    (CPUACCT / name / "cgroup.procs").write_text(str(pid))
        yield read


def rollout(settings: Settings, group: str, *, local: bool, forks: int) -> float:
    """One `provision rollout run` of the fleet hosts in cgroup `group`; its wall seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
    env.update(
        PROVISION_WORKSPACE=str(settings.workspace),
        PROVISION_LAB_SUBNET=settings.lab_subnet,
        PROVISION_STATE_DIR=str(settings.state_path),
        PROVISION_ENV=FLEET,
        PROVISION_FORKS=str(forks),
        PYTHONPATH=str(REPO),
    )
    command = [sys.executable, "-m", "provision", "rollout", "run", PLAYBOOK, "fleet-*", "--yes"]
    # A shell joins the group, then becomes provision: every process it starts is counted.
    join = f'echo $$ > "{CPUACCT / group / "cgroup.procs"}"; exec "$@"'
    started = time.perf_counter()
    proc = subprocess.run(
        ["/bin/sh", "-c", join, "sh", *command, *(["--local"] if local else [])],
        cwd=settings.workspace,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"the rollout failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return seconds


def recorded(settings: Settings, hosts: int) -> tuple[int, Counter[str]]:
    """The newest run: how many fleet hosts have a result, and where they ran."""
    with open_store(settings) as store:
        run_id = store.list_runs(limit=1)[0].id
        results = store.host_results(run_id)
    ours = {h: r for h, r in results.items() if h.startswith("fleet-")}
    assert len(ours) == hosts, f"run {run_id} recorded {len(ours)} of {hosts} fleet hosts"
    assert all(r.outcome == "ok" for r in ours.values()), f"run {run_id} has failures"
    return len(ours), Counter(r.node or "control node" for r in ours.values())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=1000, help="Inventory hosts in the fleet.")
    parser.add_argument("--tasks", type=int, default=3, help="Tasks per host.")
    parser.add_argument("--rounds", type=int, default=1, help="Paired rounds (local, nodes).")
    parser.add_argument("--forks", type=int, default=50)
    args = parser.parse_args()
    if not CPUACCT.is_dir():
        print("cannot measure here: no cpuacct cgroup hierarchy at /sys/fs/cgroup/cpuacct")
        return 3
    subnet = claim_test_subnet()
    try:
        with lab_workspace(subnet, link_playbooks=False) as settings:
            # A shard carries the workspace's playbooks/ (the nodes' own setup needs
            # the repository's): a copy of it, with the benchmark's playbook added.
            shutil.copytree(
                REPO / "playbooks",
                settings.workspace / "playbooks",
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
            write_playbook(settings.workspace / "playbooks" / PLAYBOOK, args.tasks)
            try:
                return _measure(settings, args)
            finally:
                service.down(settings)
    finally:
        release_test_subnet(subnet)


def _measure(settings: Settings, args: argparse.Namespace) -> int:
    booted = up_with_nodes(settings, None)
    if not booted.ok:
        print("setting up the lab's nodes failed")
        return 1
    spread = write_fleet(
        settings,
        args.hosts,
        patterns=SITES,
        keep=[n.host for n in LAB_NODES],
        source="benchmarks/execution_nodes.py",
    )
    print(
        f"fleet: {args.hosts} inventory hosts on {len(spread)} lab hosts "
        f"({', '.join(str(n) for n in spread.values())} each), {args.tasks} tasks per host, "
        f"forks {args.forks}; nodes: {', '.join(f'{n.name} on {n.host}' for n in LAB_NODES)}; "
        f"{os.cpu_count()} cores on this machine, shared by the lab's hosts"
    )
    print(
        f"{'round':>5} {'way':<7} {'wall s':>7} {'control CPU s':>13} {'per host':>9} "
        f"{'nodes CPU s':>11}  hosts recorded (where they ran)"
    )
    walls: dict[str, list[float]] = {"local": [], "nodes": []}
    per_host: dict[str, list[float]] = {"local": [], "nodes": []}
    for round_ in range(args.rounds):
        ways = ["local", "nodes"] if round_ % 2 == 0 else ["nodes", "local"]
        for way in ways:
            tag = f"provision-bench-nodes-{os.getpid()}-{round_}-{way}"
            with contextlib.ExitStack() as stack:
                control = stack.enter_context(cpu_group(tag))
                nodes = [
                    stack.enter_context(host_cpu(settings, n.host, f"{tag}-{n.name}"))
                    for n in LAB_NODES
                ]
                assert control is not None, "cpuacct cgroups cannot be made here"
                wall = rollout(settings, tag, local=way == "local", forks=args.forks)
                control_s = control()
                nodes_s = sum(read() for read in nodes if read is not None)
            count, where = recorded(settings, args.hosts)
            walls[way].append(wall)
            per_host[way].append(control_s / count)
            print(
                f"{round_ + 1:>5} {way:<7} {wall:>7.1f} {control_s:>13.1f} "
                f"{control_s / count * 1000:>7.1f}ms {nodes_s:>11.1f}  {count} "
                f"({', '.join(f'{k} {v}' for k, v in sorted(where.items()))})"
            )
    cpu_ratio = statistics.median(per_host["local"]) / statistics.median(per_host["nodes"])
    wall_ratio = statistics.median(walls["local"]) / statistics.median(walls["nodes"])
    print(
        f"control-node CPU per host: local / nodes = {cpu_ratio:.1f}x lower with nodes; "
        f"wall: local / nodes = {wall_ratio:.2f}x (above 1: nodes faster)"
    )
    print(
        "with nodes, the control node's CPU is provision's own process (plan, store, "
        "the events of every shard through one recorder), one ssh session per node "
        "carrying the shard out and its events back, and ansible-runner's transmit and "
        "process ends; Ansible and its forks run on the nodes"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
