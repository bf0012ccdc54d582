"""`provision nodes setup NAME`: make a field server an execution node, as a recorded rollout.

    plan_setup      reads only: the node (asked over SSH what python3 it has),
                    the hosts it serves, the run of playbooks/execution_node.yml
    prepare_setup   once confirmed: the node's key (made once, kept under the
                    state dir), the wheelhouse for the node's python (pip
                    download on the control node: field servers have no
                    internet), the run's variables file (paths, no secrets)
    run_rollout     the run itself, recorded like any rollout (provision runs)

The wheelhouse pins ansible-core, ansible-runner and every package they pull
in at the versions installed on the control node, mitogen too when the control
node has it (so that shards can run the fast strategy on the node), plus the
control node's own pip (the node's venv is made without pip: Debian's
python3-venv may be missing).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement

from provision.access import keys
from provision.errors import PrerequisiteError
from provision.infra import crypto, ssh
from provision.infra.atomic import write_atomic
from provision.model.nodes import Node, served_hosts
from provision.nodes import layout, registry
from provision.nodes.check import (
    NodeCheck,
    NodeNotReadyError,
    check_node,
    fast_versions,
    targets_of,
)
from provision.rollout import RolloutOptions, RolloutPlan, RolloutResult, plan_rollout
from provision.settings import Settings

PLAYBOOK = "execution_node.yml"
#: The oldest glibc manylinux wheels are built for; the node's own is the newest taken.
_MANYLINUX_FIRST = 17


@dataclass(frozen=True)
class Platform:
    """What the node's wheels must fit: its python3, machine and glibc."""

    python: str
    machine: str
    glibc: str

    @property
    def tag(self) -> str:
        return f"cp{self.python.replace('.', '')}-{self.machine}-glibc{self.glibc}"

    @classmethod
    def of(cls, check: NodeCheck) -> Platform:
        if not (re.fullmatch(r"3\.\d+", check.python) and check.machine):
            raise NodeNotReadyError(
                f"node {check.name!r} ({check.host}) has no usable python3 "
                f"(python3 says {check.python or 'nothing'!r})",
                hint="install Debian's python3 on it (the role needs it, and so does Ansible)",
            )
        glibc = check.glibc if re.fullmatch(r"2\.\d+", check.glibc) else "2.17"
        return cls(check.python, check.machine, glibc)


@dataclass(frozen=True)
class SetupPlan:
    """A node's setup as planned; nothing is written until `prepare_setup`."""

    node: Node
    plan: RolloutPlan
    platform: Platform
    #: The hosts whose authorized_keys take the node's key (every host its selection
    #: picks, so that the node can take over when a more specific node goes away).
    sites: tuple[str, ...]
    vars_file: Path
    wheelhouse: Path
    key: Path


def requirements() -> list[str]:
    """`name==version` of pip, ansible-core, ansible-runner (and mitogen) and all they need."""
    pins: dict[str, str] = {"pip": metadata.version("pip")}
    todo = [*layout.PACKAGES, *fast_versions()]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in pins:
            continue
        dist = metadata.distribution(name)
        pins[key] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            todo.append(requirement.name)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def _platforms(platform: Platform) -> list[str]:
    arch = platform.machine
    newest = int(platform.glibc.split(".")[1])
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(_MANYLINUX_FIRST, newest + 1)]
    return [*tags, f"manylinux2014_{arch}", f"linux_{arch}", "any"]


