"""One host's answer to a preflight sweep: the one type the sweep and the store share.

The preflight service (`provision.access.preflight`) builds these as hosts
answer, and the store (`provision.infra.store.preflight_records`) writes and
reads them back; keeping the type here, below both, means the fifteen fields
are written once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


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
    #: The standard's control the minimum comes from (e.g. HW-001), "" when none.
    minimum_control: str = ""
    shortfalls: tuple[str, ...] = ()
    #: When the store recorded the answer; None until it is saved. Not part of
    #: the answer itself, so a saved answer equals the one the sweep built.
    at: datetime | None = field(default=None, compare=False)

    @property
    def reachable(self) -> bool:
        return self.status == "reachable"

    def as_dict(self) -> dict[str, Any]:
        """The answer for `--json`: every field but the store's time, and `reachable`."""
        values = asdict(self)
        values.pop("at")
        values["reachable"] = self.reachable
        return values
