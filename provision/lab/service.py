"""`provision lab` as a service: bring the lab up, look at it, change it, take it down.

Every step that starts something (a bridge, a proxy, a mount, a container) is
recorded in the lab state file before the next step, so a failure or Ctrl-C at
any point is followed by a teardown of exactly what was started, and `down`
works after a crash too.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provision.access import keys
from provision.errors import InputError, PrerequisiteError, StateError
from provision.infra import crypto
from provision.lab import inventory, machine, network, rootfs, state
from provision.lab.spec import (
    LabHost,
    assign_addresses,
    check_subnet,
    control_address,
    parse_hosts_spec,
)
from provision.lab.state import HostRecord, LabState
from provision.settings import WORKSPACE_FILE, Settings

StepCallback = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class LabPaths:
    """Where the lab keeps what it runs (state dir) and what it hands to Ansible."""

    run_dir: Path
    inventory_dir: Path
    cache_dir: Path

    @classmethod
    def of(cls, settings: Settings) -> LabPaths:
        return cls(
            run_dir=settings.state_path / "lab",
            inventory_dir=settings.inventories_path / "lab",
            cache_dir=settings.lab_cache,
        )

    @property
    def state_file(self) -> Path:
        return self.run_dir / "lab.json"

    def host(self, name: str) -> machine.HostPaths:
        return machine.HostPaths(self.run_dir / "hosts" / name)

    @property
    def key(self) -> Path:
        return self.inventory_dir / inventory.KEY_NAME


@dataclass(frozen=True)
class HostStatus:
    name: str
    role: str
    address: str
    state: str  # up, down
    systemd: str  # running, degraded, starting, … or "-" when down
    site: str


@dataclass(frozen=True)
class UpResult:
    hosts: list[HostStatus]
    seconds: float
    boot_seconds: dict[str, float]
    inventory_dir: Path


def check_prerequisites() -> None:
    """One clear error for the first thing this machine lacks to run the lab."""
    if os.geteuid() != 0:
        raise PrerequisiteError(
            "the lab needs root (it mounts filesystems and boots containers)",
            hint="run as root, e.g. sudo provision lab up",
        )
    for tool, package in (
        ("systemd-nspawn", "systemd-container"),
        ("debootstrap", "debootstrap"),
        ("apt-cacher-ng", "apt-cacher-ng"),
        ("ip", "iproute2"),
        ("ssh", "openssh-client"),
    ):
        if find_tool(tool) is None:
            raise PrerequisiteError(f"{tool} is not installed", hint=f"apt-get install {package}")
    filesystems = (
        Path("/proc/filesystems").read_text() if Path("/proc/filesystems").exists() else ""
    )
    if "overlay" not in filesystems:
        subprocess.run(["modprobe", "overlay"], capture_output=True, check=False)
        if "overlay" not in Path("/proc/filesystems").read_text():
            raise PrerequisiteError(
                "this kernel has no overlay filesystem", hint="modprobe overlay"
            )


def find_tool(name: str) -> str | None:
    """A program on PATH, or in /usr/sbin where root's tools live even off PATH."""
    found = shutil.which(name)
    if found:
        return found
    sbin = Path("/usr/sbin") / name
    return str(sbin) if sbin.exists() else None


@contextmanager
def _locked(paths: LabPaths) -> Iterator[None]:
    """One lab command at a time changes the lab."""
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    with (paths.run_dir / "lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateError(
                "another provision lab command is changing the lab right now",
                hint="wait for it to finish, then try again",
            ) from None
        yield


def _running_hosts(lab: LabState) -> list[str]:
    return [h.name for h in lab.hosts.values() if machine.is_running(h.pid, h.name)]


def up(
    settings: Settings, hosts_spec: str | None = None, on_step: StepCallback = _quiet
) -> UpResult:
    """Boot the lab and write inventories/lab/. Fails cleanly, leaving nothing behind."""
    started = time.monotonic()
    wanted = parse_hosts_spec(hosts_spec)  # bad input is refused before anything is touched
    subnet = check_subnet(settings.lab_subnet)
    check_prerequisites()
    paths = LabPaths.of(settings)
    with _locked(paths):
        previous = state.load(paths.state_file)
        if previous is not None:
            running = _running_hosts(previous)
            if running:
                raise StateError(
                    f"the lab is already up ({len(running)} hosts: {', '.join(sorted(running))})",
                    hint="see provision lab status; run provision lab down first to start anew",
                )
            on_step("cleaning up what a previous lab left behind")
            _teardown(paths, previous, on_step)
        # Before anything is touched: the subnet, the bridge and every name derived
        # from it (cgroups, machine names, host links) are global on this machine.
        _refuse_if_taken(paths, subnet)
        lower = rootfs.ensure_rootfs(paths.cache_dir, on_step)
        lab = LabState(
            subnet=str(subnet),
            control_address=control_address(subnet),
            rootfs=str(lower),
            bridge=network.bridge_name(subnet),
            owns_bridge=False,
            workspace=str(settings.workspace),
        )
        try:
            boot_seconds = _bring_up(paths, lab, wanted, subnet, on_step)
        except BaseException:
            on_step("start failed; taking down what was started")
            _teardown(paths, lab, _quiet)
            raise
    return UpResult(
        hosts=status(settings),
        seconds=time.monotonic() - started,
        boot_seconds=boot_seconds,
        inventory_dir=paths.inventory_dir,
    )


