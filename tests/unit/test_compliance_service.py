"""A host's plan (controls by role, parameters with overrides) and its judged report."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from provision.compliance.service import judge_host, plan_host
from provision.errors import InputError
from provision.model.compliance.model import HOST_REPORTED, HOST_UNREACHABLE
from provision.model.scoring import host_score
from provision.model.standards.model import AppliesTo
from provision.model.waivers import Scope, Waiver, WaiverSet
from provision.standards import load_standard
from tests.helpers.workspace import REPO

STANDARD = load_standard(REPO / "standards" / "bd-ict-baseline.yml")
LAB_PC = {"provision_role": "lab_pc", "provision_district": "Gazipur", "provision_site_code": "S1"}


def test_plan_picks_controls_by_role_and_resolves_overrides() -> None:
    plan = plan_host(STANDARD, "pc1", {**LAB_PC, "hardware_pc_min_cpu_cores": 1})
    ids = [c.id for c, _ in plan.controls]
    assert "LAB-001" in ids and "HW-001" in ids and "FS-001" not in ids
    assert {c.id for c in plan.not_applicable} >= {"FS-001", "FW-002", "HW-002"}
    hw = dict((c.id, checks) for c, checks in plan.controls)["HW-001"]
    assert hw[0].fields["cpu_cores"] == 1  # the inventory's override
    assert hw[0].fields["memory_mb"] == 3500  # the standard's default
    assert plan.place == {"district": "Gazipur", "site": "S1"}
    assert "fonts-beng" in plan.request["packages"] and plan.request["hardware"] is True
    # Same role, same parameters: the same request (sent once per run).
    assert plan_host(STANDARD, "pc2", {**LAB_PC, "hardware_pc_min_cpu_cores": 1}).request_key == (
        plan.request_key
    )


def test_a_bad_override_is_an_input_error() -> None:
    with pytest.raises(InputError, match="hardware_pc_min_cpu_cores"):
        plan_host(STANDARD, "pc1", {**LAB_PC, "hardware_pc_min_cpu_cores": "many"})


def _evidence(**over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "collected_at": 1_790_000_000.0,
        "os_release": {"id": "debian", "version_id": "12"},
        "timezone": {"name": "Etc/UTC"},
    }
    ev.update(over)
    return ev


def test_judge_reported_host_keeps_every_control_in_order() -> None:
    plan = plan_host(STANDARD, "pc1", LAB_PC)
    report = judge_host(plan, _evidence(), today=date(2026, 11, 28))
    assert report.status == HOST_REPORTED and report.os_release == "debian-12"
    assert [r.control for r in report.results] == [c.id for c in STANDARD.controls]
    by_id = {r.control: r for r in report.results}
    assert by_id["OS-001"].status == "pass"
    assert by_id["TIME-001"].status == "fail" and by_id["TIME-001"].actual == "Etc/UTC"
    assert by_id["FS-001"].status == "not_applicable"
    # Evidence the module did not return is no_report, never pass.
    assert by_id["PKG-001"].status == "no_report"
    assert report.collected_at is not None and report.evidence_digest
    assert not host_score(report).compliant


def test_os_excluded_controls_are_not_applicable() -> None:
    controls = tuple(
        replace(c, applies_to=AppliesTo(os=("ubuntu-24.04",))) if c.id == "TIME-001" else c
        for c in STANDARD.controls
    )
    plan = plan_host(replace(STANDARD, controls=controls), "pc1", LAB_PC)
    report = judge_host(plan, _evidence())  # a debian-12 host
    assert report.result("TIME-001").status == "not_applicable"  # type: ignore[union-attr]
    ubuntu = _evidence(os_release={"id": "ubuntu", "version_id": "24.04"})
    assert judge_host(plan, ubuntu).result("TIME-001").status == "fail"  # type: ignore[union-attr]


def test_unreachable_host_is_unreachable_for_every_applicable_control() -> None:
    plan = plan_host(STANDARD, "pc1", LAB_PC)
    report = judge_host(plan, None, status=HOST_UNREACHABLE, message="timed out")
    applicable = {c.id for c, _ in plan.controls}
    for r in report.results:
        assert r.status == ("unreachable" if r.control in applicable else "not_applicable")
    score = host_score(report)
    assert score.score is None and not score.compliant  # lowers coverage, not the score


def _waiver(wid: str, expires: date) -> Waiver:
    return Waiver(
        wid, "TIME-001", Scope("district", "Gazipur"), "why", "boss", date(2026, 1, 1), expires
    )


def test_waivers_active_and_expired() -> None:
    plan = plan_host(STANDARD, "pc1", LAB_PC)
    today = date(2026, 11, 28)
    active = WaiverSet((_waiver("W-1", date(2027, 1, 1)),))
    r = judge_host(plan, _evidence(), waivers=active, today=today).result("TIME-001")
    assert r is not None and r.status == "waived" and r.waiver == "W-1"
    assert r.actual == "Etc/UTC"  # the evidence is kept
    expired = WaiverSet((_waiver("W-2", date(2026, 6, 1)),))
    r = judge_host(plan, _evidence(), waivers=expired, today=today).result("TIME-001")
    assert r is not None and r.status == "fail" and r.waiver == "W-2" and r.waiver_expired
