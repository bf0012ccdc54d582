"""`provision compliance runs|show|drift` over a store filled by hand, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.errors import ExitStatus
from provision.infra.store import Store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.model.compliance.model import ControlResult, HostReport


def _new_run(records: ComplianceRecords) -> int:
    return records.create_run(
        env="lab",
        selection="",
        standard_id="bd-ict-baseline",
        standard_version="2026.1",
        standard_digest="d" * 64,
        waivers_digest=None,
        user="tester",
        node="node",
    )


@pytest.fixture
def env(workspace: Path) -> dict[str, str]:
    db = f"sqlite:///{workspace / 'state.db'}"
    records = ComplianceRecords(Store.open(db))
    for statuses in (("pass", "pass"), ("fail", "pass")):
        run_id = _new_run(records)
        results = tuple(
            ControlResult(f"C-{i}", s, "high", "no", "yes" if s == "fail" else "no")
            for i, s in enumerate(statuses)
        )
        records.add_host_reports(run_id, [HostReport("pc1", "reported", results=results)])
        records.finish_run(run_id, "done")
    return {"PROVISION_WORKSPACE": str(workspace), "PROVISION_DB_URL": db}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, ["compliance", *args], env=env)


def test_runs_and_show(env: dict[str, str]) -> None:
    listed = run(env, "runs", "--json")
    assert listed.exit_code == 0
    assert [r["id"] for r in json.loads(listed.output)] == [2, 1]
    shown = run(env, "show", "2", "--host", "pc1", "--json")
    assert shown.exit_code == 0
    data = json.loads(shown.output)
    assert data["hosts"][0]["score"] == 0.5
    assert data["host"]["results"][0] == {
        "control": "C-0",
        "status": "fail",
        "severity": "high",
        "expected": "no",
        "actual": "yes",
        "message": "",
    }
    assert "pc1" in run(env, "show", "1").output


def test_drift_exits_6_on_new_drift(env: dict[str, str]) -> None:
    result = run(env, "drift", "--json")
    assert result.exit_code == ExitStatus.BELOW_THRESHOLD
    data = json.loads(result.output)
    assert (data["since"], data["run"], data["new_drift"]) == (1, 2, 1)
    [change] = data["changes"]
    assert (change["host"], change["control"], change["before"], change["after"]) == (
        "pc1",
        "C-0",
        "pass",
        "fail",
    )
    assert run(env, "drift", "--since", "2").exit_code == ExitStatus.BAD_INPUT  # same run


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("show", "99"), "no compliance run 99"),
        (("drift", "--since", "last week"), "neither a run id nor a date"),
        (("run", "--threshold", "120"), "not a percentage"),
    ],
)
def test_bad_input_is_one_clear_error(
    env: dict[str, str], args: tuple[str, ...], words: str
) -> None:
    result = run(env, *args)
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert words in result.output


def test_show_failing_lists_each_failing_control_with_its_hosts_and_why(
    env: dict[str, str],
) -> None:
    records = ComplianceRecords(Store.open(env["PROVISION_DB_URL"]))
    run_id = _new_run(records)
    why = "passwordauthentication is yes, not no"
    records.add_host_reports(
        run_id,
        [
            HostReport(
                host,
                "reported",
                results=(
                    ControlResult("SSH-002", "fail", "critical", message=why),
                    ControlResult("TIME-001", status, "low", message="time zone is Etc/UTC"),
                    ControlResult("OS-001", "pass", "critical"),
                ),
            )
            for host, status in (("fs1", "pass"), ("pc1", "fail"), ("pc2", "error"))
        ],
    )
    records.finish_run(run_id, "done")
    shown = run(env, "show", str(run_id), "--failing")
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.output.splitlines() if "-00" in line]
    # Worst severity first; a control every host passes is not listed.
    assert [line.split()[1] for line in lines] == ["SSH-002", "TIME-001"]
    assert "3 of 3" in lines[0] and why in lines[0]
    assert "2 of 3" in lines[1]
    host = run(env, "show", str(run_id), "--host", "fs1", "--failing")
    assert "SSH-002" in host.output and "TIME-001" not in host.output
    assert "OS-001" not in host.output
    assert "no control failed" in run(env, "show", "1", "--failing").output