def _refuse_if_taken(paths: LabPaths, subnet: ipaddress.IPv4Network) -> None:
    """Refuse a lab subnet (or its bridge) that another lab, or another network, uses."""
    bridge = network.bridge_name(subnet)
    other = _other_lab(paths, bridge)
    if other is not None:
        raise _taken_error(subnet, bridge, other)
    if network.bridge_exists(bridge):
        raise InputError(
            f"lab_subnet {subnet}: the lab's bridge {bridge} already exists, "
            "made by another lab or left behind by one",
            hint="choose another private /24: lab_subnet in provision.yml or "
            "PROVISION_LAB_SUBNET; if it is a leftover of this workspace's lab, "
            "provision lab down removes it",
        )
    shown = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False
    )
    for line in shown.stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            used = ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network
            if used.overlaps(subnet) and not used.is_loopback:
                owner = _other_lab(paths, fields[1])
                raise InputError(
                    f"lab_subnet {subnet} overlaps {used} on {fields[1]}"
                    + (f", the lab of workspace {owner}" if owner else ""),
                    hint="choose another private /24: lab_subnet in provision.yml "
                    "or PROVISION_LAB_SUBNET",
                )


def _taken_error(subnet: ipaddress.IPv4Network, bridge: str, other: str) -> InputError:
    return InputError(
        f"lab_subnet {subnet} is in use by the lab of workspace {other} (bridge {bridge})",
        hint="set another lab_subnet for this workspace (provision.yml or "
        f"PROVISION_LAB_SUBNET), or take that lab down: provision --workspace {other} lab down",
    )


def _other_lab(paths: LabPaths, bridge: str) -> str | None:
    """The workspace of another lab whose hosts are on `bridge`, if one is running.

    Found from the running nspawns themselves (`--network-bridge=BRIDGE -D
    RUN_DIR/hosts/NAME/root`), so labs started by any provision are seen.
    """
    for root in _nspawn_roots(bridge):
        run_dir = root.parent.parent.parent
        if run_dir == paths.run_dir:
            continue
        with contextlib.suppress(OSError, ValueError, TypeError):
            recorded = state.load(run_dir / "lab.json")
            if recorded is not None and recorded.workspace:
                return recorded.workspace
        workspace = run_dir.parent.parent
        return str(workspace if (workspace / WORKSPACE_FILE).is_file() else run_dir)
    return None


def _nspawn_roots(bridge: str) -> list[Path]:
    """The root folders (-D) of every systemd-nspawn attached to `bridge`."""
    return [
        Path(words[words.index("-D") + 1])
        for _, words in machine.nspawn_command_lines()
        if f"--network-bridge={bridge}" in words and "-D" in words[:-1]
    ]


def _bring_up(
    paths: LabPaths,
    lab: LabState,
    wanted: list[LabHost],
    subnet: ipaddress.IPv4Network,
    on_step: StepCallback,
) -> dict[str, float]:
    for raised in machine.ensure_inotify_limits():
        on_step(f"raised the kernel's inotify limit {raised}: every host's systemd takes some")
    lab.mounted_nspawn_runtime = machine.ensure_nspawn_runtime_dir()
    state.save(paths.state_file, lab)
    control_key = _ensure_control_key(paths)
    on_step(f"network: bridge {lab.bridge} at {lab.control_address}/{subnet.prefixlen}")
    try:
        network.create_bridge(lab.bridge, lab.control_address, subnet.prefixlen)
    except network.BridgeTaken:
        # Another lab took it since the check (two `lab up`s at once): it is theirs.
        other = _other_lab(paths, lab.bridge) or "another workspace"
        raise _taken_error(subnet, lab.bridge, other) from None
    lab.owns_bridge = True
    state.save(paths.state_file, lab)
    lab.proxy_pid = network.start_proxy(
        lab.control_address, paths.run_dir, paths.cache_dir / "apt-cacher-ng"
    )
    state.save(paths.state_file, lab)
    for host in assign_addresses(wanted, subnet, {}):
        lab.hosts[host.name] = HostRecord.of(host)
        _boot_one(paths, lab, lab.hosts[host.name], subnet.prefixlen, control_key, on_step)
    inventory.write_inventory(paths.inventory_dir, lab.hosts.values())
    on_step(f"waiting for {len(lab.hosts)} hosts to answer SSH")
    return _wait_all(paths, lab, on_step)


