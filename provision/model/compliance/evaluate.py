"""Controls judged on the control node, from the evidence one module call collected.

Pure functions, no I/O. `evidence_request` says what a host must collect for a set
of (resolved) checks; `evaluate_check` judges one check over the collected
evidence; `evaluate_control` combines a control's checks into one
`ControlResult` with the expected and actual values as evidence.

Every check comes out `pass`, `fail`, `error` (the evidence says the host could
not be asked: sshd missing, a command that failed) or `no_report` (the evidence
the check needs is not there at all). A control with no evaluable evidence is
never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provision.model.compliance.model import ERROR, FAIL, NO_REPORT, PASS, ControlResult
from provision.model.standards.checks import CHECK_TYPES, normalise_sshd
from provision.model.standards.model import Check, Control

#: Which section of the evidence each check type reads (the module's section names).
SECTIONS: dict[str, str] = {
    "os_release": "os_release",
    "package_installed": "packages",
    "package_absent": "packages",
    "service": "services",
    "sshd_setting": "sshd",
    "sysctl": "sysctl",
    "file": "files",
    "user": "users",
    "port": "ports",
    "hardware": "hardware",
    "timezone": "timezone",
    "firewall": "firewall",
    "portal_https": "portals",
}
assert set(SECTIONS) == set(CHECK_TYPES), "every check type needs its evidence section"

#: Sections the compliance service collects on the control node, not the host's module:
#: `portals` is each registered portal's HTTPS answer as a visitor sees it.
CONTROL_NODE_SECTIONS = frozenset({"portals"})

#: systemd unit file states for which `systemctl is-enabled` succeeds.
ENABLED_STATES = frozenset(
    {"enabled", "enabled-runtime", "static", "alias", "indirect", "generated", "linked"}
)


@dataclass(frozen=True)
class CheckOutcome:
    status: str  # pass, fail, error, no_report
    expected: Any
    actual: Any
    message: str = ""


# -- what to collect ------------------------------------------------------------------


def evidence_request(checks: Iterable[Check]) -> dict[str, Any]:
    """The module's `request` for these resolved checks: only what they need.

    The OS release is always collected (it decides which controls apply).
    Sections the control node collects itself (CONTROL_NODE_SECTIONS) are not in it:
    see `control_node_sections`.
    """
    packages: set[str] = set()
    services: set[str] = set()
    sshd: set[str] = set()
    sysctl: set[str] = set()
    files: dict[str, set[str]] = {}
    users: set[str] = set()
    flags: set[str] = {"os_release"}
    for check in checks:
        f = check.fields
        if check.type in ("package_installed", "package_absent"):
            packages.update(str(p) for p in f["packages"])
        elif check.type == "service":
            services.add(str(f["name"]))
        elif check.type == "sshd_setting":
            sshd.add(str(f["setting"]).lower())
        elif check.type == "sysctl":
            sysctl.update(str(k) for k in f["values"])
        elif check.type == "file":
            patterns = files.setdefault(str(f["path"]), set())
            if f.get("contains") is not None:
                patterns.add(str(f["contains"]))
        elif check.type == "user":
            users.add(str(f["name"]))
        elif SECTIONS[check.type] not in CONTROL_NODE_SECTIONS:
            flags.add(SECTIONS[check.type])
    request: dict[str, Any] = {flag: True for flag in sorted(flags)}
    for name, values in (
        ("packages", packages),
        ("services", services),
        ("sshd", sshd),
        ("sysctl", sysctl),
        ("users", users),
    ):
        if values:
            request[name] = sorted(values)
    if files:
        request["files"] = {path: sorted(p) for path, p in sorted(files.items())}
    return request


def control_node_sections(checks: Iterable[Check]) -> frozenset[str]:
    """The evidence sections these checks need that the control node collects itself."""
    return frozenset(SECTIONS[c.type] for c in checks if SECTIONS[c.type] in CONTROL_NODE_SECTIONS)


# -- helpers ------------------------------------------------------------------------------


def _section(evidence: Mapping[str, Any], name: str) -> Mapping[str, Any] | CheckOutcome:
    """The section, or the outcome that says why it cannot be judged."""
    section = evidence.get(name)
    if not isinstance(section, Mapping):
        return CheckOutcome(NO_REPORT, None, None, f"no {name.replace('_', ' ')} evidence")
    if "error" in section:
        return CheckOutcome(ERROR, None, None, str(section["error"]))
    return section


def _result(ok: bool, expected: Any, actual: Any, why: str) -> CheckOutcome:
    return CheckOutcome(PASS if ok else FAIL, expected, actual, "" if ok else why)


def release_name(os_release: Mapping[str, Any] | None) -> str | None:
    """`debian-12` from the os_release section, or None."""
    if not isinstance(os_release, Mapping) or "error" in os_release:
        return None
    ident, version = os_release.get("id"), os_release.get("version_id")
    return f"{ident}-{version}" if ident and version else None


# -- Debian version comparison (dpkg's algorithm, as `dpkg --compare-versions`) ------------


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_version(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return int(epoch or 0), upstream, revision


def compare_versions(a: str, b: str) -> int:
    """<0, 0 or >0 as Debian version `a` is older than, equal to or newer than `b`."""
    ea, ua, ra = _split_version(a.strip())
    eb, ub, rb = _split_version(b.strip())
    if ea != eb:
        return ea - eb
    return _compare_part(ua, ub) or _compare_part(ra, rb)


# -- one function per check type -------------------------------------------------------------


def _os_release(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "os_release")
    if isinstance(section, CheckOutcome):
        return section
    expected = list(f["releases"])
    actual = release_name(section)
    if actual is None:
        return CheckOutcome(ERROR, expected, None, "/etc/os-release names no ID and VERSION_ID")
    return _result(actual in expected, expected, actual, f"{actual} is not a supported release")


def _package_installed(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "packages")
    if isinstance(section, CheckOutcome):
        return section
    wanted = [str(p) for p in f["packages"]]
    installed = section.get("installed") or {}
    if any(p not in installed for p in wanted):
        return CheckOutcome(NO_REPORT, wanted, None, "the packages were not all asked about")
    actual = {p: installed[p] for p in wanted}
    missing = [p for p in wanted if actual[p] is None]
    minimum = f.get("min_version")
    expected: Any = wanted if minimum is None else {p: f">= {minimum}" for p in wanted}
    if missing:
        return _result(False, expected, actual, "not installed: " + ", ".join(missing))
    if minimum is not None:
        old = [p for p in wanted if compare_versions(str(actual[p]), str(minimum)) < 0]
        if old:
            why = ", ".join(f"{p} {actual[p]}" for p in old) + f" < {minimum}"
            return _result(False, expected, actual, why)
    return _result(True, expected, actual, "")


def _package_absent(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "packages")
    if isinstance(section, CheckOutcome):
        return section
    wanted = [str(p) for p in f["packages"]]
    installed = section.get("installed") or {}
    if any(p not in installed for p in wanted):
        return CheckOutcome(NO_REPORT, [], None, "the packages were not all asked about")
    present = {p: installed[p] for p in wanted if installed[p] is not None}
    return _result(
        not present, {"absent": wanted}, present, "installed: " + ", ".join(sorted(present))
    )


def _service(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "services")
    if isinstance(section, CheckOutcome):
        return section
    name = str(f["name"])
    state = (section.get("units") or {}).get(name)
    expected = {k: f[k] for k in ("enabled", "running") if f.get(k) is not None}
    if not isinstance(state, Mapping):
        return CheckOutcome(NO_REPORT, expected, None, f"no state for unit {name}")
    enabled = state.get("enabled", "") in ENABLED_STATES
    running = state.get("active") == "active"
    actual = {"enabled": state.get("enabled") or state.get("load"), "active": state.get("active")}
    wrong = []
    if "enabled" in expected and enabled != expected["enabled"]:
        wrong.append(f"{name} is {'enabled' if enabled else 'not enabled'}")
    if "running" in expected and running != expected["running"]:
        wrong.append(f"{name} is {'running' if running else 'not running'}")
    return _result(not wrong, expected, actual, "; ".join(wrong))


def _sshd_setting(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "sshd")
    if isinstance(section, CheckOutcome):
        return section
    setting = str(f["setting"]).lower()
    settings = section.get("settings") or {}
    if setting not in settings:
        return CheckOutcome(NO_REPORT, None, None, f"sshd setting {setting} was not asked about")
    raw = settings[setting]

    def norm(value: Any) -> str:
        return normalise_sshd(setting, str(value)).lower()

    if "equals" in f and f["equals"] is not None:
        expected: Any = {"equals": normalise_sshd(setting, str(f["equals"]))}
    elif f.get("one_of") is not None:
        expected = {"one_of": [normalise_sshd(setting, str(v)) for v in f["one_of"]]}
    else:
        expected = {"subset_of": [normalise_sshd(setting, str(v)) for v in f["subset_of"]]}
    if raw is None:
        return CheckOutcome(ERROR, expected, None, f"sshd -T does not print {setting}")
    actual = normalise_sshd(setting, str(raw))
    if "equals" in expected:
        ok = norm(raw) == norm(f["equals"])
        why = f"{setting} is {actual}, not {expected['equals']}"
    elif "one_of" in expected:
        ok = norm(raw) in {norm(v) for v in f["one_of"]}
        why = f"{setting} is {actual}, not one of {', '.join(expected['one_of'])}"
    else:
        allowed = {norm(v) for v in f["subset_of"]}
        extra = [v for v in str(raw).split(",") if v.strip() and norm(v) not in allowed]
        ok = not extra
        why = f"{setting} also allows {', '.join(extra)}"
    return _result(ok, expected, actual, why)


def _sysctl(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "sysctl")
    if isinstance(section, CheckOutcome):
        return section
    values = section.get("values") or {}
    expected = {str(k): _sysctl_text(v) for k, v in f["values"].items()}
    if any(k not in values for k in expected):
        return CheckOutcome(NO_REPORT, expected, None, "the kernel parameters were not all asked")
    actual = {k: values[k] for k in expected}
    unknown = [k for k, v in actual.items() if v is None]
    if unknown:
        why = "no such kernel parameter: " + ", ".join(unknown)
        return CheckOutcome(ERROR, expected, actual, why)
    wrong = [f"{k} is {actual[k]}, not {v}" for k, v in expected.items() if actual[k] != v]
    return _result(not wrong, expected, actual, "; ".join(wrong))


def _sysctl_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return " ".join(str(value).split())


def _file(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "files")
    if isinstance(section, CheckOutcome):
        return section
    path = str(f["path"])
    entry = (section.get("files") or {}).get(path)
    must_exist = f.get("exists", True) is not False
    expected: dict[str, Any] = {"path": path, "exists": must_exist}
    for key in ("mode", "owner", "group", "contains"):
        if must_exist and f.get(key) is not None:
            expected[key] = str(f[key])
    if not isinstance(entry, Mapping):
        return CheckOutcome(NO_REPORT, expected, None, f"{path} was not asked about")
    if "error" in entry and not entry.get("exists"):
        return CheckOutcome(ERROR, expected, None, f"{path}: {entry['error']}")
    exists = bool(entry.get("exists"))
    actual: dict[str, Any] = {"exists": exists}
    if not exists or not must_exist:
        why = f"{path} is missing" if must_exist else f"{path} exists"
        return _result(exists == must_exist, expected, actual, why)
    wrong = []
    for key in ("mode", "owner", "group"):
        if key in expected:
            actual[key] = entry.get(key)
            if key == "mode":
                same = int(str(entry.get(key) or "-1"), 8) == int(expected[key], 8)
            else:
                same = entry.get(key) == expected[key]
            if not same:
                wrong.append(f"{path} {key} is {entry.get(key)}, not {expected[key]}")
    if "contains" in expected:
        if "error" in entry:
            return CheckOutcome(ERROR, expected, actual, f"{path}: {entry['error']}")
        matches = entry.get("matches") or {}
        if expected["contains"] not in matches:
            return CheckOutcome(NO_REPORT, expected, actual, f"{path}: line not asked about")
        line = matches[expected["contains"]]
        if isinstance(line, Mapping):
            return CheckOutcome(ERROR, expected, actual, f"{path}: {line.get('error')}")
        actual["line"] = line
        if line is None:
            wrong.append(f"{path} has no line matching {expected['contains']}")
    return _result(not wrong, expected, actual, "; ".join(wrong))


def _user(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "users")
    if isinstance(section, CheckOutcome):
        return section
    name = str(f["name"])
    users = section.get("users") or {}
    expected = {"name": name, "present": bool(f["present"])}
    if name not in users:
        return CheckOutcome(NO_REPORT, expected, None, f"account {name} was not asked about")
    present = users[name] is not None
    why = f"account {name} {'exists' if present else 'does not exist'}"
    return _result(present == expected["present"], expected, {"present": present}, why)


def _port(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "ports")
    if isinstance(section, CheckOutcome):
        return section
    port = int(f["port"])
    protocols = [str(f["protocol"])] if f.get("protocol") else ["tcp", "udp"]
    expected = {"port": port, "protocol": "/".join(protocols), "listening": bool(f["listening"])}
    if any(not isinstance(section.get(p), list) for p in protocols):
        return CheckOutcome(NO_REPORT, expected, None, "no listening sockets in the evidence")
    on = [p for p in protocols if port in section[p]]
    listening = bool(on)
    actual = {"listening": listening, "protocols": on}
    why = f"port {port} is {'listening (' + '/'.join(on) + ')' if on else 'not listening'}"
    return _result(listening == expected["listening"], expected, actual, why)


def _hardware(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "hardware")
    if isinstance(section, CheckOutcome):
        return section
    expected = {k: int(f[k]) for k in ("cpu_cores", "memory_mb", "disk_gb") if f.get(k) is not None}
    if any(not isinstance(section.get(k), int | float) for k in expected):
        return CheckOutcome(NO_REPORT, expected, None, "hardware facts are incomplete")
    actual: dict[str, Any] = {k: section[k] for k in expected}
    low = [f"{k} {actual[k]} < {v}" for k, v in expected.items() if actual[k] < v]
    if section.get("source"):
        actual["source"] = section["source"]
    why = "; ".join(low)
    if low and section.get("container"):
        why += (
            f" (measured in a {section['container']} container, which sees its host's"
            " hardware: give the host's equipment in its register row)"
        )
    return _result(not low, {k: f">= {v}" for k, v in expected.items()}, actual, why)


#: The register's equipment columns, as host variables, and the hardware facts they give.
EQUIPMENT_VARS = {"cpu_cores": "provision_cpu_cores", "disk_gb": "provision_disk_gb"}


def declared_equipment(hostvars: Mapping[str, Any]) -> dict[str, int] | None:
    """The equipment a host's register row declares, as hardware facts; None if incomplete."""
    try:
        declared = {fact: int(hostvars[var]) for fact, var in EQUIPMENT_VARS.items()}
        declared["memory_mb"] = int(hostvars["provision_ram_gb"]) * 1024
    except (KeyError, TypeError, ValueError):
        return None
    return declared


