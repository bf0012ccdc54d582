"""Pull mode on real lab hosts: a field server publishes signed bundles over HTTPS
(bundle_server, by a recorded rollout), a lab PC gets the pull agent once, then
fetches, verifies and applies its bundle by itself with Debian 12's ansible-core
from the lab's package cache, and uploads its result as itself only. A tampered
bundle is refused on the PC and the good one stays in force."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provision.bundles import build_bundles, init_key, key_info
from provision.bundles.archive import pack, unpack
from provision.bundles.publish import plan_publish, prepare_publish, token_of
from provision.lab import service
from provision.lab.inventory import ssh_options
from provision.portal import ca
from provision.rollout import RolloutOptions, plan_rollout, run_rollout
from tests.helpers.lab import (
    Lab,
    claim_test_subnet,
    lab_settings,
    lab_unavailable_reason,
    release_test_subnet,
)
from tests.helpers.workspace import REPO

pytestmark = [pytest.mark.lab, pytest.mark.timeout(3600)]

SERVER = "dhk-kal-fs01"
PC = "dhk-kal-lab01"
NAME = "fs01.kaliganj.lab.bd"
STATE = "/var/lib/provision-pull"


@pytest.fixture(scope="module")
def pull_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    subnet = claim_test_subnet()
    settings = lab_settings(tmp_path_factory.mktemp("pull") / "workspace", subnet)
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", settings.standards_path)
    try:
        result = service.up(settings, f"{SERVER},{PC}")
        yield Lab(settings, result.hosts)
    finally:
        service.down(settings)
        release_test_subnet(subnet)


def _rollout(lab: Lab, playbook: str, selection: str, vars_file: str | None = None) -> None:
    plan = plan_rollout(
        lab.settings, RolloutOptions(playbook=playbook, selection=selection, vars_file=vars_file)
    )
    result = run_rollout(lab.settings, plan)
    assert result.exit_status == 0, {h: r.message for h, r in result.results.items()}


def _publish(lab: Lab) -> None:
    planned = plan_publish(lab.settings)
    prepare_publish(lab.settings, planned)
    result = run_rollout(lab.settings, planned.plan)
    assert result.exit_status == 0, {h: r.message for h, r in result.results.items()}


def _run_agent(lab: Lab) -> None:
    """Start the agent's service as its timer does and wait until that run has ended.

    A full local apply on a loaded machine takes minutes, longer than one SSH
    command may: the run is started without waiting, then its end (a new exit
    time of the unit's main process, the unit no longer active) is awaited.
    """
    show = "systemctl show -p ExecMainExitTimestampMonotonic,ActiveState provision-pull.service"
    before = lab.ssh(PC, show)
    lab.ssh(PC, "systemctl start --no-block provision-pull.service")
    deadline = time.monotonic() + 2400
    while time.monotonic() < deadline:
        try:
            shown = lab.ssh(PC, show)
        except AssertionError:
            # The apply restarts sshd (ssh_hardening): refused for a moment, then back.
            time.sleep(2)
            continue
        now = dict(line.split("=", 1) for line in shown.split())
        if now["ActiveState"] in ("inactive", "failed") and shown != before:
            return
        time.sleep(2)
    raise AssertionError("the pull agent's run did not end")


def _host_vars(lab: Lab, host: str, values: dict[str, object]) -> None:
    folder = lab.inventory / "host_vars"
    folder.mkdir(exist_ok=True)
    (folder / f"{host}.yml").write_text(yaml.safe_dump(values))


def test_a_pc_in_pull_mode_applies_its_signed_bundle_by_itself(pull_lab: Lab) -> None:
    lab, settings = pull_lab, pull_lab.settings
    ca.init_ca(settings)
    init_key(settings)
    state = settings.state_path
    _host_vars(lab, SERVER, {"bundle_server_name": NAME})
    _host_vars(
        lab,
        PC,
        {
            "provision_pull_mode": True,
            "pull_agent_server": f"https://{NAME}:8443",
            "pull_agent_allowed_signers_src": str(key_info(settings).allowed_signers_path),
            "pull_agent_ca_src": str(state / "ca" / "root.crt"),
            "pull_agent_upload_token": token_of(settings, PC),
        },
    )
    lab.ssh(PC, f"echo '{lab.address(SERVER)} {NAME}' >> /etc/hosts")
    build_bundles(settings, PC)
    _publish(lab)
    _rollout(lab, "pull_agents.yml", PC)
    assert "2.14." in lab.ssh(PC, "ansible-playbook --version")  # Debian's, from the cache

    # The agent's own run, as its timer starts it: fetch, verify, apply, report.
    _run_agent(lab)
    applied = json.loads(lab.ssh(PC, f"cat {STATE}/applied.json"))
    assert applied["serial"] == 1
    uploaded = lab.ssh(SERVER, f"cat /srv/provision-bundles/outbox/{PC}/*.json")
    result = json.loads(uploaded)
    assert result["host"] == PC and result["serial"] == 1 and result["offline"] is False
    assert result["failed"] == 0, [t for t in result["tasks"] if t["status"] == "failed"]
    assert result["evidence"]["os_release"]["id"] == "debian"
    assert lab.ssh(PC, "systemctl is-enabled provision-pull.timer").strip() == "enabled"

    # A PC cannot upload as another, nor without its secret.
    token = token_of(settings, PC)
    base = f"https://{NAME}:8443/outbox"
    curl = "curl -s -o /dev/null -w '%{http_code}' --cacert /etc/provision-pull/ca.crt"
    other = lab.ssh(PC, f"{curl} -u {PC}:{token} -T /etc/hostname {base}/{SERVER}/x.json")
    assert other == "403"
    wrong = lab.ssh(PC, f"{curl} -u {PC}:guess -T /etc/hostname {base}/{PC}/x.json")
    assert wrong == "401"

    # A tampered bundle on the server is refused on the PC; serial 1 stays in force.
    second = build_bundles(settings, PC).bundles[0]
    members = unpack(second.path.read_bytes())
    members["content/inventory.json"] = members["content/inventory.json"].replace(
        b'"ansible_connection"', b'"ansible_connection" ', 1
    )
    tampered = Path(settings.state_path / "tampered.tar.gz")
    tampered.write_bytes(pack(members, 0))
    folder = f"/srv/provision-bundles/www/bundles/{second.manifest.name}"
    copy = lab.ssh(SERVER, f"cat {folder}/latest.json")
    assert json.loads(copy)["serial"] == 1
    subprocess.run(
        [
            "scp",
            *ssh_options(lab.inventory),
            str(tampered),
            f"root@{lab.address(SERVER)}:{folder}/{second.path.name}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    lab.ssh(
        SERVER,
        f"""echo '{{"serial": 2, "file": "{second.path.name}"}}' > {folder}/latest.json""",
    )
    _run_agent(lab)
    assert "checksum" in lab.ssh(PC, f"tail -1 {STATE}/refused.log")
    assert json.loads(lab.ssh(PC, f"cat {STATE}/applied.json"))["serial"] == 1
    # The run applied the bundle in force again, and the roles changed nothing.
    names = lab.ssh(SERVER, f"ls /srv/provision-bundles/outbox/{PC}/").split()
    assert len(names) == 2
    again = json.loads(lab.ssh(SERVER, f"cat /srv/provision-bundles/outbox/{PC}/{max(names)}"))
    assert again["serial"] == 1 and again["failed"] == 0
    assert again["changed"] == 0, [t["task"] for t in again["tasks"] if t["status"] == "changed"]
    assert again["collected_at"] > result["collected_at"]