def _ensure_control_key(paths: LabPaths) -> str:
    paths.inventory_dir.mkdir(parents=True, exist_ok=True)
    if not paths.key.is_file():
        crypto.write_private_key(paths.key, crypto.new_ed25519(), comment="provision-lab-control")
    return crypto.public_key_of(paths.key)


def _boot_one(
    paths: LabPaths,
    lab: LabState,
    record: HostRecord,
    prefixlen: int,
    control_key: str,
    on_step: StepCallback,
) -> None:
    host_paths = paths.host(record.name)
    on_step(f"booting {record.name} ({record.role}) at {record.address}")
    machine.mount_overlay(host_paths, Path(lab.rootfs))
    state.save(paths.state_file, lab)
    password = state.installer_password(paths.run_dir, record.name) if record.new else None
    record.host_key = machine.personalise(
        host_paths.root, record.as_host(), prefixlen, lab.control_address, control_key, password
    )
    record.pid = machine.boot(record.name, host_paths, lab.bridge)
    state.save(paths.state_file, lab)


def _wait_all(paths: LabPaths, lab: LabState, on_step: StepCallback) -> dict[str, float]:
    options = inventory.ssh_options(paths.inventory_dir)

    def wait(record: HostRecord) -> tuple[str, float]:
        assert record.pid is not None
        seconds = machine.wait_for_ssh(
            record.address,
            record.pid,
            record.name,
            options,
            banner_only=record.new,
            console_log=paths.host(record.name).console_log,
        )
        on_step(f"{record.name} answers SSH ({seconds:.1f}s)")
        return record.name, seconds

    with ThreadPoolExecutor(max_workers=min(16, len(lab.hosts) or 1)) as pool:
        return dict(pool.map(wait, list(lab.hosts.values())))


def _require(settings: Settings) -> tuple[LabPaths, LabState]:
    paths = LabPaths.of(settings)
    lab = state.load(paths.state_file)
    if lab is None:
        raise StateError("the lab is not up", hint="start it with provision lab up")
    return paths, lab


def _record(lab: LabState, name: str) -> HostRecord:
    if name not in lab.hosts:
        raise InputError(
            f"no lab host named '{name}'",
            hint="lab hosts: " + ", ".join(sorted(lab.hosts)),
        )
    return lab.hosts[name]


def status(settings: Settings) -> list[HostStatus]:
    """Each host: up or down, its address and what systemd inside says."""
    paths = LabPaths.of(settings)
    lab = state.load(paths.state_file)
    if lab is None:
        return []
    options = inventory.ssh_options(paths.inventory_dir)

    def one(record: HostRecord) -> HostStatus:
        running = machine.is_running(record.pid, record.name)
        systemd = "-"
        if running and record.new and not _in_known_hosts(paths, record):
            # A new machine: no key the lab could log in with until it is bootstrapped.
            systemd = "awaiting bootstrap" if machine.ssh_banner(record.address) else "booting"
        elif running and record.new:
            systemd = "bootstrapped"
        elif running:
            proc = subprocess.run(
                ["ssh", *options, f"root@{record.address}", "systemctl is-system-running"],
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
            systemd = proc.stdout.strip() or "unreachable"
        return HostStatus(
            record.name,
            record.role,
            record.address,
            "up" if running else "down",
            systemd,
            record.placement.get("site_code", ""),
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, sorted(lab.hosts.values(), key=lambda r: r.name)))


def stop_host(settings: Settings, name: str) -> None:
    """Power one host off, keeping its disk: it comes back with `start`."""
    paths, lab = _require(settings)
    with _locked(paths):
        record = _record(lab, name)
        machine.stop(record.pid, record.name, lab.bridge)
        record.pid = None
        state.save(paths.state_file, lab)


