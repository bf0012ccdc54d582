"""Bundle builds for a national register: time and size per role.

Generates a register of --hosts hosts from the real admin tree (50,000 by
default), imports it into a temporary workspace with provision's own playbooks
and standard, makes a signing key, and builds the bundles of each role
(`provision bundle build role:ROLE`: one bundle per role and site, each signed
with ssh-keygen). Prints per role the bundles, hosts, wall time, time per
bundle and per host, and the bundles' total and mean size. Prints figures, not
verdicts. Needs no lab.

    .venv/bin/python benchmarks/pull_bundles.py [--hosts 50000] [--roles lab_pc,...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from provision.bundles import build_bundles, init_key  # noqa: E402
from provision.errors import ProvisionError  # noqa: E402
from provision.inventory import generate_rows, import_register, write_register  # noqa: E402
from provision.settings import load_settings  # noqa: E402

ROLES = ("lab_pc", "digital_centre_pc", "field_server", "portal_host")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50_000)
    parser.add_argument("--roles", default=",".join(ROLES))
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
        for role in args.roles.split(","):
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


if __name__ == "__main__":
    main()
