"""A simulated fleet on the lab, and the CPU of the control node's part of a run.

Many inventory hosts on a few lab hosts: each inventory host has a name, an
asset tag and a place in the tree of its own, and the address of a lab host as
its `ansible_host`, so Ansible treats it as a host of its own (its own SSH
master, its own results) while the work lands on the lab's containers. The
benchmarks that need fleet scale (`audit_forks.py`, `execution_nodes.py`) write
one as the inventory environment `fleet` of their temporary lab workspace:

    spread = write_fleet(settings, 1000, patterns=["dhk-kal-lab01"])

Each fleet host copies the register row of a lab host (`patterns`, round robin:
its place, role and declared equipment) and that host's address. `keep` puts
lab hosts into the fleet as themselves (the execution nodes' own hosts, which
nodes.yml names). The lab's connection settings and known hosts are copied
along, and its nodes.yml when there is one.

`cpu_group` measures the control node's CPU of one run: a cpuacct cgroup the run
is started in holds Ansible, its forks, ssh and ssh's masters; the lab hosts' own
processes run in their containers' cgroups and are not counted.
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from provision.inventory import build_inventory, files, parse_register
from provision.lab import service, state
from provision.lab.inventory import register_text
from provision.settings import Settings

CPUACCT = Path("/sys/fs/cgroup/cpuacct")
FLEET = "fleet"


def write_fleet(
    settings: Settings,
    hosts: int,
    *,
    patterns: Sequence[str] = (),
    keep: Sequence[str] = (),
    source: str = "benchmarks/fleet.py",
) -> dict[str, int]:
    """inventories/fleet: `hosts` hosts named fleet-NNNN on the lab's hosts.

    `patterns` names the lab hosts whose rows the fleet hosts copy (all of the
    lab's when empty); `keep` the lab hosts the fleet holds as themselves.
    Returns how many fleet hosts each lab address carries.
    """
    lab = settings.workspace / "inventories" / "lab"
    loaded = state.load(service.LabPaths.of(settings).state_file)
    assert loaded is not None, "the lab is not up"
    records = sorted(loaded.hosts.values(), key=lambda r: r.name)
    rows = list(csv.DictReader(io.StringIO(register_text(records))))
    by_name = {row["hostname"]: row for row in rows}
    unknown = [n for n in (*patterns, *keep) if n not in by_name]
    assert not unknown, f"not hosts of the lab: {', '.join(unknown)}"
    pattern = [by_name[n] for n in patterns] if patterns else rows
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for name in keep:
        writer.writerow(by_name[name])
    address_of: dict[str, str] = {}
    for n in range(hosts):
        row = dict(pattern[n % len(pattern)])
        name = f"fleet-{n:04d}"
        address_of[name] = row["address"]
        row.update(
            hostname=name,
            asset_tag=f"FLEET-{n:04d}",
            address=f"10.254.{n // 250}.{n % 250 + 1}",  # unique in the register only
        )
        writer.writerow(row)
    inventory = build_inventory(parse_register(out.getvalue(), "fleet register"))
    for name, address in address_of.items():
        inventory.hosts[name]["ansible_host"] = address
        # An SSH master of its own, as a host of its own would have: hosts sharing an
        # address would otherwise share one master, and the control node's SSH work.
        inventory.hosts[name]["ansible_control_path"] = f"%(directory)s/{name}"
    folder = settings.workspace / "inventories" / FLEET
    shutil.copytree(lab / "group_vars", folder / "group_vars")
    shutil.copytree(lab / ".ssh", folder / ".ssh")
    files.write_inventory(inventory, folder, source=source)
    if (lab / "nodes.yml").is_file():
        shutil.copyfile(lab / "nodes.yml", folder / "nodes.yml")
    per_lab_host: dict[str, int] = {}
    for address in address_of.values():
        per_lab_host[address] = per_lab_host.get(address, 0) + 1
    return per_lab_host


@contextlib.contextmanager
def cpu_group(name: str) -> Iterator[Callable[[], float] | None]:
    """A cpuacct cgroup (v1) for one run: yields a reader of its CPU seconds, or None."""
    group = CPUACCT / name
    try:
        group.mkdir()
    except OSError:
        yield None
        return
    try:
        yield lambda: int((group / "cpuacct.usage").read_text()) / 1e9
    finally:
        # Processes left in it (an ssh master that outlived the run) go back to the root.
        with contextlib.suppress(OSError):
            for pid in (group / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (CPUACCT / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            group.rmdir()


def join_group(name: str) -> None:
    """Move the calling process into cgroup `name` (made by `cpu_group`)."""
    (CPUACCT / name / "cgroup.procs").write_text("0")
