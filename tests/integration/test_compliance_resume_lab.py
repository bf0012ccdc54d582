"""`compliance resume` against the lab's real hosts: an audit stopped mid-way, finished later.

One host's audit is held (its Python interpreter, for this test only, waits for
a release file on the host), so the others are recorded while it is not. The
audit is interrupted with Ctrl-C once a host is in the store, then resumed:
the run is done, every host has exactly one report, the hosts recorded before
were not audited again (their collection time is what it was), and the run's
totals, roll-ups and control totals count each host once. The same after a
crash (the control node's provision killed): the resume first stops the
ansible-playbook the dead audit left waiting on the held host.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from provision.compliance.service import AuditResult
from provision.errors import ExitStatus
from provision.infra.processes import find_run_processes, stop_run_processes
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords, HostRow
from provision.settings import Settings
from tests.helpers.compliance_totals import counted_totals, stored_totals
from tests.helpers.lab import Lab
from tests.helpers.rollout_lab import cli_env, run_provision, wait_for
from tests.helpers.workspace import REPO

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1200)]

STANDARD = REPO / "standards" / "bd-ict-baseline.yml"
HELD = "dhk-kal-lab01"
GATE = "/var/tmp/provision-audit-gate"
#: The held host's interpreter: it waits for the release, then is the host's python3.
GATED_PYTHON = "/usr/local/bin/provision-gated-python3"
GATED_SCRIPT = (
    f'#!/bin/sh\nwhile [ ! -e {GATE}/release ]; do sleep 0.2; done\nexec /usr/bin/python3 "$@"\n'
)


@pytest.fixture
def settings(lab: Lab, tmp_path: Path) -> Settings:
    """The lab's settings with a store of this test's own, the standard in standards/."""
    standards = lab.settings.workspace / "standards"
    if not (standards / STANDARD.name).exists():
        shutil.copy(STANDARD, standards / STANDARD.name)
    return replace(lab.settings, db_url=f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture
def held(lab: Lab) -> Iterator[str]:
    """HELD's audit waits on the host until `release(lab)`; undone whatever happens."""
    vars_file = lab.inventory / "host_vars" / HELD / "audit_gate.yml"
    lab.ssh(
        HELD,
        f"rm -rf {GATE} && cat > {GATED_PYTHON} <<'EOF'\n{GATED_SCRIPT}EOF\n"
        f"chmod 755 {GATED_PYTHON}",
    )
    vars_file.parent.mkdir(parents=True, exist_ok=True)
    # The module's shebang names python3 (ansible_python3_interpreter); mitogen's
    # interpreter on the host is ansible_python_interpreter.
    vars_file.write_text(
        f"---\nansible_python_interpreter: {GATED_PYTHON}\n"
        f"ansible_python3_interpreter: {GATED_PYTHON}\n"
    )
    try:
        yield HELD
    finally:
        vars_file.unlink(missing_ok=True)
        release(lab)
        lab.ssh(HELD, f"rm -f {GATED_PYTHON}")


def release(lab: Lab) -> None:
    lab.ssh(HELD, f"mkdir -p {GATE} && touch {GATE}/release")


def _recorded(settings: Settings) -> dict[str, object]:
    """The first run's hosts and their collection times, as the store has them now."""
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        runs = records.list_runs()
        if not runs:
            return {}
        return {r.host: r.collected_at for r in records.host_rows(runs[-1].id)}


def _start_audit(settings: Settings) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "provision", "compliance", "run", "--local"],
        env=cli_env(settings),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _recorded_before(settings: Settings, status: str, names: list[str]) -> dict[str, HostRow]:
    """The one run's host lines, the run `status`: some hosts, not HELD, not all."""
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        (run,) = records.list_runs()
        assert run.status == status
        before = {r.host: r for r in records.host_rows(run.id)}
    assert before and HELD not in before, sorted(before)
    assert set(before) < set(names)
    return before


def _resume_and_check(
    lab: Lab, settings: Settings, names: list[str], before: dict[str, HostRow]
) -> None:
    """Resume the run (HELD no longer held) and check it is whole, each host once."""
    (lab.inventory / "host_vars" / HELD / "audit_gate.yml").unlink()
    resumed = run_provision(settings, "compliance", "resume", "--local", "--json", timeout=900)
    body = json.loads(resumed.stdout)
    with open_store(settings) as store:
        records = ComplianceRecords(store)
        (run,) = records.list_runs()  # no new run: the same one went on
        assert body["run"]["id"] == run.id, resumed.stdout
        rows = records.host_rows(run.id)
        assert run.status == "done"
        assert [r.host for r in rows] == names  # every host exactly once
        assert run.hosts == len(names)
        by_host = {r.host: r for r in rows}
        # The hosts recorded before were not audited again: their reports are as they were.
        for host, row in before.items():
            assert by_host[host].collected_at == row.collected_at, host
            assert by_host[host].counts == row.counts, host
        assert by_host[HELD].status == "reported", by_host[HELD]
        # Totals over the whole run, each host once: control totals, roll-ups, the summary.
        assert stored_totals(records, run.id) == counted_totals(records, run.id)
        assert sum(stored_totals(records, run.id).values()) == sum(
            sum(r.counts.values()) for r in rows
        )
        (whole,) = records.rollups(run.id, ("all",)).levels["all"]
        assert whole.hosts == len(names)
        assert whole.reported == sum(1 for r in rows if r.status == "reported")
        assert whole.compliant == sum(1 for r in rows if r.compliant)
        expected = AuditResult(run, tuple(rows)).exit_status()
    # The exit status is the whole run's, as `compliance run` would give it.
    assert resumed.returncode == expected, resumed.stdout + resumed.stderr
    assert [h["host"] for h in body["hosts"]] == names

    shown = run_provision(settings, "compliance", "show", str(run.id), "--json", timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)["hosts"]) == len(names)

    # A done run is not resumed again, and the refusal changes nothing.
    again = run_provision(settings, "compliance", "resume", str(run.id), timeout=120)
    assert again.returncode == ExitStatus.BAD_INPUT and "is done" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr
    with open_store(settings) as store:
        assert ComplianceRecords(store).get_run(run.id) == run


def test_an_interrupted_audit_resumed_audits_only_the_hosts_it_lacked(
    lab: Lab, settings: Settings, held: str
) -> None:
    names = sorted(h.name for h in lab.hosts)
    proc = _start_audit(settings)
    try:
        wait_for(lambda: _recorded(settings), 600, "a first host report in the store")
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitStatus.INTERRUPTED, output
    before = _recorded_before(settings, "interrupted", names)
    release(lab)
    _resume_and_check(lab, settings, names, before)


def test_a_crashed_audit_resumed_stops_what_it_left_running_first(
    lab: Lab, settings: Settings, held: str
) -> None:
    """The control node's provision dies (SIGKILL) while HELD is held: its
    ansible-playbook goes on, waiting on HELD; the resume stops it, then audits."""
    names = sorted(h.name for h in lab.hosts)
    proc = _start_audit(settings)
    folders: list[Path] = []
    try:
        wait_for(lambda: _recorded(settings), 600, "a first host report in the store")
        proc.kill()
        proc.communicate(timeout=120)
        folders = sorted((settings.state_path / "runs").glob("*-compliance-1-*"))
        assert folders and any(find_run_processes(str(f)) for f in folders)
        before = _recorded_before(settings, "crashed", names)
        _resume_and_check(lab, settings, names, before)
        assert [find_run_processes(str(f)) for f in folders] == [[] for _ in folders]
    finally:
        if proc.poll() is None:
            proc.kill()
        for folder in folders:
            stop_run_processes(str(folder))
