"""What `provision rollout` costs on top of plain `ansible-playbook`.

Boots a lab of its own (temporary workspace, its own subnet), then times, in
the same run and in rotating order, the same playbook on the same lab hosts:

* `ansible-playbook -i inventories/lab PLAYBOOK`            (the baseline)
* `run_playbook` through ansible-runner                      (ansible-runner alone)
* `provision rollout PLAYBOOK --yes` as a subprocess        (everything: CLI start,
  inventory, plan, store, slice, runner, recorder, batched writes)

all three with the same Ansible settings: provision's ansible.cfg and provision's
default strategy (named in the output; `--strategy plain` measures plain linear).
Each round runs every action once (rotating order): a round is one paired run.
Prints, per action, the median wall and CPU time and the median over the rounds
of its ratio to the same round's baseline; then what provision's own process
spends outside Ansible: Python and the CLI (`provision --version`), the imports
of a rollout (paid once per run, however long), the rest, and with --profile a
profile of one rollout.
Prints comparable figures, not verdicts. Needs root (as the lab does).

    .venv/bin/python benchmarks/rollout_overhead.py [--rounds 5] [--tasks 30] [--profile]
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
from provision.infra import runner, strategy  # noqa: E402
from provision.lab import service  # noqa: E402

SUBNET = "10.213.16.0/24"  # its own: it may run beside site_speed
ROLLOUT_IMPORTS = "import provision.cli.main, provision.cli.rollout, provision.rollout"


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


def _report(
    names: list[str], times: dict[str, list[float]], cpus: dict[str, list[float]], rounds: int
) -> None:
    base, base_cpu = times["ansible-playbook"], cpus["ansible-playbook"]
    print(f"median of {rounds} paired rounds (ratio: to the same round's ansible-playbook)")
    print(
        f"{'':<20} {'wall median s':>13} {'wall min s':>10} {'wall ratio':>10} "
        f"{'CPU median s':>12} {'CPU ratio':>9}"
    )
    for name in names:
        wall = statistics.median(t / b for t, b in zip(times[name], base, strict=True))
        cpu = statistics.median(c / b for c, b in zip(cpus[name], base_cpu, strict=True))
        print(
            f"{name:<20} {statistics.median(times[name]):>13.2f} {min(times[name]):>10.2f} "
            f"{wall:>10.3f} {statistics.median(cpus[name]):>12.2f} {cpu:>9.3f}"
        )
    plain = statistics.median(base)
    extra = statistics.median(times["provision rollout"]) - plain
    extra_cpu = statistics.median(cpus["provision rollout"]) - statistics.median(base_cpu)
    start = statistics.median(times["provision --version"])
    imports, imports_cpu = (statistics.median(d["rollout imports"]) for d in (times, cpus))
    print(
        f"what remains: provision rollout - ansible-playbook = {extra:+.2f} s wall, "
        f"{extra_cpu:+.2f} s CPU; of which {start:.2f} s wall is Python and the CLI "
        f"(provision --version), and {imports:.2f} s wall, {imports_cpu:.2f} s CPU the "
        f"imports of a rollout (SQLAlchemy, ansible-runner, rich, click), paid once per run"
    )
    rest, rest_cpu = extra - imports, extra_cpu - imports_cpu
    print(
        f"the rest (plan, store, ansible-runner's event path, recorder, display): "
        f"{rest:+.2f} s wall ({rest / plain:+.1%} of ansible-playbook), "
        f"{rest_cpu:+.2f} s CPU ({rest_cpu / statistics.median(base_cpu):+.1%})"
    )


def _profile(workspace: Path, env: dict[str, str], playbook: Path) -> None:
    """One rollout under cProfile: where provision's own process spends its time."""
    out = workspace / "rollout.prof"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "cProfile", "-o", str(out), "-m", "provision", "rollout"),
            *(str(playbook), "--yes"),
        ],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import pstats

    stats = pstats.Stats(str(out))
    print("profile of one rollout, provision's own process (top 12 by own time):")
    stats.sort_stats("tottime").print_stats(12)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--strategy", choices=strategy.STRATEGIES, default="fast")
    parser.add_argument(
        "--profile", action="store_true", help="profile one more rollout (cProfile) and print it"
    )
    args = parser.parse_args()
    chosen = strategy.resolve(args.strategy)
    # A machine busy with other work can take longer than Ansible's 10 s to answer
    # an SSH connection; every action gets the same, longer, connect timeout.
    os.environ.setdefault("ANSIBLE_TIMEOUT", "60")
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
            PROVISION_STRATEGY=args.strategy,
            # The baseline runs with the strategy provision chose (the same settings).
            **chosen.environment,
        )
        inventory = settings.inventory_path
        try:
            hosts = service.up(settings).hosts
            print(
                f"lab of {len(hosts)} hosts up; playbook of {args.tasks + 1} tasks per host; "
                f"strategy {chosen.label}"
            )

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
                    strategy=args.strategy,
                )
                assert result.ok, result

            def rollout() -> None:
                proc = subprocess.run(
                    [sys.executable, "-m", "provision", "rollout", str(playbook), "--yes"],
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

            def imports() -> None:
                # What a rollout imports before its first step (SQLAlchemy, ansible-runner,
                # rich, click): the fixed cost of every run, however long.
                subprocess.run(
                    [sys.executable, "-c", ROLLOUT_IMPORTS],
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
                "rollout imports": imports,
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
            _report(names, times, cpus, args.rounds)
            if args.profile:
                _profile(workspace, env, playbook)
            print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        finally:
            service.down(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
