"""Is a node ready to run shards? Asked over SSH, before anything is sent to it.

`check_node` logs into the node the way Ansible would (its inventory
connection variables, the environment's known_hosts), runs one probe script
as root, and reads back: the worker's own `ansible-runner worker --worker-info`,
the ansible-core and ansible-runner of the node's virtualenv, CPU, memory and
free disk of its work directory, and, from the node as its own account with its
own key, whether a sample of the hosts it serves answer over SSH.

`ensure_nodes_ready` is what a run calls before it sends a shard (`nodes_for_resume`
when it resumes: a node that is down is left out, not refused): a node whose
ansible-core or ansible-runner differs from the control node's is refused with
`VersionSkewError` (naming both versions), one without a worker with
`NodeNotReadyError`; both say to run `provision nodes setup NAME`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import yaml

from provision.access import keys
from provision.errors import StateError
from provision.infra import ssh
from provision.infra.strategy import installed
from provision.inventory.files import LoadedInventory
from provision.inventory.slice import slice_inventory
from provision.model.inventory.targets import Target
from provision.model.nodes import Node, served_hosts
from provision.nodes import layout
from provision.settings import Settings

#: How many of its hosts `nodes check` tries from a node, spread over the ones it serves.
SAMPLE = 5
TIMEOUT = 20.0


class NodeNotReadyError(StateError):
    """A node that cannot take a shard: unreachable, or without a worker."""


class VersionSkewError(StateError):
    """A node whose ansible-core or ansible-runner is not the control node's version."""


@dataclass(frozen=True)
class SiteReach:
    """Whether a served host answered the node over SSH."""

    host: str
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class NodeCheck:
    """What one node answered (`reachable` False: nothing else is known)."""

    name: str
    host: str
    reachable: bool
    message: str = ""
    worker: bool = False
    ansible_core: str = ""
    ansible_runner: str = ""
    #: The node's mitogen ("" when it has none): its shards run the fast strategy
    #: only with the control node's own version (`fast`).
    mitogen: str = ""
    worker_info: dict[str, Any] = field(default_factory=dict)
    cpu_cores: int | None = None
    memory_mb: int | None = None
    disk_free_mb: int | None = None
    served: int = 0
    sites: tuple[SiteReach, ...] = ()
    #: The node's own python3 ("3.11"), machine ("x86_64") and glibc ("2.36"): what
    #: its wheels are built for.
    python: str = ""
    machine: str = ""
    glibc: str = ""

    def skew(self, control: dict[str, str]) -> list[str]:
        """'ansible-core 2.17.0 (control node 2.19.14)' for each package that differs."""
        have = {"ansible-core": self.ansible_core, "ansible-runner": self.ansible_runner}
        return [
            f"{name} {have[name] or 'missing'} (control node {version})"
            for name, version in control.items()
            if have.get(name) != version
        ]

    @property
    def ready(self) -> bool:
        return self.reachable and self.worker

    def fast(self, control_mitogen: str | None) -> bool:
        """Whether the node has the control node's mitogen, so its shards may run fast."""
        return bool(control_mitogen) and self.mitogen == control_mitogen

    def as_dict(self, control: dict[str, str]) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "reachable": self.reachable,
            "message": self.message,
            "worker": self.worker,
            "ansible_core": self.ansible_core,
            "ansible_runner": self.ansible_runner,
            "mitogen": self.mitogen,
            "fast": self.fast(fast_versions().get("mitogen")),
            "worker_info": self.worker_info,
            "cpu_cores": self.cpu_cores,
            "memory_mb": self.memory_mb,
            "disk_free_mb": self.disk_free_mb,
            "served": self.served,
            "python": self.python,
            "skew": self.skew(control) if self.worker else [],
            "sites": [{"host": s.host, "ok": s.ok, "message": s.message} for s in self.sites],
        }


def fast_versions() -> dict[str, str]:
    """The control node's versions of `layout.FAST_PACKAGES`, those it has installed."""
    return {name: version for name in layout.FAST_PACKAGES if (version := installed(name))}


def control_versions() -> dict[str, str]:
    """The control node's own ansible-core and ansible-runner: what every node must run."""
    return {name: metadata.version(name) for name in layout.PACKAGES}


def targets_of(settings: Settings, loaded: LoadedInventory, hosts: Sequence[str]) -> list[Target]:
    """How Ansible would log into `hosts` (their resolved connection variables)."""
    resolved: dict[str, dict[str, Any]] = slice_inventory(loaded.inventory, hosts, loaded.folder)[
        "all"
    ]["hosts"]
    default_key = keys.key_path(settings)
    return [
        Target.from_hostvars(name, values, user=settings.automation_user, key=default_key)
        for name, values in resolved.items()
    ]