def with_declared_equipment(
    evidence: Mapping[str, Any], equipment: Mapping[str, int] | None
) -> Mapping[str, Any]:
    """The evidence, judged on the register's equipment where the host is a container.

    A container (the lab's systemd-nspawn hosts, say) sees the CPUs, memory and
    disk of the machine it runs on, not equipment of its own; what it has is what
    its register row declares, as for a site's machine on paper. A machine of its
    own is always judged on what it measures.
    """
    section = evidence.get("hardware")
    if not isinstance(section, Mapping) or not section.get("container") or not equipment:
        return evidence
    measured = {k: section.get(k) for k in ("cpu_cores", "memory_mb", "disk_gb")}
    hardware = {
        **equipment,
        "container": section["container"],
        "source": f"register (a {section['container']} container; measured {measured})",
    }
    return {**evidence, "hardware": hardware}


def _timezone(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "timezone")
    if isinstance(section, CheckOutcome):
        return section
    expected = str(f["name"])
    actual = section.get("name")
    if actual is None:
        return CheckOutcome(ERROR, expected, None, "the time zone could not be read")
    return _result(actual == expected, expected, actual, f"time zone is {actual}, not {expected}")


def _ports_of(right: Any) -> list[int]:
    if isinstance(right, int):
        return [right]
    if isinstance(right, Mapping):
        if "set" in right:
            return [p for item in right["set"] for p in _ports_of(item)]
        if "range" in right:
            low, high = (int(x) for x in right["range"])
            return list(range(low, min(high, low + 1024) + 1))
    return []


