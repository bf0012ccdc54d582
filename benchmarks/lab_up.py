"""How long `provision lab up` takes from a warm cache, and how it grows with hosts.

Prints comparable figures, not verdicts: the machines are shared and noisy.
Runs in a temporary workspace on its own subnet, so it never touches a lab a
person has running. Needs root (as the lab does).

    .venv/bin/python benchmarks/lab_up.py [--rounds 3] [--hosts default,lab_pc:4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.lab_workspace import lab_workspace  # noqa: E402
from provision.lab import rootfs, service  # noqa: E402

SUBNET = "10.213.12.0/24"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--hosts",
        action="append",
        help="host specs to compare (default: default and default,lab_pc:8)",
    )
    args = parser.parse_args()
    specs = args.hosts or ["default", "default,lab_pc:8"]
    with lab_workspace(SUBNET) as settings:
        started = time.monotonic()
        rootfs.ensure_rootfs(settings.lab_cache, lambda m: print(f"  {m}", file=sys.stderr))
        print(f"root filesystem cache ready in {time.monotonic() - started:.1f}s (warm cache: ~0s)")
        print(
            f"{'hosts':>6} {'spec':<22} {'up median s':>12} {'up min s':>9} "
            f"{'s/host':>7} {'boot→ssh s':>11} {'down s':>7}"
        )
        baseline: float | None = None
        for spec in specs:
            ups, downs, boots = [], [], []
            count = 0
            for _ in range(args.rounds):
                t0 = time.monotonic()
                result = service.up(settings, spec)
                ups.append(time.monotonic() - t0)
                boots.append(max(result.boot_seconds.values()))
                count = len(result.hosts)
                t0 = time.monotonic()
                service.down(settings)
                downs.append(time.monotonic() - t0)
            median = statistics.median(ups)
            baseline = baseline or median
            print(
                f"{count:>6} {spec:<22} {median:>12.2f} {min(ups):>9.2f} {median / count:>7.2f} "
                f"{statistics.median(boots):>11.2f} {statistics.median(downs):>7.2f}"
            )
        if len(specs) > 1 and baseline:
            print(
                f"ratio of the last spec's median up time to the first's: {median / baseline:.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
