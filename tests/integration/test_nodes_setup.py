"""Execution nodes on the lab: two field servers set up with the role, checked over SSH.

Both nodes are set up by `lab up --nodes` (the role, as a recorded rollout each);
the test checks the result on the hosts themselves: the worker's account, venv
and timer, the node's key usable from the node (and from nowhere else), then
`nodes check`, a second setup that changes nothing, a check-mode setup, and a
node whose ansible-core was replaced by another version, refused with both
versions named until setup puts the control node's back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.errors import ExitStatus
from provision.nodes import layout, registry
from provision.nodes.check import (
    NodeNotReadyError,
    VersionSkewError,
    control_versions,
    ensure_nodes_ready,
)
from provision.nodes.setup import setup_node
from provision.rollout import run_rollout
from tests.helpers.lab import lab_unavailable_reason
from tests.helpers.nodes_lab import NodesLab, nodes_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(2400)]

NODES = {"gazipur": "dhk-gaz-fs01", "kaliganj": "dhk-kal-fs01"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodesLab]:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with nodes_lab(tmp_path_factory.mktemp("nodes")) as booted:
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


def test_both_nodes_were_set_up_by_recorded_runs(lab: NodesLab) -> None:
    assert lab.nodes is not None
    for name, result in lab.nodes.setups.items():
        assert result.exit_status == ExitStatus.SUCCESS, (name, result.results)
        assert NODES[name] in result.results
    assert [n.name for n in registry.load_nodes(registry.nodes_path(lab.settings)).nodes] == list(
        NODES
    )


def test_the_worker_is_installed_on_each_node(lab: NodesLab) -> None:
    versions = control_versions()
    for host in NODES.values():
        assert lab.ssh(host, f"id -u {layout.USER}").strip().isdigit()
        assert lab.ssh(host, f"{layout.RUNNER} --version").strip() == versions["ansible-runner"]
        core = lab.ssh(host, f"{layout.VENV}/bin/ansible --version").splitlines()[0]
        assert f"[core {versions['ansible-core']}]" in core
        assert lab.ssh(host, f"stat -c '%U %a' {layout.KEY}").split() == [layout.USER, "600"]
        assert lab.ssh(host, f"stat -c '%U' {layout.WORK_DIR}").strip() == layout.USER
        assert lab.ssh(host, "systemctl is-enabled provision-node-cleanup.timer").strip() == (
            "enabled"
        )
        # The cleanup the timer starts runs, as the worker's account.
        lab.ssh(host, "systemctl start provision-node-cleanup.service")
        assert "inactive" in lab.ssh(
            host, "systemctl is-active provision-node-cleanup.service || true"
        )
        assert "Result=success" in lab.ssh(
            host, "systemctl show -p Result provision-node-cleanup.service"
        )


def test_a_node_key_works_from_its_node_only(lab: NodesLab) -> None:
    site = lab.address("dhk-kal-lab01")
    authorized = lab.ssh("dhk-kal-lab01", "cat /root/.ssh/authorized_keys")
    for name, host in NODES.items():
        line = next(x for x in authorized.splitlines() if x.endswith(f"provision-node@{name}"))
        assert line.startswith(f'from="{lab.address(host)}",no-agent-forwarding')
    # From the node, as its account, with its key: in.
    command = (
        f"runuser -u {layout.USER} -- ssh -n -o BatchMode=yes -i {layout.KEY} "
        f"-o UserKnownHostsFile={layout.KNOWN_HOSTS} -o StrictHostKeyChecking=yes "
        f"root@{site} hostname"
    )
    assert lab.ssh("dhk-kal-fs01", command).strip() == "dhk-kal-lab01"
    # The same key from the control node: refused (from= names the node's address).
    key = layout.node_key(lab.settings.state_path, "kaliganj")
    refused = subprocess.run(
        [
            "ssh",
            "-n",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            str(key),
            "-o",
            f"UserKnownHostsFile={lab.inventory / '.ssh' / 'known_hosts'}",
            "-o",
            "StrictHostKeyChecking=yes",
            f"root@{site}",
            "hostname",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 255 and "Permission denied" in refused.stderr


def test_nodes_check_reports_versions_and_reachability(lab: NodesLab) -> None:
    done = run(lab, "nodes", "check", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["control"] == control_versions()
    by_name = {n["name"]: n for n in report["nodes"]}
    assert set(by_name) == set(NODES)
    for node in by_name.values():
        assert node["worker"] and node["skew"] == []
        assert node["ansible_core"] == control_versions()["ansible-core"]
        assert node["worker_info"]["runner_version"] == control_versions()["ansible-runner"]
        assert node["cpu_cores"] >= 1 and node["memory_mb"] > 0 and node["disk_free_mb"] > 0
        assert node["sites"] and all(s["ok"] for s in node["sites"])
    assert {s["host"] for s in by_name["kaliganj"]["sites"]} == {"dhk-kal-lab01"}
    assert {s["host"] for s in by_name["gazipur"]["sites"]} == {
        "dhk-kal-lab01",
        "dhk-gaz-portal01",
    }


def test_a_second_setup_changes_nothing(lab: NodesLab) -> None:
    _plan, result = setup_node(
        lab.settings, "kaliganj", run=lambda plan: run_rollout(lab.settings, plan)
    )
    assert result.exit_status == ExitStatus.SUCCESS
    assert {h: r.outcome for h, r in result.results.items()} == {
        "dhk-kal-fs01": "ok",
        "dhk-kal-lab01": "ok",
    }
    checked = run(lab, "nodes", "setup", "gazipur", "--check", "--yes", "--json")
    assert checked.exit_code == 0, checked.output
    hosts = json.loads(checked.stdout)["hosts"]
    assert {h["host"]: h["outcome"] for h in hosts} == {
        "dhk-gaz-fs01": "ok",
        "dhk-gaz-portal01": "ok",
        "dhk-kal-lab01": "ok",
    }


def _other_ansible_core(folder: Path) -> Path:
    """A wheel of the ansible-core release line before the control node's."""
    major, minor = control_versions()["ansible-core"].split(".")[:2]
    wanted = f"ansible-core=={major}.{int(minor) - 1}.*"
    pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "--no-deps", "--only-binary=:all:", "--dest", str(folder), wanted],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot download {wanted} for the skew test: {done.stderr.strip()[-200:]}")
    return next(folder.glob("ansible_core-*.whl"))


