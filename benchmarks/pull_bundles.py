"""Bundle builds for a national register: time and size per role; and the ingest
rate of `reports collect` for the results the PCs queued.

Generates a register of --hosts hosts from the real admin tree (50,000 by
default), imports it into a temporary workspace with provision's own playbooks
and standard, makes a signing key, and builds the bundles of each role
(`provision bundle build role:ROLE`: one bundle per role and site, each signed
with ssh-keygen). Prints per role the bundles, hosts, wall time, time per
bundle and per host, and the bundles' total and mean size.

Then puts the register's lab and digital centre PCs into pull mode, writes
--results synthetic result files (50,000 by default, as the pull agent writes
them: tasks, evidence, the PC's collection time) into a temporary outbox folder
(not timed), and times what `reports collect` does with the files it fetched:
read, parse, judge the evidence against the standard and record each apply
once (`provision.pull.collect.collect_files`, the same code path after the
SSH fetch; each host's audit plan is made when its first result arrives, so
the first ingest's time includes planning). Prints results per second for the
first ingest and for a second one of the same files (every file known, none
read again), and the store's size.
Prints figures, not verdicts. Needs no lab.

    .venv/bin/python benchmarks/pull_bundles.py [--hosts 50000] [--roles lab_pc,...]
        [--results 50000]        (--roles '' skips the builds, --results 0 the ingest)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from provision.bundles import build_bundles, init_key  # noqa: E402
from provision.errors import ProvisionError  # noqa: E402
from provision.inventory import generate_rows, import_register, write_register  # noqa: E402
from provision.pull.collect import collect_files, plan_collect  # noqa: E402
from provision.settings import Settings, load_settings  # noqa: E402

ROLES = ("lab_pc", "digital_centre_pc", "field_server", "portal_host")
PULLED_ROLES = ("lab_pc", "digital_centre_pc")


def _result(host: str, serial: int, collected: datetime) -> bytes:
    """One apply's result as the pull agent writes it (about 40 tasks, a lab PC's evidence)."""
    tasks = [
        {"host": host, "task": f"Ensure step {i}", "action": "ansible.builtin.apt", "tags": []}
        | {"status": "changed" if i == 7 else "ok", "msg": ""}
        for i in range(40)
    ]
    evidence = {
        "collected_at": collected.timestamp(),
        "os_release": {"id": "debian", "version_id": "12"},
        "timezone": {"name": "Asia/Dhaka"},
        "packages": {"chrony": "4.3-2", "openssh-server": "1:9.2p1-2", "fonts-beng": "2:1.3"},
        "services": {"chrony": {"state": "running", "enabled": True}},
        "sysctl": {"net.ipv4.ip_forward": "0", "kernel.randomize_va_space": "2"},
    }
    body = {
        "format": 1,
        "host": host,
        "bundle": "lab_pc.bench",
        "serial": serial,
        "standard": {"id": "bd-ict-baseline", "version": "1"},
        "revision": None,
        "started_at": collected.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "collected_at": collected.timestamp(),
        "offline": serial % 2 == 0,
        "expired": False,
        "rc": 0,
        "status": "ok",
        "changed": 1,
        "failed": 0,
        "tasks": tasks,
        "evidence": evidence,
        "agent": "1",
    }
    return json.dumps(body, sort_keys=True).encode()


def _write_outbox(folder: Path, hosts: list[str], count: int) -> None:
    """`count` results over `hosts` (round robin: a host back from offline has several)."""
    start = datetime.now(UTC) - timedelta(days=3)
    for i in range(count):
        host = hosts[i % len(hosts)]
        collected = start + timedelta(seconds=i)
        serial = 1 + i // len(hosts)
        box = folder / host
        box.mkdir(parents=True, exist_ok=True)
        name = f"{collected:%Y%m%dT%H%M%S%f}Z-{serial:06d}.json"
        (box / name).write_bytes(_result(host, serial, collected))


def _read_outbox(folder: Path) -> Iterator[tuple[str, str, bytes]]:
    for box in sorted(folder.iterdir()):
        for path in sorted(box.glob("*.json")):
            yield box.name, path.name, path.read_bytes()


def bench_collect(settings: Settings, count: int) -> None:
    group_vars = settings.inventory_path / "group_vars"
    group_vars.mkdir(exist_ok=True)
    for role in PULLED_ROLES:
        path = group_vars / f"role_{role}.yml"
        text = path.read_text() if path.is_file() else "---\n"
        path.write_text(text + "provision_pull_mode: true\n")
    start = time.perf_counter()
    plan = plan_collect(settings)
    took = time.perf_counter() - start
    hosts = sorted(plan.hostvars)
    print(f"reports collect: {len(hosts)} pulled hosts planned in {took:.1f} s")
    outbox = settings.state_path / "outbox"
    _write_outbox(outbox, hosts, count)
    print(
        f"{'ingest':<24} {'results':>8} {'new':>7} {'recorded':>9} {'wall s':>8} {'results/s':>10}"
    )
    for label in ("first", "again (all recorded)"):
        start = time.perf_counter()
        line = collect_files(settings, plan, _read_outbox(outbox), server="bench")
        seconds = time.perf_counter() - start
        print(
            f"{label:<24} {line.listed:>8} {line.fetched:>7} {line.recorded:>9} {seconds:>8.1f} "
            f"{line.listed / max(seconds, 1e-9):>10.0f}"
        )
        if line.refused:
            print(f"  {len(line.refused)} refused, the first: {line.refused[0].reason}")
    database = settings.state_path / "state.db"
    if database.is_file():
        print(f"store: {database.stat().st_size / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50_000)
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--results", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="provision-bench-pull-") as tmp:
        workspace = Path(tmp)
        shutil.copy(REPO / "ansible.cfg", workspace / "ansible.cfg")
        (workspace / "playbooks").symlink_to(REPO / "playbooks")
        (workspace / "standards").mkdir()
        shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", workspace / "standards")
        (workspace / "provision.yml").write_text("---\nenv: bench\n")
        register = workspace / "register.csv"
        write_register(generate_rows(args.hosts), register)
        start = time.perf_counter()
        imported = import_register(register, workspace / "inventories" / "bench")
        took = time.perf_counter() - start
        print(f"pull bundles: {imported.hosts} hosts imported in {took:.1f} s")
        settings = load_settings(workspace=workspace, environ={})
        init_key(settings)
        header = f"{'role':<20} {'bundles':>8} {'hosts':>7} {'wall s':>8} {'ms/bundle':>10}"
        print(header + f" {'ms/host':>8} {'total MB':>9} {'mean KB':>8}")
        for role in [r for r in args.roles.split(",") if r]:
            start = time.perf_counter()
            try:
                result = build_bundles(settings, f"role:{role}", out_dir=workspace / "out" / role)
            except ProvisionError as exc:  # a role the register lacks: say so, go on
                print(f"{role:<20} skipped: {exc}")
                continue
            seconds = time.perf_counter() - start
            count = len(result.bundles)
            hosts = sum(len(b.manifest.hosts) for b in result.bundles)
            size = sum(b.size for b in result.bundles)
            print(
                f"{role:<20} {count:>8} {hosts:>7} {seconds:>8.1f} "
                f"{1000 * seconds / max(count, 1):>10.1f} {1000 * seconds / max(hosts, 1):>8.2f} "
                f"{size / 1e6:>9.1f} {size / 1e3 / max(count, 1):>8.1f}"
            )
        if args.results > 0:
            bench_collect(settings, args.results)


if __name__ == "__main__":
    main()
