"""Rollouts and audits in shards on a real lab: two execution nodes and the control node.

The lab of `tests/helpers/nodes_lab.py`: node gazipur (on dhk-gaz-fs01) runs
dhk-gaz-portal01, node kaliganj (on dhk-kal-fs01) runs dhk-kal-lab01, the
control node runs every other host. A rollout over all of them records every
host once, with the node that ran it; the events per host are those of the same
rollout run locally (`--local`); no job folder is left on the nodes after. An
audit over all of them records every host's result once, with the node that
ran it, and its scores are those of the same audit run locally.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.infra import crypto, strategy, streaming
from provision.infra.masking import MASK
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.infra.store.compliance_tables import compliance_hosts
from provision.lab import service as lab_service
from provision.nodes import layout
from tests.helpers.lab import lab_unavailable_reason
from tests.helpers.nodes_lab import (
    GATED,
    NodesLab,
    close_gates,
    events_per_host,
    install_gated_playbook,
    jobs_left,
    kill_follows_until_exit,
    latest_run,
    nodes_lab,
    open_gates,
    task_rows_of,
    workspace_playbook,
)
from tests.helpers.rollout_lab import cli_env, run_provision, wait_for
from tests.helpers.secret_search import assert_in_no_file, files_under
from tests.helpers.workspace import REPO

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(2400)]

RAN_ON = {"dhk-gaz-portal01": "gazipur", "dhk-kal-lab01": "kaliganj"}
NODE_HOSTS = ("dhk-gaz-fs01", "dhk-kal-fs01")
NODE_OF = {"gazipur": "dhk-gaz-fs01", "kaliganj": "dhk-kal-fs01"}
GAZIPUR_SITE = "dhk-gaz-portal01"
KALIGANJ_SITE = "dhk-kal-lab01"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodesLab]:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with nodes_lab(tmp_path_factory.mktemp("shards")) as booted:
        yield booted


def run(lab: NodesLab, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["--workspace", str(lab.settings.workspace), *args],
        env={
            "PROVISION_LAB_SUBNET": lab.settings.lab_subnet,
            "PROVISION_STATE_DIR": str(lab.settings.state_dir),
        },
        catch_exceptions=False,
    )


def _hosts(lab: NodesLab) -> list[str]:
    return [h.name for h in lab.hosts]


def test_a_rollout_over_two_nodes_and_the_control_node_records_each_host_once(
    lab: NodesLab,
) -> None:
    sharded = run(lab, "rollout", "run", "ping.yml", "--yes")
    assert sharded.exit_code == 0, sharded.output
    sharded_id = latest_run(lab.settings)
    with open_store(lab.settings) as store:
        results = store.host_results(sharded_id)
        planned = [h for w in store.waves(sharded_id) for h in w.hosts]
    assert sorted(results) == sorted(planned)
    for host, result in results.items():
        assert result.outcome == "ok", (host, result)
        assert result.node == RAN_ON.get(host), host
    shown = run(lab, "runs", "show", str(sharded_id))
    assert "node gazipur" in shown.output and "node kaliganj" in shown.output
    assert "control node" in shown.output

    local = run(lab, "rollout", "run", "ping.yml", "--yes", "--local")
    assert local.exit_code == 0, local.output
    local_id = latest_run(lab.settings)
    with open_store(lab.settings) as store:
        assert all(r.node is None for r in store.host_results(local_id).values())
    assert events_per_host(lab.settings, sharded_id) == events_per_host(lab.settings, local_id)


def _audit(lab: NodesLab, *args: str) -> tuple[Result, dict[str, Any]]:
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", lab.settings.workspace / "standards")
    done = run(lab, "compliance", "run", "--json", *args)
    return done, json.loads(done.stdout)


#: What a roll-up says that does not depend on when its evidence was collected.
TIMELESS = ("oldest_evidence_seconds", "median_evidence_seconds")


def _rollups(lab: NodesLab, run_id: int) -> dict[str, list[dict[str, Any]]]:
    with open_store(lab.settings) as store:
        found = ComplianceRecords(store).rollups(run_id)
    return {
        level: [{k: v for k, v in r.as_dict().items() if k not in TIMELESS} for r in places]
        for level, places in found.levels.items()
    }


def _verdicts(lab: NodesLab, run_id: int) -> dict[str, list[tuple[str, str]]]:
    """Host -> (control, status) of every control of the run's host reports."""
    with open_store(lab.settings) as store:
        reports = ComplianceRecords(store).host_reports(run_id)
    return {r.host: [(c.control, c.status) for c in r.results] for r in reports}


