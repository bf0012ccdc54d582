"""How long `provision image build` takes per format, from a warm cache.

Prints comparable figures, not verdicts: the machines are shared and noisy. A
first build warms the caches (the lab's root filesystem, the package cache);
then each format is built and timed, step by step (build lab up, kernel and
GRUB, rollout, seal, pack), with its size and its time relative to tar.
Runs in a temporary workspace with a throwaway automation key; each build
runs its own one-host build lab on its own subnet. Needs root.

    sudo .venv/bin/python benchmarks/image_build.py [--role lab_pc] [--formats tar,qcow2]
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

from provision.access import keys  # noqa: E402
from provision.errors import ProvisionError  # noqa: E402
from provision.images import BuildRequest, build_image  # noqa: E402
from provision.images.build import FORMATS, preflight  # noqa: E402
from provision.settings import load_settings  # noqa: E402

STEPS = ("lab", "kernel", "rollout", "seal", "pack")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--role", default="lab_pc")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--no-warmup", action="store_true", help="the caches are warm already")
    args = parser.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    with tempfile.TemporaryDirectory(prefix="provision-bench-image-") as tmp:
        workspace = Path(tmp)
        shutil.copy(REPO / "ansible.cfg", workspace / "ansible.cfg")
        for name in ("playbooks", "standards"):
            (workspace / name).symlink_to(REPO / name)
        (workspace / "inventories").mkdir()
        (workspace / "provision.yml").write_text("---\nenv: lab\n")
        settings = load_settings(workspace=workspace, environ={})
        keys.generate(settings)
        out = workspace / "out"
        out.mkdir()
        try:
            preflight(settings, BuildRequest(args.role, formats[0], out=out / "probe"))
        except ProvisionError as exc:
            print(f"cannot build images here: {exc.message}", file=sys.stderr)
            return 3
        if not args.no_warmup:
            started = time.monotonic()
            warm = "qcow2" if "qcow2" in formats or "vagrant-box" in formats else formats[0]
            build_image(settings, BuildRequest(args.role, warm, out=out / "warmup"))
            (out / "warmup").unlink()
            print(f"warm-up build ({warm}): {time.monotonic() - started:.0f}s")
        header = f"{'format':<12} {'total s':>8} {'vs tar':>7} {'MiB':>7} " + " ".join(
            f"{s + ' s':>9}" for s in STEPS
        )
        print(header)
        tar_seconds: float | None = None
        for fmt in formats:
            target = out / f"{args.role}{FORMATS[fmt]}"
            result = build_image(settings, BuildRequest(args.role, fmt, out=target))
            if fmt == "tar":
                tar_seconds = result.seconds
            ratio = f"{result.seconds / tar_seconds:.2f}x" if tar_seconds else "-"
            steps = " ".join(f"{result.timings.get(s, 0.0):>9.1f}" for s in STEPS)
            print(
                f"{fmt:<12} {result.seconds:>8.1f} {ratio:>7} "
                f"{target.stat().st_size / 2**20:>7.0f} {steps}"
            )
            target.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
