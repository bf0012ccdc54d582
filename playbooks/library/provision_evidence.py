#!/usr/bin/python3
# Copyright: provision contributors
# Read-only evidence collection for compliance audits (see docs/compliance.md).
"""Collect, in one call, every piece of evidence a host's applicable controls need."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: provision_evidence
short_description: Collect compliance evidence from a host in one read-only pass
description:
  - Reads the OS release, installed packages, systemd unit states, the effective
    sshd settings, kernel parameters, file metadata and matching lines, local
    accounts, listening ports, hardware, the time zone and the nftables input
    chains, as the control node asked for. Changes nothing, ever.
  - The control node (provision compliance run) evaluates the controls; this
    module only reports what it sees. A section that cannot be read comes back as
    C({"error": "..."}) so that the other sections still count.
options:
  request:
    description: What to collect (computed by provision from the applicable checks).
    type: dict
    required: true
author: provision
"""

EXAMPLES = r"""
- name: Collect the evidence the standard's controls need
  provision_evidence:
    request:
      packages: [sudo, telnetd]
      services: [chrony]
      sshd: [permitrootlogin]
      sysctl: [net.ipv4.tcp_syncookies]
      files: {/etc/chrony/chrony.conf: ["^(pool|server) \\S+ iburst"]}
      users: [provision]
      ports: true
      hardware: true
      timezone: true
      firewall: true
"""

RETURN = r"""
evidence:
  description: The evidence, one key per requested section.
  returned: always
  type: dict
"""

import glob  # noqa: E402
import grp  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

#: Largest part of a file read when its lines are matched.
MAX_READ = 1 << 20
TIMEOUT = 60


def _run(args):
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=TIMEOUT, check=False, env=_env()
    )
    return proc.returncode, proc.stdout, proc.stderr.strip()


def _env():
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin:" + env.get("PATH", "")
    return env


def os_release(_wanted):
    values = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    key, sep, value = line.strip().partition("=")
                    if sep:
                        values[key] = value.strip().strip("\"'")
            break
    if not values:
        return {"error": "no /etc/os-release"}
    return {
        "id": values.get("ID", ""),
        "version_id": values.get("VERSION_ID", ""),
        "pretty_name": values.get("PRETTY_NAME", ""),
    }


def packages(wanted):
    """Each wanted package's version when installed, else None."""
    if not shutil.which("dpkg-query", path=_env()["PATH"]):
        return {"error": "dpkg-query not found: not a Debian-family host"}
    rc, out, err = _run(["dpkg-query", "-W", "-f=${Package}\t${db:Status-Status}\t${Version}\n"])
    if rc != 0:
        return {"error": "dpkg-query failed: " + err[:300]}
    found = {}
    want = set(wanted)
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] in want and parts[1] == "installed":
            found[parts[0]] = parts[2]
    return {"installed": {name: found.get(name) for name in sorted(want)}}


def services(wanted):
    if not shutil.which("systemctl", path=_env()["PATH"]):
        return {"error": "systemctl not found"}
    units = sorted(set(wanted))
    rc, out, err = _run(
        ["systemctl", "show", "--property=Id,LoadState,UnitFileState,ActiveState", "--", *units]
    )
    if rc != 0 and not out:
        return {"error": "systemctl show failed: " + err[:300]}
    blocks = [b for b in out.strip().split("\n\n")]
    states = {}
    for unit, block in zip(units, blocks):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        states[unit] = {
            "load": props.get("LoadState", ""),
            "enabled": props.get("UnitFileState", ""),
            "active": props.get("ActiveState", ""),
        }
    return {"units": states}


def sshd(wanted):
    binary = shutil.which("sshd", path=_env()["PATH"])
    if not binary:
        return {"error": "sshd is not installed"}
    rc, out, err = _run([binary, "-T"])
    if rc != 0:
        return {"error": "sshd -T failed: " + err[:300]}
    settings = {}
    for line in out.splitlines():
        key, _, value = line.strip().partition(" ")
        key = key.lower()
        if key in settings:
            settings[key] += "," + value
        else:
            settings[key] = value
    want = {w.lower() for w in wanted}
    return {"settings": {k: settings.get(k) for k in sorted(want)}}


def sysctl(wanted):
    values = {}
    for key in sorted(set(wanted)):
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, encoding="utf-8") as handle:
                values[key] = " ".join(handle.read().split())
        except OSError:
            values[key] = None
    return {"values": values}