def test_an_audit_over_two_nodes_and_the_control_node_scores_as_a_local_one(
    lab: NodesLab,
) -> None:
    sharded, found = _audit(lab)
    run_id = found["run"]["id"]
    hosts = {h["host"]: h for h in found["hosts"]}
    assert sorted(hosts) == sorted(_hosts(lab)), sharded.output
    for host, row in hosts.items():
        assert row["status"] == "reported", row
        assert row["node"] == RAN_ON.get(host), host
        assert row["score"] is not None and sum(row["counts"].values()) > 0, row
    with open_store(lab.settings) as store, store.engine.connect() as conn:
        table = compliance_hosts
        stored = conn.execute(
            sa.select(table.c.host, table.c.node, sa.func.count())
            .where(table.c.run_id == run_id)
            .group_by(table.c.host, table.c.node)
            .order_by(table.c.host)
        ).all()
    assert [tuple(r) for r in stored] == [(h, RAN_ON.get(h), 1) for h in sorted(hosts)]
    shown = run(lab, "compliance", "show", str(run_id))
    assert "node gazipur" in shown.output and "node kaliganj" in shown.output
    assert "control node" in shown.output
    written = run(lab, "compliance", "report", str(run_id), "--format", "json", "--out", "-")
    assert written.exit_code == 0, written.output
    reported = {h["host"]: h["node"] for h in json.loads(written.stdout)["hosts"]}
    assert reported == {h: RAN_ON.get(h) for h in hosts}  # the report names the node too

    local, here = _audit(lab, "--local")
    assert local.exit_code == sharded.exit_code, local.output
    assert all(h["node"] is None for h in here["hosts"])
    key = ("status", "score", "compliant", "counts", "critical_failures", "place", "role")
    assert {h["host"]: [h[k] for k in key] for h in here["hosts"]} == {
        h: [row[k] for k in key] for h, row in hosts.items()
    }
    assert _verdicts(lab, here["run"]["id"]) == _verdicts(lab, run_id)
    assert _rollups(lab, here["run"]["id"]) == _rollups(lab, run_id)
    assert _rollups(lab, run_id)["all"][0]["reported"] == len(hosts)
    for host in NODE_HOSTS:
        assert jobs_left(lab, host) == [], host


def test_an_audit_with_a_node_cut_off_leaves_its_hosts_not_run_and_says_why(
    lab: NodesLab,
) -> None:
    """`lab cut` takes node kaliganj's field server off the network: an audit of the
    two nodes' sites still runs gazipur's, and records kaliganj's as not run, with the
    node as the reason (unreachable: never a pass, never a fail). With the link back,
    the next audit reaches it through its node again."""
    sites = f"{GAZIPUR_SITE};{KALIGANJ_SITE}"
    cut = run(lab, "lab", "cut", NODE_OF["kaliganj"])
    assert cut.exit_code == 0, cut.output
    try:
        done, found = _audit(lab, sites)
    finally:
        restored = run(lab, "lab", "restore", NODE_OF["kaliganj"])
        assert restored.exit_code == 0, restored.output
    hosts = {h["host"]: h for h in found["hosts"]}
    # Hosts not run (5), unless the host reached falls short of the standard (6, first).
    assert done.exit_code == (5 if hosts[GAZIPUR_SITE]["compliant"] else 6), done.output
    assert sorted(hosts) == sorted([GAZIPUR_SITE, KALIGANJ_SITE])
    assert hosts[GAZIPUR_SITE]["status"] == "reported"
    assert hosts[GAZIPUR_SITE]["node"] == "gazipur"
    missed = hosts[KALIGANJ_SITE]
    assert missed["status"] == "unreachable" and missed["score"] is None, missed
    assert missed["message"].startswith("not run: node kaliganj: cannot be reached"), missed
    with open_store(lab.settings) as store:
        stored = ComplianceRecords(store).host_reports(found["run"]["id"])
    assert {r.host: r.status for r in stored} == {h: row["status"] for h, row in hosts.items()}

    back, again = _audit(lab, sites)
    assert back.exit_code in (0, 6), back.output  # reached: its score decides the rest
    ran_on = {h["host"]: (h["status"], h["node"]) for h in again["hosts"]}
    assert ran_on == {
        GAZIPUR_SITE: ("reported", "gazipur"),
        KALIGANJ_SITE: ("reported", "kaliganj"),
    }


