"""Preflight sweep: which hosts answer over SSH, how fast, and what they are.

One SSH connection per host (paramiko, no Ansible), many at once with a bound,
each with a timeout: a sweep of hundreds of hosts over bad links takes seconds.
Each host is reached the way Ansible would reach it (its `ansible_host`,
`ansible_port`, `ansible_user`, `ansible_ssh_private_key_file` from the
inventory), with the host keys recorded in `inventories/<env>/.ssh/known_hosts`,
strictly: an unknown or changed key is reported, never accepted.

One command collects the OS release, CPU cores, memory and root disk size, and
each host is compared with the equipment minimum the standards set for its role:
the `hardware` checks of the controls that apply to it (HW-001…003 of the
baseline), with the host's own parameter values, so an inventory override
(`hardware_pc_min_memory_mb` in group_vars) counts here as it does in compliance.

Each sweep is recorded in the state store as the hosts answer (a sweep cut short
keeps what it learned): `provision preflight show` reads one back.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from provision.access import keys
from provision.errors import ExitStatus, InputError
from provision.infra import ssh
from provision.infra.identity import current_user
from provision.infra.store import open_store
from provision.infra.store.preflight_records import PreflightRecords, SweepInfo
from provision.inventory import slice_inventory
from provision.inventory.files import LoadedInventory
from provision.inventory.targets import select_targets
from provision.model.inventory.targets import Minimum, Target
from provision.model.preflight import HostPreflight
from provision.settings import Settings
from provision.standards import (
    Standard,
    VarLayer,
    control_parameters,
    find_standards,
    host_layers,
    load_standard,
    resolve_check,
    resolve_parameters,
)

DEFAULT_CONCURRENCY = 50
DEFAULT_TIMEOUT = 5.0


#: Results are written to the store in batches of this many, or at least this often.
SAVE_BATCH = 50
SAVE_EVERY = 0.5


#: What the sweep asks each host; plain POSIX tools every Debian has.
PROBE = (
    '. /etc/os-release 2>/dev/null; echo "os=${PRETTY_NAME:-unknown}"; '
    'echo "cores=$(nproc)"; '
    "awk '/^MemTotal:/{print \"mem_kb=\" $2}' /proc/meminfo; "
    "df -Pk / | awk 'NR==2{print \"disk_kb=\" $2}'"
)


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
    #: The sweep as recorded in the store (None when it was not saved).
    sweep: SweepInfo | None = None

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
            "sweep": None if self.sweep is None else self.sweep.as_dict(),
            "seconds": round(self.seconds, 3),
            "hosts": [h.as_dict() for h in self.hosts],
            "districts": [asdict(d) for d in self.districts],
        }


def workspace_standards(settings: Settings) -> list[Standard]:
    """Every standard in the workspace's standards/ folder (none: no minimums)."""
    return [load_standard(path) for path in find_standards(settings.standards_path)]


def hardware_minimum(
    standards: Sequence[Standard],
    loaded: LoadedInventory,
    host: str,
    role: str,
    hostvars: Mapping[str, Any],
) -> Minimum | None:
    """The equipment minimum of `host`: every `hardware` check of the controls that
    apply to its role, with the host's parameter values; the strictest figure wins
    when several apply. None when none applies (a control limited to roles does not
    apply to a host without one).

    `hostvars` are the host's variables as Ansible merges them (the inventory
    slice), so group_vars and host_vars overrides count. Only when an override is
    bad are the host's variable layers read one by one (`host_layers`), to name
    the file that set it: reading them for every host would cost a pass over the
    whole inventory per host.
    """
    found: list[tuple[str, Mapping[str, Any]]] = []
    merged = [VarLayer(f"the inventory variables of {host}", hostvars)]
    for standard in standards:
        for control in standard.applicable(role):
            hardware = [c for c in control.checks if c.type == "hardware"]
            if not hardware:
                continue
            names = control_parameters(control)
            try:
                resolved = resolve_parameters(standard, merged, names)
            except InputError:
                resolve_parameters(standard, host_layers(loaded, host), names)  # names the file
                raise
            values = {name: p.value for name, p in resolved.items()}
            found.extend((control.id, resolve_check(c, values).fields) for c in hardware)
    if not found:
        return None

    def strictest(name: str) -> int | None:
        wanted = [int(fields[name]) for _, fields in found if fields.get(name) is not None]
        return max(wanted) if wanted else None

    controls = ",".join(dict.fromkeys(control for control, _ in found))
    return Minimum(strictest("cpu_cores"), strictest("memory_mb"), strictest("disk_gb"), controls)


def targets(settings: Settings, selection: str | None) -> list[Target]:
    """The selected hosts, with how Ansible would log into each."""
    loaded, names = select_targets(settings.inventory_path, selection)
    resolved: dict[str, dict[str, Any]] = slice_inventory(loaded.inventory, names, loaded.folder)[
        "all"
    ]["hosts"]
    default_key = keys.key_path(settings)
    standards = workspace_standards(settings)
    return [
        Target.from_hostvars(
            name,
            values,
            user=settings.automation_user,
            key=default_key,
            minimum=hardware_minimum(
                standards, loaded, name, str(values.get("provision_role", "")), values
            ),
        )
        for name, values in resolved.items()
    ]


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
    shortfalls = _shortfalls(target.minimum, cores, memory_mb, disk_gb)
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
        minimum_control="" if target.minimum is None else target.minimum.control,
        shortfalls=tuple(shortfalls),
    )