def test_a_node_with_another_ansible_core_is_refused_naming_both(
    lab: NodesLab, tmp_path: Path
) -> None:
    wheel = _other_ansible_core(tmp_path)
    other = wheel.name.split("-")[1]
    lab.push("dhk-kal-fs01", wheel, f"/tmp/{wheel.name}")
    lab.ssh(
        "dhk-kal-fs01",
        f"{layout.VENV}/bin/python3 -m pip install --quiet --no-index --no-deps "
        f"--disable-pip-version-check /tmp/{wheel.name}",
    )
    mine = control_versions()["ansible-core"]
    checked = run(lab, "nodes", "check", "kaliganj")
    assert checked.exit_code == ExitStatus.BAD_INPUT
    assert f"ansible-core {other} (control node {mine})" in checked.stdout
    found, loaded = registry.checked_nodes(lab.settings)
    with pytest.raises(VersionSkewError) as refused:
        ensure_nodes_ready(lab.settings, loaded, found.nodes, found.nodes)
    assert f"'kaliganj' (dhk-kal-fs01) runs ansible-core {other} (control node {mine})" in str(
        refused.value
    )
    assert refused.value.hint and "provision nodes setup kaliganj" in refused.value.hint
    # Setup puts the control node's version back, from the wheelhouse, offline.
    _plan, result = setup_node(
        lab.settings, "kaliganj", run=lambda plan: run_rollout(lab.settings, plan)
    )
    assert result.exit_status == ExitStatus.SUCCESS
    assert result.results["dhk-kal-fs01"].outcome == "changed"
    ready = ensure_nodes_ready(lab.settings, loaded, found.nodes, found.nodes)
    assert set(ready) == set(NODES)


def test_check_mode_on_a_new_node_changes_nothing(lab: NodesLab) -> None:
    from provision.lab import service as lab_service

    lab_service.reset_host(lab.settings, "dhk-kal-fs01")  # a pristine disk
    checked = run(lab, "nodes", "setup", "kaliganj", "--check", "--yes", "--json")
    assert checked.exit_code == 0, checked.output
    outcomes = {h["host"]: h["outcome"] for h in json.loads(checked.stdout)["hosts"]}
    assert outcomes["dhk-kal-fs01"] == "changed"  # it says what it would do...
    gone = lab.ssh(
        "dhk-kal-fs01",
        f"id -u {layout.USER} >/dev/null 2>&1 || echo no-account;"
        f" test -e {layout.PREFIX} || echo no-prefix;"
        " test -e /etc/systemd/system/provision-node-cleanup.timer || echo no-timer",
    )
    assert gone.split() == ["no-account", "no-prefix", "no-timer"]  # ...and does none of it
    found, loaded = registry.checked_nodes(lab.settings)
    with pytest.raises(NodeNotReadyError, match="no worker set up"):
        ensure_nodes_ready(lab.settings, loaded, found.nodes, found.nodes)
    _plan, result = setup_node(
        lab.settings, "kaliganj", run=lambda plan: run_rollout(lab.settings, plan)
    )
    assert result.exit_status == ExitStatus.SUCCESS
    assert set(ensure_nodes_ready(lab.settings, loaded, found.nodes, found.nodes)) == set(NODES)