def firewall_summary(section: Mapping[str, Any]) -> dict[str, Any]:
    """The input policy and the TCP ports accept rules open, from the input chains."""
    chains = section.get("chains") or []
    policy = "drop" if any(c.get("policy") == "drop" for c in chains) else "accept"
    ports: set[int] = set()
    for chain in chains:
        for expr in chain.get("rules") or []:
            statements = [s for s in expr if isinstance(s, Mapping)]
            if not any("accept" in s for s in statements):
                continue
            for statement in statements:
                match = statement.get("match")
                if not isinstance(match, Mapping):
                    continue
                payload = (match.get("left") or {}).get("payload") or {}
                if payload.get("field") == "dport" and payload.get("protocol") in ("tcp", "th"):
                    ports.update(_ports_of(match.get("right")))
    return {"input_policy": policy, "tcp_ports": sorted(ports)}


def _firewall(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    section = _section(ev, "firewall")
    if isinstance(section, CheckOutcome):
        return section
    expected: dict[str, Any] = {}
    if f.get("input_policy") is not None:
        expected["input_policy"] = str(f["input_policy"])
    if f.get("allowed_tcp_ports") is not None:
        expected["tcp_ports"] = sorted(int(p) for p in f["allowed_tcp_ports"])
    if not section.get("installed"):
        return _result(False, expected, {"nft": "not installed"}, "nft is not installed")
    summary = firewall_summary(section)
    actual = {k: summary[k] for k in expected}
    wrong = []
    if "input_policy" in expected and summary["input_policy"] != expected["input_policy"]:
        wrong.append(f"input policy is {summary['input_policy']}, not {expected['input_policy']}")
    if "tcp_ports" in expected and summary["tcp_ports"] != expected["tcp_ports"]:
        opened = set(summary["tcp_ports"])
        extra = sorted(opened - set(expected["tcp_ports"]))
        missing = sorted(set(expected["tcp_ports"]) - opened)
        parts = [f"also opens {extra}"] if extra else []
        parts += [f"closes {missing}"] if missing else []
        wrong.append("TCP: " + ", ".join(parts))
    return _result(not wrong, expected, actual, "; ".join(wrong))


#: Portal statuses (provision.portal.health) whose certificate verified; the days left decide.
_VERIFIED = ("ok", "expiring")


def _portal_https(f: Mapping[str, Any], ev: Mapping[str, Any]) -> CheckOutcome:
    """Every registered portal verified and with at least `min_days_left` days left.

    The evidence is the control node's: {"portals": [{domain, status, days_left,
    message}, …]}, one item per portal the register gives the host. A host with no
    portal passes (there is nothing to serve) with actual []. The actual value names
    every portal's status, and the days left of the bad ones only, so that a passing
    control's evidence does not change from one day to the next.
    """
    section = _section(ev, "portals")
    if isinstance(section, CheckOutcome):
        return section
    minimum = int(f["min_days_left"])
    expected = {"status": "ok", "min_days_left": minimum}
    portals = section.get("portals")
    if not isinstance(portals, list):
        return CheckOutcome(NO_REPORT, expected, None, "no portal health in the evidence")
    if not portals:
        return CheckOutcome(PASS, expected, [], "no portal is registered for this host")
    actual: list[dict[str, Any]] = []
    bad: list[str] = []
    for portal in sorted(portals, key=lambda p: str(p.get("domain"))):
        domain = str(portal.get("domain"))
        status = str(portal.get("status"))
        days = portal.get("days_left")
        why = str(portal.get("message") or status)
        if status in _VERIFIED:
            if not isinstance(days, int | float):
                status, why = "untrusted", "no certificate information"
            elif days < minimum:
                status, why = "expiring", f"certificate expires in {int(days)} days (< {minimum})"
            else:
                status = "ok"
        item: dict[str, Any] = {"domain": domain, "status": status}
        if status != "ok":
            item["days_left"] = int(days) if isinstance(days, int | float) else None
            bad.append(f"{domain}: {why}")
        actual.append(item)
    return _result(not bad, expected, actual, "; ".join(bad))


EVALUATORS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], CheckOutcome]] = {
    "os_release": _os_release,
    "package_installed": _package_installed,
    "package_absent": _package_absent,
    "service": _service,
    "sshd_setting": _sshd_setting,
    "sysctl": _sysctl,
    "file": _file,
    "user": _user,
    "port": _port,
    "hardware": _hardware,
    "timezone": _timezone,
    "firewall": _firewall,
    "portal_https": _portal_https,
}
assert set(EVALUATORS) == set(CHECK_TYPES), "every check type needs its evaluator"


