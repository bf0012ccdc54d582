"""`compliance fix` on a lab host: it must win over a local drop-in, and say when it could not.

sshd takes the first value it reads, and Debian reads sshd_config.d/*.conf in
name order: a local `00-drift.conf` sorts before any `00-provision-*` file. The
fix must still repair SSH-002 and SSH-004 (the role's settings are read first),
leave the admin's drop-in where it is, and prove it with an audit of its own.
A control the fix cannot repair (a forbidden package held by dpkg) makes it
exit non-zero, naming the control and host.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.compliance.service import audit
from provision.errors import ExitStatus, StateError
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.lab import service
from provision.settings import Settings
from tests.helpers.lab import Lab
from tests.helpers.workspace import REPO

# A module fixture rolls the baseline out over lab hosts first: on a loaded machine
# that alone can take longer than the suite's per-test timeout.
pytestmark = [pytest.mark.lab, pytest.mark.timeout(2400)]

STANDARD = REPO / "standards" / "bd-ict-baseline.yml"
LAB_PC = "dhk-kal-lab01"
DROP_IN = "/etc/ssh/sshd_config.d/00-drift.conf"
DRIFT = f"printf 'PasswordAuthentication yes\\nMaxAuthTries 10\\nX11Forwarding yes\\n' > {DROP_IN}"
HELD = (
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q inetutils-telnetd >/dev/null"
    " && apt-mark hold inetutils-telnetd >/dev/null"
)


def _reset(lab: Lab) -> None:
    try:
        service.reset_host(lab.settings, LAB_PC)
    except StateError:
        service.reset_host(lab.settings, LAB_PC)


@pytest.fixture(scope="module")
def settings(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    db = tmp_path_factory.mktemp("compliance-fix") / "state.db"
    chosen = replace(lab.settings, db_url=f"sqlite:///{db}")
    copied = chosen.workspace / "standards" / STANDARD.name
    shutil.copy(STANDARD, copied)
    _reset(lab)
    try:
        yield chosen
    finally:
        copied.unlink(missing_ok=True)
        _reset(lab)


def _fix(settings: Settings, run_id: int, control: str) -> tuple[int, dict[str, Any]]:
    env = {
        "PROVISION_WORKSPACE": str(settings.workspace),
        "PROVISION_STATE_DIR": str(settings.state_path),
        "PROVISION_LAB_SUBNET": settings.lab_subnet,
        "PROVISION_DB_URL": settings.db_url,
    }
    result = CliRunner().invoke(
        cli,
        ["compliance", "fix", str(run_id), "--control", control, "--yes", "--json"],
        env=env,
        catch_exceptions=False,
    )
    # The rollout's progress goes to stderr; stdout is one JSON document.
    return result.exit_code, json.loads(result.stdout)


def _status(settings: Settings, run_id: int, control: str) -> str:
    with open_store(settings) as store:
        report = ComplianceRecords(store).host_report(run_id, LAB_PC)
    assert report is not None
    found = report.result(control)
    assert found is not None
    return found.status


def test_fix_wins_over_a_drop_in_that_sorts_first(lab: Lab, settings: Settings) -> None:
    lab.ssh(LAB_PC, DRIFT)
    drifted = audit(settings, LAB_PC)
    assert _status(settings, drifted.run_id, "SSH-002") == "fail"
    assert _status(settings, drifted.run_id, "SSH-004") == "fail"

    for control in ("SSH-002", "SSH-004"):
        code, out = _fix(settings, drifted.run_id, control)
        # What counts is the next audit, not what the fix says about itself.
        assert _status(settings, audit(settings, LAB_PC).run_id, control) == "pass", out
        assert out["controls"] == [
            {
                "control": control,
                "host": LAB_PC,
                "before": "fail",
                "after": "pass",
                "repaired": True,
                "message": out["controls"][0]["message"],
            }
        ], out["controls"]
        assert code == ExitStatus.SUCCESS
        assert _status(settings, out["audit"], control) == "pass"

    after = audit(settings, LAB_PC)
    assert _status(settings, after.run_id, "SSH-002") == "pass"
    assert _status(settings, after.run_id, "SSH-004") == "pass"
    effective = lab.ssh(LAB_PC, "sshd -T")
    assert "passwordauthentication no" in effective and "maxauthtries 4" in effective
    # The admin's drop-in is left alone: its values lose, nothing of theirs is deleted.
    assert "PasswordAuthentication yes" in lab.ssh(LAB_PC, f"cat {DROP_IN}")


def test_a_fix_that_cannot_repair_exits_non_zero_naming_it(lab: Lab, settings: Settings) -> None:
    lab.ssh(LAB_PC, HELD)
    held = audit(settings, LAB_PC)
    assert _status(settings, held.run_id, "PKG-002") == "fail"

    code, out = _fix(settings, held.run_id, "PKG-002")
    # apt refuses to remove a held package: the rollout fails on the host (4), and
    # the audit after it names the control as not repaired.
    assert code == ExitStatus.HOSTS_FAILED
    assert [(r["control"], r["host"], r["repaired"]) for r in out["not_repaired"]] == [
        ("PKG-002", LAB_PC, False)
    ]
    assert out["not_repaired"][0]["after"] == "fail"
    assert "inetutils-telnetd" in lab.ssh(LAB_PC, "dpkg-query -W -f '${Package}\\n' 'inetutils*'")
