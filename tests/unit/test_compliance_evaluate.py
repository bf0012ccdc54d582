"""Every check type judged over evidence: pass, fail, error and no_report, with evidence kept."""

from __future__ import annotations

from typing import Any

import pytest

from provision.model.compliance.evaluate import (
    compare_versions,
    declared_equipment,
    evaluate_check,
    evaluate_control,
    evidence_request,
    firewall_summary,
    with_declared_equipment,
)
from provision.model.standards.model import AppliesTo, Check, Control


def check(kind: str, **fields: Any) -> Check:
    return Check(kind, fields)


def status(kind: str, evidence: dict[str, Any], **fields: Any) -> str:
    return evaluate_check(check(kind, **fields), evidence).status


def test_os_release() -> None:
    ev = {"os_release": {"id": "debian", "version_id": "12"}}
    out = evaluate_check(check("os_release", releases=["debian-12"]), ev)
    assert (out.status, out.actual) == ("pass", "debian-12")
    assert status("os_release", ev, releases=["ubuntu-24.04"]) == "fail"
    assert status("os_release", {"os_release": {"id": "debian"}}, releases=["x"]) == "error"
    assert status("os_release", {"os_release": {"error": "boom"}}, releases=["x"]) == "error"
    assert status("os_release", {}, releases=["debian-12"]) == "no_report"


def test_package_installed_and_min_version() -> None:
    ev = {"packages": {"installed": {"sudo": "1.9.13p3-1+deb12u1", "curl": None}}}
    assert status("package_installed", ev, packages=["sudo"]) == "pass"
    out = evaluate_check(check("package_installed", packages=["sudo", "curl"]), ev)
    assert out.status == "fail" and "curl" in out.message
    assert out.actual == {"sudo": "1.9.13p3-1+deb12u1", "curl": None}
    assert status("package_installed", ev, packages=["sudo"], min_version="1.9.13") == "pass"
    assert status("package_installed", ev, packages=["sudo"], min_version="1.9.14") == "fail"
    assert status("package_installed", ev, packages=["rsync"]) == "no_report"
    assert status("package_installed", {"packages": {"error": "x"}}, packages=["a"]) == "error"


def test_package_absent() -> None:
    ev = {"packages": {"installed": {"telnetd": None, "vsftpd": "3.0.3-13"}}}
    assert status("package_absent", ev, packages=["telnetd"]) == "pass"
    out = evaluate_check(check("package_absent", packages=["telnetd", "vsftpd"]), ev)
    assert out.status == "fail" and out.actual == {"vsftpd": "3.0.3-13"}
    assert status("package_absent", ev, packages=["nis"]) == "no_report"
    assert status("package_absent", {}, packages=["nis"]) == "no_report"


def test_service() -> None:
    units = {
        "chrony": {"load": "loaded", "enabled": "enabled", "active": "active"},
        "nftables": {"load": "loaded", "enabled": "disabled", "active": "inactive"},
        "gone": {"load": "not-found", "enabled": "", "active": "inactive"},
    }
    ev = {"services": {"units": units}}
    assert status("service", ev, name="chrony", enabled=True, running=True) == "pass"
    assert status("service", ev, name="nftables", enabled=True) == "fail"
    assert status("service", ev, name="nftables", running=False) == "pass"
    assert status("service", ev, name="gone", enabled=True) == "fail"
    assert status("service", ev, name="other", enabled=True) == "no_report"
    assert status("service", {"services": {"error": "no systemctl"}}, name="x", enabled=True) == (
        "error"
    )


