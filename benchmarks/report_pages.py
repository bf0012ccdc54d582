"""The reports of a national run: the HTML folder, its pages in Chromium, the gzip streams.

A synthetic run (default 50,000 hosts x 100 controls over 64 districts, from
`tests/helpers/fleet_reports.py`, generated as it is written: nothing held)
goes through `write_report` in each form a large run is written in, each in a
forked child so that its peak memory is its own:

1. generate: the reports alone, consumed and dropped (the cost every stage below
   includes, for reference);
2. html: the folder (index.html and one page per district), then the size of
   the summary and of the largest district page, and headless Chromium's time
   to open each (start, parse, layout, script; `--dump-dom`);
3. json, csv, junit: each written gzip-compressed (`compress=True`, what a run
   above 1,000 hosts gets by default), with its compressed size and the plain
   size it stands for.

Prints wall time, peak RSS and sizes. Comparable figures, no verdicts.

    .venv/bin/python benchmarks/report_pages.py [--hosts 50000] [--controls 100]
        [--by district] [--formats json,csv,junit] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import os
import pickle
import resource
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from provision.reports import write_report  # noqa: E402
from tests.helpers.chromium import CHROMIUM, MISSING, open_page  # noqa: E402
from tests.helpers.fleet_reports import fleet, fleet_run  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)


def in_child(stage: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `stage` in a forked child; its result plus its wall time and peak RSS (MB)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        code = 0
        try:
            started = time.perf_counter()
            result = stage()
            result["seconds"] = time.perf_counter() - started
            result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        except BaseException as exc:  # report it to the parent, whatever it is
            result, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
        with os.fdopen(write, "wb") as handle:
            pickle.dump(result, handle)
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        result = pickle.load(handle)  # noqa: S301 (our own child's result)
    os.waitpid(pid, 0)
    if "error" in result:
        raise SystemExit(f"stage failed: {result['error']}")
    return dict(result)


def plain_size(path: Path) -> int:
    """The size of a gzip file's content, read through (the trailer's ISIZE wraps at 4 GiB)."""
    total = 0
    with gzip.open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            total += len(chunk)
    return total


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=50_000)
    parser.add_argument("--controls", type=int, default=100)
    parser.add_argument("--by", default="district", choices=("division", "district", "upazila"))
    parser.add_argument("--formats", default="json,csv,junit")
    parser.add_argument("--keep", type=Path, help="write the reports here and keep them")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # each figure as it comes
    hosts, controls = args.hosts, args.controls
    run = fleet_run(hosts, NOW)
    scratch = Path(tempfile.mkdtemp(prefix="report-pages-"))
    out = args.keep or scratch
    out.mkdir(parents=True, exist_ok=True)
    print(f"{hosts:,} hosts x {controls} controls, pages by {args.by}, in {out}")

    def generate() -> dict[str, Any]:
        n = sum(len(r.results) for r in fleet(hosts, controls, NOW))
        return {"results": n}

    base = in_child(generate)
    print(
        f"generate   {base['seconds']:7.1f} s  peak {base['peak_mb']:6.0f} MB"
        f"  ({base['results']:,} results)"
    )

    folder = out / "html"

    def html() -> dict[str, Any]:
        write_report(run, fleet(hosts, controls, NOW), "html", folder, by=args.by, pages=True)
        return {}

    written = in_child(html)
    pages = [p for p in folder.iterdir() if p.name != "index.html"]
    index = folder / "index.html"
    largest = max(pages, key=lambda p: p.stat().st_size)
    total = sum(p.stat().st_size for p in folder.iterdir())
    print(
        f"html       {written['seconds']:7.1f} s  peak {written['peak_mb']:6.0f} MB"
        f"  ({len(pages)} pages + summary, {mb(total)} in all)"
    )
    print(f"  summary            {mb(index.stat().st_size):>10}")
    print(f"  largest {args.by:<10} {mb(largest.stat().st_size):>10}  ({largest.name})")
    if CHROMIUM is None:
        print(f"  chromium: not measured: {MISSING}")
    else:
        for label, page in (("summary", index), (f"{args.by} page", largest)):
            # The first open warms Chromium's own files; the second is the one printed.
            open_page(page, scratch / "profile-warm")
            opened = open_page(page, scratch / f"profile-{page.stem}")
            if "Compliance" not in opened.dom:
                raise SystemExit(f"chromium did not render {page}")
            print(f"  chromium opens {label:<14} {opened.seconds:6.2f} s")

    for fmt in [f.strip() for f in args.formats.split(",") if f.strip()]:
        ext = {"junit": "xml"}.get(fmt, fmt)
        target = out / f"report.{ext}.gz"

        def stage(fmt: str = fmt, target: Path = target) -> dict[str, Any]:
            write_report(run, fleet(hosts, controls, NOW), fmt, target, compress=True)
            return {}

        result = in_child(stage)
        size = target.stat().st_size
        try:
            plain = plain_size(target)
        except (OSError, zlib.error) as exc:
            raise SystemExit(f"{target} does not read back: {exc}") from exc
        print(
            f"{fmt + '.gz':<10} {result['seconds']:7.1f} s  peak {result['peak_mb']:6.0f} MB"
            f"  {mb(size)} (plain {mb(plain)}, {plain / max(size, 1):.0f}x)"
        )
    shutil.rmtree(scratch, ignore_errors=True)  # Chromium's profiles, and the reports unless kept


if __name__ == "__main__":
    main()
