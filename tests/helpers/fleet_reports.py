"""A synthetic national fleet's host reports, generated one at a time (nothing held).

`fleet(hosts, controls)` spreads hosts over 8 divisions, 64 districts, 8
upazilas per district, 9 unions per upazila and 5 hosts per site, with about 3 %
of results failing and 2 % of hosts unreachable; the same arguments give the
same reports. District 00 is named in Bangla so that non-ASCII names go through
every writer. Used by the report tests and benchmarks/report_pages.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from provision.model.compliance.model import (
    HOST_REPORTED,
    HOST_UNREACHABLE,
    ComplianceRunInfo,
    ControlResult,
    HostReport,
)

SEVERITIES = ("low", "medium", "high", "critical")


def district_name(n: int) -> str:
    return "গাজীপুর" if n == 0 else f"District {n:02d}"


def place_of(n: int) -> dict[str, str]:
    """Host number `n`'s place: 5 hosts a site, 2 sites a union, 9 unions an upazila."""
    site = n // 5
    union = site // 2
    upazila = union // 9
    district = (upazila // 8) % 64
    return {
        "division": f"Division {district // 8}",
        "district": district_name(district),
        "upazila": f"Upazila {upazila % 512:03d}",
        "union": f"Union {union % 4608:04d}",
        "site": f"SITE-{site:05d}",
    }


def fleet_run(hosts: int, now: datetime, run_id: int = 7) -> ComplianceRunInfo:
    return ComplianceRunInfo(
        id=run_id,
        status="done",
        env="production",
        selection="all",
        standard_id="bd-ict-baseline",
        standard_version="2026.1",
        standard_digest="a" * 64,
        waivers_digest=None,
        user="auditor",
        node="control-01",
        started_at=now - timedelta(hours=1),
        finished_at=now - timedelta(minutes=10),
        hosts=hosts,
    )


def fleet(hosts: int, controls: int, now: datetime) -> Iterator[HostReport]:
    """`hosts` host reports of `controls` controls each, in host-name order."""
    ids = [f"CTL-{i:03d}" for i in range(controls)]
    for n in range(hosts):
        place = place_of(n)
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
            if n % 4 == 1:  # a quarter of the fleet is clean
                status = "pass"
            elif mix < 30:
                status = "fail"
            elif mix < 35:
                status = "error"
            else:
                status = "pass"
            expected = {"setting": f"value-{i}"}
            actual = expected if status == "pass" else {"setting": "other"}
            results.append(
                ControlResult(
                    control,
                    status,
                    SEVERITIES[i % 4],
                    expected=expected,
                    actual=actual,
                    message="" if status == "pass" else f"{control} is not as the standard asks",
                )
            )
        yield HostReport(
            host=host,
            status=HOST_REPORTED,
            role="lab_pc",
            os_release="debian-12",
            place=place,
            collected_at=now - timedelta(hours=n % 30),
            evidence_digest=f"{n:064x}",
            results=tuple(results),
        )