def start_host(settings: Settings, name: str) -> float:
    """Boot a stopped host again; return the seconds until it answered SSH."""
    paths, lab = _require(settings)
    with _locked(paths):
        record = _record(lab, name)
        if machine.is_running(record.pid, record.name):
            raise StateError(f"lab host {name} is already up")
        machine.ensure_gone(name, lab.bridge)
        host_paths = paths.host(name)
        machine.mount_overlay(host_paths, Path(lab.rootfs))
        record.pid = machine.boot(name, host_paths, lab.bridge)
        state.save(paths.state_file, lab)
        return machine.wait_for_ssh(
            record.address,
            record.pid,
            name,
            inventory.ssh_options(paths.inventory_dir),
            banner_only=record.new,
            console_log=host_paths.console_log,
        )


def reset_host(settings: Settings, name: str) -> float:
    """Put a host back to the pristine image (new disk, new host key) and boot it."""
    paths, lab = _require(settings)
    with _locked(paths):
        record = _record(lab, name)
        machine.stop(record.pid, record.name, lab.bridge)
        record.pid = None
        machine.ensure_gone(name, lab.bridge)
        host_paths = paths.host(name)
        machine.unmount(host_paths.root)
        # Not ignore_errors: a disk that could not be removed is not pristine.
        shutil.rmtree(host_paths.base)
        subnet = ipaddress.IPv4Network(lab.subnet)
        _boot_one(paths, lab, record, subnet.prefixlen, crypto.public_key_of(paths.key), _quiet)
        if record.new:
            # A pristine new machine again: nothing recorded about it from before.
            inventory.forget_bootstrap(paths.inventory_dir, record)
        inventory.write_inventory(paths.inventory_dir, lab.hosts.values())
        assert record.pid is not None
        return machine.wait_for_ssh(
            record.address,
            record.pid,
            name,
            inventory.ssh_options(paths.inventory_dir),
            banner_only=record.new,
            console_log=host_paths.console_log,
        )


def _in_known_hosts(paths: LabPaths, record: HostRecord) -> bool:
    known = paths.inventory_dir / inventory.KNOWN_HOSTS
    if not known.is_file():
        return False
    return any(
        record.name in line.split(" ", 1)[0].split(",") for line in known.read_text().splitlines()
    )


def ssh_command(settings: Settings, name: str, command: list[str]) -> list[str]:
    """The ssh argv that logs into a lab host (strict host keys, the lab key)."""
    paths, lab = _require(settings)
    record = _record(lab, name)
    options = [o for o in inventory.ssh_options(paths.inventory_dir) if o != "BatchMode=yes"]
    # Drop the now-dangling "-o" that preceded BatchMode=yes, for an interactive login.
    cleaned: list[str] = []
    for option in options:
        if option == "-o" and cleaned and cleaned[-1] == "-o":
            continue
        cleaned.append(option)
    tty = [] if command else ["-t"]
    login = f"root@{record.address}"
    if record.new:
        # A new machine lets no lab key in; once bootstrapped, the automation key does.
        if not keys.connection_vars_path(paths.inventory_dir, name).is_file():
            raise StateError(
                f"{name} is a new machine awaiting bootstrap: root has no key on it",
                hint=f"provision bootstrap {name} --user {state.INSTALLER_USER} "
                f"(its password: {paths.run_dir / state.INSTALLER_PASSWORDS})",
            )
        cleaned[cleaned.index("-i") + 1] = str(keys.key_path(settings))
        login = f"{settings.automation_user}@{record.address}"
    return ["ssh", *tty, *cleaned, login, *command]


def down(settings: Settings, on_step: StepCallback = _quiet) -> list[str]:
    """Stop everything the lab started and remove it. Safe to run twice."""
    paths = LabPaths.of(settings)
    with _locked(paths):
        lab = state.load(paths.state_file)
        if lab is None:
            subnet = check_subnet(settings.lab_subnet)
            bridge = network.bridge_name(subnet)
            # Nothing recorded: the bridge is ours to remove only if no other lab uses it.
            lab = LabState(
                str(subnet), "", "", bridge, owns_bridge=_other_lab(paths, bridge) is None
            )
        return _teardown(paths, lab, on_step)


