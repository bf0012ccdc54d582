"""Wall time of an idempotent site.yml run on lab hosts: provision's Ansible settings vs stock.

Three ways of running the same `ansible-playbook playbooks/site.yml` on the same
converged lab hosts, alternated round by round so that noise from the shared
machine falls on all of them alike:

* stock     ansible-playbook with Ansible's defaults (only roles_path set, so it
            finds the roles; host keys strict as always)
* plain     provision's ansible.cfg (pipelining, ControlPersist, fact cache) with
            `strategy: plain` (Ansible's linear)
* default   provision's default settings: the same ansible.cfg and the default
            strategy as provision resolves it here (fast: mitogen where the
            installed versions are supported; the output names what ran)

Prints comparable figures and the ratios against stock, not verdicts. Boots its
own lab on its own subnet in a temporary workspace (or uses the lab of an
existing workspace with --workspace), converges it once, then measures.

    .venv/bin/python benchmarks/site_speed.py [--rounds 3] [--workspace WS]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.lab_workspace import lab_workspace  # noqa: E402
from provision.infra import strategy  # noqa: E402
from provision.infra.runner import tool_path  # noqa: E402
from provision.lab import service  # noqa: E402
from provision.settings import Settings, load_settings  # noqa: E402

SUBNET = "10.213.13.0/24"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _environments(workspace: Path) -> dict[str, dict[str, str]]:
    stock_cfg = workspace / "stock.cfg"
    stock_cfg.write_text(f"[defaults]\nroles_path = {REPO / 'playbooks' / 'roles'}\n")
    binary = tool_path("ansible-playbook")
    assert binary is not None
    base = {
        "PATH": f"{binary.parent}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "ANSIBLE_NOCOLOR": "1",
    }
    tuned = {**base, "ANSIBLE_CONFIG": str(workspace / "ansible.cfg")}
    return {
        "stock": {**base, "ANSIBLE_CONFIG": str(stock_cfg)},
        "plain": {**tuned, **strategy.resolve(strategy.PLAIN).environment},
        "default": {**tuned, **strategy.resolve(Settings.strategy).environment},
    }


def _run(settings: Settings, env: dict[str, str]) -> tuple[float, dict[str, tuple[int, ...]]]:
    binary = tool_path("ansible-playbook")
    assert binary is not None
    started = time.monotonic()
    proc = subprocess.run(
        [str(binary), "-i", str(settings.inventory_path), "playbooks/site.yml"],
        cwd=settings.workspace,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    recap = {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(proc.stdout)}
    if proc.returncode != 0 or not recap:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise SystemExit(f"site.yml failed (rc {proc.returncode}):\n{tail}\n{proc.stderr[-2000:]}")
    return elapsed, recap


def _measure(settings: Settings, rounds: int) -> None:
    envs = _environments(settings.workspace)
    print("converging the lab once (not timed)…", file=sys.stderr)
    _run(settings, envs["plain"])
    times: dict[str, list[float]] = {name: [] for name in envs}
    for round_ in range(1, rounds + 1):
        for name, env in envs.items():
            elapsed, recap = _run(settings, env)
            changed = sum(v[1] for v in recap.values())
            note = "" if changed == 0 else f"  (changed={changed}: not idempotent!)"
            print(
                f"  round {round_} {name:<8} {elapsed:6.1f}s  {len(recap)} hosts{note}",
                file=sys.stderr,
            )
            times[name].append(elapsed)
    default = strategy.resolve(Settings.strategy)
    fallback = f"; fell back: {default.fallback}" if default.fallback else ""
    labels = {
        "stock": "stock ansible-playbook",
        "plain": "provision ansible.cfg, strategy plain",
        "default": f"provision default, strategy {default.label}{fallback}",
    }
    stock = statistics.median(times["stock"])
    print(f"\nidempotent site.yml, {rounds} rounds, hosts: {len(recap)}")
    width = max(len(label) for label in labels.values())
    print(f"{'settings':<{width}} {'median s':>9} {'min s':>7} {'x vs stock':>10}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{labels[name]:<{width}} {median:9.1f} {min(values):7.1f} {stock / median:10.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workspace", type=Path, help="use the running lab of this workspace")
    args = parser.parse_args()
    if args.workspace:
        _measure(load_settings(workspace=args.workspace.resolve()), args.rounds)
        return 0
    with lab_workspace(SUBNET) as settings:
        service.up(settings)
        try:
            _measure(settings, args.rounds)
        finally:
            service.down(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