def _name(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def files(wanted):
    result = {}
    for path in sorted(wanted):
        patterns = wanted[path] or []
        try:
            st = os.stat(path)
        except FileNotFoundError:
            result[path] = {"exists": False}
            continue
        except OSError as exc:
            result[path] = {"error": str(exc)}
            continue
        kind = "directory" if stat.S_ISDIR(st.st_mode) else "file"
        entry = {
            "exists": True,
            "type": kind,
            "mode": "%04o" % stat.S_IMODE(st.st_mode),
            "owner": _name(pwd.getpwuid, st.st_uid),
            "group": _name(grp.getgrgid, st.st_gid),
        }
        if patterns and kind == "file":
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    text = handle.read(MAX_READ)
            except OSError as exc:
                entry["error"] = str(exc)
            else:
                matches = {}
                for pattern in patterns:
                    try:
                        found = re.search(pattern, text, re.MULTILINE)
                    except re.error as exc:
                        matches[pattern] = {"error": "bad pattern: %s" % exc}
                        continue
                    if found is None:
                        matches[pattern] = None
                    else:
                        start = text.rfind("\n", 0, found.start()) + 1
                        end = text.find("\n", found.end())
                        matches[pattern] = text[start : end if end >= 0 else len(text)][:500]
                entry["matches"] = matches
        result[path] = entry
    return {"files": result}


def users(wanted):
    result = {}
    for name in sorted(set(wanted)):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            result[name] = None
        else:
            result[name] = {"uid": entry.pw_uid, "home": entry.pw_dir, "shell": entry.pw_shell}
    return {"users": result}


def _listening(path, states):
    ports = set()
    try:
        with open(path, encoding="ascii") as handle:
            next(handle, None)
            for line in handle:
                fields = line.split()
                if len(fields) > 3 and fields[3] in states:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    except OSError:
        pass
    return ports


def ports(_wanted):
    # LISTEN for TCP; unconnected (07) UDP sockets are the ones that receive.
    tcp = _listening("/proc/net/tcp", {"0A"}) | _listening("/proc/net/tcp6", {"0A"})
    udp = _listening("/proc/net/udp", {"07"}) | _listening("/proc/net/udp6", {"07"})
    return {"tcp": sorted(tcp), "udp": sorted(udp)}


def _root_disk_bytes():
    """Size of the disk holding /, from sysfs; the root file system's size if none."""
    try:
        dev = os.stat("/").st_dev
        major, minor = os.major(dev), os.minor(dev)
        link = os.path.realpath("/sys/dev/block/%d:%d" % (major, minor))
        if os.path.isfile(os.path.join(link, "partition")):
            link = os.path.dirname(link)
        with open(os.path.join(link, "size"), encoding="ascii") as handle:
            return int(handle.read().strip()) * 512, "block device"
    except (OSError, ValueError):
        usage = shutil.disk_usage("/")
        return usage.total, "root file system"


def _container():
    """The container manager this host runs under, or "" on a machine of its own.

    A container sees the hardware of the machine it runs on, so the control node
    judges its equipment on what the site register declares instead.
    """
    try:
        with open("/run/systemd/container", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        pass
    try:
        with open("/proc/1/environ", "rb") as handle:
            for item in handle.read().split(b"\0"):
                if item.startswith(b"container="):
                    return item[len(b"container="):].decode("ascii", "replace")
    except OSError:
        pass
    return ""


def hardware(_wanted):
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 0
    memory_kb = 0
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
                break
    disk, source = _root_disk_bytes()
    return {
        "cpu_cores": cores,
        "memory_mb": memory_kb // 1024,
        "disk_gb": round(disk / 1e9, 1),
        "disk_source": source,
        "container": _container(),
    }


def timezone(_wanted):
    if os.path.islink("/etc/localtime"):
        target = os.path.realpath("/etc/localtime")
        if "/zoneinfo/" in target:
            return {"name": target.split("/zoneinfo/", 1)[1], "source": "/etc/localtime"}
    if os.path.isfile("/etc/timezone"):
        with open("/etc/timezone", encoding="utf-8") as handle:
            return {"name": handle.read().strip(), "source": "/etc/timezone"}
    return {"name": "Etc/UTC" if not os.path.exists("/etc/localtime") else None,
            "source": "default"}


def firewall(_wanted):
    binary = shutil.which("nft", path=_env()["PATH"])
    if not binary:
        return {"installed": False, "chains": []}
    rc, out, err = _run([binary, "-j", "list", "ruleset"])
    if rc != 0:
        return {"error": "nft -j list ruleset failed: " + err[:300]}
    try:
        items = json.loads(out or "{}").get("nftables", [])
    except ValueError as exc:
        return {"error": "nft printed no JSON: %s" % exc}
    chains = []
    for item in items:
        chain = item.get("chain")
        if chain and chain.get("hook") == "input":
            chains.append(
                {
                    "family": chain.get("family"),
                    "table": chain.get("table"),
                    "name": chain.get("name"),
                    "policy": chain.get("policy", "accept"),
                    "rules": [],
                }
            )
    for item in items:
        rule = item.get("rule")
        if not rule:
            continue
        for chain in chains:
            if (rule.get("family"), rule.get("table"), rule.get("chain")) == (
                chain["family"],
                chain["table"],
                chain["name"],
            ):
                chain["rules"].append(rule.get("expr", []))
    return {"installed": True, "chains": chains}


SECTIONS = {
    "os_release": os_release,
    "packages": packages,
    "services": services,
    "sshd": sshd,
    "sysctl": sysctl,
    "files": files,
    "users": users,
    "ports": ports,
    "hardware": hardware,
    "timezone": timezone,
    "firewall": firewall,
}


def collect(request):
    evidence = {"collected_at": time.time()}
    for section, wanted in sorted(request.items()):
        function = SECTIONS.get(section)
        if function is None:
            evidence[section] = {"error": "unknown section %s" % section}
            continue
        try:
            evidence[section] = function(wanted)
        except Exception as exc:  # noqa: BLE001 (one broken section must not hide the others)
            evidence[section] = {"error": "%s: %s" % (type(exc).__name__, exc)}
    return evidence


def main():
    module = AnsibleModule(
        argument_spec={"request": {"type": "dict", "required": True}},
        supports_check_mode=True,
    )
    request = dict(module.params["request"])
    request.setdefault("os_release", True)
    module.exit_json(changed=False, evidence=collect(request))


if __name__ == "__main__":
    main()
