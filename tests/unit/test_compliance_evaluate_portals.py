"""WEB-001: portal health judged as compliance evidence, collected on the control node.

The evaluation of `portal_https` over the control node's evidence (ok, expiring,
untrusted, unreachable, HTTP errors, no portals); that the host's module is never
asked for it; that an unreachable host stays unreachable; the audit's portal
section from `check_portals`; and that `compliance fix` of WEB-001 hands the
rollout the register's variables for every portal host it touches.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.compliance import fix as fix_module
from provision.compliance import service as service_module
from provision.compliance.service import (
    HostPlan,
    _PortalEvidence,
    judge_host,
    plan_host,
    portal_item,
)
from provision.errors import InputError
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.evaluate import (
    control_node_sections,
    evaluate_check,
    evidence_request,
)
from provision.model.compliance.model import ControlResult, HostReport
from provision.model.standards.model import Check
from provision.portal import PortalRequest, add_portal
from provision.portal import ca as portal_ca
from provision.portal.health import PortalHealth
from provision.settings import Settings
from provision.standards import load_standard
from tests.helpers.portal import portal_workspace
from tests.helpers.workspace import REPO

STANDARD = REPO / "standards" / "bd-ict-baseline.yml"
CHECK = Check("portal_https", {"min_days_left": 30})


def portal(domain: str, status: str = "ok", days: int | None = 200, **more: Any) -> dict[str, Any]:
    return {"domain": domain, "status": status, "days_left": days, "message": "", **more}


def judge(*portals: dict[str, Any]) -> Any:
    return evaluate_check(CHECK, {"portals": {"portals": list(portals)}})


def test_every_portal_ok_with_enough_days_passes_with_stable_evidence() -> None:
    out = judge(portal("b.gov.bd", days=300), portal("a.gov.bd", days=30))
    assert out.status == "pass", out
    assert out.expected == {"status": "ok", "min_days_left": 30}
    # Days left of passing portals are not kept: the evidence does not move day by day.
    assert out.actual == [
        {"domain": "a.gov.bd", "status": "ok"},
        {"domain": "b.gov.bd", "status": "ok"},
    ]


def test_a_certificate_near_expiry_fails_naming_the_domain_and_its_days() -> None:
    # health.py says ok for 29 days with its own warn_days: the standard's minimum decides.
    out = judge(portal("a.gov.bd", days=300), portal("b.gov.bd", "ok", 29))
    assert out.status == "fail"
    assert out.actual == [
        {"domain": "a.gov.bd", "status": "ok"},
        {"domain": "b.gov.bd", "status": "expiring", "days_left": 29},
    ]
    assert out.message == "b.gov.bd: certificate expires in 29 days (< 30)"
    # And an "expiring" from health.py with days above the minimum is fine.
    assert judge(portal("c.gov.bd", "expiring", 45)).status == "pass"
    assert (
        evaluate_check(
            Check("portal_https", {"min_days_left": 60}),
            {"portals": {"portals": [portal("c.gov.bd", "ok", 45)]}},
        ).status
        == "fail"
    )


def test_untrusted_unreachable_and_http_errors_fail_each_named() -> None:
    out = judge(
        portal("a.gov.bd", "untrusted", 300, message="certificate does not verify: self-signed"),
        portal("b.gov.bd", "unreachable", None, message="no HTTPS answer: refused"),
        portal("c.gov.bd", "http_error", 300, message="HTTP 502"),
        portal("d.gov.bd"),
    )
    assert out.status == "fail"
    assert [(p["domain"], p["status"], p.get("days_left")) for p in out.actual] == [
        ("a.gov.bd", "untrusted", 300),
        ("b.gov.bd", "unreachable", None),
        ("c.gov.bd", "http_error", 300),
        ("d.gov.bd", "ok", None),
    ]
    assert "a.gov.bd: certificate does not verify" in out.message
    assert "b.gov.bd: no HTTPS answer" in out.message
    assert "c.gov.bd: HTTP 502" in out.message
    assert "d.gov.bd" not in out.message
    # An ok answer without certificate details is not taken on trust.
    assert judge(portal("e.gov.bd", "ok", None)).status == "fail"


def test_no_portal_passes_and_missing_or_broken_evidence_is_never_a_pass() -> None:
    out = judge()
    assert (out.status, out.actual) == ("pass", [])
    assert out.message == "no portal is registered for this host"
    assert evaluate_check(CHECK, {}).status == "no_report"
    assert evaluate_check(CHECK, {"portals": {}}).status == "no_report"
    broken = evaluate_check(CHECK, {"portals": {"error": "portals/lab.yml:3: bad"}})
    assert (broken.status, broken.message) == ("error", "portals/lab.yml:3: bad")


def test_the_host_module_is_never_asked_for_portals() -> None:
    assert "portals" not in evidence_request([CHECK])
    assert control_node_sections([CHECK]) == {"portals"}
    assert control_node_sections([Check("timezone", {"name": "Asia/Dhaka"})]) == frozenset()


def _plan(role: str) -> HostPlan:
    return plan_host(load_standard(STANDARD), "h1", {"provision_role": role})


def test_web_001_is_planned_for_portal_hosts_only() -> None:
    portal_host = _plan("portal_host")
    assert "WEB-001" in [c.id for c, _ in portal_host.controls]
    assert portal_host.control_node == {"portals"}
    assert "portals" not in portal_host.request
    [(_, checks)] = [(c, k) for c, k in portal_host.controls if c.id == "WEB-001"]
    assert checks[0].fields == {"min_days_left": 30}
    lab = _plan("lab_pc")
    assert "WEB-001" in [c.id for c in lab.not_applicable]
    assert lab.control_node == frozenset()


def _web(report: HostReport) -> Any:
    return next(r for r in report.results if r.control == "WEB-001")


def test_an_unreachable_host_stays_unreachable_whatever_its_portals() -> None:
    plan = _plan("portal_host")
    report = judge_host(plan, None, status="unreachable", message="ssh: timed out")
    assert _web(report).status == "unreachable"
    evidence = {
        "os_release": {"id": "debian", "version_id": "12"},
        "portals": {"portals": [portal("a.gov.bd", "ok", 9)]},
    }
    assert _web(judge_host(plan, evidence)).status == "fail"


def _health(domain: str, host: str, status: str, days: float | None) -> PortalHealth:
    return PortalHealth(domain, host, "10.0.0.1", status, days_left=days, message=status)


def test_the_audit_collects_each_hosts_portals_beside_the_playbook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str | None] = []

    def fake(settings: Settings, selection: str | None = None, **_: Any) -> list[PortalHealth]:
        asked.append(selection)
        return [_health("a.gov.bd", "p1", "ok", 100.7), _health("b.gov.bd", "p1", "expiring", 3)]

    monkeypatch.setattr(service_module, "check_portals", fake)
    local = _PortalEvidence(Settings.__new__(Settings), ["p1", "p2"])
    base = {"os_release": {"id": "debian"}}
    p1 = local.add_to("p1", base)
    assert asked == ["p1;p2"]
    assert [(p["domain"], p["days_left"]) for p in p1["portals"]["portals"]] == [
        ("a.gov.bd", 100),
        ("b.gov.bd", 3),
    ]
    assert local.add_to("p2", base)["portals"] == {"portals": []}  # no portal registered
    assert local.add_to("p3", base) is base  # not a host with WEB-001

    def broken(settings: Settings, selection: str | None = None, **_: Any) -> list[PortalHealth]:
        raise InputError("field 'kind' is 'java'", hint="static or php")

    monkeypatch.setattr(service_module, "check_portals", broken)
    local = _PortalEvidence(Settings.__new__(Settings), ["p1"])
    assert local.add_to("p1", base)["portals"] == {"error": "field 'kind' is 'java'"}


def test_portal_item_keeps_whole_days() -> None:
    item = portal_item(_health("a.gov.bd", "p1", "ok", 29.9))
    assert (item["domain"], item["status"], item["days_left"]) == ("a.gov.bd", "ok", 29)
    assert portal_item(_health("a.gov.bd", "p1", "unreachable", None))["days_left"] is None


# -- compliance fix of WEB-001 -------------------------------------------------------------


@pytest.fixture
def failed_run(tmp_path: Path) -> tuple[Settings, int]:
    """A workspace with two portal hosts and a field server, and a done run where
    portal01 fails WEB-001, portal02 fails SSH-004 and fs01 fails SSH-004."""
    settings = portal_workspace(tmp_path)
    shutil.copy(STANDARD, settings.workspace / "standards")
    portal_ca.init_ca(settings)
    for domain, host, site in (("a.gov.bd", "portal01", "a"), ("b.gov.bd", "portal02", "b")):
        add_portal(
            settings,
            PortalRequest(host=host, kind="static", content=f"sites/{site}", domain=domain),
        )
    standard = load_standard(STANDARD)
    failing = {"portal01": "WEB-001", "portal02": "SSH-004", "fs01": "SSH-004"}
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        run_id = records.create_run(
            env="lab",
            selection="",
            standard_id=standard.id,
            standard_version=standard.version,
            standard_digest=standard.digest,
            waivers_digest=None,
            user="tester",
            node="node",
        )
        reports = [
            HostReport(
                host,
                "reported",
                results=tuple(
                    ControlResult(c.id, "fail" if c.id == control else "pass", c.severity)
                    for c in standard.controls
                ),
            )
            for host, control in failing.items()
        ]
        records.add_host_reports(run_id, reports)
        records.finish_run(run_id, "done")
    return settings, run_id


def test_fix_of_web_001_passes_the_register_for_every_portal_host(
    failed_run: tuple[Settings, int],
) -> None:
    settings, run_id = failed_run
    plan = fix_module.plan_fix(settings, run_id)
    assert plan.tags == ("SSH-004", "WEB-001")
    assert plan.failing["WEB-001"] == ("portal01",)
    assert plan.rollout is not None and plan.vars_file is not None
    assert plan.rollout.options.vars_file == plan.vars_file
    # Planning issued nothing and wrote nothing; the confirmed fix does.
    assert portal_ca.cert_status(settings, "a.gov.bd") is None
    assert not Path(plan.vars_file).exists()
    fix_module.prepare_fix(settings, plan)
    data = yaml.safe_load(Path(plan.vars_file).read_text())
    # portal02 fails only SSH-004, but WEB-001's tasks run there too: it gets its
    # portals, or the role would retire them. The field server is not a portal host.
    assert sorted(data["provision_portals"]) == ["portal01", "portal02"]
    assert [p["domain"] for p in data["provision_portals"]["portal01"]] == ["a.gov.bd"]
    assert [p["domain"] for p in data["provision_portals"]["portal02"]] == ["b.gov.bd"]
    assert b"PRIVATE KEY" not in Path(plan.vars_file).read_bytes()
    # Certificates were issued once the fix was confirmed, as portal deploy does.
    assert portal_ca.cert_status(settings, "a.gov.bd") is not None


def test_fix_without_a_portal_control_passes_no_register(
    failed_run: tuple[Settings, int],
) -> None:
    settings, run_id = failed_run
    plan = fix_module.plan_fix(settings, run_id, control="SSH-004")
    assert plan.tags == ("SSH-004",) and plan.vars_file is None
    assert plan.rollout is not None and plan.rollout.options.vars_file is None


def test_a_portal_host_with_no_portal_passes_saying_why() -> None:
    evidence = {"os_release": {"id": "debian", "version_id": "12"}, "portals": {"portals": []}}
    result = _web(judge_host(_plan("portal_host"), evidence))
    assert (result.status, result.actual) == ("pass", [])
    assert result.message == "no portal is registered for this host"
    # A pass with nothing to say still says nothing.
    evidence["portals"] = {"portals": [portal("a.gov.bd", "ok", 300)]}
    assert _web(judge_host(_plan("portal_host"), evidence)).message == ""
