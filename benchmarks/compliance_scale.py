"""Compliance at fleet scale: ingest, roll-up and reports for 50,000 hosts x 100 controls.

A synthetic run (default 50,000 hosts over 8 divisions, 64 districts, 512
upazilas, 4,608 unions and 10,000 sites; 100 controls, about 3 % failing, 2 %
of hosts unreachable) goes through the real code, each stage in its own child
process so that each one's peak memory is its own:

1. ingest: `ComplianceRecords.add_host_reports` into a fresh SQLite store, the
   reports coming from a generator (what `compliance run` does as hosts answer);
2. roll-up: `scoring.rollup` over `host_reports(run)` streamed from the store;
3. html: `write_report(..., "html")` from the store stream (one pass);
4. any of json, csv, junit asked for with --formats (each writes every result:
   about 1 GB for the default run, so they are off by default).

Prints wall time, hosts per second and peak RSS (the child's ru_maxrss) per
stage, and the start-up RSS of a child that does nothing for comparison.
Comparable figures, no verdicts.

    .venv/bin/python benchmarks/compliance_scale.py [--hosts 50000] [--controls 100]
        [--formats html,json]
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from provision.model.compliance.model import (  # noqa: E402
    HOST_REPORTED,
    HOST_UNREACHABLE,
    ControlResult,
    HostReport,
)

NOW = datetime.now(UTC).replace(microsecond=0)
SEVERITIES = ("low", "medium", "high", "critical")


def control_ids(count: int) -> list[str]:
    return [f"CTL-{i:03d}" for i in range(count)]


def reports(hosts: int, controls: int) -> Iterator[HostReport]:
    """A deterministic synthetic fleet, one host at a time."""
    ids = control_ids(controls)
    for n in range(hosts):
        site = n // 5
        union = site // 2
        upazila = union // 9
        district = upazila // 8
        division = district // 8
        place = {
            "division": f"Division {division % 8}",
            "district": f"District {district % 64:02d}",
            "upazila": f"Upazila {upazila % 512:03d}",
            "union": f"Union {union % 4608:04d}",
            "site": f"SITE-{site:05d}",
        }
        host = f"host-{n:05d}"
        if n % 50 == 7:
            yield HostReport(
                host=host,
                status=HOST_UNREACHABLE,
                role="lab_pc",
                place=place,
                message="ssh: connect to host port 22: No route to host",
                results=tuple(
                    ControlResult(c, "unreachable", SEVERITIES[i % 4]) for i, c in enumerate(ids)
                ),
            )
            continue
        results = []
        for i, control in enumerate(ids):
            mix = (n * 31 + i * 17) % 1000
            if i >= controls - 5 and n % 3:
                status = "not_applicable"
            elif n % 4 == 1:  # a quarter of the fleet is clean
                status = "pass"
            elif mix < 30:
                status = "fail"
            elif mix < 35:
                status = "error"
            elif mix < 45:
                status = "waived"
            else:
                status = "pass"
            expected = {"setting": f"value-{i}"}
            actual = expected if status in ("pass", "waived") else {"setting": "other"}
            results.append(
                ControlResult(
                    control,
                    status,
                    SEVERITIES[i % 4],
                    expected=expected,
                    actual=actual,
                    message="" if status == "pass" else f"{control} is not as the standard asks",
                    waiver="W-001" if status == "waived" else None,
                )
            )
        yield HostReport(
            host=host,
            status=HOST_REPORTED,
            role="lab_pc",
            os_release="debian-12",
            place=place,
            collected_at=NOW - timedelta(hours=(n % 40)),
            evidence_digest=f"{n:064x}",
            results=tuple(results),
        )


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
        except BaseException as exc:  # report it to the parent, whatever it is
            result, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
        with os.fdopen(write, "wb") as handle:
            pickle.dump(result, handle)
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        data = handle.read()
    _, _, usage = os.wait4(pid, 0)
    result = pickle.loads(data)  # noqa: S301 (our own child's output)
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=50_000)
    parser.add_argument("--controls", type=int, default=100)
    parser.add_argument("--formats", default="html", help="Reports to write: html,json,csv,junit")
    parser.add_argument("--by", default="district")
    args = parser.parse_args()

    from provision.infra.store import Store
    from provision.infra.store.compliance_records import ComplianceRecords

    folder = Path(tempfile.mkdtemp(prefix="provision-compliance-bench-"))
    url = f"sqlite:///{folder / 'state.db'}"
    hosts, controls = args.hosts, args.controls
    results = hosts * controls

    def idle() -> dict[str, Any]:
        return {}

    def ingest() -> dict[str, Any]:
        with Store.open(url) as store:
            records = ComplianceRecords(store)
            run_id = records.create_run(
                env="bench",
                selection="all",
                standard_id="synthetic",
                standard_version="1",
                standard_digest="0" * 64,
                waivers_digest=None,
                user="bench",
                node="bench",
            )
            written = records.add_host_reports(run_id, reports(hosts, controls))
            records.finish_run(run_id, "done")
        return {"run": run_id, "written": written}

    def rolled_up() -> dict[str, Any]:
        from provision.model.scoring import rollup

        with Store.open(url) as store:
            records = ComplianceRecords(store)
            run = records.get_run(1)
            result = rollup(run, records.host_reports(1), now=NOW, freshness=timedelta(days=1))
        total = result.total
        return {
            "places": sum(len(rows) for rows in result.levels.values()),
            "compliant": total.compliant,
            "median": total.median_score,
            "coverage": total.coverage,
        }

    def report(fmt: str) -> Callable[[], dict[str, Any]]:
        def write() -> dict[str, Any]:
            from provision.reports import write_report

            with Store.open(url) as store:
                records = ComplianceRecords(store)
                run = records.get_run(1)
                out = folder / f"report.{fmt}"
                write_report(run, records.host_reports(1), fmt, out, by=args.by, now=NOW)
            return {"bytes": out.stat().st_size}

        return write

    print(f"compliance at scale: {hosts:,} hosts x {controls} controls = {results:,} results")
    print(f"store: SQLite in {folder}")
    base = in_child(idle)
    print(f"{'stage':<10} {'seconds':>9} {'hosts/s':>10} {'peak RSS MB':>12}  notes")
    print(f"{'start-up':<10} {'':>9} {'':>10} {base['peak_mb']:>12.0f}  a child that does nothing")
    stages: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("ingest", ingest),
        ("roll-up", rolled_up),
    ]
    stages += [(fmt, report(fmt)) for fmt in args.formats.split(",") if fmt]
    total = 0.0
    for name, stage in stages:
        result = in_child(stage)
        if "error" in result:
            print(f"{name:<10} failed: {result['error']}")
            return 1
        seconds = result["seconds"]
        total += seconds
        notes = ""
        if "bytes" in result:
            notes = f"{result['bytes'] / 1e6:.1f} MB written"
        elif "places" in result:
            notes = (
                f"{result['places']:,} places; {result['compliant']:,} compliant; "
                f"median {result['median']:.3f}; coverage {result['coverage']:.3f}"
            )
        elif "written" in result:
            size = (folder / "state.db").stat().st_size / 1e6
            notes = f"{result['written']:,} host rows; db {size:.0f} MB"
        rate = hosts / seconds
        print(f"{name:<10} {seconds:>9.1f} {rate:>10,.0f} {result['peak_mb']:>12.0f}  {notes}")
    print(f"{'total':<10} {total:>9.1f}")
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
