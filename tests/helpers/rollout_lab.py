"""The rollout lab scenarios, run by tests/integration/test_rollout_lab.py on SQLite
and by test_rollout_postgres.py on PostgreSQL, and what they use: the fixture
playbooks, the stamps they leave on the hosts, provision run as a command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from subprocess import CompletedProcess

from provision.infra.store import Store, open_store
from provision.rollout import Progress, RolloutOptions, plan_rollout, run_rollout
from provision.settings import Settings
from tests.helpers.lab import Lab
from tests.helpers.workspace import FIXTURES, REPO

CHANGE = str(FIXTURES / "playbooks" / "rollout_change.yml")
SLOW = str(FIXTURES / "playbooks" / "rollout_slow.yml")
BLOCK = str(FIXTURES / "playbooks" / "rollout_block.yml")
STAMPS = "/var/tmp/provision-rollout"
FAIL_MARKER = "/etc/provision-rollout-fail"


def clean_hosts(lab: Lab) -> None:
    for host in lab.hosts:
        lab.ssh(host.name, f"rm -rf {STAMPS} {FAIL_MARKER}")


def stamp(lab: Lab, host: str, name: str = "stamp") -> str | None:
    out = lab.ssh(host, f"cat {STAMPS}/{name} 2>/dev/null || true").strip()
    return out or None


def check_canary_and_two_waves(lab: Lab, settings: Settings) -> None:
    plan = plan_rollout(settings, RolloutOptions(CHANGE, "", canary="1", batch="2"))
    assert [len(w.hosts) for w in plan.waves] == [1, 2, 1]
    seen: list[Progress] = []
    result = run_rollout(settings, plan, on_progress=seen.append)
    assert result.status == "succeeded"
    assert sorted(result.results) == sorted(h.name for h in lab.hosts)
    for wave in plan.waves:
        for host in wave.hosts:
            r = result.results[host]
            assert r.wave == wave.number and r.outcome == "changed" and r.changed == 2
            assert r.seconds is not None and r.seconds >= 0
            # The change is real: the host itself holds the stamp.
            assert stamp(lab, host) == host
    assert [p.index for p in seen if p.kind == "wave_start"] == [1, 2, 3]
    with open_store(settings) as store:
        run = store.get_run(result.run_id)
        assert run.user and run.node and run.playbook.endswith("rollout_change.yml")
        assert run.options["canary"] == "1" and run.options["batch"] == "2"
        assert [w.status for w in store.waves(run.id)] == ["done"] * 3
        rows = store.task_rows(run.id)
        assert {r.host for r in rows} == set(result.results)
        assert store.locks() == []  # released at the end


def check_failing_canary_stops(lab: Lab, settings: Settings) -> None:
    canary = "dhk-kal-lab01"
    lab.ssh(canary, f"touch {FAIL_MARKER}")
    plan = plan_rollout(settings, RolloutOptions(CHANGE, "", canary=f"host:{canary}", batch="2"))
    result = run_rollout(settings, plan)
    assert result.status == "stopped"
    assert "canary" in (result.run.stop_reason or "")
    assert list(result.results) == [canary]
    failed = result.results[canary]
    assert failed.outcome == "failed"
    assert failed.failed_task == "Fail where the marker is"
    assert "failing on purpose" in (failed.message or "")
    assert sorted(result.pending) == sorted(h.name for h in lab.hosts if h.name != canary)
    assert [w.status for w in result.waves] == ["done", "pending", "pending"]
    for host in result.pending:  # wave 1 never ran: nothing changed there
        assert stamp(lab, host) is None


def check_max_fail_stops(lab: Lab, settings: Settings) -> None:
    plan = plan_rollout(settings, RolloutOptions(CHANGE, "", batch="1", max_fail="30%"))
    order = plan.hosts
    lab.ssh(order[1], f"touch {FAIL_MARKER}")
    result = run_rollout(settings, plan)
    # After wave 2: 1 of 2 hosts failed (50 %) > 30 %: waves 3 and 4 never start.
    assert result.status == "stopped"
    assert "--max-fail 30%" in (result.run.stop_reason or "")
    assert result.results[order[0]].outcome == "changed"
    assert result.results[order[1]].outcome == "failed"
    assert sorted(result.pending) == sorted(order[2:])
    assert stamp(lab, order[0]) == order[0]
    assert all(stamp(lab, h) is None for h in order[2:])


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
    env.update(
        PROVISION_WORKSPACE=str(settings.workspace),
        PROVISION_STATE_DIR=str(settings.state_path),
        PROVISION_LAB_SUBNET=settings.lab_subnet,
        PROVISION_DB_URL=settings.db_url,
        PYTHONPATH=str(REPO),
    )
    return env


def run_provision(settings: Settings, *args: str, timeout: float) -> CompletedProcess[str]:
    """`provision ARGS` in a process of its own, as a person would run it (its exit
    status is the caller's to check)."""
    return subprocess.run(
        [sys.executable, "-m", "provision", *args],
        env=cli_env(settings),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def check_sigkill_then_resume(lab: Lab, settings: Settings) -> None:
    env = cli_env(settings)
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision", "rollout", SLOW, "all", "--batch", "2", "--yes"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    store = Store.open(settings.database_url)
    try:

        def second_wave_running() -> bool:
            if proc.poll() is not None:  # ended before its second wave: say why
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                raise AssertionError(f"provision exited {proc.returncode}: {out}")
            runs = store.list_runs(limit=1)
            if not runs:
                return False
            waves = store.waves(runs[0].id)
            return len(waves) == 2 and waves[1].status == "running"

        wait_for(second_wave_running, 300, "the second wave to start")
        second_wave = store.waves(store.list_runs(limit=1)[0].id)[1].hosts
        # In the middle of the second wave: its hosts have begun the play (their start
        # markers are written) and are in the 12 s task, which none has finished.
        wait_for(
            lambda: all(stamp(lab, h, "slow-started") == h for h in second_wave),
            300,
            "the second wave's hosts to start the play",
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        run = store.list_runs(limit=1)[0]
        assert run.status == "running"  # nobody could record anything else
        before = store.host_results(run.id)
        first, second = (w.hosts for w in store.waves(run.id))
        assert sorted(before) == sorted(first)  # wave 1 committed, wave 2 not finished
        rows_before = store.count_task_rows(run.id)
        assert rows_before > 0

        resumed = run_provision(settings, "rollout", "resume", str(run.id), timeout=300)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        after = store.get_run(run.id)
        assert after.status == "succeeded" and after.attempts == 2
        results = store.host_results(run.id)
        # Every host exactly one final result (the key is (run, host)); wave 1's
        # results are the ones recorded before the kill, untouched.
        assert sorted(results) == sorted([*first, *second])
        assert all(results[h] == before[h] and results[h].attempt == 1 for h in first)
        assert all(results[h].attempt == 2 for h in second)
        assert store.count_task_rows(run.id) > rows_before  # nothing recorded was lost
        for host in [*first, *second]:
            assert stamp(lab, host, "slow") == host
        assert store.locks() == []
    finally:
        if proc.poll() is None:
            proc.kill()
        store.close()
