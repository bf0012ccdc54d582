"""Result files as the pull agent writes them (playbooks/roles/pull_agent/files/)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def evidence(collected: datetime, **over: Any) -> dict[str, Any]:
    """A lab PC's evidence of a few sections (the rest of its controls: no_report)."""
    body: dict[str, Any] = {
        "collected_at": collected.timestamp(),
        "os_release": {"id": "debian", "version_id": "12"},
        "timezone": {"name": "Asia/Dhaka"},
    }
    body.update(over)
    return body


def result_file(
    host: str,
    serial: int,
    collected: datetime,
    *,
    status: str = "ok",
    changed: int = 0,
    offline: bool = False,
    with_evidence: bool = True,
    **over: Any,
) -> bytes:
    """One apply's result, as the agent's outbox holds it."""
    tasks = [
        {"host": host, "task": "Ensure chrony is installed", "status": "ok", "msg": ""},
        {
            "host": host,
            "task": "Ensure the lab packages",
            "status": "failed" if status == "failed" else ("changed" if changed else "ok"),
            "msg": "no package matched" if status == "failed" else "",
        },
    ]
    body: dict[str, Any] = {
        "format": 1,
        "host": host,
        "bundle": "lab_pc.khu_014",
        "serial": serial,
        "standard": {"id": "bd-ict-baseline", "version": "1.0"},
        "revision": None,
        "started_at": collected.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "collected_at": collected.timestamp(),
        "offline": offline,
        "expired": False,
        "rc": 2 if status == "failed" else 0,
        "status": status,
        "changed": changed,
        "failed": 1 if status == "failed" else 0,
        "tasks": tasks,
        "evidence": evidence(collected) if with_evidence else None,
        "agent": "1",
    }
    body.update(over)
    return json.dumps(body, sort_keys=True).encode()


def file_name(collected: datetime, serial: int) -> str:
    """The name the agent gives a result: its collection time and serial."""
    return f"{collected:%Y%m%dT%H%M%S%f}Z-{serial:06d}.json"
