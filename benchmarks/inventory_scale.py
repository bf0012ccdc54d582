"""Inventory at scale: import, validate and slice a generated register, and compare the
slice with Ansible reading the full inventory.

    .venv/bin/python benchmarks/inventory_scale.py [--hosts 50000] [--district gazipur]

Prints, for one run on this machine: register generation, import and validate times;
the time and peak memory to produce one district's slice (in a fresh process, so the
memory is the whole process's peak RSS); and `ansible-inventory --list --limit` doing
the same selection on the full written inventory, with the ratio of the two.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from provision.inventory import (
    generate_rows,
    import_register,
    load_inventory,
    select_hosts,
    slice_inventory,
    validate_environment,
    validate_register,
    write_register,
    write_slice,
)

P = ParamSpec("P")
T = TypeVar("T")
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"


def _slice(folder: Path, selection: str, out: Path) -> None:
    """Child process: load, select, resolve, write; print seconds and host count."""
    start = time.perf_counter()
    loaded = load_inventory(folder)
    hosts = select_hosts(loaded.inventory, selection)
    write_slice(slice_inventory(loaded.inventory, hosts, folder), out)
    print(json.dumps({"seconds": time.perf_counter() - start, "hosts": len(hosts)}))


def _child_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _timed(
    label: str, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> tuple[T, float]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"{label:<44} {seconds:8.2f} s")
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50_000)
    parser.add_argument("--district", default="gazipur")
    parser.add_argument("--skip-ansible", action="store_true", help="do not run ansible-inventory")
    parser.add_argument("--slice-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.slice_child:
        folder, selection, out = args.slice_child
        _slice(Path(folder), selection, Path(out))
        return

    with tempfile.TemporaryDirectory(prefix="provision-bench-") as tmp:
        work = Path(tmp)
        folder = work / "inventories" / "bench"
        register = work / "register.csv"
        selection = f"district:{args.district}"
        print(f"inventory scale: {args.hosts} hosts, selection {selection!r}")
        rows, _ = _timed("generate register", generate_rows, args.hosts)
        write_register(rows, register)
        del rows
        result, import_s = _timed(
            "import (read, check, build, write)", import_register, register, folder
        )
        print(
            f"{'':<44} {result.hosts} hosts, {result.groups} groups, "
            f"hosts.yml {(folder / 'hosts.yml').stat().st_size / 1e6:.1f} MB"
        )
        report, _ = _timed("validate register (CSV only)", validate_register, register)
        assert report.ok, report.problems[:3]
        report, validate_s = _timed("validate environment", validate_environment, folder)
        assert report.ok, report.problems[:3]

        out = work / "run" / "hosts.json"
        before = _child_peak_mb()
        child = subprocess.run(
            [sys.executable, __file__, "--slice-child", str(folder), selection, str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        peak = _child_peak_mb()
        figures = json.loads(child.stdout)
        slice_s = figures["seconds"]
        print(
            f"{'slice ' + selection + ' (load, select, resolve)':<44} {slice_s:8.2f} s  "
            f"{figures['hosts']} hosts, peak RSS {peak:.0f} MB (process)"
            + ("" if peak > before else " [peak below an earlier child's]")
        )
        if args.skip_ansible or not ANSIBLE_INVENTORY.exists():
            print("ansible-inventory: skipped")
            return
        environ = {
            **os.environ,
            "ANSIBLE_HOME": str(work / ".ansible"),
            "ANSIBLE_LOCAL_TEMP": str(work / ".ansible" / "tmp"),
        }
        group = f"district_{args.district}"
        start = time.perf_counter()
        done = subprocess.run(
            [str(ANSIBLE_INVENTORY), "-i", str(folder / "hosts.yml"), "--list", "--limit", group],
            capture_output=True,
            text=True,
            env=environ,
            check=False,
        )
        ansible_s = time.perf_counter() - start
        ansible_peak = _child_peak_mb()
        listed = len(json.loads(done.stdout)["_meta"]["hostvars"]) if done.returncode == 0 else 0
        warnings = done.stderr.count("WARNING")
        print(
            f"{'ansible-inventory --list --limit ' + group:<44} {ansible_s:8.2f} s  "
            f"{listed} hosts, peak RSS {ansible_peak:.0f} MB, {warnings} warnings"
        )
        start = time.perf_counter()
        subprocess.run(
            [str(ANSIBLE_INVENTORY), "-i", str(out), "--list"],
            capture_output=True,
            text=True,
            env=environ,
            check=True,
        )
        print(f"{'ansible-inventory --list on the slice':<44} {time.perf_counter() - start:8.2f} s")
        print(
            f"ratio: ansible-inventory on the full inventory / provision slice = "
            f"{ansible_s / slice_s:.0f}x"
        )
        print(
            f"summary: import {import_s:.1f} s, validate {validate_s:.1f} s, "
            f"slice {slice_s:.2f} s, ansible {ansible_s:.1f} s"
        )


if __name__ == "__main__":
    main()