def test_no_job_is_left_on_the_nodes(lab: NodesLab) -> None:
    for host in NODE_HOSTS:
        left = lab.ssh(host, f"find {layout.WORK_DIR} -mindepth 1 -maxdepth 1 | wc -l")
        assert left.strip() == "0", host


#: Where the probe playbook writes the command line of the process that ran its task.
PROBE_FILE = "/tmp/provision-strategy-probe"
PROBE = f"""---
- name: Write down what runs this host's tasks
  hosts: all
  gather_facts: false
  tasks:
    - name: The command line of the shell's parent (mitogen names its own processes)
      ansible.builtin.shell: tr '\\0' ' ' < /proc/$PPID/cmdline > {PROBE_FILE}
      changed_when: true
"""


def _probe(lab: NodesLab, *args: str) -> dict[str, str]:
    workspace_playbook(lab, "strategy-probe.yml").write_text(PROBE, encoding="utf-8")
    done = run(lab, "rollout", "run", "strategy-probe.yml", "--yes", *args)
    assert done.exit_code == 0, done.output
    return {host: lab.ssh(host, f"cat {PROBE_FILE}") for host in (GAZIPUR_SITE, KALIGANJ_SITE)}


def test_a_node_with_the_control_nodes_mitogen_runs_its_shards_through_it(lab: NodesLab) -> None:
    ours = strategy.installed("mitogen")
    assert ours, "the test environment installs mitogen (pyproject's dependencies)"
    checked = run(lab, "nodes", "check", "--json", "--sample", "0")
    assert checked.exit_code == 0, checked.output
    found = {n["name"]: (n["mitogen"], n["fast"]) for n in json.loads(checked.stdout)["nodes"]}
    assert found == {"gazipur": (ours, True), "kaliganj": (ours, True)}

    fast = _probe(lab)
    assert all("mitogen" in line for line in fast.values()), fast
    plain = _probe(lab, "--strategy", "plain")
    assert not any("mitogen" in line for line in plain.values()), plain


def _start_gated_run(
    lab: NodesLab, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int]:
    """`provision rollout run ARGS` (the gated playbook by default) in a process of
    its own, and its run id once recorded."""
    before = latest_run(lab.settings)
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision", "rollout", "run", *(args or (GATED,)), "--yes"],
        env=env or cli_env(lab.settings),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(
        lambda: latest_run(lab.settings) > before or proc.poll() is not None,
        300,
        "the run to be recorded",
    )
    if latest_run(lab.settings) == before:
        raise AssertionError(f"the run was refused: {proc.communicate()[0]}")
    return proc, latest_run(lab.settings)


def _resume(lab: NodesLab, run_id: int) -> subprocess.CompletedProcess[str]:
    return run_provision(lab.settings, "rollout", "resume", str(run_id), timeout=900)


def _local_events(lab: NodesLab) -> dict[str, int]:
    """Task rows per host of the gated playbook run from the control node, gates open."""
    open_gates(lab, _hosts(lab))
    local = run_provision(lab.settings, "rollout", "run", GATED, "--yes", "--local", timeout=900)
    assert local.returncode == 0, local.stdout + local.stderr
    return events_per_host(lab.settings, latest_run(lab.settings))