def evaluate_check(check: Check, evidence: Mapping[str, Any]) -> CheckOutcome:
    """One resolved check over a host's evidence."""
    try:
        return EVALUATORS[check.type](check.fields, evidence)
    except (KeyError, TypeError, ValueError) as exc:  # evidence of an unexpected shape
        return CheckOutcome(ERROR, check.as_dict(), None, f"cannot evaluate: {exc!r}")


#: How a control's checks combine: the first status found in this order wins.
_PRECEDENCE = (FAIL, ERROR, NO_REPORT, PASS)


def combine(control: Control, outcomes: Sequence[CheckOutcome]) -> ControlResult:
    """One control's result from its checks' outcomes (in the order of its checks)."""
    if not outcomes:
        return ControlResult(control.id, NO_REPORT, control.severity, message="no check")
    statuses = {o.status for o in outcomes}
    status = next(s for s in _PRECEDENCE if s in statuses)
    # A failing control says what failed; a passing one keeps what its checks said
    # about the pass (WEB-001's "no portal is registered for this host").
    message = "; ".join(
        o.message for o in outcomes if o.message and (status == PASS or o.status != PASS)
    )
    if len(outcomes) == 1:
        expected, actual = outcomes[0].expected, outcomes[0].actual
    else:
        expected = [o.expected for o in outcomes]
        actual = [o.actual for o in outcomes]
    return ControlResult(control.id, status, control.severity, expected, actual, message)


def evaluate_control(
    control: Control, checks: Sequence[Check], evidence: Mapping[str, Any]
) -> ControlResult:
    """A control's result: its resolved `checks` judged over the evidence."""
    return combine(control, [evaluate_check(c, evidence) for c in checks])
