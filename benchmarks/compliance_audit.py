"""One-pass compliance audit against the same controls written as per-control Ansible tasks.

Boots a lab of its own (temporary workspace, its own subnet), then times, in the
same run and in rotating order, on the same lab hosts:

* `audit()`: provision's compliance run, everything included: plan, one
  `provision_evidence` module call per host, evaluation on the control node
  and the store;
* a generated playbook doing what a per-control audit does: one read-only
  Ansible task per check of every applicable control (dpkg-query per package
  check, `systemctl show` per service, `sshd -T` per sshd setting, `sysctl -n`
  per kernel parameter, stat and grep per file, getent per account, ss per
  port, setup for hardware, readlink for the time zone, nft per firewall
  check), collection only (no evaluation, no store): the per-control side is
  flattered, not the one-pass side.

Prints the median wall time per host of each and their ratio. Prints figures,
not verdicts. Needs root (as the lab does).

    .venv/bin/python benchmarks/compliance_audit.py [--rounds 3] [--hosts SPEC]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.lab_workspace import lab_workspace  # noqa: E402
from provision.compliance.service import AuditPlan, audit, plan_audit  # noqa: E402
from provision.infra import runner  # noqa: E402
from provision.lab import service  # noqa: E402
from provision.model.standards.model import Check  # noqa: E402

SUBNET = "10.213.14.0/24"
_RO = {"changed_when": False, "failed_when": False, "check_mode": False}


def _command(name: str, argv: list[str]) -> dict[str, Any]:
    return {"name": name, "ansible.builtin.command": {"argv": argv}, **_RO}


#: Every check type the per-control side has tasks for: the standard's check
#: types (provision.model.standards.checks.CHECK_TYPES), kept equal by
#: tests/unit/test_benchmark_check_types.py.
CHECK_KINDS = frozenset(
    {
        "os_release",
        "package_installed",
        "package_absent",
        "service",
        "sshd_setting",
        "sysctl",
        "file",
        "user",
        "port",
        "hardware",
        "timezone",
        "firewall",
        "portal_https",
    }
)


def check_tasks(control: str, check: Check) -> list[dict[str, Any]]:
    """The tasks a per-control audit spends on one check (collection only)."""
    f = check.fields
    kind = check.type
    if kind not in CHECK_KINDS:
        raise ValueError(f"no per-control tasks for check type {kind!r}: add them to check_tasks")
    if kind == "os_release":
        return [_command(f"{control}: read os-release", ["cat", "/etc/os-release"])]
    if kind in ("package_installed", "package_absent"):
        return [
            _command(
                f"{control}: query {p}",
                ["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", str(p)],
            )
            for p in f["packages"]
        ]
    if kind == "service":
        return [
            _command(
                f"{control}: query unit {f['name']}",
                ["systemctl", "show", "-p", "UnitFileState,ActiveState", str(f["name"])],
            )
        ]
    if kind == "sshd_setting":
        return [_command(f"{control}: sshd -T for {f['setting']}", ["sshd", "-T"])]
    if kind == "sysctl":
        return [_command(f"{control}: sysctl {k}", ["sysctl", "-n", str(k)]) for k in f["values"]]
    if kind == "file":
        tasks: list[dict[str, Any]] = [
            {
                "name": f"{control}: stat {f['path']}",
                "ansible.builtin.stat": {"path": str(f["path"])},
                **_RO,
            }
        ]
        if f.get("contains") is not None:
            tasks.append(
                _command(
                    f"{control}: grep {f['path']}",
                    ["grep", "-E", str(f["contains"]), str(f["path"])],
                )
            )
        return tasks
    if kind == "user":
        return [_command(f"{control}: getent {f['name']}", ["getent", "passwd", str(f["name"])])]
    if kind == "port":
        return [_command(f"{control}: listening on {f['port']}", ["ss", "-ltnuH"])]
    if kind == "hardware":
        return [
            {
                "name": f"{control}: hardware facts",
                "ansible.builtin.setup": {"gather_subset": ["!all", "hardware"]},
                **_RO,
            }
        ]
    if kind == "timezone":
        return [_command(f"{control}: time zone", ["readlink", "/etc/localtime"])]
    if kind == "firewall":
        return [_command(f"{control}: nft ruleset", ["nft", "-j", "list", "ruleset"])]
    if kind == "portal_https":
        # Checked over HTTPS from the control node by both sides, not on the host:
        # the per-control side is given it for free (flattered, as above).
        return []
    raise ValueError(f"no per-control tasks for check type {kind!r}: add them to check_tasks")


def per_control_playbook(plan: AuditPlan, path: Path) -> int:
    """Write the per-control playbook for the plan's hosts; return its task count."""
    tasks: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for host in plan.hosts:
        for control, checks in host.controls:
            for check in checks:
                for task in check_tasks(control.id, check):
                    key = yaml.safe_dump(task, sort_keys=True)
                    tasks.setdefault(key, (task, []))[1].append(host.host)
    listed = []
    for task, hosts in tasks.values():
        listed.append({**task, "when": f"inventory_hostname in {sorted(set(hosts))!r}"})
    play = [
        {
            "name": "Audit each control with its own tasks",
            "hosts": "all",
            "gather_facts": False,
            "become": True,
            "tasks": listed,
        }
    ]
    path.write_text("---\n" + yaml.safe_dump(play, sort_keys=False))
    return len(listed)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--hosts",
        default="",
        help="lab hosts, as `provision lab up --hosts` takes them (default: the default lab)",
    )
    args = parser.parse_args()
    with lab_workspace(SUBNET) as settings:
        shutil.copytree(REPO / "standards", settings.workspace / "standards")
        up = service.up(settings, args.hosts or None)
        try:
            plan = plan_audit(settings)
            hosts = len(plan.hosts)
            playbook = settings.workspace / "per_control_audit.yml"
            count = per_control_playbook(plan, playbook)
            checks = sum(len(c) for h in plan.hosts for _, c in h.controls)

            def one_pass() -> None:
                audit(settings)

            def per_control() -> None:
                result = runner.run_playbook(
                    playbook,
                    workspace=settings.workspace,
                    private_data_dir=runner.new_run_dir(settings.state_path, "per-control"),
                    inventory=settings.inventory_path,
                    forks=settings.forks,
                )
                assert result.ok, result.hosts

            times: dict[str, list[float]] = {"one-pass": [], "per-control": []}
            for round_ in range(args.rounds):
                order = [("one-pass", one_pass), ("per-control", per_control)]
                for name, action in order if round_ % 2 == 0 else reversed(order):
                    times[name].append(timed(action))
            print(
                f"{hosts} lab hosts ({len(up.hosts)} booted), {checks} checks in all; "
                f"per-control playbook: {count} tasks; median of {args.rounds} rounds"
            )
            one = statistics.median(times["one-pass"])
            per = statistics.median(times["per-control"])
            print(f"  one-pass audit (provision)   {one:7.2f} s   {one / hosts:6.2f} s/host")
            print(f"  per-control Ansible tasks    {per:7.2f} s   {per / hosts:6.2f} s/host")
            print(f"  ratio per-control / one-pass {per / one:7.1f}x")
        finally:
            service.down(settings)


if __name__ == "__main__":
    main()
