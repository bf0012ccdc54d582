"""Rollouts against the lab's real hosts, recorded in SQLite (and, through
test_rollout_postgres.py, in PostgreSQL): every result on record, the canary and
--max-fail stopping where they should, a killed control node resumed, an
unreachable host caught up later. Changes are verified on the hosts over SSH.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from provision.errors import ExitStatus
from provision.infra.store import Store, open_store
from provision.lab import service
from provision.rollout import (
    Progress,
    RolloutOptions,
    plan_retry,
    plan_rollout,
    run_rollout,
)
from provision.settings import Settings
from tests.helpers.lab import Lab
from tests.helpers.rollout_lab import (
    BLOCK,
    CHANGE,
    SLOW,
    STAMPS,
    check_canary_and_two_waves,
    check_failing_canary_stops,
    check_max_fail_stops,
    check_sigkill_then_resume,
    clean_hosts,
    cli_env,
    run_provision,
    stamp,
    wait_for,
)

pytestmark = pytest.mark.lab


@pytest.fixture
def db_settings(lab: Lab, tmp_path: Path) -> Settings:
    """The lab's settings with a fresh SQLite store of this test's own."""
    return replace(lab.settings, db_url=f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture
def clean(lab: Lab) -> Iterator[None]:
    clean_hosts(lab)
    yield
    clean_hosts(lab)


@pytest.mark.usefixtures("clean")
def test_canary_and_two_waves_record_every_host(lab: Lab, db_settings: Settings) -> None:
    check_canary_and_two_waves(lab, db_settings)


@pytest.mark.usefixtures("clean")
def test_failing_canary_stops_before_wave_1(lab: Lab, db_settings: Settings) -> None:
    check_failing_canary_stops(lab, db_settings)


@pytest.mark.usefixtures("clean")
def test_max_fail_stops_launching_waves(lab: Lab, db_settings: Settings) -> None:
    check_max_fail_stops(lab, db_settings)


@pytest.mark.usefixtures("clean")
def test_sigkill_mid_wave_then_resume_finishes_every_host(lab: Lab, db_settings: Settings) -> None:
    check_sigkill_then_resume(lab, db_settings)


@pytest.mark.usefixtures("clean")
def test_host_stopped_mid_run_is_unreachable_and_retried(lab: Lab, db_settings: Settings) -> None:
    victim, other = "dhk-kal-lab01", "dhk-gaz-portal01"
    plan = plan_rollout(db_settings, RolloutOptions(SLOW, f"{victim};{other}"))
    sleeping = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.kind == "task" and p.task and p.task.startswith("Take a while"):
            sleeping.set()

    def stop_victim() -> None:
        # Once the play has reached the victim (its start marker is written), stop it.
        sleeping.wait(300)
        wait_for(lambda: stamp(lab, victim, "slow-started") == victim, 300, "the start marker")
        service.stop_host(lab.settings, victim)

    stopper = threading.Thread(target=stop_victim)
    stopper.start()
    try:
        result = run_rollout(db_settings, plan, on_progress=on_progress)
    finally:
        stopper.join()
    try:
        assert result.results[victim].outcome == "unreachable"
        assert result.results[victim].failed == 0
        assert result.results[other].outcome in ("ok", "changed")
        assert result.status == "failed"
        service.start_host(lab.settings, victim)
        retry = run_rollout(db_settings, plan_retry(db_settings, result.run_id, ["unreachable"]))
        assert retry.run.parent_id == result.run_id
        assert list(retry.results) == [victim]
        assert retry.results[victim].outcome == "changed"
        assert retry.status == "succeeded"
        assert stamp(lab, victim, "slow") == victim
    finally:
        if not any(h.name == victim and h.state == "up" for h in service.status(lab.settings)):
            service.start_host(lab.settings, victim)


@pytest.mark.usefixtures("clean")
def test_two_rollouts_never_share_a_host(lab: Lab, db_settings: Settings) -> None:
    plan = plan_rollout(db_settings, RolloutOptions(SLOW, "dhk-kal-fs01"))
    started = threading.Event()
    first: list[object] = []

    def run_first() -> None:
        first.append(
            run_rollout(db_settings, plan, on_progress=lambda p: p.kind == "task" and started.set())
        )

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert started.wait(60)
        # A second process holds no lock of the first: it is refused, naming the holder.
        second = run_provision(
            db_settings, "rollout", CHANGE, "district:gazipur", "--yes", timeout=120
        )
        assert second.returncode == 3, second.stderr
        assert "dhk-kal-fs01" in second.stderr and "run 1" in second.stderr
    finally:
        thread.join()
    assert stamp(lab, "dhk-kal-fs01") is None  # the second rollout changed nothing there
    with open_store(db_settings) as store:
        # The refused rollout left no run behind; the first one finished.
        assert [r.id for r in store.list_runs()] == [1]


def _run_processes(artifacts: str) -> list[int]:
    """The live processes of the run whose private data dir is `artifacts`.

    Found apart from provision's own code: ansible-playbook and its workers name
    the dir on their command line (their inventory lies in it), and whatever
    they started shares a session with one of them.
    """
    sessions: dict[int, tuple[int, bool]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] not in ("Z", "X"):
            sessions[int(entry.name)] = (int(fields[3]), artifacts.encode() in cmdline)
    leaders = {pid for pid, (sid, named) in sessions.items() if named and sid == pid}
    return sorted(pid for pid, (sid, named) in sessions.items() if named or sid in leaders)


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _release(lab: Lab) -> None:
    """Let the blocking task end on every host (a module the run left there)."""
    for host in lab.hosts:
        lab.ssh(host.name, f"mkdir -p {STAMPS} && touch {STAMPS}/release")


class _Output:
    """A process's merged output, read on a thread so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._stream = proc.stdout
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, text: str, timeout: float) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: text in "".join(self._lines), timeout):
                raise AssertionError(f"timed out waiting for {text!r} in: {''.join(self._lines)}")


