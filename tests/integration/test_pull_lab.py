"""Pull mode on real lab hosts: a field server publishes signed bundles over HTTPS
(bundle_server, by a recorded rollout), a lab PC gets the pull agent once, then
fetches, verifies and applies its bundle by itself with Debian 12's ansible-core
from the lab's package cache, and uploads its result as itself only. A tampered
bundle is refused on the PC and the good one stays in force; so are, by the agent's
own fetch and checks on the PC (no apply), one signed by another key, an expired
one, and one whose serial is lower than the last applied. `reports collect`
brings each apply home once, with the PC's own collection time, and an audit
judges the PC from it. Cut off from its field server for two publications, the
PC applies what it holds and queues its results; back online, it applies the
newest in one run and every queued result is recorded once, in order, at the
PC's own times. After the agent's install, no SSH login by the control node's
key reaches the PC (its sshd journal says so)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from provision.access import keys
from provision.bundles import build_bundles, init_key, key_info
from provision.bundles.archive import pack, unpack
from provision.bundles.publish import plan_publish, prepare_publish, token_of
from provision.compliance.service import plan_audit, run_audit
from provision.errors import ExitStatus
from provision.infra.store import open_store
from provision.infra.store.compliance_records import ComplianceRecords
from provision.infra.store.pull_records import PullRecords
from provision.lab import service
from provision.lab import state as lab_state
from provision.lab.inventory import KEY_NAME, ssh_options
from provision.model.compliance.model import HOST_REPORTED
from provision.portal import ca
from provision.pull import collect, plan_collect
from provision.rollout import RolloutOptions, plan_rollout, run_rollout
from provision.settings import Settings
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
AGENT = "/usr/bin/python3 /usr/local/lib/provision-pull/provision_pull_agent.py"


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


def _run_agent(on_pc: Callable[[str], str]) -> None:
    """Start the agent's service as its timer does and wait until that run has ended.

    A full local apply on a loaded machine takes minutes, longer than one SSH
    command may: the run is started without waiting, then its end (a new exit
    time of the unit's main process, the unit no longer active) is awaited.
    """
    show = "systemctl show -p ExecMainExitTimestampMonotonic,ActiveState provision-pull.service"
    before = on_pc(show)
    on_pc("systemctl start --no-block provision-pull.service")
    deadline = time.monotonic() + 2400
    while time.monotonic() < deadline:
        try:
            shown = on_pc(show)
        except AssertionError:
            # The apply restarts sshd (ssh_hardening): refused for a moment, then back.
            time.sleep(2)
            continue
        now = dict(line.split("=", 1) for line in shown.split())
        if now["ActiveState"] in ("inactive", "failed") and shown != before:
            return
        time.sleep(2)
    raise AssertionError("the pull agent's run did not end")


def _inspector(lab: Lab) -> tuple[Callable[[str], str], str]:
    """A key of the test's own on the PC, and a way to run commands with it.

    The test looks at the PC with this key, never with the control node's, so that
    the PC's sshd journal can show that the control node's key did not log in.
    """
    key = lab.settings.state_path / "inspector_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "inspector", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    public = key.with_name(key.name + ".pub").read_text().strip()
    lab.ssh(PC, f"echo '{public}' >> /root/.ssh/authorized_keys")
    options = ssh_options(lab.inventory)
    options[options.index("-i") + 1] = str(key)
    options += ["-o", "IdentitiesOnly=yes"]

    def on_pc(command: str) -> str:
        proc = subprocess.run(
            ["ssh", *options, f"root@{lab.address(PC)}", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if proc.returncode != 0:
            raise AssertionError(f"{command!r} on {PC} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    return on_pc, _fingerprint(key)


def _inside(lab: Lab) -> Callable[[str], str]:
    """A way to run commands on the PC without its network (through its namespaces):
    what an inspector does with a PC whose link is cut."""
    paths = service.LabPaths.of(lab.settings)
    record = lab_state.load(paths.state_file).hosts[PC]  # type: ignore[union-attr]
    children = Path(f"/proc/{record.pid}/task/{record.pid}/children").read_text().split()
    (init,) = [c for c in children if Path(f"/proc/{c}/comm").read_text().strip() == "systemd"]

    def in_pc(command: str) -> str:
        proc = subprocess.run(
            ["nsenter", "-t", init, "-m", "-u", "-i", "-n", "-p", "--", "sh", "-c", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if proc.returncode != 0:
            raise AssertionError(f"{command!r} in {PC} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    return in_pc


def _wait_for_link(on_pc: Callable[[str], str]) -> None:
    """Until the PC answers over the network again (the bridge port forwards once up)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            on_pc("true")
            return
        except (AssertionError, subprocess.TimeoutExpired):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _fingerprint(key: Path) -> str:
    shown = subprocess.run(
        ["ssh-keygen", "-lf", str(key)], check=True, capture_output=True, text=True
    ).stdout
    return shown.split()[1]  # SHA256:…


def _signed_by_another_key(settings: Settings, data: bytes) -> bytes:
    """`data` with its manifest signed again by a key no PC trusts (same namespace)."""
    members = unpack(data)
    key = settings.state_path / "other-signing-key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    manifest = settings.state_path / "other-manifest.json"
    manifest.write_bytes(members["manifest.json"])
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", "provision-bundle", str(manifest)],
        check=True,
        capture_output=True,
    )
    members["manifest.json.sig"] = manifest.with_name(manifest.name + ".sig").read_bytes()
    return pack(members, 0)