def test_sshd_setting() -> None:
    settings = {
        "permitrootlogin": "without-password",
        "passwordauthentication": "no",
        "ciphers": "aes256-gcm@openssh.com,aes128-ctr",
        "maxauthtries": "4",
        "x11forwarding": None,
    }
    ev = {"sshd": {"settings": settings}}
    # sshd -T prints prohibit-password the old way: both spellings are one value.
    out = evaluate_check(
        check("sshd_setting", setting="permitrootlogin", equals="prohibit-password"), ev
    )
    assert out.status == "pass" and out.actual == "prohibit-password"
    assert status("sshd_setting", ev, setting="PasswordAuthentication", equals="yes") == "fail"
    assert status("sshd_setting", ev, setting="maxauthtries", equals=4) == "pass"
    assert status("sshd_setting", ev, setting="maxauthtries", one_of=["3", "5"]) == "fail"
    ok = ["aes256-gcm@openssh.com", "aes128-ctr", "chacha20-poly1305@openssh.com"]
    assert status("sshd_setting", ev, setting="ciphers", subset_of=ok) == "pass"
    out = evaluate_check(check("sshd_setting", setting="ciphers", subset_of=ok[:1]), ev)
    assert out.status == "fail" and "aes128-ctr" in out.message
    assert status("sshd_setting", ev, setting="x11forwarding", equals="no") == "error"
    assert status("sshd_setting", ev, setting="usedns", equals="no") == "no_report"
    assert status(
        "sshd_setting", {"sshd": {"error": "sshd is not installed"}}, setting="a", equals="b"
    ) == ("error")


def test_sysctl() -> None:
    ev = {"sysctl": {"values": {"a.b": "0", "c.d": "1", "e.f": None, "r": "32768 60999"}}}
    assert status("sysctl", ev, values={"a.b": 0, "c.d": 1}) == "pass"
    out = evaluate_check(check("sysctl", values={"a.b": 1}), ev)
    assert out.status == "fail" and out.expected == {"a.b": "1"} and out.actual == {"a.b": "0"}
    assert status("sysctl", ev, values={"r": "32768\t60999"}) == "pass"
    assert status("sysctl", ev, values={"e.f": 1}) == "error"
    assert status("sysctl", ev, values={"x.y": 1}) == "no_report"


def test_file() -> None:
    files = {
        "/etc/sudoers.d/p": {
            "exists": True,
            "type": "file",
            "mode": "0440",
            "owner": "root",
            "group": "root",
            "matches": {"^p ALL": "p ALL=(ALL:ALL) NOPASSWD: ALL", "^nope": None},
        },
        "/missing": {"exists": False},
        "/unreadable": {
            "exists": True,
            "mode": "0600",
            "owner": "root",
            "group": "root",
            "error": "Permission denied",
        },
    }
    ev = {"files": {"files": files}}
    spec = {"path": "/etc/sudoers.d/p", "mode": "0440", "owner": "root", "contains": "^p ALL"}
    out = evaluate_check(check("file", **spec), ev)
    assert out.status == "pass" and out.actual["line"] == "p ALL=(ALL:ALL) NOPASSWD: ALL"
    assert status("file", ev, path="/etc/sudoers.d/p", mode="0644") == "fail"
    assert status("file", ev, path="/etc/sudoers.d/p", mode="440") == "pass"
    assert status("file", ev, path="/etc/sudoers.d/p", owner="nobody") == "fail"
    assert status("file", ev, path="/etc/sudoers.d/p", contains="^nope") == "fail"
    assert status("file", ev, path="/etc/sudoers.d/p", contains="^other") == "no_report"
    assert status("file", ev, path="/missing") == "fail"
    assert status("file", ev, path="/missing", exists=False) == "pass"
    assert status("file", ev, path="/etc/sudoers.d/p", exists=False) == "fail"
    assert status("file", ev, path="/unreadable", contains="x") == "error"
    assert status("file", ev, path="/never-asked") == "no_report"


def test_user() -> None:
    ev = {"users": {"users": {"provision": {"uid": 999}, "games": None}}}
    assert status("user", ev, name="provision", present=True) == "pass"
    assert status("user", ev, name="games", present=False) == "pass"
    assert status("user", ev, name="games", present=True) == "fail"
    assert status("user", ev, name="other", present=True) == "no_report"
    assert status("user", {"users": {"error": "x"}}, name="a", present=True) == "error"


def test_port() -> None:
    ev = {"ports": {"tcp": [22, 3142], "udp": [123]}}
    assert status("port", ev, port=22, listening=True) == "pass"
    assert status("port", ev, port=23, listening=False) == "pass"
    assert status("port", ev, port=3142, listening=False) == "fail"
    assert status("port", ev, port=123, listening=True) == "pass"
    assert status("port", ev, port=123, protocol="tcp", listening=True) == "fail"
    assert status("port", {}, port=22, listening=True) == "no_report"
    assert status("port", {"ports": {"error": "x"}}, port=22, listening=True) == "error"