def build_wheelhouse(
    settings: Settings, platform: Platform, on_step: Callable[[str], None] = lambda _: None
) -> Path:
    """The wheelhouse for `platform` under the state dir, downloaded once per set of pins.

    Built in a temporary folder and renamed into place, so an interrupted build
    leaves nothing half-made that a later setup would copy.
    """
    pins = requirements()
    folder = layout.wheelhouse_dir(settings.state_path) / platform.tag
    marker = folder / "requirements.txt"
    wanted = "\n".join(pins) + "\n"
    if marker.is_file() and marker.read_text() == wanted:
        return folder
    on_step(f"building the wheelhouse for python {platform.python} ({platform.machine})")
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-input",
            "--only-binary=:all:",
            "--dest",
            str(building),
            "--python-version",
            platform.python,
            "--implementation",
            "cp",
            "--abi",
            f"cp{platform.python.replace('.', '')}",
            "--abi",
            "abi3",
            "--abi",
            "none",
        ]
        for tag in _platforms(platform):
            command += ["--platform", tag]
        done = subprocess.run(
            [*command, *pins], capture_output=True, text=True, check=False, timeout=900
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise PrerequisiteError(
                f"pip could not download the wheels for the node ({platform.tag}): {last}",
                hint="the control node needs its package index (or a pip cache holding them); "
                "see docs/nodes.md",
            )
        (building / "requirements.txt").write_text(wanted)
        if folder.exists():
            shutil.rmtree(folder)
        building.replace(folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder


def ensure_node_key(settings: Settings, name: str) -> str:
    """The node's public key ("ssh-ed25519 AAAA… provision-node@NAME"), made on first use."""
    path = layout.node_key(settings.state_path, name)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.parent.chmod(0o700)
        crypto.write_private_key(path, crypto.new_ed25519(), comment=f"provision-node@{name}")
    public = crypto.public_key_of(path)
    pub = path.with_name(path.name + ".pub")
    line = " ".join(public.split()[:2]) + f" provision-node@{name}"
    if not pub.is_file() or pub.read_text().strip() != line:
        write_atomic(pub, line + "\n", mode=0o644)
    return line


def known_hosts_lines(settings: Settings, targets: Iterable[Any]) -> list[str]:
    """The recorded host keys of `targets` (Target), as lines for the node's known_hosts."""
    book = ssh.KnownHosts(keys.known_hosts_path(settings.inventory_path))
    lines: list[str] = []
    for target in targets:
        names = list(dict.fromkeys([target.host, target.address]))
        for value in book.recorded(names).values():
            lines.append(f"{','.join(names)} {value}")
    return lines


def plan_setup(settings: Settings, name: str, *, check: bool = False) -> SetupPlan:
    """The setup of node `name`: asks the node what python3 it has; changes nothing."""
    found, loaded = registry.checked_nodes(settings)
    node = registry.find_node(found, name)
    asked = check_node(settings, loaded, node, found.nodes, sample_size=0)
    if not asked.reachable:
        raise NodeNotReadyError(
            f"node {node.name!r} ({node.host}) cannot be reached: {asked.message}",
            hint="bootstrap it first (provision bootstrap), then run setup again",
        )
    platform = Platform.of(asked)
    sites = tuple(
        h
        for h in loaded.inventory.hosts
        if h in served_hosts(found.nodes, loaded.inventory)[node.name]
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    vars_file = layout.control_dir(settings.state_path) / "runs" / f"{stamp}-setup-{node.name}.yml"
    options = RolloutOptions(
        playbook=PLAYBOOK,
        selection=";".join([node.host, *sites]),
        check=check,
        vars_file=str(vars_file),
    )
    return SetupPlan(
        node=node,
        plan=plan_rollout(settings, options),
        platform=platform,
        sites=sites,
        vars_file=vars_file,
        wheelhouse=layout.wheelhouse_dir(settings.state_path) / platform.tag,
        key=layout.node_key(settings.state_path, node.name),
    )


def prepare_setup(
    settings: Settings, setup: SetupPlan, on_step: Callable[[str], None] = lambda _: None
) -> Path:
    """Once confirmed: the node's key, the wheelhouse and the run's variables file."""
    _found, loaded = registry.checked_nodes(settings)
    public = ensure_node_key(settings, setup.node.name)
    wheelhouse = build_wheelhouse(settings, setup.platform, on_step)
    node_target, *site_targets = targets_of(settings, loaded, [setup.node.host, *setup.sites])
    versions = {name: metadata.version(name) for name in layout.PACKAGES}
    data: dict[str, Any] = {
        "execution_node_node_hosts": [setup.node.host],
        "execution_node_site_hosts": list(setup.sites),
        "execution_node_ansible_core_version": versions["ansible-core"],
        "execution_node_ansible_runner_version": versions["ansible-runner"],
        "execution_node_mitogen_version": fast_versions().get("mitogen", ""),
        "execution_node_wheelhouse_source": str(wheelhouse),
        "execution_node_key_source": str(setup.key),
        "execution_node_known_hosts_lines": known_hosts_lines(settings, site_targets),
        "provision_node_site_keys": {
            site: [{"key": public, "from": node_target.address}] for site in setup.sites
        },
    }
    setup.vars_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(
        setup.vars_file,
        "# Generated by provision for one node setup: versions, control-node paths and\n"
        "# public keys only, no secrets.\n" + yaml.safe_dump(data, sort_keys=True),
        mode=0o600,
    )
    return setup.vars_file


def setup_node(
    settings: Settings,
    name: str,
    *,
    check: bool = False,
    run: Callable[[RolloutPlan], RolloutResult],
    on_step: Callable[[str], None] = lambda _: None,
) -> tuple[SetupPlan, RolloutResult]:
    """Plan, prepare and run a node's setup in one go (scripts and the lab; the CLI asks first)."""
    setup = plan_setup(settings, name, check=check)
    prepare_setup(settings, setup, on_step)
    return setup, run(setup.plan)
