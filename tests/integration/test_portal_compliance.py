"""WEB-001 on the lab's portal host: portal health as compliance, and its fix.

A portal deployed with a department certificate makes a compliance run of the
portal host pass WEB-001 (the evidence is an HTTPS request from the control node
to the host's address, verified against the CA). A certificate with 10 days left
served on purpose makes it fail, naming the domain and the days left. `compliance
fix --control WEB-001` then redeploys the register's portals through site.yml
(the certificate is renewed while planning) and the next run passes again.

The set-up is the portal lab tests' (`tests.helpers.portal_lab`), with a portal
of this module's own, removed (and retired from the host) afterwards so that either module may
run first in a lab.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from provision.compliance.fix import plan_fix, prepare_fix
from provision.compliance.service import AuditResult, audit
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.model import ControlResult
from provision.portal import ca as portal_ca
from provision.portal import https_get, remove_portal
from provision.rollout import run_rollout
from tests.helpers.lab import Lab
from tests.helpers.portal_lab import HOST, Portals, portal_lab
from tests.helpers.workspace import REPO

# A module fixture rolls the baseline out over lab hosts first: on a loaded machine
# that alone can take longer than the suite's per-test timeout.
pytestmark = [pytest.mark.lab, pytest.mark.timeout(2400)]

DOMAIN = "kapasia.gazipur.gov.bd"
STANDARD = REPO / "standards" / "bd-ict-baseline.yml"


@pytest.fixture(scope="module")
def web(lab: Lab) -> Iterator[Portals]:
    content = lab.settings.workspace / "sites" / "web-001"  # content comes from the workspace
    (content / DOMAIN).mkdir(parents=True, exist_ok=True)
    (content / DOMAIN / "index.html").write_text(f"<h1>{DOMAIN}</h1>\n")
    shutil.copy(STANDARD, lab.settings.workspace / "standards" / STANDARD.name)
    portals = portal_lab(lab, content, [(DOMAIN, "static")])
    try:
        yield portals
    finally:
        remove_portal(portals.settings, DOMAIN)
        portals.deploy()  # the host serves what the register says again


def web_001(portals: Portals, result: AuditResult) -> ControlResult:
    with open_store(portals.settings) as store:
        [report] = list(ComplianceRecords(store).host_reports(result.run_id))
    assert report.host == HOST and report.status == "reported", report
    found = report.result("WEB-001")
    assert found is not None
    return found


def entry(result: ControlResult) -> dict[str, Any]:
    return next(p for p in result.actual if p["domain"] == DOMAIN)


def test_a_deployed_portal_passes_web_001(web: Portals) -> None:
    assert web.deploy().status == "succeeded"
    assert web.get(DOMAIN) == (200, f"<h1>{DOMAIN}</h1>\n")
    result = web_001(web, audit(web.settings, HOST))
    assert result.status == "pass", result
    assert result.expected == {"status": "ok", "min_days_left": 30}
    assert entry(result) == {"domain": DOMAIN, "status": "ok"}


def test_a_certificate_near_expiry_fails_web_001_and_fix_repairs_it(web: Portals) -> None:
    short = portal_ca.issue(web.settings, DOMAIN, days=10)
    assert web.deploy(renew_within_days=5).status == "succeeded"  # served as it is
    audited = audit(web.settings, HOST)
    result = web_001(web, audited)
    assert result.status == "fail", result
    assert entry(result) == {"domain": DOMAIN, "status": "expiring", "days_left": 9}
    assert f"{DOMAIN}: certificate expires in 9 days (< 30)" in result.message

    fix = plan_fix(web.settings, audited.run_id, control="WEB-001")
    assert fix.tags == ("WEB-001",) and fix.hosts == (HOST,)
    assert fix.rollout is not None and fix.vars_file is not None
    planned = portal_ca.cert_status(web.settings, DOMAIN)
    assert planned is not None and planned.serial == short.serial  # planning issued nothing
    prepare_fix(web.settings, fix)
    renewed = portal_ca.cert_status(web.settings, DOMAIN)
    assert renewed is not None and renewed.serial != short.serial  # renewed once confirmed
    fixed_run = run_rollout(web.settings, fix.rollout)
    assert fixed_run.status == "succeeded", fixed_run.results
    served = https_get(web.address, DOMAIN, ca_file=web.ca_file).certificate
    assert served is not None and served.serial == renewed.serial
    after = web_001(web, audit(web.settings, HOST))
    assert after.status == "pass", after