def test_hardware() -> None:
    ev = {"hardware": {"cpu_cores": 2, "memory_mb": 3900, "disk_gb": 120.5}}
    assert status("hardware", ev, cpu_cores=2, memory_mb=3500, disk_gb=100) == "pass"
    out = evaluate_check(check("hardware", cpu_cores=4, disk_gb=100), ev)
    assert out.status == "fail" and "cpu_cores 2 < 4" in out.message
    assert out.actual == {"cpu_cores": 2, "disk_gb": 120.5}
    assert status("hardware", {"hardware": {"cpu_cores": 2}}, memory_mb=1) == "no_report"
    assert status("hardware", {"hardware": {"error": "x"}}, cpu_cores=1) == "error"


REGISTER_ROW = {"provision_cpu_cores": 8, "provision_ram_gb": 16, "provision_disk_gb": 1000}


def test_a_container_is_judged_on_the_equipment_its_register_row_declares() -> None:
    measured = {"cpu_cores": 2, "memory_mb": 24000, "disk_gb": 250.0, "container": "systemd-nspawn"}
    equipment = declared_equipment(REGISTER_ROW)
    assert equipment == {"cpu_cores": 8, "memory_mb": 16384, "disk_gb": 1000}
    judged = with_declared_equipment({"hardware": measured}, equipment)
    out = evaluate_check(check("hardware", cpu_cores=4, memory_mb=7500, disk_gb=450), judged)
    assert out.status == "pass"
    assert "register" in out.actual["source"] and "'cpu_cores': 2" in out.actual["source"]
    # The register is the container's equipment: an under-declared one still fails.
    small = declared_equipment({**REGISTER_ROW, "provision_cpu_cores": 2})
    out = evaluate_check(
        check("hardware", cpu_cores=4), with_declared_equipment({"hardware": measured}, small)
    )
    assert out.status == "fail" and "cpu_cores 2 < 4" in out.message


def test_a_machine_of_its_own_is_judged_on_what_it_measures() -> None:
    measured = {"cpu_cores": 2, "memory_mb": 3900, "disk_gb": 120.5, "container": ""}
    judged = with_declared_equipment({"hardware": measured}, declared_equipment(REGISTER_ROW))
    out = evaluate_check(check("hardware", cpu_cores=4), judged)
    assert out.status == "fail" and out.actual == {"cpu_cores": 2}
    # A container without a complete register row: measured, and the message says why.
    inside = {**measured, "container": "lxc"}
    assert declared_equipment({"provision_cpu_cores": 8}) is None
    out = evaluate_check(
        check("hardware", cpu_cores=4), with_declared_equipment({"hardware": inside}, None)
    )
    assert out.status == "fail" and "lxc container" in out.message and "register" in out.message


def test_timezone() -> None:
    assert status("timezone", {"timezone": {"name": "Asia/Dhaka"}}, name="Asia/Dhaka") == "pass"
    assert status("timezone", {"timezone": {"name": "Etc/UTC"}}, name="Asia/Dhaka") == "fail"
    assert status("timezone", {"timezone": {"name": None}}, name="Asia/Dhaka") == "error"
    assert status("timezone", {}, name="Asia/Dhaka") == "no_report"


def _dport(right: Any, protocol: str = "tcp") -> list[dict[str, Any]]:
    left = {"payload": {"protocol": protocol, "field": "dport"}}
    return [{"match": {"op": "==", "left": left, "right": right}}, {"accept": None}]


