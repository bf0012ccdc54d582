"""A bundle's manifest: what it holds (sha256 of every file), for whom, until when.

The manifest is canonical JSON (sorted keys, no spaces) so that the bytes that
are signed are the bytes a PC reads, and a bundle built twice from the same
input is the same file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FORMAT = 1
KIND = "provision-bundle"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
#: Every file a bundle carries sits under this folder of the archive.
CONTENT = "content/"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Manifest:
    """What a bundle says about itself."""

    name: str
    role: str
    site: str
    serial: int
    built_at: datetime
    not_after: datetime
    selection: str
    hosts: tuple[str, ...]
    playbook: str
    standard_id: str
    standard_version: str
    revision: str | None
    #: Archive path (under content/) -> sha256 hex of its bytes.
    files: dict[str, str] = field(default_factory=dict)
    #: host.variable of every vaulted value left out of the inventory.
    withheld: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        data: dict[str, Any] = {
            "format": FORMAT,
            "kind": KIND,
            "name": self.name,
            "role": self.role,
            "site": self.site,
            "serial": self.serial,
            "built_at": stamp(self.built_at),
            "not_after": stamp(self.not_after),
            "selection": self.selection,
            "hosts": list(self.hosts),
            "playbook": self.playbook,
            "standard": {"id": self.standard_id, "version": self.standard_version},
            "revision": self.revision,
            "files": dict(sorted(self.files.items())),
            "withheld": list(self.withheld),
        }
        return (json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        """The manifest in `raw`; ValueError naming the field that is wrong."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"the manifest is not JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise ValueError("the manifest is not a provision bundle's")
        if data.get("format") != FORMAT:
            raise ValueError(f"manifest format {data.get('format')!r} is not {FORMAT}")
        try:
            files = data["files"]
            if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in files.items()
            ):
                raise ValueError("files")
            return cls(
                name=str(data["name"]),
                role=str(data["role"]),
                site=str(data["site"]),
                serial=int(data["serial"]),
                built_at=parse_stamp(str(data["built_at"])),
                not_after=parse_stamp(str(data["not_after"])),
                selection=str(data["selection"]),
                hosts=tuple(str(h) for h in data["hosts"]),
                playbook=str(data["playbook"]),
                standard_id=str(data["standard"]["id"]),
                standard_version=str(data["standard"]["version"]),
                revision=None if data["revision"] is None else str(data["revision"]),
                files=dict(files),
                withheld=tuple(str(w) for w in data.get("withheld", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the manifest's field {exc} is missing or wrong") from None
