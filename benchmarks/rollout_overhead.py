"""What `provision rollout` costs on top of plain `ansible-playbook`.

Boots a lab of its own (temporary workspace, its own subnet), then times, in
the same run and in rotating order, the same playbook on the same lab hosts:

* `ansible-playbook -i inventories/lab PLAYBOOK`            (the baseline)
* `run_playbook` through ansible-runner, default settings   (ansible-runner alone)
* `provision rollout PLAYBOOK --yes` as a subprocess        (everything: CLI start,
  inventory, plan, store, slice, runner, recorder, batched writes)

and prints the median wall time of each and its ratio to the baseline. Prints
comparable figures, not verdicts. Needs root (as the lab does).

    .venv/bin/python benchmarks/rollout_overhead.py [--rounds 5] [--tasks 30]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.lab_workspace import lab_workspace  # noqa: E402
from provision.infra import runner  # noqa: E402
from provision.lab import service  # noqa: E402

SUBNET = "10.213.13.0/24"


def write_playbook(path: Path, tasks: int) -> None:
    """A playbook of `tasks` small tasks per host, a typical baseline's shape."""
    lines = [
        "---",
        "- name: Benchmark play",
        "  hosts: all",
        "  gather_facts: false",
        "  tasks:",
    ]
    for i in range(tasks):
        lines += [
            f"    - name: Check step {i}",
            "      ansible.builtin.stat:",
            "        path: /etc/hostname",
        ]
    lines += [
        "    - name: Write the stamp",
        "      ansible.builtin.copy:",
        "        dest: /var/tmp/provision-bench",
        '        content: "{{ inventory_hostname }}\\n"',
        '        mode: "0644"',
    ]
    path.write_text("\n".join(lines) + "\n")


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (ansible, ssh)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(action: Callable[[], None]) -> tuple[float, float]:
    """Wall seconds and control-node CPU seconds of one action."""
    started, cpu = time.perf_counter(), _cpu()
    action()
    return time.perf_counter() - started, _cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=30)
    args = parser.parse_args()
    ansible_playbook = runner.tool_path("ansible-playbook")
    assert ansible_playbook is not None
    with lab_workspace(SUBNET, link_playbooks=False) as settings:
        workspace = settings.workspace
        playbook = workspace / "playbooks" / "bench.yml"
        write_playbook(playbook, args.tasks)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
        env.update(
            PROVISION_WORKSPACE=str(workspace),
            PROVISION_LAB_SUBNET=SUBNET,
            ANSIBLE_CONFIG=str(workspace / "ansible.cfg"),
            PYTHONPATH=str(REPO),
        )
        inventory = settings.inventory_path
        try:
            hosts = service.up(settings).hosts
            print(f"lab of {len(hosts)} hosts up; playbook of {args.tasks + 1} tasks per host")

            def plain() -> None:
                subprocess.run(
                    [str(ansible_playbook), "-i", str(inventory), str(playbook)],
                    cwd=workspace,
                    env=env,
                    check=True,
                    capture_output=True,
                )

            def runner_alone() -> None:
                result = runner.run_playbook(
                    playbook,
                    workspace=workspace,
                    private_data_dir=runner.new_run_dir(settings.state_path, "bench"),
                    inventory=inventory,
                )
                assert result.ok, result

            def rollout() -> None:
                proc = subprocess.run(
                    [sys.executable, "-m", "provision", "rollout", str(playbook), "", "--yes"],
                    cwd=workspace,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                assert proc.returncode == 0, proc.stdout + proc.stderr

            def startup() -> None:
                # What every provision command pays before any work: Python and imports.
                subprocess.run(
                    [sys.executable, "-m", "provision", "--version"],
                    cwd=workspace,
                    env=env,
                    check=True,
                    capture_output=True,
                )

            actions = {
                "ansible-playbook": plain,
                "ansible-runner": runner_alone,
                "provision rollout": rollout,
                "provision --version": startup,
            }
            plain()  # warm caches (SSH host keys, Python bytecode) before timing
            times: dict[str, list[float]] = {name: [] for name in actions}
            cpus: dict[str, list[float]] = {name: [] for name in actions}
            names = list(actions)
            for round_ in range(args.rounds):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    wall, cpu = timed(actions[name])
                    times[name].append(wall)
                    cpus[name].append(cpu)
            base = statistics.median(times["ansible-playbook"])
            base_cpu = statistics.median(cpus["ansible-playbook"])
            print(
                f"{'':<20} {'wall median s':>13} {'wall min s':>10} {'wall ratio':>10} "
                f"{'CPU median s':>12} {'CPU ratio':>9}"
            )
            for name in names:
                med, cpu = statistics.median(times[name]), statistics.median(cpus[name])
                print(
                    f"{name:<20} {med:>13.2f} {min(times[name]):>10.2f} {med / base:>10.3f} "
                    f"{cpu:>12.2f} {cpu / base_cpu:>9.3f}"
                )
            print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        finally:
            service.down(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