@pytest.mark.usefixtures("clean")
def test_a_rollout_taking_over_a_killed_runs_hosts_first_stops_its_processes(
    lab: Lab, db_settings: Settings
) -> None:
    hosts = [h.name for h in lab.hosts]
    env = cli_env(db_settings)
    dead = subprocess.Popen(
        [sys.executable, "-m", "provision", "rollout", BLOCK, "all", "--yes"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = Store.open(db_settings.database_url)
    artifacts = ""
    try:
        wait_for(lambda: all(stamp(lab, h, "started") for h in hosts), 300, "the start markers")
        (wave,) = store.waves(1)
        assert wave.status == "running" and wave.artifacts
        artifacts = wave.artifacts
        wait_for(lambda: len(_run_processes(artifacts)) > len(hosts), 120, "a worker on every host")
        os.kill(dead.pid, signal.SIGKILL)  # the control node's provision dies mid-wave
        dead.wait(timeout=30)
        assert _run_processes(artifacts)  # ansible-playbook and its workers live on

        # At once, a new rollout on the same hosts: run 1's locks are stale.
        taking = run_provision(db_settings, "rollout", CHANGE, "all", "--yes", timeout=600)
        assert taking.returncode == 0, taking.stdout + taking.stderr
        # It stopped what run 1 left running before its own play started.
        assert _run_processes(artifacts) == []
        note = "processes left running by run 1"
        assert note in taking.stderr
        assert taking.stderr.index(note) < taking.stderr.index("run 2 started")
        assert store.get_run(2).status == "succeeded"
        assert all(stamp(lab, h) == h for h in hosts)
        assert store.locks() == []
    finally:
        if dead.poll() is None:
            dead.kill()
        if artifacts:
            _kill(_run_processes(artifacts))
        _release(lab)
        store.close()


@pytest.mark.usefixtures("clean")
def test_two_ctrl_c_stop_the_wave_at_once_and_leave_no_process(
    lab: Lab, db_settings: Settings
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision", "rollout", BLOCK, "all", "--batch", "2", "--yes"],
        env=cli_env(db_settings),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = _Output(proc)
    store = Store.open(db_settings.database_url)
    artifacts = ""
    try:
        wait_for(lambda: store.list_runs() and store.waves(1)[0].artifacts, 120, "wave 1 to start")
        first = store.waves(1)[0]
        assert first.status == "running" and first.artifacts
        artifacts = first.artifacts
        wait_for(
            lambda: all(stamp(lab, h, "started") for h in first.hosts), 300, "the start markers"
        )
        wait_for(
            lambda: len(_run_processes(artifacts)) > len(first.hosts),
            120,
            "a worker on every host of the wave",
        )
        proc.send_signal(signal.SIGINT)
        output.wait_for("stopping after this wave", 60)
        proc.send_signal(signal.SIGINT)
        # The task waits 15 minutes for its release: returning now is stopping at once.
        assert proc.wait(timeout=120) == ExitStatus.INTERRUPTED, output.text
        assert f"continue with: provision rollout resume {first.run_id}" in output.text
        run = store.get_run(first.run_id)
        assert run.status == "stopped" and "during a wave" in (run.stop_reason or "")
        assert [w.status for w in store.waves(run.id)] == ["stopped", "pending"]
        assert store.host_results(run.id) == {}
        assert _run_processes(artifacts) == []
        assert store.locks() == []
    finally:
        if proc.poll() is None:
            proc.kill()
        if artifacts:
            _kill(_run_processes(artifacts))
        _release(lab)
        store.close()


def _masters(root: Path) -> list[str]:
    """SSH master processes (ControlPersist) whose socket is under `root`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # A master renames itself "ssh: <socket> [mux]".
        text = " ".join(a.decode(errors="replace") for a in argv)
        if text.startswith("ssh") and str(root) in text:
            found.append(text)
    return found


@pytest.mark.usefixtures("clean")
@pytest.mark.parametrize("strategy", ["fast", "plain"])
def test_a_changed_host_key_is_seen_by_the_next_run(
    lab: Lab, db_settings: Settings, tmp_path: Path, strategy: str
) -> None:
    """A run's SSH masters are its own and close when it ends, so the next run, of this
    environment or another, connects afresh and checks the host key. Here the next
    run is of an environment whose known_hosts says the host has another key (the
    host's key changed, as far as it knows): the host must be unreachable, not
    reached over the master the first run left open for ControlPersist."""
    import shutil

    from provision.infra import crypto
    from provision.lab.inventory import KNOWN_HOSTS
    from provision.rollout.hostkey import HOST_KEY_REFUSED

    # Under either strategy (mitogen words the refusal its own way) the user reads
    # the same message.
    db_settings = replace(db_settings, strategy=strategy)

    host = "dhk-kal-lab01"
    forged = lab.settings.workspace / "inventories" / "forged"
    shutil.copytree(lab.inventory, forged)
    try:
        known = forged / KNOWN_HOSTS
        other_key = crypto.new_ed25519().public_openssh
        known.write_text(
            "".join(
                f"{line.split(' ', 1)[0]} {other_key}\n" if line.startswith(f"{host},") else line
                for line in known.read_text().splitlines(keepends=True)
            )
        )
        for path in forged.rglob("*.yml"):
            path.write_text(path.read_text().replace(str(lab.inventory), str(forged)))
        masters = db_settings.state_path / "ssh"
        # Masters of runs an earlier test killed outlive them until ControlPersist
        # ends; this test's runs must leave none of their own.
        earlier = set(masters.rglob("*")) if masters.is_dir() else set()
        earlier_processes = set(_masters(masters))
        plan = plan_rollout(db_settings, RolloutOptions(CHANGE, host))
        first = run_rollout(db_settings, plan)
        assert first.results[host].outcome == "changed", first.results
        other = replace(db_settings, env="forged")
        second = run_rollout(other, plan_rollout(other, RolloutOptions(CHANGE, host)))
        result = second.results[host]
        assert result.outcome == "unreachable", result
        assert result.message == HOST_KEY_REFUSED, result
        # The masters lived in the workspace's state directory and are gone.
        assert masters.is_dir()
        assert [p for p in masters.rglob("*") if p.is_socket() and p not in earlier] == []
        assert [m for m in _masters(masters) if m not in earlier_processes] == []
    finally:
        shutil.rmtree(forged)