def _shortfalls(minimum: Minimum | None, cores: int, memory_mb: int, disk_gb: int) -> list[str]:
    if minimum is None:
        return []
    have = {"cpu_cores": cores, "memory_mb": memory_mb, "disk_gb": disk_gb}
    want = {
        "cpu_cores": minimum.cpu_cores,
        "memory_mb": minimum.memory_mb,
        "disk_gb": minimum.disk_gb,
    }
    return [
        f"{name} {have[name]} < {need}"
        for name, need in want.items()
        if need is not None and have[name] < need
    ]


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


def _probe_all(
    chosen: Sequence[Target], known_hosts: Path, timeout: float, concurrency: int
) -> Iterator[HostPreflight | None]:
    """Each host's answer as soon as it comes, in the caller's thread, and None at
    least every SAVE_EVERY seconds while none comes: the caller saves what it holds
    on those ticks too, so answers reach the store while slow hosts are awaited.

    Probes run in daemon threads of their own rather than a ThreadPoolExecutor,
    whose exit (and the interpreter's, for its workers) waits for every running
    probe, up to `timeout` each: when the caller stops (Ctrl-C), this returns at
    once, no new probe starts, and a probe still waiting on a host is abandoned
    (it ends with its timeout, or with the process).
    """
    todo: queue.SimpleQueue[Target] = queue.SimpleQueue()
    for target in chosen:
        todo.put(target)
    answers: queue.SimpleQueue[HostPreflight | BaseException] = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                target = todo.get_nowait()
            except queue.Empty:
                return
            try:
                answers.put(probe(target, known_hosts, timeout))
            except BaseException as exc:  # a bug in probe: the caller raises it
                answers.put(exc)

    for n in range(max(1, min(concurrency, len(chosen)))):
        threading.Thread(target=work, name=f"preflight-{n}", daemon=True).start()
    try:
        for _ in chosen:
            while True:
                try:
                    answer = answers.get(timeout=SAVE_EVERY)
                except queue.Empty:
                    yield None
                    continue
                if isinstance(answer, BaseException):
                    raise answer
                yield answer
                break
    finally:
        stop.set()


def sweep(
    settings: Settings,
    selection: str | None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    on_host: Callable[[HostPreflight], None] | None = None,
    save: bool = True,
) -> PreflightResult:
    """Sweep the selected hosts; with `save`, record the sweep in the state store.

    Results reach the store in small batches as hosts answer (one writer: this
    thread), within SAVE_EVERY seconds of arriving even while slow hosts are still
    awaited, so a sweep stopped half-way keeps what it learned; stopped by Ctrl-C
    it returns at once (running probes are abandoned) and is marked `interrupted`.
    """
    chosen = targets(settings, selection)
    known_hosts = keys.known_hosts_path(settings.inventory_path)
    started = time.monotonic()
    hosts: list[HostPreflight] = []
    if not save:
        for result in _probe_all(chosen, known_hosts, timeout, concurrency):
            if result is not None:
                hosts.append(result)
                if on_host is not None:
                    on_host(result)
        return _result(hosts, time.monotonic() - started)
    with open_store(settings) as store:
        records = PreflightRecords(store)
        sweep_id = records.add_sweep(
            env=settings.env,
            selection=selection or "",
            user=current_user(),
            node=socket.gethostname(),
            hosts=len(chosen),
        )
        unsaved: list[HostPreflight] = []
        last_save = time.monotonic()
        status = "interrupted"
        try:
            for result in _probe_all(chosen, known_hosts, timeout, concurrency):
                if result is not None:
                    hosts.append(result)
                    unsaved.append(result)
                    if on_host is not None:
                        on_host(result)
                now = time.monotonic()
                due = bool(unsaved) and now - last_save >= SAVE_EVERY
                if len(unsaved) >= SAVE_BATCH or due:
                    records.add_results(sweep_id, unsaved)
                    unsaved, last_save = [], now
            status = "done"
        finally:
            records.add_results(sweep_id, unsaved)
            records.finish_sweep(sweep_id, status, seconds=round(time.monotonic() - started, 3))
        info = records.sweep(sweep_id)
    return _result(hosts, time.monotonic() - started, info)


def _result(
    hosts: list[HostPreflight], seconds: float, info: SweepInfo | None = None
) -> PreflightResult:
    ordered = sorted(hosts, key=lambda h: h.host)
    return PreflightResult(ordered, summarise(ordered), seconds, info)


def recorded(settings: Settings, sweep_id: int | None = None) -> PreflightResult:
    """A sweep as recorded in the store: `sweep_id`, or the latest of this env."""
    with open_store(settings) as store:
        records = PreflightRecords(store)
        info = records.sweep(sweep_id, env=None if sweep_id is not None else settings.env)
        hosts = records.sweep_results(info.id)
    return _result(hosts, info.seconds or 0.0, info)


def history(settings: Settings, *, limit: int = 20, all_envs: bool = False) -> list[SweepInfo]:
    """The latest recorded sweeps (of this env unless `all_envs`), newest first."""
    with open_store(settings) as store:
        return PreflightRecords(store).list_sweeps(
            limit=limit, env=None if all_envs else settings.env
        )
