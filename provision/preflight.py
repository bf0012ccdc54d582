"""Preflight sweep: which hosts answer over SSH, how fast, and what they are.

One SSH connection per host (paramiko, no Ansible), many at once with a bound,
each with a timeout: a sweep of hundreds of hosts over bad links takes seconds.
Each host is reached the way Ansible would reach it (its `ansible_host`,
`ansible_port`, `ansible_user`, `ansible_ssh_private_key_file` from the
inventory), with the host keys recorded in `inventories/<env>/.ssh/known_hosts`,
strictly: an unknown or changed key is reported, never accepted.

One command collects the OS release, CPU cores, memory and root disk size, and
each host is compared with the equipment minimum of its role.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provision import keys, ssh
from provision.errors import ExitStatus, InputError
from provision.inventory import slice_inventory
from provision.inventory.targets import select_targets
from provision.settings import Settings

DEFAULT_CONCURRENCY = 50
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Minimum:
    cpu_cores: int
    memory_mb: int
    disk_gb: int


#: The equipment minimum per role: the defaults of the baseline standard's HW-001…003
#: controls. A host's inventory variables of the same names (the standard's
#: parameters, e.g. hardware_pc_min_memory_mb) override them per group or host.
MINIMUMS: dict[str, tuple[str, Minimum]] = {
    "lab_pc": ("hardware_pc", Minimum(2, 3500, 100)),
    "digital_centre_pc": ("hardware_pc", Minimum(2, 3500, 100)),
    "field_server": ("hardware_field_server", Minimum(4, 7500, 450)),
    "portal_host": ("hardware_portal_host", Minimum(4, 15000, 450)),
}

#: What the sweep asks each host; plain POSIX tools every Debian has.
PROBE = (
    '. /etc/os-release 2>/dev/null; echo "os=${PRETTY_NAME:-unknown}"; '
    'echo "cores=$(nproc)"; '
    "awk '/^MemTotal:/{print \"mem_kb=\" $2}' /proc/meminfo; "
    "df -Pk / | awk 'NR==2{print \"disk_kb=\" $2}'"
)


@dataclass(frozen=True)
class HostPreflight:
    host: str
    address: str
    role: str
    district: str
    #: reachable, or why not: refused, timeout, unreachable, auth_failed,
    #: host_key_mismatch, host_key_unknown, ssh_error
    status: str
    message: str = ""
    #: the TCP handshake: one round trip over the link
    latency_ms: float | None = None
    #: from the first packet to the answer of the probe
    seconds: float = 0.0
    os_release: str = ""
    cpu_cores: int | None = None
    memory_mb: int | None = None
    disk_gb: int | None = None
    #: None when unknown (unreachable, or a role without a minimum)
    meets_minimum: bool | None = None
    shortfalls: tuple[str, ...] = ()

    @property
    def reachable(self) -> bool:
        return self.status == "reachable"


@dataclass(frozen=True)
class DistrictSummary:
    district: str
    hosts: int
    reachable: int
    unreachable: int
    below_minimum: int
    median_latency_ms: float | None


@dataclass(frozen=True)
class PreflightResult:
    hosts: list[HostPreflight]
    districts: list[DistrictSummary]
    seconds: float
    saved_to: Path | None = None

    @property
    def exit_status(self) -> ExitStatus:
        """3 when a host key changed (never just "unreachable"), 5 any other unreachable."""
        if any(h.status == "host_key_mismatch" for h in self.hosts):
            return ExitStatus.BAD_INPUT
        if any(not h.reachable for h in self.hosts):
            return ExitStatus.HOSTS_UNREACHABLE
        return ExitStatus.SUCCESS

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "hosts": [{**asdict(h), "reachable": h.reachable} for h in self.hosts],
            "districts": [asdict(d) for d in self.districts],
        }


@dataclass(frozen=True)
class Target:
    host: str
    address: str
    port: int
    user: str
    key: Path
    role: str
    district: str
    minimum: Minimum | None


def _minimum(role: str, values: Mapping[str, Any]) -> Minimum | None:
    if role not in MINIMUMS:
        return None
    prefix, default = MINIMUMS[role]

    def value(name: str, fallback: int) -> int:
        try:
            return int(values.get(f"{prefix}_min_{name}", fallback))
        except (TypeError, ValueError):
            return fallback

    return Minimum(
        value("cpu_cores", default.cpu_cores),
        value("memory_mb", default.memory_mb),
        value("disk_gb", default.disk_gb),
    )


def targets(settings: Settings, selection: str | None) -> list[Target]:
    """The selected hosts, with how Ansible would log into each."""
    loaded, names = select_targets(settings.inventory_path, selection)
    resolved: dict[str, dict[str, Any]] = slice_inventory(loaded.inventory, names, loaded.folder)[
        "all"
    ]["hosts"]
    default_key = keys.key_path(settings)
    chosen = []
    for name, values in resolved.items():
        key = values.get("ansible_ssh_private_key_file") or values.get("ansible_private_key_file")
        role = str(values.get("provision_role", ""))
        chosen.append(
            Target(
                host=name,
                address=str(values.get("ansible_host") or name),
                port=int(values.get("ansible_port") or 22),
                user=str(values.get("ansible_user") or settings.automation_user),
                key=Path(str(key)).expanduser() if key else default_key,
                role=role,
                district=str(values.get("provision_district") or "-"),
                minimum=_minimum(role, values),
            )
        )
    return chosen


def _parse(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def probe(target: Target, known_hosts: Path, timeout: float) -> HostPreflight:
    """Connect to one host, ask it what it is, compare it with its minimum."""
    started = time.monotonic()
    base: dict[str, Any] = {
        "host": target.host,
        "address": target.address,
        "role": target.role,
        "district": target.district,
    }
    try:
        with ssh.connect(
            target.address,
            host=target.host,
            port=target.port,
            user=target.user,
            known_hosts=known_hosts,
            key_path=target.key,
            timeout=timeout,
        ) as conn:
            answer = conn.run(PROBE, timeout=timeout)
            latency = conn.tcp_seconds * 1000
    except ssh.SshError as exc:
        return HostPreflight(
            **base, status=exc.kind, message=exc.message, seconds=time.monotonic() - started
        )
    except InputError as exc:  # the key named by the inventory cannot be read
        return HostPreflight(
            **base, status="auth_failed", message=str(exc), seconds=time.monotonic() - started
        )
    facts = _parse(answer.stdout)
    try:
        cores = int(facts["cores"])
        memory_mb = int(facts["mem_kb"]) // 1024
        disk_gb = round(int(facts["disk_kb"]) / 1024**2)
    except (KeyError, ValueError):
        return HostPreflight(
            **base,
            status="ssh_error",
            message=f"the probe's answer was not understood (exit {answer.rc})",
            latency_ms=round(latency, 2),
            seconds=time.monotonic() - started,
        )
    shortfalls: list[str] = []
    if target.minimum is not None:
        want = target.minimum
        if cores < want.cpu_cores:
            shortfalls.append(f"cpu_cores {cores} < {want.cpu_cores}")
        if memory_mb < want.memory_mb:
            shortfalls.append(f"memory_mb {memory_mb} < {want.memory_mb}")
        if disk_gb < want.disk_gb:
            shortfalls.append(f"disk_gb {disk_gb} < {want.disk_gb}")
    return HostPreflight(
        **base,
        status="reachable",
        latency_ms=round(latency, 2),
        seconds=time.monotonic() - started,
        os_release=facts.get("os", ""),
        cpu_cores=cores,
        memory_mb=memory_mb,
        disk_gb=disk_gb,
        meets_minimum=None if target.minimum is None else not shortfalls,
        shortfalls=tuple(shortfalls),
    )


def summarise(hosts: list[HostPreflight]) -> list[DistrictSummary]:
    by_district: dict[str, list[HostPreflight]] = {}
    for h in hosts:
        by_district.setdefault(h.district, []).append(h)
    summary = []
    for district, members in sorted(by_district.items()):
        latencies = sorted(h.latency_ms for h in members if h.latency_ms is not None)
        median = latencies[len(latencies) // 2] if latencies else None
        summary.append(
            DistrictSummary(
                district,
                hosts=len(members),
                reachable=sum(h.reachable for h in members),
                unreachable=sum(not h.reachable for h in members),
                below_minimum=sum(h.meets_minimum is False for h in members),
                median_latency_ms=median,
            )
        )
    return summary


def sweep(
    settings: Settings,
    selection: str | None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    on_host: Callable[[HostPreflight], None] | None = None,
    save: bool = True,
) -> PreflightResult:
    """Sweep the selected hosts; results are also saved as JSON under the state dir."""
    chosen = targets(settings, selection)
    known_hosts = keys.known_hosts_path(settings.inventory_path)
    started = time.monotonic()

    def one(target: Target) -> HostPreflight:
        result = probe(target, known_hosts, timeout)
        if on_host is not None:
            on_host(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(chosen)))) as pool:
        hosts = list(pool.map(one, chosen))
    result = PreflightResult(hosts, summarise(hosts), time.monotonic() - started)
    if save:
        result = PreflightResult(
            result.hosts, result.districts, result.seconds, _save(settings, result)
        )
    return result


def _save(settings: Settings, result: PreflightResult) -> Path:
    """`<state>/preflight/<utc time>.json`, and `latest.json` beside it."""
    folder = settings.state_path / "preflight"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    data = {"env": settings.env, "finished_at": stamp, **result.as_dict()}
    path = folder / f"{stamp}.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
    latest = folder / "latest.json.tmp"
    latest.write_text(path.read_text())
    latest.replace(folder / "latest.json")
    return path
