"""What the lab has started, on disk, so that any later command can stop it.

Written atomically after every change: if `lab up` dies half-way, `lab down`
still finds every process, mount and interface it made.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision.lab.spec import LabHost, Placement


@dataclass
class HostRecord:
    name: str
    role: str
    address: str
    placement: dict[str, str]
    host_key: str = ""
    pid: int | None = None

    @classmethod
    def of(cls, host: LabHost) -> HostRecord:
        return cls(host.name, host.role, host.address, asdict(host.placement))

    def as_host(self) -> LabHost:
        return LabHost(self.name, self.role, Placement(**self.placement), self.address)


@dataclass
class LabState:
    subnet: str
    control_address: str
    rootfs: str
    bridge: str
    proxy_pid: int | None = None
    mounted_nspawn_runtime: bool = False
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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(state.to_json())
    tmp.replace(path)