def sample(hosts: Sequence[str], size: int) -> list[str]:
    """`size` of `hosts`, spread evenly from first to last (the same ones every time)."""
    if size <= 0 or not hosts:
        return []
    if len(hosts) <= size:
        return list(hosts)
    step = (len(hosts) - 1) / (size - 1) if size > 1 else 0
    return [hosts[round(i * step)] for i in range(size)]


def _probe_script(sites: Sequence[Target]) -> str:
    runner, python = shlex.quote(str(layout.RUNNER)), shlex.quote(str(layout.PYTHON))
    user, work = shlex.quote(layout.USER), shlex.quote(str(layout.WORK_DIR))
    version = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"
    lines = [
        "echo cores=$(nproc)",
        "echo python=$(python3 -c 'import sys; print(*sys.version_info[:2], sep=chr(46))')",
        "echo machine=$(uname -m)",
        "echo glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')",
        "echo mem_kb=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)",
        f'd={work}; [ -d "$d" ] || d=/',
        "echo disk_free_kb=$(df -Pk \"$d\" | awk 'NR==2{print $4}')",
        f"if [ -x {runner} ] && id -u {user} >/dev/null 2>&1; then",
        "  echo worker=yes",
        f"  echo ansible_core=$({python} -c {shlex.quote(version)} ansible-core 2>/dev/null)",
        f"  echo ansible_runner=$({python} -c {shlex.quote(version)} ansible-runner 2>/dev/null)",
        f"  echo mitogen=$({python} -c {shlex.quote(version)} mitogen 2>/dev/null)",
        f"  info=$(cd / && runuser -u {user} -- {runner} worker --worker-info 2>&1)",
        "  echo worker_rc=$?",
        "  printf '%s\\n' \"$info\" | sed 's/^/info: /'",
        "else",
        "  echo worker=no",
        "fi",
    ]
    for site in sites:
        command = shlex.join(
            [
                "ssh",
                "-n",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                f"UserKnownHostsFile={layout.KNOWN_HOSTS}",
                "-i",
                str(layout.KEY),
                "-p",
                str(site.port),
                f"{site.user}@{site.address}",
                "true",
            ]
        )
        lines.append(
            f"out=$(cd / && runuser -u {user} -- {command} 2>&1); rc=$?;"
            f' echo "reach:{site.host}=$rc:$(printf %s "$out" | tail -n 1)"'
        )
    return "\n".join(lines) + "\n"


def _parse(name: str, host: str, stdout: str, served: int) -> NodeCheck:
    facts: dict[str, str] = {}
    info: list[str] = []
    sites: list[SiteReach] = []
    for line in stdout.splitlines():
        if line.startswith("info: "):
            info.append(line[len("info: ") :])
        elif line.startswith("reach:"):
            site, _, rest = line[len("reach:") :].partition("=")
            code, _, message = rest.partition(":")
            sites.append(SiteReach(site, code == "0", message.strip()))
        elif "=" in line:
            key, _, value = line.partition("=")
            facts[key] = value.strip()
    worker_info: dict[str, Any] = {}
    message = ""
    if facts.get("worker") == "yes":
        try:
            loaded = yaml.safe_load("\n".join(info))
            worker_info = loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError:
            worker_info = {}
        if facts.get("worker_rc") != "0" or not worker_info:
            message = "ansible-runner worker --worker-info failed: " + " ".join(info)[-200:]
    return NodeCheck(
        name=name,
        host=host,
        reachable=True,
        message=message,
        worker=facts.get("worker") == "yes" and not message,
        ansible_core=facts.get("ansible_core", ""),
        ansible_runner=facts.get("ansible_runner", ""),
        mitogen=facts.get("mitogen", ""),
        worker_info=worker_info,
        cpu_cores=_int(facts.get("cores")),
        memory_mb=_scaled(facts.get("mem_kb")),
        disk_free_mb=_scaled(facts.get("disk_free_kb")),
        served=served,
        sites=tuple(sites),
        python=facts.get("python", ""),
        machine=facts.get("machine", ""),
        glibc=facts.get("glibc", ""),
    )


def _int(text: str | None) -> int | None:
    try:
        return int(text or "")
    except ValueError:
        return None


def _scaled(kilobytes: str | None) -> int | None:
    value = _int(kilobytes)
    return None if value is None else value // 1024