def test_firewall() -> None:
    chain = {
        "family": "inet",
        "table": "provision",
        "name": "input",
        "policy": "drop",
        "rules": [
            [
                {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established"]}},
                {"accept": None},
            ],
            _dport(22),
            _dport({"set": [80, 443]}),
            _dport(53, "udp"),
            [*_dport(8080)[:1], {"drop": None}],
        ],
    }
    ev = {"firewall": {"installed": True, "chains": [chain]}}
    assert firewall_summary(ev["firewall"]) == {"input_policy": "drop", "tcp_ports": [22, 80, 443]}
    assert status("firewall", ev, input_policy="drop") == "pass"
    assert status("firewall", ev, allowed_tcp_ports=[443, 80, 22]) == "pass"
    out = evaluate_check(check("firewall", allowed_tcp_ports=[22]), ev)
    assert out.status == "fail" and "also opens [80, 443]" in out.message
    open_chain = {**chain, "policy": "accept"}
    assert (
        status(
            "firewall",
            {"firewall": {"installed": True, "chains": [open_chain]}},
            input_policy="drop",
        )
        == "fail"
    )
    assert (
        status("firewall", {"firewall": {"installed": True, "chains": []}}, input_policy="drop")
        == "fail"
    )
    assert (
        status("firewall", {"firewall": {"installed": False, "chains": []}}, input_policy="drop")
        == "fail"
    )
    assert status("firewall", {"firewall": {"error": "nft failed"}}, input_policy="drop") == "error"
    assert status("firewall", {}, input_policy="drop") == "no_report"


def test_unexpected_evidence_shape_is_an_error_not_a_crash() -> None:
    out = evaluate_check(check("sysctl", values={"a": 1}), {"sysctl": {"values": ["a"]}})
    assert out.status == "error"


@pytest.mark.parametrize(
    ("a", "b", "sign"),
    [
        ("1.0", "1.0", 0),
        ("1.0-1", "1.0-2", -1),
        ("1.0~rc1", "1.0", -1),
        ("1:0.9", "2.0", 1),
        ("1.9.13p3-1+deb12u1", "1.9.13", 1),
        ("2.10", "2.9", 1),
        ("1.0a", "1.0", 1),
        ("9.2p1-2+deb12u3", "9.2p1-2+deb12u10", -1),
    ],
)
def test_debian_version_order(a: str, b: str, sign: int) -> None:
    result = compare_versions(a, b)
    assert (result > 0) - (result < 0) == sign


def _control(*checks: Check, severity: str = "high") -> Control:
    return Control("X-001", "t", "r", severity, AppliesTo(), (), checks, None)


def test_a_control_combines_its_checks() -> None:
    ev = {"ports": {"tcp": [23], "udp": []}, "packages": {"installed": {"telnetd": None}}}
    absent = check("package_absent", packages=["telnetd"])
    port23 = check("port", port=23, listening=False)
    result = evaluate_control(_control(absent, port23), [absent, port23], ev)
    assert result.status == "fail" and "port 23" in result.message
    assert result.expected[1] == {"port": 23, "protocol": "tcp/udp", "listening": False}
    assert result.actual[1] == {"listening": True, "protocols": ["tcp"]}
    # A failing check outweighs an error, an error outweighs missing evidence.
    tz = check("timezone", name="Asia/Dhaka")
    assert evaluate_control(_control(absent, tz), [absent, tz], ev).status == "no_report"
    assert evaluate_control(_control(port23, tz), [port23, tz], ev).status == "fail"
    only = evaluate_control(_control(absent), [absent], ev)
    assert only.status == "pass" and only.actual == {}


def test_evidence_request_asks_for_what_the_checks_need_only() -> None:
    checks = [
        check("package_installed", packages=["sudo", "curl"]),
        check("package_absent", packages=["telnetd"]),
        check("service", name="chrony", enabled=True),
        check("sshd_setting", setting="PermitRootLogin", equals="no"),
        check("sysctl", values={"a.b": 0}),
        check("file", path="/etc/x", contains="^a$"),
        check("file", path="/etc/x", mode="0644"),
        check("user", name="provision", present=True),
        check("port", port=22, listening=True),
        check("firewall", input_policy="drop"),
    ]
    assert evidence_request(checks) == {
        "os_release": True,
        "ports": True,
        "firewall": True,
        "packages": ["curl", "sudo", "telnetd"],
        "services": ["chrony"],
        "sshd": ["permitrootlogin"],
        "sysctl": ["a.b"],
        "users": ["provision"],
        "files": {"/etc/x": ["^a$"]},
    }
    assert evidence_request([]) == {"os_release": True}
