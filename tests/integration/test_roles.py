"""The standard's roles against real lab hosts: converge, idempotence, check mode, one control.

Runs site.yml once per module on the session's lab hosts and verifies the result
on the hosts themselves (testinfra over SSH, strict host keys), never from
Ansible's own report. The order matters and is done in one fixture:

1. the converge run, then a second run that must change nothing anywhere;
2. drift by hand on every host, then a check-mode run: it must see the drift,
   and /etc (content, modes, owners, links) and the package database must be
   byte-identical afterwards; the drift is undone by hand;
3. the assertions below, then one control enforced alone by its tag.

Afterwards every host is reset to the pristine image, so the tests that share
the lab find hosts as `lab up` made them (root by key works throughout anyway:
SSH-001 keeps `prohibit-password` and the firewall always opens SSH).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import testinfra
import yaml

from provision.infra import runner
from provision.lab import service
from provision.lab.inventory import KEY_NAME, KNOWN_HOSTS
from provision.standards import load_standard
from tests.helpers.lab import Lab
from tests.helpers.workspace import REPO

# A module fixture rolls the baseline out over lab hosts first: on a loaded machine
# that alone can take longer than the suite's per-test timeout.
pytestmark = [pytest.mark.lab, pytest.mark.timeout(2400)]

SITE = REPO / "playbooks" / "site.yml"
FIELD = ("dhk-gaz-fs01", "dhk-kal-fs01")
LAB_PC = "dhk-kal-lab01"
PORTAL = "dhk-gaz-portal01"
STANDARD = load_standard(REPO / "standards" / "bd-ict-baseline.yml")

#: Everything under /etc that a change could touch, plus the package database.
SNAPSHOT = (
    "find /etc -xdev \\( -type f -o -type l -o -type d \\) -printf '%p %y %m %u %g %l\\n' | sort;"
    " find /etc -xdev -type f -print0 | sort -z | xargs -0 sha256sum;"
    " sha256sum /var/lib/dpkg/status"
)


#: Both of provision's strategies (provision.infra.strategy): the roles must behave
#: the same under mitogen as under Ansible's own linear strategy.
STRATEGIES = ("fast", "plain")


@dataclass
class Converged:
    lab: Lab
    first: runner.PlaybookResult
    #: Per strategy: the run after the converge, which must change nothing.
    second: dict[str, runner.PlaybookResult] = field(default_factory=dict)
    #: Per strategy: what a check-mode run over drift changed on the hosts (nothing).
    check_changes: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def _run(lab: Lab, strategy: str = "fast", **kwargs: object) -> runner.PlaybookResult:
    return runner.run_playbook(
        SITE,
        workspace=lab.settings.workspace,
        private_data_dir=runner.new_run_dir(lab.settings.state_path, "roles"),
        inventory=lab.inventory,
        strategy=strategy,
        **kwargs,  # type: ignore[arg-type]
    )


def _diff(before: str, after: str) -> list[str]:
    old, new = set(before.splitlines()), set(after.splitlines())
    return sorted(old ^ new)[:20]


#: Drift made by hand before the check-mode run (and undone after it), so that
#: check mode has something to change and must still change nothing.
DRIFT = (
    "mv /etc/ssh/provision.d/ssh-003.conf /root/ssh-003.saved"
    " && ln -sf /usr/share/zoneinfo/Etc/UTC /etc/localtime"
)
UNDRIFT = (
    "mv /root/ssh-003.saved /etc/ssh/provision.d/ssh-003.conf"
    " && ln -sf /usr/share/zoneinfo/Asia/Dhaka /etc/localtime"
)


@pytest.fixture(scope="module")
def converged(lab: Lab) -> Iterator[Converged]:
    names = [h.name for h in lab.hosts]
    previewed = [FIELD[0], LAB_PC]
    try:
        # The converge goes through provision's default (fast: mitogen); then each
        # strategy in turn must find nothing to change, and in check mode must see
        # drift made by hand and change nothing.
        first = _run(lab)
        assert first.ok, f"converge failed: {first.hosts} (see {first.private_data_dir})"
        done = Converged(lab, first)
        for strategy in STRATEGIES:
            done.second[strategy] = _run(lab, strategy)
            # Check mode needs python3-apt on the host (Ansible's apt module), which a
            # pristine lab image lacks and the baseline installs: so check mode is
            # tried on converged hosts, each with some drift to preview.
            for name in previewed:
                lab.ssh(name, DRIFT)
            before = {n: lab.ssh(n, SNAPSHOT) for n in previewed}
            check = _run(lab, strategy, check=True, limit=",".join(previewed))
            assert check.ok, f"check mode failed: {check.hosts} (see {check.private_data_dir})"
            done.check_changes[strategy] = {
                n: _diff(before[n], lab.ssh(n, SNAPSHOT)) for n in previewed
            }
            # saw the drift
            assert all(check.hosts[n].changed >= 2 for n in previewed), (strategy, check.hosts)
            for name in previewed:
                lab.ssh(name, UNDRIFT)
        yield done
    finally:
        for name in names:
            service.reset_host(lab.settings, name)


def _host(lab: Lab, name: str) -> testinfra.host.Host:
    config = lab.settings.state_path / "ssh_config_roles"
    config.write_text(
        "Host *\n"
        f"  IdentityFile {lab.inventory / KEY_NAME}\n"
        f"  UserKnownHostsFile {lab.inventory / KNOWN_HOSTS}\n"
        "  StrictHostKeyChecking yes\n  BatchMode yes\n  User root\n"
    )
    return testinfra.get_host(f"ssh://{lab.address(name)}", ssh_config=str(config))


# -- the runs ------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_check_mode_changed_nothing_on_any_host(converged: Converged, strategy: str) -> None:
    changes = converged.check_changes[strategy]
    assert changes == {n: [] for n in changes}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_converge_reaches_every_host_and_the_second_run_changes_nothing(
    converged: Converged, strategy: str
) -> None:
    hosts = sorted(h.name for h in converged.lab.hosts)
    second = converged.second[strategy]
    assert sorted(converged.first.hosts) == hosts
    assert sorted(second.hosts) == hosts
    assert {h: s.changed for h, s in second.hosts.items()} == dict.fromkeys(hosts, 0)
    assert all(s.outcome == "ok" for s in second.hosts.values())


# -- the state, read on the hosts ------------------------------------------------------


@pytest.mark.parametrize("name", [*FIELD, LAB_PC, PORTAL])
def test_baseline_packages_accounts_and_logs(converged: Converged, name: str) -> None:
    host = _host(converged.lab, name)
    for package in ("sudo", "chrony", "nftables", "unattended-upgrades", "openssh-server"):
        assert host.package(package).is_installed, package
    for package in ("telnetd", "vsftpd", "rsh-server"):
        assert not host.package(package).is_installed, package
    assert host.user("provision").exists
    grant = host.file("/etc/sudoers.d/provision-provision")
    assert (grant.mode, grant.user, grant.group) == (0o440, "root", "root")
    assert host.run("visudo -c").rc == 0
    assert host.check_output("sudo -n -u provision sudo -n true; echo $?") == "0"
    assert (
        "Storage=persistent"
        in host.file("/etc/systemd/journald.conf.d/50-provision.conf").content_string
    )
    assert host.file("/var/log/journal").is_directory
    for key, value in STANDARD.parameters["baseline_sysctl"].default.items():
        assert host.check_output(f"sysctl -n {key}") == str(value), key


@pytest.mark.parametrize("name", [*FIELD, LAB_PC, PORTAL])
def test_sshd_effective_configuration(converged: Converged, name: str) -> None:
    host = _host(converged.lab, name)
    effective = dict(
        line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line
    )
    # sshd -T spells prohibit-password the old way.
    assert effective["permitrootlogin"] == "without-password"
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["x11forwarding"] == "no"
    assert effective["maxauthtries"] == "4"
    params = STANDARD.parameters
    assert set(effective["ciphers"].split(",")) <= set(params["ssh_hardening_ciphers"].default)
    assert set(effective["macs"].split(",")) <= set(params["ssh_hardening_macs"].default)
    assert set(effective["kexalgorithms"].split(",")) <= set(
        params["ssh_hardening_kex_algorithms"].default
    )
    assert "cbc" not in effective["ciphers"]
    assert host.service("ssh").is_running


@pytest.mark.parametrize("name", [*FIELD, LAB_PC, PORTAL])
def test_time_zone_and_chrony(converged: Converged, name: str) -> None:
    host = _host(converged.lab, name)
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Asia/Dhaka"
    assert host.check_output("date +%z") == "+0600"
    chrony = host.service("chrony")
    assert chrony.is_enabled and chrony.is_running
    # A container may not set the clock: chronyd runs, tracking only (-x).
    assert " -x" in host.check_output("ps -o args= -C chronyd")
    assert host.run("chronyc -n sources").rc == 0
    assert "pool bd.pool.ntp.org iburst" in host.file("/etc/chrony/chrony.conf").content_string


def _ruleset(host: testinfra.host.Host) -> tuple[str, set[int]]:
    data = json.loads(host.check_output("nft -j list ruleset"))["nftables"]
    chain = next(i["chain"] for i in data if "chain" in i and i["chain"].get("hook") == "input")
    ports: set[int] = set()
    for item in data:
        rule = item.get("rule")
        if not rule or rule["chain"] != chain["name"]:
            continue
        for expr in rule["expr"]:
            match = expr.get("match", {})
            if match.get("left", {}).get("payload", {}).get("field") == "dport":
                right = match["right"]
                values = right["set"] if isinstance(right, dict) else [right]
                ports.update(int(v) for v in values)
    return chain["policy"], ports


@pytest.mark.parametrize(
    ("name", "ports"),
    [(FIELD[0], {22, 80, 443, 3142}), (LAB_PC, {22}), (PORTAL, {22, 80, 443})],
)
def test_firewall_rules_per_role(converged: Converged, name: str, ports: set[int]) -> None:
    host = _host(converged.lab, name)
    assert host.service("nftables").is_enabled
    assert _ruleset(host) == ("drop", ports)


def test_firewall_drops_what_it_does_not_open(converged: Converged) -> None:
    """A port that listens but is not opened is unreachable from outside, reachable inside."""
    import socket

    lab = converged.lab
    lab.ssh(LAB_PC, "systemd-run --unit=probe-8080 python3 -m http.server 8080 >/dev/null")
    try:
        lab.ssh(
            LAB_PC, "for i in $(seq 1200); do ss -ltn | grep -q ':8080 ' && break; sleep 0.1; done"
        )
        assert "200" in lab.ssh(
            LAB_PC,
            "python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/').status)\"",
        )
        with pytest.raises(OSError):
            socket.create_connection((lab.address(LAB_PC), 8080), timeout=2).close()
        # The package cache port is open on a field server, and served.
        socket.create_connection((lab.address(FIELD[0]), 3142), timeout=5).close()
    finally:
        lab.ssh(LAB_PC, "systemctl stop probe-8080 || true")


def test_field_servers_run_the_package_cache(converged: Converged) -> None:
    for name in FIELD:
        host = _host(converged.lab, name)
        assert host.package("apt-cacher-ng").is_installed
        assert host.service("apt-cacher-ng").is_running
        assert host.socket("tcp://0.0.0.0:3142").is_listening
    assert not _host(converged.lab, LAB_PC).package("apt-cacher-ng").is_installed


def test_lab_pc_has_bangla_locale_and_fonts(converged: Converged) -> None:
    host = _host(converged.lab, LAB_PC)
    assert "bn_BD.utf8" in host.check_output("locale -a").split()
    assert host.package("fonts-beng").is_installed and host.package("hunspell-bn").is_installed
    fonts = host.check_output("dpkg -L fonts-beng-extra fonts-lohit-beng-bengali")
    assert re.search(r"\.ttf$", fonts, re.MULTILINE)
    assert host.file("/etc/default/locale").contains("^LANG=en_US.UTF-8$")
    assert not _host(converged.lab, PORTAL).package("fonts-beng").is_installed


def test_unattended_upgrades_are_on(converged: Converged) -> None:
    host = _host(converged.lab, PORTAL)
    config = host.check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in config
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in config
    assert host.service("apt-daily-upgrade.timer").is_enabled


# -- one control alone -------------------------------------------------------------------


def _task_tags(task_path: str) -> set[str]:
    """The tags written on the task at `file.yml:LINE` (read from the role's source)."""
    path, _, line = task_path.rpartition(":")
    tasks = yaml.compose(Path(path).read_text())
    assert isinstance(tasks, yaml.SequenceNode)
    for node in tasks.value:
        if node.start_mark.line + 1 == int(line):
            task = yaml.safe_load(yaml.serialize(node))
            return set(task.get("tags", []))
    raise AssertionError(f"no task starts at {task_path}")


def test_one_control_by_tag_touches_only_that_control(converged: Converged) -> None:
    lab = converged.lab
    # Drift three controls by hand: SSH-002, SSH-004 and TIME-001.
    lab.ssh(
        LAB_PC,
        "rm /etc/ssh/provision.d/ssh-002.conf"
        " /etc/ssh/provision.d/ssh-004.conf"
        " && ln -sf /usr/share/zoneinfo/Etc/UTC /etc/localtime && systemctl reload ssh"
        # sshd re-executes on reload: wait until it listens again before the next login.
        " && for i in $(seq 1200); do ss -ltn | grep -q ':22 ' && break; sleep 0.1; done",
    )
    assert "passwordauthentication yes" in lab.ssh(LAB_PC, "sshd -T")

    events: list[runner.PlaybookEvent] = []
    lock = threading.Lock()

    def collect(event: runner.PlaybookEvent) -> None:
        with lock:
            events.append(event)

    result = _run(lab, tags=["SSH-002"], limit=LAB_PC, on_event=collect)
    assert result.ok

    ran = [
        e
        for e in events
        if e.kind in {"runner_on_ok", "runner_on_skipped", "runner_on_failed"} and e.host == LAB_PC
    ]
    assert ran
    changed = sorted({str(e.task) for e in ran if e.data.get("res", {}).get("changed")})
    assert changed == ["Ensure sshd accepts keys only", "Reload sshd"]
    for event in ran:
        action = event.data.get("task_action")
        if str(action).rsplit(".", 1)[-1] in {"gather_facts", "validate_argument_spec"}:
            continue
        task_path = str(event.data.get("task_path"))
        if "/handlers/" in task_path:
            assert "/ssh_hardening/" in task_path, task_path
            continue
        tags = _task_tags(task_path)
        if tags == {"always"}:  # the apt module's prerequisite: read-only once in place
            assert not event.data.get("res", {}).get("changed"), event.task
            continue
        assert "SSH-002" in tags, (event.task, task_path)

    # On the host: SSH-002 is back; the other two drifts are untouched.
    effective = lab.ssh(LAB_PC, "sshd -T")
    assert re.search(r"^passwordauthentication no$", effective, re.MULTILINE)
    assert re.search(r"^maxauthtries 6$", effective, re.MULTILINE)
    assert lab.ssh(LAB_PC, "readlink /etc/localtime").strip().endswith("Etc/UTC")


def test_check_mode_on_a_pristine_host_says_what_it_needs(converged: Converged) -> None:
    """Without python3-apt check mode cannot preview packages: one clear failure, no change."""
    lab = converged.lab
    service.reset_host(lab.settings, PORTAL)
    before = lab.ssh(PORTAL, SNAPSHOT)
    failures: list[str] = []

    def collect(event: runner.PlaybookEvent) -> None:
        if event.kind == "runner_on_failed":
            failures.append(str(event.data.get("res", {}).get("msg", "")))

    result = _run(lab, check=True, limit=PORTAL, on_event=collect)
    assert result.hosts[PORTAL].failed == 1
    assert len(failures) == 1 and "check mode needs python3-apt" in failures[0]
    assert lab.ssh(PORTAL, SNAPSHOT) == before
