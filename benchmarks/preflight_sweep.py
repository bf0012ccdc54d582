"""Preflight sweep time against `ansible all -m ping`, on the same 200 targets, same run.

Boots the default lab (four hosts) in a temporary workspace on its own subnet and
lists each host 50 times under different names (200 targets, four addresses), as
a sweep of a district's machines would. Then, per round, times

* `provision.access.preflight.sweep` (paramiko, one probe command per host), and
* `ansible all -m ping` (OpenSSH + Python on the host), with `--forks` equal to
  the sweep's concurrency and a fresh ControlPersist folder per round, so
  neither side reuses a connection from an earlier round.

Prints comparable figures (medians and the ratio), not verdicts. The lab's sshd
allows 100 unauthenticated connections before it starts dropping some
(MaxStartups 100:30:200, see provision/lab/machine.py). Needs root.

    .venv/bin/python benchmarks/preflight_sweep.py [--rounds 3] [--copies 50] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.lab_workspace import lab_workspace  # noqa: E402
from provision.access import preflight  # noqa: E402
from provision.infra.runner import tool_path  # noqa: E402
from provision.lab import service  # noqa: E402
from provision.lab.inventory import KEY_NAME, KNOWN_HOSTS  # noqa: E402
from provision.settings import load_settings  # noqa: E402

SUBNET = "10.213.14.0/24"


def write_targets(workspace: Path, hosts: list[service.HostStatus], copies: int) -> Path:
    """inventories/bench/: every lab host `copies` times, with the lab's key and host keys."""
    lab = workspace / "inventories" / "lab"
    folder = workspace / "inventories" / "bench"
    (folder / ".ssh").mkdir(parents=True, exist_ok=True)
    shutil.copy(lab / KNOWN_HOSTS, folder / KNOWN_HOSTS)  # keyed by address too
    entries = {}
    for i in range(1, copies + 1):
        for host in hosts:
            entries[f"{host.name}-c{i:03d}"] = {
                "ansible_host": host.address,
                "provision_role": host.role,
                "provision_district": "Gazipur",
            }
    connection = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(lab / KEY_NAME),
        "ansible_ssh_common_args": (
            f"-o UserKnownHostsFile={folder / KNOWN_HOSTS} -o StrictHostKeyChecking=yes"
        ),
    }
    (folder / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"hosts": entries, "vars": connection}}, sort_keys=False)
    )
    return folder


def ansible_ping(workspace: Path, folder: Path, forks: int, control_dir: Path) -> tuple[float, int]:
    """Seconds for `ansible all -m ping`, and how many hosts answered pong."""
    binary = tool_path("ansible")
    assert binary is not None, "ansible (ansible-core) is a dependency of provision"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(workspace / "ansible.cfg"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{binary.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    started = time.monotonic()
    proc = subprocess.run(
        [str(binary), "all", "-i", str(folder), "-m", "ansible.builtin.ping", "-f", str(forks)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.monotonic() - started
    return seconds, proc.stdout.count("SUCCESS")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=50, help="times each lab host is listed")
    parser.add_argument("--concurrency", type=int, default=50, help="sweep bound and --forks")
    args = parser.parse_args()
    with lab_workspace(SUBNET) as settings:
        workspace = settings.workspace
        try:
            up = service.up(settings)
            folder = write_targets(workspace, up.hosts, args.copies)
            bench = load_settings(
                workspace=workspace, environ={}, flags={"lab_subnet": SUBNET, "env": "bench"}
            )
            targets = len(up.hosts) * args.copies
            print(
                f"{targets} targets ({len(up.hosts)} lab hosts x {args.copies}), "
                f"concurrency/forks {args.concurrency}, {args.rounds} rounds"
            )
            sweeps, pings = [], []
            for round_ in range(1, args.rounds + 1):
                result = preflight.sweep(bench, None, concurrency=args.concurrency, save=False)
                reachable = sum(h.reachable for h in result.hosts)
                sweeps.append(result.seconds)
                seconds, pongs = ansible_ping(
                    workspace, folder, args.concurrency, workspace / f"cp-{round_}"
                )
                pings.append(seconds)
                print(
                    f"  round {round_}: preflight {result.seconds:6.2f}s ({reachable} reachable)"
                    f"   ansible ping {seconds:6.2f}s ({pongs} pong)"
                )
            sweep_median, ping_median = statistics.median(sweeps), statistics.median(pings)
            print(f"preflight median {sweep_median:.2f}s ({targets / sweep_median:.0f} hosts/s)")
            print(
                f"ansible -m ping median {ping_median:.2f}s ({targets / ping_median:.0f} hosts/s)"
            )
            print(f"ratio ping/preflight: {ping_median / sweep_median:.1f}x")
        finally:
            service.down(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