def _serve(lab: Lab, folder: str, data: bytes) -> None:
    """Put `data` on the field server as the newest bundle of `folder`."""
    name = "candidate.tar.gz"
    local = lab.settings.state_path / name
    local.write_bytes(data)
    subprocess.run(
        ["scp", *ssh_options(lab.inventory), str(local), f"root@{lab.address(SERVER)}:{folder}/"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    lab.ssh(SERVER, f"""echo '{{"serial": 0, "file": "{name}"}}' > {folder}/latest.json""")


def _not_passing(settings: Settings, run_id: int) -> list[tuple[str, str, str]]:
    """The PC's controls in the run that neither passed nor were not applicable."""
    with open_store(settings) as store:
        (report,) = ComplianceRecords(store).host_reports(run_id, [PC])
    return [
        (r.control, r.status, r.message)
        for r in report.results
        if r.status not in ("pass", "not_applicable")
    ]


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
            # The test starts each run itself: the timer's first run (two minutes
            # after boot, plus up to its splay) would come in between them.
            "pull_agent_boot_delay": "12h",
        },
    )
    lab.ssh(PC, f"echo '{lab.address(SERVER)} {NAME}' >> /etc/hosts")
    on_pc, inspector = _inspector(lab)
    build_bundles(settings, PC)
    _publish(lab)
    _rollout(lab, "pull_agents.yml", PC)
    # The last time the control node opens SSH to the PC: from here on, its journal.
    cursor = re.findall(r"cursor: (\S+)", on_pc("journalctl -n 0 --show-cursor --no-pager"))[-1]
    assert "2.14." in on_pc("ansible-playbook --version")  # Debian's, from the cache

    # The agent's own run, as its timer starts it: fetch, verify, apply, report.
    _run_agent(on_pc)
    applied = json.loads(on_pc(f"cat {STATE}/applied.json"))
    assert applied["serial"] == 1
    uploaded = lab.ssh(SERVER, f"cat /srv/provision-bundles/outbox/{PC}/*.json")
    result = json.loads(uploaded)
    assert result["host"] == PC and result["serial"] == 1 and result["offline"] is False
    assert result["failed"] == 0, [t for t in result["tasks"] if t["status"] == "failed"]
    assert result["evidence"]["os_release"]["id"] == "debian"
    assert on_pc("systemctl is-enabled provision-pull.timer").strip() == "enabled"

    # Collected once, however often collect runs; the evidence at the PC's own time.
    pc_time = datetime.fromtimestamp(result["collected_at"], UTC)
    first = collect(settings, plan_collect(settings, PC))
    assert first.exit_status == 0 and first.recorded == 1, first
    again = collect(settings, plan_collect(settings, PC))
    assert again.recorded == 0 and (again.servers[0].listed, again.servers[0].fetched) == (1, 0)
    with open_store(settings) as store:
        pulls = PullRecords(store)
        (apply,) = pulls.applies(PC)
        run_id = pulls.run_for_serial(1)
        assert run_id is not None and list(store.host_results(run_id)) == [PC]
    assert apply.collected_at == pc_time and apply.received_at > pc_time
    assert apply.results is not None and apply.os_release == "debian-12"
    # An audit judges the PC by what it reported, without contacting it.
    audited = run_audit(settings, plan_audit(settings, PC))
    (row,) = audited.hosts
    assert row.status == HOST_REPORTED and row.collected_at == pc_time, row
    assert row.message == "pulled: bundle serial 1"
    # From its pulled evidence alone, the PC meets the whole standard: 100 %.
    assert row.compliant and row.score == 1.0, _not_passing(settings, audited.run_id)
    assert audited.exit_status(threshold=100) == ExitStatus.SUCCESS

    # A PC cannot upload as another, nor without its secret.
    token = token_of(settings, PC)
    base = f"https://{NAME}:8443/outbox"
    curl = "curl -s -o /dev/null -w '%{http_code}' --cacert /etc/provision-pull/ca.crt"
    other = on_pc(f"{curl} -u {PC}:{token} -T /etc/hostname {base}/{SERVER}/x.json")
    assert other == "403"
    wrong = on_pc(f"{curl} -u {PC}:guess -T /etc/hostname {base}/{PC}/x.json")
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
    _run_agent(on_pc)
    assert "checksum" in on_pc(f"tail -1 {STATE}/refused.log")
    assert json.loads(on_pc(f"cat {STATE}/applied.json"))["serial"] == 1
    # The run applied the bundle in force again, and the roles changed nothing.
    names = lab.ssh(SERVER, f"ls /srv/provision-bundles/outbox/{PC}/").split()
    assert len(names) == 2
    again = json.loads(lab.ssh(SERVER, f"cat /srv/provision-bundles/outbox/{PC}/{max(names)}"))
    assert again["serial"] == 1 and again["failed"] == 0
    assert again["changed"] == 0, [t["task"] for t in again["tasks"] if t["status"] == "changed"]
    assert again["collected_at"] > result["collected_at"]

    # The second apply comes home too, after the first; serial 1's run keeps one result.
    assert collect(settings, plan_collect(settings, PC)).recorded == 1
    with open_store(settings) as store:
        pulls = PullRecords(store)
        times = [a.collected_at for a in pulls.applies(PC)]
        assert times == [pc_time, datetime.fromtimestamp(again["collected_at"], UTC)]
        (kept,) = store.host_results(run_id).values()
    assert kept.finished_at == times[-1] and kept.outcome == "ok"

    # Offline for two publications: the PC applies what it holds and queues the results.
    in_pc = _inside(lab)
    service.cut_host(settings, PC)
    try:
        for _ in range(2):
            build_bundles(settings, PC)
            _publish(lab)
            _run_agent(in_pc)
    finally:
        service.restore_host(settings, PC)
    queued = in_pc(f"ls {STATE}/outbox/").split()
    assert len(queued) == 2, queued
    assert json.loads(in_pc(f"cat {STATE}/applied.json"))["serial"] == 1
    # Back online: the newest bundle applied in one run, every queued result sent.
    _wait_for_link(on_pc)
    _run_agent(on_pc)
    applied = json.loads(on_pc(f"cat {STATE}/applied.json"))
    assert json.loads(lab.ssh(SERVER, f"cat {folder}/latest.json"))["serial"] == 4
    assert applied["serial"] == 4
    assert on_pc(f"ls {STATE}/outbox/").split() == []
    sent = [json.loads(on_pc(f"cat {STATE}/sent/{n}")) for n in on_pc(f"ls {STATE}/sent/").split()]
    assert [(r["serial"], r["offline"]) for r in sent] == [
        (1, False),
        (1, False),
        (1, True),
        (1, True),
        (4, False),
    ]
    # Each queued result recorded once, in order, at the PC's collection time.
    assert collect(settings, plan_collect(settings, PC)).recorded == 3
    assert collect(settings, plan_collect(settings, PC)).recorded == 0
    with open_store(settings) as store:
        pulls = PullRecords(store)
        recorded = [(a.serial, a.offline, a.collected_at) for a in pulls.applies(PC)]
        serial4 = pulls.run_for_serial(4)
        assert serial4 is not None and list(store.host_results(serial4)) == [PC]
    assert recorded == [
        (r["serial"], r["offline"], datetime.fromtimestamp(r["collected_at"], UTC)) for r in sent
    ]

    # Refused on the PC, by the agent's own fetch and checks (nothing applied): one
    # signed by another key, an expired one, one older than the last applied. Each
    # is logged, and serial 4 stays held and in force.
    held = on_pc(f"sha256sum {STATE}/held.tar.gz").split()[0]
    out = settings.state_path / "refused-bundles"
    fresh = build_bundles(settings, PC, serial=5, out_dir=out / "fresh").bundles[0]
    foreign = _signed_by_another_key(settings, fresh.path.read_bytes())
    expired = build_bundles(
        settings,
        PC,
        serial=5,
        out_dir=out / "expired",
        now=datetime.now(UTC) - timedelta(days=3),
        valid_days=1,
    ).bundles[0]
    for data, why in (
        (foreign, "signature not by the department's bundle key"),
        (expired.path.read_bytes(), "serial 5 expired at"),
        (second.path.read_bytes(), "serial 2 is older than 4, the last applied"),
    ):
        _serve(lab, folder, data)
        assert on_pc(f"{AGENT} fetch; echo rc=$?").split()[-1] == "rc=1", why
        assert why in on_pc(f"tail -1 {STATE}/refused.log"), why
        assert on_pc(f"sha256sum {STATE}/held.tar.gz").split()[0] == held, why
        assert json.loads(on_pc(f"cat {STATE}/applied.json"))["serial"] == 4, why

    # No login by the control node's key since the agent was installed; the
    # inspector's own logins are there, so the journal does record them.
    logins = on_pc(
        f"journalctl --after-cursor='{cursor}' SYSLOG_IDENTIFIER=sshd -o cat --no-pager"
        " | grep 'Accepted publickey' || true"
    )
    control = {_fingerprint(lab.inventory / KEY_NAME)}
    if keys.key_path(settings).is_file():
        control.add(_fingerprint(keys.key_path(settings)))
    assert inspector in logins
    assert not [line for line in logins.splitlines() if any(f in line for f in control)]