def check_node(
    settings: Settings,
    loaded: LoadedInventory,
    node: Node,
    nodes: Sequence[Node],
    *,
    sample_size: int = SAMPLE,
    timeout: float = TIMEOUT,
) -> NodeCheck:
    """Ask `node` what it runs and whether its hosts answer it; never raises for the node."""
    served = [
        h for h in loaded.inventory.hosts if h in served_hosts(nodes, loaded.inventory)[node.name]
    ]
    target, *sites = targets_of(settings, loaded, [node.host, *sample(served, sample_size)])
    try:
        with ssh.connect(
            target.address,
            host=target.host,
            port=target.port,
            user=target.user,
            known_hosts=keys.known_hosts_path(settings.inventory_path),
            key_path=target.key,
            timeout=timeout,
        ) as conn:
            answer = conn.run_as_root(_probe_script(sites), password=None, timeout=timeout * 3)
    except ssh.SshError as error:
        return NodeCheck(
            node.name, node.host, reachable=False, message=error.message, served=len(served)
        )
    if answer.rc != 0 and "cores=" not in answer.stdout:
        reason = (answer.stderr.strip().splitlines() or [f"exit {answer.rc}"])[-1]
        return NodeCheck(
            node.name,
            node.host,
            reachable=False,
            message=f"the probe failed: {reason}",
            served=len(served),
        )
    return _parse(node.name, node.host, answer.stdout, len(served))


def check_nodes(
    settings: Settings,
    loaded: LoadedInventory,
    chosen: Iterable[Node],
    nodes: Sequence[Node],
    *,
    sample_size: int = SAMPLE,
    on_node: Callable[[NodeCheck], None] | None = None,
) -> list[NodeCheck]:
    """`check_node` for each of `chosen` at once (they are far apart), in their order."""
    chosen = list(chosen)
    if not chosen:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(chosen))) as pool:
        futures = [
            pool.submit(check_node, settings, loaded, node, nodes, sample_size=sample_size)
            for node in chosen
        ]
        results = []
        for future in futures:
            result = future.result()
            if on_node is not None:
                on_node(result)
            results.append(result)
    return results


def refuse_unready(checks: Iterable[NodeCheck], *, allow_unreachable: bool = False) -> None:
    """Raise for the first node that may not take a shard (see the module's docstring)."""
    control = control_versions()
    for check in checks:
        what = f"node {check.name!r} ({check.host})"
        setup = f"provision nodes setup {check.name}"
        if not check.reachable:
            if allow_unreachable:
                continue
            raise NodeNotReadyError(
                f"{what} cannot be reached: {check.message}",
                hint=f"check the node (provision nodes check {check.name}), or run with --local",
            )
        if not check.worker:
            raise NodeNotReadyError(
                f"{what} has no worker set up" + (f": {check.message}" if check.message else ""),
                hint=f"set it up with {setup}",
            )
        skew = check.skew(control)
        if skew:
            raise VersionSkewError(
                f"{what} runs " + ", ".join(skew) + "; nothing was sent to it",
                hint=f"install the control node's versions on it with {setup}",
            )


def ensure_nodes_ready(
    settings: Settings,
    loaded: LoadedInventory,
    chosen: Iterable[Node],
    nodes: Sequence[Node],
    *,
    allow_unreachable: bool = False,
) -> dict[str, NodeCheck]:
    """Check `chosen` (no sites probed) and refuse any that cannot take a shard.

    Returns name -> check of every node that may take one. With
    `allow_unreachable`, a node that does not answer is left out instead of
    refused (the caller runs its hosts as not run); a node that answers with the
    wrong versions or no worker is always refused.
    """
    checks = check_nodes(settings, loaded, chosen, nodes, sample_size=0)
    refuse_unready(checks, allow_unreachable=allow_unreachable)
    return {check.name: check for check in checks if check.ready}


def nodes_for_resume(
    settings: Settings, loaded: LoadedInventory, chosen: Iterable[Node], nodes: Sequence[Node]
) -> tuple[dict[str, NodeCheck], dict[str, str]]:
    """What a resumed run may send shards to: (ready nodes, unreachable node -> why).

    A resume must not be refused for a node that is down: the hosts of that
    node's shard stay not run, with the reason, and the rest of the run goes
    on. A node that answers with the wrong versions or no worker is refused as
    before a run.
    """
    checks = check_nodes(settings, loaded, chosen, nodes, sample_size=0)
    refuse_unready(checks, allow_unreachable=True)
    ready = {check.name: check for check in checks if check.ready}
    down = {
        check.name: f"cannot be reached ({check.message})"
        for check in checks
        if not check.reachable
    }
    return ready, down
