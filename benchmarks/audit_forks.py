"""A live fleet audit at forks 50, 100 and 200: control-node CPU per host, provision's share.

Boots a lab of its own (a temporary workspace on a test subnet it claims, a few
lab PCs), then writes an inventory environment `fleet` of many hosts (default
200) with distinct names, all mapped onto those few lab hosts (the same
`ansible_host`, round robin), and runs `compliance.service.audit` of the whole
fleet at each fork count, each in a forked child. Per fork count it prints:

* wall time and events per second (events handed to provision's event path);
* control-node CPU: everything the audit started (ansible-playbook, its forks,
  ssh and ssh's masters), measured by a cpuacct cgroup the child runs in (or,
  where none can be made, by the child's and its waited-for children's rusage);
  the lab hosts' own processes run in their containers and are not counted;
* CPU per host, and provision's share of it: the child's own process (the CLI's
  work: plan, store, the event path in ansible-runner's callback thread),
  of which the time spent in the audit's event callback (evaluating each
  host's evidence and writing it to the store) is shown apart.

The lab hosts share this machine's cores, so wall times say more about the
machine than about provision; CPU per host and the share are the figures.
Prints comparable figures, not verdicts. Needs root (as the lab does).

    .venv/bin/python benchmarks/audit_forks.py [--hosts 200] [--lab-pcs 4]
        [--forks 50,100,200]
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.fleet import FLEET, cpu_group, join_group, write_fleet  # noqa: E402
from benchmarks.lab_workspace import lab_workspace  # noqa: E402
from provision.lab import service  # noqa: E402
from provision.settings import Settings  # noqa: E402
from tests.helpers.lab import claim_test_subnet, release_test_subnet  # noqa: E402


def audit_at(settings: Settings, forks: int) -> dict[str, Any]:
    """One audit of the fleet in this process (the child): events, CPU of the callback."""
    from dataclasses import replace

    from provision.compliance import service as compliance
    from provision.infra import runner
    from provision.model.compliance.model import HOST_REPORTED

    counted = {"events": 0, "callback_s": 0.0}
    real = runner.run_playbook

    def counting(*args: Any, **kwargs: Any) -> Any:
        on_event = kwargs.get("on_event")
        if on_event is not None:

            def wrapped(event: Any) -> None:
                began = time.thread_time()
                try:
                    on_event(event)
                finally:
                    counted["callback_s"] += time.thread_time() - began
                    counted["events"] += 1

            kwargs["on_event"] = wrapped
        return real(*args, **kwargs)

    compliance.runner.run_playbook = counting  # type: ignore[method-assign]
    fleet = replace(settings, env=FLEET, forks=forks)
    result = compliance.audit(fleet)
    hosts = len(result.hosts)
    reported = sum(1 for h in result.hosts if h.status == HOST_REPORTED)
    return {"hosts": hosts, "reported": reported, **counted}


def in_child(
    settings: Settings, forks: int, group: Callable[[], float] | None, name: str
) -> dict[str, Any]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        code = 0
        try:
            if group is not None:
                join_group(name)
            started = time.perf_counter()
            result = audit_at(settings, forks)
            result["seconds"] = time.perf_counter() - started
            own = resource.getrusage(resource.RUSAGE_SELF)
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            result["self_s"] = own.ru_utime + own.ru_stime
            result["children_s"] = kids.ru_utime + kids.ru_stime
            result["threads"] = threading.active_count()
        except BaseException as exc:  # report it to the parent, whatever it is
            result, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
        with os.fdopen(write, "wb") as handle:
            pickle.dump(result, handle)
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        data = handle.read()
    os.waitpid(pid, 0)
    result = pickle.loads(data)  # noqa: S301 (our own child's output)
    if group is not None and "error" not in result:
        result["group_s"] = group()
    return dict(result)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=200, help="Inventory hosts in the fleet.")
    parser.add_argument("--lab-pcs", type=int, default=4, help="Lab hosts they map onto.")
    parser.add_argument("--forks", default="50,100,200")
    args = parser.parse_args()
    counts = [int(f) for f in args.forks.split(",") if f]
    subnet = claim_test_subnet()
    try:
        with lab_workspace(subnet) as settings:
            shutil.copytree(REPO / "standards", settings.workspace / "standards")
            up = service.up(settings, f"lab_pc:{args.lab_pcs}")
            try:
                spread = write_fleet(settings, args.hosts, source="benchmarks/audit_forks.py")
                print(
                    f"fleet: {args.hosts} inventory hosts on {len(up.hosts)} lab hosts "
                    f"({', '.join(str(n) for n in spread.values())} each); "
                    f"{os.cpu_count()} cores on this machine"
                )
                print(
                    f"{'forks':>5} {'wall s':>7} {'events/s':>9} {'CPU s':>7} {'CPU/host':>9} "
                    f"{'provision':>10} {'callback':>9}  measured by"
                )
                for forks in counts:
                    name = f"provision-bench-forks-{os.getpid()}-{forks}"
                    with cpu_group(name) as group:
                        result = in_child(settings, forks, group, name)
                    if "error" in result:
                        print(f"{forks:>5} failed: {result['error']}")
                        return 1
                    total = result.get("group_s") or result["self_s"] + result["children_s"]
                    how = "cpuacct cgroup" if "group_s" in result else "rusage (self + children)"
                    hosts = result["hosts"]
                    share = result["self_s"] / total if total else 0.0
                    callback = result["callback_s"] / total if total else 0.0
                    rate = result["events"] / result["seconds"] if result["seconds"] else 0.0
                    print(
                        f"{forks:>5} {result['seconds']:>7.1f} {rate:>9.0f} {total:>7.1f} "
                        f"{total / hosts * 1000:>7.0f}ms {share:>9.1%} {callback:>9.1%}  {how}; "
                        f"{result['reported']}/{hosts} reported, {result['events']:,} events"
                    )
                print(
                    "provision: its own process's CPU (plan, store, ansible-runner's event "
                    "thread) / all CPU; callback: the part in the audit's event callback "
                    "(evaluation and store writes)"
                )
            finally:
                service.down(settings)
    finally:
        release_test_subnet(subnet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