def _teardown(paths: LabPaths, lab: LabState, on_step: StepCallback) -> list[str]:
    done: list[str] = []
    pids: dict[str, int | None] = {r.name: r.pid for r in lab.hosts.values()}
    # Also any nspawn still running from our hosts folder whose pid was not saved
    # (a crash between Popen and the state file).
    for found_pid, found_name in _nspawn_processes(paths.run_dir / "hosts"):
        if pids.setdefault(found_name, found_pid) != found_pid:
            machine.stop(found_pid, found_name, lab.bridge)
    for name, pid in sorted(pids.items()):
        if machine.is_running(pid, name):
            on_step(f"stopping {name}")
            machine.stop(pid, name, lab.bridge)
            done.append(f"stopped {name}")
    # The cgroups are named after the bridge: only the lab that made it may empty them.
    if lab.owns_bridge and machine.remove_cgroups(lab.bridge):
        done.append("removed the hosts' cgroups")
    hosts_dir = paths.run_dir / "hosts"
    for point in machine.mounted_paths():
        if hosts_dir in point.parents:
            machine.unmount(point)
            done.append(f"unmounted {point}")
    if lab.proxy_pid and network.process_matches(lab.proxy_pid, "apt-cacher-ng"):
        network.stop_process(lab.proxy_pid, expect="apt-cacher-ng")
        done.append("stopped the package proxy")
    if lab.owns_bridge and network.bridge_exists(lab.bridge):
        network.remove_bridge(lab.bridge)
        done.append(f"removed bridge {lab.bridge}")
    if (
        lab.mounted_nspawn_runtime
        and machine.is_mounted(machine.NSPAWN_RUN)
        and not machine.other_nspawn_running(set())
    ):
        machine.unmount(machine.NSPAWN_RUN)
        done.append(f"unmounted {machine.NSPAWN_RUN}")
    if hosts_dir.exists():
        shutil.rmtree(hosts_dir)
    for leftover in (
        "lab.json",
        "apt-cacher-ng",
        "apt-cacher-ng-log",
        "apt-cacher-ng.pid",
        state.INSTALLER_PASSWORDS,
    ):
        target = paths.run_dir / leftover
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    inventory.remove_inventory(paths.inventory_dir)
    return done


def _nspawn_processes(hosts_dir: Path) -> list[tuple[int, str]]:
    """(pid, machine name) of every systemd-nspawn booted from the lab's hosts folder."""
    found = []
    for pid, words in machine.nspawn_command_lines():
        names = [w.removeprefix("--hostname=") for w in words if w.startswith("--hostname=")]
        if "-D" in words[:-1] and names:
            root = words[words.index("-D") + 1]
            if root.startswith(str(hosts_dir) + "/"):
                found.append((pid, names[0]))
    return found


def leftovers(settings: Settings) -> list[str]:
    """What of the lab still exists on this machine (empty after a clean `down`)."""
    paths = LabPaths.of(settings)
    bridge = network.bridge_name(check_subnet(settings.lab_subnet))
    hosts_dir = paths.run_dir / "hosts"
    found = [f"process {pid} ({name})" for pid, name in _nspawn_processes(hosts_dir)]
    found += [f"mount {p}" for p in machine.mounted_paths() if hosts_dir in p.parents]
    found += [f"interface {i}" for i in network.lab_interfaces(bridge)]
    found += [f"process {pid} (apt-cacher-ng)" for pid in _proxy_processes(paths.run_dir)]
    if hosts_dir.exists():
        found.append(f"folder {hosts_dir}")
    found += [f"cgroup {c}" for c in machine.lab_cgroups(bridge) if c.exists()]
    return found


def _proxy_processes(run_dir: Path) -> list[int]:
    conf = str(run_dir / "apt-cacher-ng")
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "apt-cacher-ng" in cmdline and conf in cmdline:
                pids.append(int(proc.name))
    return pids


def _set_link(settings: Settings, name: str, up: bool) -> str:
    """Bring host `name`'s link on the lab bridge up or down; return the link's name.

    nspawn names the host side of a host's veth `vb-<bridge>-<name>` (kept as an
    altname when the kernel's name is shortened), so only that host loses the
    network: it keeps running, and so does every other host.
    """
    paths, lab = _require(settings)
    with _locked(paths):
        record = _record(lab, name)
        if not machine.is_running(record.pid, record.name):
            raise StateError(f"lab host {name} is not running", hint=f"provision lab start {name}")
        link = f"vb-{lab.bridge}-{name}"
        proc = subprocess.run(
            ["ip", "link", "set", "dev", link, "up" if up else "down"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StateError(
                f"cannot set the link {link} of {name} {'up' if up else 'down'}: "
                f"{proc.stderr.strip()}",
                hint="see ip link show master " + lab.bridge,
            )
        return link


def cut_host(settings: Settings, name: str) -> str:
    """Cut one running host off the lab network (its link down); it keeps running."""
    return _set_link(settings, name, up=False)


def restore_host(settings: Settings, name: str) -> str:
    """Give a cut host its link back."""
    return _set_link(settings, name, up=True)
