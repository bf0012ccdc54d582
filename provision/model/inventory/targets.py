"""A host as a command reaches it: one type for bootstrap, preflight and whoever comes next.

Ansible's connection variables decide where and as whom a host is reached
(`ansible_host`, `ansible_port`, `ansible_user`, the private key), and the
inventory's own variables where it stands (`provision_role`,
`provision_district`). `Target.from_hostvars` reads them once, the way Ansible
would, from a host's merged variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Minimum:
    """The equipment a host must have; None where the standard asks nothing."""

    cpu_cores: int | None
    memory_mb: int | None
    disk_gb: int | None
    #: The control(s) it comes from, e.g. "HW-001" (comma-joined when several apply).
    control: str = ""


@dataclass(frozen=True)
class Target:
    """One selected host, with how Ansible would log into it."""

    host: str
    address: str
    port: int
    #: The account Ansible logs in as (`ansible_user`, else the automation account).
    user: str
    #: The private key Ansible logs in with (the host's own, else the control key).
    key: Path
    role: str = ""
    district: str = "-"
    #: The equipment the host's standards ask for (preflight fills it in).
    minimum: Minimum | None = None

    @classmethod
    def from_hostvars(
        cls,
        host: str,
        values: Mapping[str, Any],
        *,
        user: str,
        key: Path,
        minimum: Minimum | None = None,
    ) -> Target:
        """`host` from its merged variables; `user` and `key` where it names none."""
        own_key = values.get("ansible_ssh_private_key_file") or values.get(
            "ansible_private_key_file"
        )
        return cls(
            host=host,
            address=str(values.get("ansible_host") or host),
            port=int(values.get("ansible_port") or 22),
            user=str(values.get("ansible_user") or user),
            key=Path(str(own_key)).expanduser() if own_key else key,
            role=str(values.get("provision_role", "")),
            district=str(values.get("provision_district") or "-"),
            minimum=minimum,
        )
