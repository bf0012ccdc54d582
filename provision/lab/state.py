"""What the lab has started, on disk, so that any later command can stop it.

Written atomically after every change: if `lab up` dies half-way, `lab down`
still finds every process, mount and interface it made.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision.infra.atomic import write_atomic
from provision.lab.spec import LabHost, Placement


@dataclass
class HostRecord:
    name: str
    role: str
    address: str
    placement: dict[str, str]
    host_key: str = ""
    pid: int | None = None
    #: A new machine (see LabHost.new): its host key is kept here, not in known_hosts.
    new: bool = False

    @classmethod
    def of(cls, host: LabHost) -> HostRecord:
        return cls(host.name, host.role, host.address, asdict(host.placement), new=host.new)

    def as_host(self) -> LabHost:
        return LabHost(self.name, self.role, Placement(**self.placement), self.address, self.new)


@dataclass
class LabState:
    subnet: str
    control_address: str
    rootfs: str
    bridge: str
    proxy_pid: int | None = None
    mounted_nspawn_runtime: bool = False
    #: Whether this lab created its bridge (and so owns it and the cgroups named
    #: after it). A lab refused because another lab has the bridge owns nothing.
    owns_bridge: bool = True
    #: The workspace this lab belongs to, so another lab's refusal can name it.
    workspace: str = ""
    hosts: dict[str, HostRecord] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LabState:
        data: dict[str, Any] = json.loads(text)
        hosts = {name: HostRecord(**record) for name, record in data.pop("hosts", {}).items()}
        return cls(**data, hosts=hosts)


def load(path: Path) -> LabState | None:
    if not path.is_file():
        return None
    return LabState.from_json(path.read_text())


def save(path: Path, state: LabState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, state.to_json())


#: The account a new machine arrives with (LabHost.new), in the sudo group.
INSTALLER_USER = "installer"
INSTALLER_PASSWORDS = "installer-passwords.json"


def installer_passwords(run_dir: Path) -> dict[str, str]:
    """Host → installer password of the lab's new machines (lab test data, mode 0600)."""
    path = run_dir / INSTALLER_PASSWORDS
    if not path.is_file():
        return {}
    data: dict[str, str] = json.loads(path.read_text())
    return data


def installer_password(run_dir: Path, name: str) -> str:
    """The installer password for host `name`, made up (and saved 0600) on first use.

    One lab shares one password, as one supplier's batch of machines would.
    """
    known = installer_passwords(run_dir)
    if name not in known:
        known[name] = next(iter(known.values()), None) or secrets.token_urlsafe(12)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(
            run_dir / INSTALLER_PASSWORDS, json.dumps(known, indent=2, sort_keys=True), mode=0o600
        )
    return known[name]