def test_a_cut_link_then_resume_records_every_host_once_and_every_event(lab: NodesLab) -> None:
    """Every follow of node gazipur's worker is killed mid-shard (the ssh client on the
    control node), so the run ends with its host not run while the worker goes on;
    `rollout resume` re-attaches, replays what the store lacks, and the events per
    host equal those of a local run."""
    install_gated_playbook(lab)
    close_gates(lab, _hosts(lab))
    open_gates(lab, [h for h in _hosts(lab) if h != GAZIPUR_SITE])
    proc, run_id = _start_gated_run(lab)
    wait_for(
        lambda: task_rows_of(lab.settings, run_id, GAZIPUR_SITE) > 0,
        600,
        f"a task result of {GAZIPUR_SITE} from node gazipur",
    )
    killed = kill_follows_until_exit(proc, lab.address(NODE_OF["gazipur"]))
    output = proc.stdout.read() if proc.stdout else ""
    assert killed > 0, output
    with open_store(lab.settings) as store:
        cut = store.get_run(run_id)
        results = store.host_results(run_id)
    assert cut.status == "stopped", output
    assert "node gazipur" in (cut.stop_reason or ""), cut.stop_reason
    assert GAZIPUR_SITE not in results  # not run: neither failed nor passed
    assert results["dhk-kal-lab01"].node == "kaliganj"
    before = task_rows_of(lab.settings, run_id, GAZIPUR_SITE)
    assert _marks(lab, run_id)["gazipur"]  # kept for the resume's replay

    # The worker went on without the link; let it finish on the node, then resume.
    open_gates(lab, [GAZIPUR_SITE])
    resumed = _resume(lab, run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with open_store(lab.settings) as store:
        done = store.get_run(run_id)
        results = store.host_results(run_id)
        planned = [h for w in store.waves(run_id) for h in w.hosts]
    assert done.status == "succeeded", done.stop_reason
    assert sorted(results) == sorted(planned)
    assert results[GAZIPUR_SITE].node == "gazipur"
    assert task_rows_of(lab.settings, run_id, GAZIPUR_SITE) > before  # the replay came home
    assert events_per_host(lab.settings, run_id) == _local_events(lab)
    assert _marks(lab, run_id) == {"gazipur": 0, "kaliganj": 0}  # every wave done: dropped
    for host in NODE_HOSTS:
        assert jobs_left(lab, host) == [], host


def _marks(lab: NodesLab, run_id: int) -> dict[str, int]:
    """Per node, how many of its events the store marks as recorded, over the run's waves."""
    with open_store(lab.settings) as store:
        waves = [w.number for w in store.waves(run_id)]
        return {
            node: sum(len(store.shard_events(run_id, w, node)) for w in waves)
            for node in ("gazipur", "kaliganj")
        }


def test_a_node_stopped_mid_shard_leaves_its_hosts_not_run_until_it_is_back(
    lab: NodesLab,
) -> None:
    """Node kaliganj's field server is powered off mid-shard: the run ends with its
    host not run; `resume` while the node is down keeps it so, with the reason, and
    once the node is back it reruns only that shard's host."""
    install_gated_playbook(lab)
    close_gates(lab, [KALIGANJ_SITE])
    open_gates(lab, [GAZIPUR_SITE])
    # Only the nodes' sites: the field server stopped is a host of no run here.
    proc, run_id = _start_gated_run(lab, GATED, f"{GAZIPUR_SITE};{KALIGANJ_SITE}")
    wait_for(
        lambda: task_rows_of(lab.settings, run_id, KALIGANJ_SITE) > 0,
        600,
        f"a task result of {KALIGANJ_SITE} from node kaliganj",
    )
    lab_service.stop_host(lab.settings, NODE_OF["kaliganj"])
    try:
        output, _ = proc.communicate(timeout=900)
        with open_store(lab.settings) as store:
            stopped = store.get_run(run_id)
            results = store.host_results(run_id)
        assert stopped.status == "stopped", output
        assert proc.returncode == 5, output  # hosts not run: never a success
        assert "node kaliganj" in (stopped.stop_reason or ""), stopped.stop_reason
        assert KALIGANJ_SITE not in results and results[GAZIPUR_SITE].node == "gazipur"

        # Still down: the resume goes on without it, and its host stays not run.
        rows = events_per_host(lab.settings, run_id)
        down = _resume(lab, run_id)
        with open_store(lab.settings) as store:
            again = store.get_run(run_id)
            assert KALIGANJ_SITE not in store.host_results(run_id), down.stdout
        assert again.status == "stopped"
        assert down.returncode == 5, down.stdout + down.stderr
        assert "node kaliganj: cannot be reached" in (again.stop_reason or ""), again.stop_reason
        assert "node kaliganj: cannot be reached" in " ".join(down.stdout.split())
        assert events_per_host(lab.settings, run_id) == rows  # nothing ran anywhere
    finally:
        lab_service.start_host(lab.settings, NODE_OF["kaliganj"])

    # Back: the shard runs again, for its host without a result only.
    open_gates(lab, [KALIGANJ_SITE])
    back = _resume(lab, run_id)
    assert back.returncode == 0, back.stdout + back.stderr
    with open_store(lab.settings) as store:
        done = store.get_run(run_id)
        results = store.host_results(run_id)
        last = max(r.attempt for r in store.task_rows(run_id))
        rerun = {r.host for r in store.task_rows(run_id) if r.attempt == last}
    assert done.status == "succeeded", done.stop_reason
    assert results[KALIGANJ_SITE].node == "kaliganj"
    assert results[KALIGANJ_SITE].attempt == last
    assert rerun == {KALIGANJ_SITE}
    for host in NODE_HOSTS:  # the dead job's folder too (its secret, its stream)
        assert jobs_left(lab, host) == [], host


CANARY = "canary-node-6b1e93f0d27a4c85"
PASSWORD = "vault-pass-node-41c8e2a7"
CANARY_PLAYBOOK = """\
---
- name: Use a vaulted variable on a node's site
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the secret where only root can read it
      ansible.builtin.copy:
        content: "{{ provision_test_canary }}"
        dest: /root/provision-canary
        mode: "0600"
      no_log: true

    - name: Say the secret (its event carries it to the control node, masked there)
      ansible.builtin.debug:
        msg: "the canary is {{ provision_test_canary }}"

    - name: Wait for the release file
      ansible.builtin.wait_for:
        path: /var/tmp/provision-rollout/release
        timeout: 900
"""
#: Where a node could keep a file of a job: its work dirs, the worker account's
#: home, temporary folders and tmpfs (not in the overlay the lab keeps per host).
NODE_PLACES = f"{layout.WORK_DIR.parent} /tmp /var/tmp /run /dev/shm /root /home"


def _secrets_on(lab: NodesLab, node: str) -> list[str]:
    """What jobs keep on a node's tmpfs: secrets, masked values, events folders."""
    found = lab.ssh(node, f"ls {streaming.SECRET_DIR}/ | grep '^provision-node-' || true")
    return found.split()


def _plant_stale_secret(lab: NodesLab, node: str, job: str) -> None:
    """A secret whose job is gone, as a job killed with the control node would leave."""
    path = streaming.secret_file(layout.WORK_DIR / job)
    lab.ssh(node, f"runuser -u {layout.USER} -- sh -c 'umask 077; echo stale > {path}'")


def test_a_killed_worker_leaves_no_secret_on_its_node(lab: NodesLab, tmp_path: Path) -> None:
    """Node gazipur's job (its shell and worker) is killed mid-shard: the run stops
    with the site not run, and the job's vault password is gone from the node's
    tmpfs as soon as the control node finds the worker dead. A secret whose job is
    gone and that nobody came back for (the control node died too) is removed by
    the next `resume` (or job) on the node, and by the node's cleanup timer."""
    node = NODE_OF["gazipur"]
    client = tmp_path / "vault-client"
    client.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    client.chmod(0o700)
    install_gated_playbook(lab)
    close_gates(lab, [GAZIPUR_SITE])
    env = {**cli_env(lab.settings), "PROVISION_VAULT_PASSWORD_FILE": str(client)}
    proc, run_id = _start_gated_run(lab, GATED, GAZIPUR_SITE, env=env)
    try:
        wait_for(
            lambda: task_rows_of(lab.settings, run_id, GAZIPUR_SITE) > 0,
            600,
            f"a task result of {GAZIPUR_SITE} from node gazipur",
        )
        [folder] = jobs_left(lab, node)
        job = Path(folder).name
        assert _secrets_on(lab, node) == [
            streaming.events_dir(layout.WORK_DIR / job).name,
            streaming.secret_file(layout.WORK_DIR / job).name,
        ]
        # The job's shell leads its own process group: the worker goes with it.
        lab.ssh(node, f"kill -KILL -- -$(cat {folder}/pid)")
        output, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    with open_store(lab.settings) as store:
        stopped = store.get_run(run_id)
        assert GAZIPUR_SITE not in store.host_results(run_id), output
    assert stopped.status == "stopped", output
    assert "the worker on node gazipur died" in (stopped.stop_reason or ""), stopped.stop_reason
    assert _secrets_on(lab, node) == [], output

    # Left by a job that is gone: the resume reruns the shard and removes it.
    _plant_stale_secret(lab, node, "0" * 32)
    open_gates(lab, [GAZIPUR_SITE])
    resumed = _resume(lab, run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with open_store(lab.settings) as store:
        assert store.host_results(run_id)[GAZIPUR_SITE].node == "gazipur"
    assert _secrets_on(lab, node) == []
    assert jobs_left(lab, node) == []

    # And the node's cleanup timer's service, between runs.
    _plant_stale_secret(lab, node, "1" * 32)
    lab.ssh(node, "systemctl start provision-node-cleanup.service")
    assert _secrets_on(lab, node) == []
    found = lab.ssh(node, f"grep -rlaF -D skip {PASSWORD} {NODE_PLACES} 2>/dev/null || true")
    assert found.strip() == ""


def test_a_vaulted_canary_through_a_node_is_in_no_file_left_on_the_node_or_at_home(
    lab: NodesLab, tmp_path: Path
) -> None:
    """The canary, vaulted in the inventory, reaches node gazipur's site through a
    shard. While the job runs its folder is the worker account's alone (0700, its
    output 0600, the vault password 0600 on the node's tmpfs) and holds no canary
    (the output masked on the node, the one task that says it too); after it, neither
    the canary nor the vault password is in any file of the node (its whole disk,
    its tmpfs, its work and home folders) nor under the control node's workspace
    and state directory (the store, artifacts)."""
    sealed = crypto.vault_encrypt(CANARY.encode(), PASSWORD).decode()
    host_vars = lab.inventory / "host_vars" / GAZIPUR_SITE
    host_vars.mkdir(parents=True, exist_ok=True)
    canary_vars = host_vars / "canary.yml"
    canary_vars.write_text(
        "---\nprovision_test_canary: !vault |\n"
        + "".join(f"  {line}\n" for line in sealed.splitlines())
    )
    client = tmp_path / "vault-client"
    client.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    client.chmod(0o700)
    workspace_playbook(lab, "nodes_canary.yml").write_text(CANARY_PLAYBOOK)
    close_gates(lab, [GAZIPUR_SITE])
    env = {**cli_env(lab.settings), "PROVISION_VAULT_PASSWORD_FILE": str(client)}
    proc, run_id = _start_gated_run(lab, "nodes_canary.yml", GAZIPUR_SITE, env=env)
    try:
        wait_for(
            lambda: task_rows_of(lab.settings, run_id, GAZIPUR_SITE) >= 2,
            600,
            "the canary's task results from node gazipur",
        )
        modes = lab.ssh(
            NODE_OF["gazipur"],
            f"cd {layout.WORK_DIR} && stat -c '%a %U %n' */ */out"
            f" {streaming.SECRET_DIR}/provision-node-*.secret",
        ).split("\n")
        assert [line.split()[:2] for line in modes if line] == [
            [m, layout.USER]
            for m in (
                "700",
                "600",
                "600",
            )
        ], modes
        # The canary's events went through the job's output filter: masked in `out`,
        # in no file of the job's folder, and the values it masks are off the tmpfs.
        node = NODE_OF["gazipur"]
        assert lab.ssh(node, f"grep -rlaF {CANARY} {layout.WORK_DIR} || true").strip() == ""
        assert lab.ssh(node, f"grep -lF '{MASK}' {layout.WORK_DIR}/*/out").strip()
        masks = lab.ssh(node, f"ls {streaming.SECRET_DIR} | grep '^provision-node-.*mask' || true")
        assert masks.strip() == ""
        # The stream, with the extravars in clear, has no name left while the job lives.
        left = lab.ssh(node, f"ls {layout.WORK_DIR}/*/job.in 2>/dev/null || true")
        assert left.strip() == "", left
        # Ansible drops its unmasked events on the tmpfs, never on the node's disk.
        drop = lab.ssh(node, f"readlink {layout.WORK_DIR}/*/pdd/artifacts/shard/job_events")
        assert drop.strip().startswith(f"{streaming.SECRET_DIR}/provision-node-"), drop
        assert drop.strip().endswith(".events"), drop
        open_gates(lab, [GAZIPUR_SITE])
        output, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, output
        assert CANARY not in output and PASSWORD not in output
        assert lab.ssh(GAZIPUR_SITE, "cat /root/provision-canary") == CANARY
        with open_store(lab.settings) as store:
            assert store.host_results(run_id)[GAZIPUR_SITE].node == "gazipur"

        for node in NODE_HOSTS:
            assert jobs_left(lab, node) == [], node
            for secret in (CANARY, PASSWORD):
                found = lab.ssh(
                    node, f"grep -rlaF -D skip {secret} {NODE_PLACES} 2>/dev/null || true"
                )
                assert found.strip() == "", (node, found)
        disks = lab.settings.state_path / "lab" / "hosts"
        node_disks = [disks / node / "upper" for node in NODE_HOSTS]
        home = files_under(lab.settings.workspace, lab.settings.state_path, skip=disks)
        assert any(p.name.startswith("state.db") for p in home)  # the store is searched
        assert_in_no_file(node_disks, CANARY, PASSWORD)
        assert_in_no_file(
            [lab.settings.workspace, lab.settings.state_path], CANARY, PASSWORD, skip=disks
        )
    finally:
        if proc.poll() is None:
            open_gates(lab, [GAZIPUR_SITE])
            proc.communicate(timeout=900)
        canary_vars.unlink()
        lab.ssh(GAZIPUR_SITE, "rm -f /root/provision-canary")
