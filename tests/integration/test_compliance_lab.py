"""Compliance runs against the lab's real hosts, from pristine to compliant and back.

One journey, in order (a module fixture does it; the tests below check each step):

1. pristine hosts are audited: every host scores below 100 %, and the audit
   changes nothing on the hosts (files under /etc, /usr and the package
   database, checked on the host against a marker and by checksums);
2. the baseline rollout (site.yml, with the controls' tags) brings them to the
   standard: 100 % everywhere;
3. drift by hand on the lab PC (a forbidden package installed, an sshd setting
   edited): the next run's drift is exactly those two controls on that host;
4. `compliance fix` on that run repairs it: the next run is 100 % again;
5. a stopped host is unreachable for every applicable control: coverage drops,
   the scores of the others do not.

The lab's containers see the control node's CPUs, memory and disk, so the lab
declares its hosts' equipment in its register, and compliance judges a
container's hardware controls on that (the standard's minimums as published).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.compliance.drift import DriftReport, drift
from provision.compliance.fix import FixPlan, plan_fix, prepare_fix
from provision.compliance.service import AuditResult, audit
from provision.errors import ExitStatus, StateError
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords, RunSummary
from provision.lab import service
from provision.model.compliance.model import HostReport
from provision.rollout import RolloutOptions, plan_rollout, run_rollout
from provision.settings import Settings
from provision.standards import load_standard
from tests.helpers.lab import Lab
from tests.helpers.workspace import REPO

# A module fixture rolls the baseline out over lab hosts first: on a loaded machine
# that alone can take longer than the suite's per-test timeout.
pytestmark = [pytest.mark.lab, pytest.mark.timeout(2400)]

STANDARD = REPO / "standards" / "bd-ict-baseline.yml"
LAB_PC = "dhk-kal-lab01"
PORTAL = "dhk-gaz-portal01"
MARKER = "/run/provision-compliance-marker"
#: What a read-only audit must leave as it was: files changed after the marker,
#: and the content, modes and owners of everything under /etc, and dpkg's database.
CHANGED = f"find /etc /usr /var/lib/dpkg -xdev -newer {MARKER} -print 2>/dev/null | sort"
SNAPSHOT = (
    "find /etc -xdev \\( -type f -o -type l -o -type d \\) -printf '%p %y %m %u %g %l\\n' | sort;"
    " find /etc -xdev -type f -print0 | sort -z | xargs -0 sha256sum;"
    " sha256sum /var/lib/dpkg/status"
)
DRIFT = (
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q inetutils-telnetd >/dev/null"
    " && sed -i 's/^MaxAuthTries .*/MaxAuthTries 6/'"
    " /etc/ssh/provision.d/ssh-004.conf"
)


@dataclass
class Journey:
    settings: Settings
    fresh: AuditResult
    fresh_reports: dict[str, HostReport]
    fresh_changes: dict[str, list[str]]
    converged: AuditResult
    converged_changes: dict[str, list[str]]
    drifted: AuditResult
    drift: DriftReport
    fix: FixPlan
    fix_status: str
    fixed: AuditResult
    down: AuditResult
    summaries: list[RunSummary] = field(default_factory=list)
    cli_codes: dict[str, int] = field(default_factory=dict)


def _reports(settings: Settings, run_id: int) -> dict[str, HostReport]:
    with open_store(settings) as store:
        return {r.host: r for r in ComplianceRecords(store).host_reports(run_id)}


def _audit_unchanged(lab: Lab, settings: Settings) -> tuple[AuditResult, dict[str, list[str]]]:
    """An audit, with what it changed on each host (must be nothing)."""
    names = [h.name for h in lab.hosts]
    before = {}
    for name in names:
        lab.ssh(name, f"touch {MARKER} && sleep 1")
        before[name] = lab.ssh(name, SNAPSHOT)
    result = audit(settings)
    changes: dict[str, list[str]] = {}
    for name in names:
        newer = lab.ssh(name, CHANGED).split()
        after = lab.ssh(name, SNAPSHOT)
        differ = sorted(set(before[name].splitlines()) ^ set(after.splitlines()))
        changes[name] = newer + differ[:20]
    return result, changes


def _cli(settings: Settings, *args: str) -> int:
    env = {
        "PROVISION_WORKSPACE": str(settings.workspace),
        "PROVISION_STATE_DIR": str(settings.state_path),
        "PROVISION_LAB_SUBNET": settings.lab_subnet,
        "PROVISION_DB_URL": settings.db_url,
    }
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code


@pytest.fixture(scope="module")
def journey(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    db = tmp_path_factory.mktemp("compliance") / "state.db"
    settings = replace(lab.settings, db_url=f"sqlite:///{db}")
    standards = settings.workspace / "standards"
    shutil.copy(STANDARD, standards / STANDARD.name)
    names = [h.name for h in lab.hosts]
    codes: dict[str, int] = {}
    try:
        for name in names:
            _reset(lab, name)
        fresh, fresh_changes = _audit_unchanged(lab, settings)
        codes["fresh"] = _cli(settings, "compliance", "run", "--json")

        # The baseline: site.yml with every control's tag (what enforces the standard;
        # roles' other work, a portal's sites say, is not the standard's business).
        tags = tuple(sorted({c.enforce.tag for c in load_standard(STANDARD).controls if c.enforce}))
        rollout = run_rollout(
            settings, plan_rollout(settings, RolloutOptions("site.yml", tags=tags))
        )
        assert rollout.status == "succeeded", rollout.results
        converged, converged_changes = _audit_unchanged(lab, settings)
        codes["converged"] = _cli(settings, "compliance", "run")

        lab.ssh(LAB_PC, DRIFT)
        drifted = audit(settings)
        report = drift(settings)
        codes["drift"] = _cli(settings, "compliance", "drift", "--json")

        fix = plan_fix(settings, drifted.run_id)
        assert fix.rollout is not None
        prepare_fix(settings, fix)  # a WEB-001 fix needs the portal register written
        fixed_run = run_rollout(settings, fix.rollout)
        fixed = audit(settings)

        service.stop_host(lab.settings, PORTAL)
        down = audit(settings)
        codes["down"] = _cli(settings, "compliance", "run", "--threshold", "100")
        service.start_host(lab.settings, PORTAL)
        with open_store(settings) as store:
            summaries = ComplianceRecords(store).run_summaries(
                settings.env, "bd-ict-baseline", load_standard(STANDARD).version
            )
        yield Journey(
            settings,
            fresh,
            _reports(settings, fresh.run_id),
            fresh_changes,
            converged,
            converged_changes,
            drifted,
            report,
            fix,
            fixed_run.status,
            fixed,
            down,
            summaries,
            codes,
        )
    finally:
        (standards / STANDARD.name).unlink(missing_ok=True)
        for name in names:
            _reset(lab, name)


def _reset(lab: Lab, name: str) -> None:
    """Back to the pristine image for the tests that share the lab (twice if it must)."""
    try:
        service.reset_host(lab.settings, name)
    except StateError:
        service.reset_host(lab.settings, name)


def _scores(result: AuditResult) -> dict[str, float | None]:
    return {h.host: h.score for h in result.hosts}


def test_pristine_hosts_score_below_100(journey: Journey, lab: Lab) -> None:
    scores = _scores(journey.fresh)
    assert sorted(scores) == sorted(h.name for h in lab.hosts)
    assert all(s is not None and s < 1.0 for s in scores.values()), scores
    assert not any(h.compliant for h in journey.fresh.hosts)
    lab_pc = journey.fresh_reports[LAB_PC]
    ssh2 = lab_pc.result("SSH-002")
    assert ssh2 is not None and ssh2.status == "fail"
    assert ssh2.actual[0] == "yes"  # passwordauthentication, read by sshd -T on the host
    assert lab_pc.result("FS-001").status == "not_applicable"  # type: ignore[union-attr]
    assert lab_pc.result("OS-001").status == "pass"  # type: ignore[union-attr]
    assert journey.cli_codes["fresh"] == ExitStatus.BELOW_THRESHOLD
    # The hardware controls pass from the start, on the equipment the lab declares
    # for its containers, and say so.
    for host, report in journey.fresh_reports.items():
        (hardware,) = [
            r
            for r in report.results
            if r.control.startswith("HW-") and r.status != "not_applicable"
        ]
        assert hardware.status == "pass", (host, hardware)
        assert "register (a systemd-nspawn container" in hardware.actual["source"], hardware


def test_an_audit_changes_nothing_on_the_hosts(journey: Journey) -> None:
    assert journey.fresh_changes == {h: [] for h in journey.fresh_changes}
    assert journey.converged_changes == {h: [] for h in journey.converged_changes}


def test_after_the_baseline_every_host_scores_100(journey: Journey) -> None:
    assert all(h.compliant and h.score == 1.0 for h in journey.converged.hosts), [
        (h.host, h.counts) for h in journey.converged.hosts
    ]
    assert journey.cli_codes["converged"] == ExitStatus.SUCCESS


def test_drift_shows_exactly_the_hand_made_changes(journey: Journey) -> None:
    changes = {(c.host, c.control): c for c in journey.drift.changes}
    assert set(changes) == {(LAB_PC, "PKG-002"), (LAB_PC, "SSH-004")}
    pkg = changes[(LAB_PC, "PKG-002")]
    assert (pkg.before, pkg.after) == ("pass", "fail")
    assert "inetutils-telnetd" in pkg.after_actual[0]
    ssh = changes[(LAB_PC, "SSH-004")]
    assert (ssh.before, ssh.after) == ("pass", "fail") and ssh.after_actual[0] == "6"
    assert journey.drift.run.id == journey.drifted.run_id
    assert journey.drift.since.id == journey.converged.run_id + 1  # the CLI's run
    assert journey.cli_codes["drift"] == ExitStatus.BELOW_THRESHOLD


def test_fix_repairs_the_drift(journey: Journey) -> None:
    assert dict(journey.fix.failing) == {"PKG-002": (LAB_PC,), "SSH-004": (LAB_PC,)}
    assert journey.fix.tags == ("PKG-002", "SSH-004")
    assert journey.fix.hosts == (LAB_PC,)
    assert journey.fix_status == "succeeded"
    assert all(h.compliant and h.score == 1.0 for h in journey.fixed.hosts)


def test_an_unreachable_host_lowers_coverage_not_the_score(journey: Journey) -> None:
    rows = {h.host: h for h in journey.down.hosts}
    down = rows[PORTAL]
    assert down.status == "unreachable" and down.score is None and not down.compliant
    reports = _reports(journey.settings, journey.down.run_id)
    statuses = {r.status for r in reports[PORTAL].results}
    assert statuses == {"unreachable", "not_applicable"}
    applicable = [r for r in reports[PORTAL].results if r.status != "not_applicable"]
    assert len(applicable) == len(load_standard(STANDARD).applicable(role="portal_host"))
    assert all(rows[h].score == 1.0 for h in rows if h != PORTAL)
    last = journey.summaries[-1]
    assert last.coverage == pytest.approx(3 / 4) and last.median_score == 1.0
    assert journey.cli_codes["down"] == ExitStatus.HOSTS_UNREACHABLE


def test_runs_keep_no_module_results(journey: Journey) -> None:
    """The evidence reaches the store only as evaluated values: no event files, no output."""
    runs_dir = journey.settings.state_path / "runs"
    audits = list(runs_dir.glob("*compliance-*"))
    assert audits
    for run_dir in audits:
        for path in run_dir.glob("artifacts/*/job_events/*.json"):
            assert '"playbook_on_stats"' in path.read_text(), path  # only the recap is kept
        for path in run_dir.glob("artifacts/*/stdout"):
            text = path.read_text(errors="replace")
            assert "ok: [" in text and "passwordauthentication" not in text, path
