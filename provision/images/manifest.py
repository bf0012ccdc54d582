"""An image's manifest: what it is, what it holds, and the checksum of its bytes.

Written beside the image as `<image>.manifest.json`: role, standard (id,
version, digest), every Debian package with its version (from dpkg-query),
build date, format and the image's sha256. `verify_image` recomputes the
checksum and names the file when it no longer matches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import InputError

SUFFIX = ".manifest.json"
FORMAT = 1
_CHUNK = 4 * 2**20


def manifest_path(image: Path) -> Path:
    return image.with_name(image.name + SUFFIX)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_packages(dpkg_query_output: str) -> list[dict[str, str]]:
    """`dpkg-query -W -f '${Package}\\t${Version}\\t${Architecture}\\n'` -> sorted list."""
    packages = []
    for line in dpkg_query_output.splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[0]:
            entry = {"name": fields[0], "version": fields[1]}
            if len(fields) > 2 and fields[2]:
                entry["architecture"] = fields[2]
            packages.append(entry)
    return sorted(packages, key=lambda p: (p["name"], p.get("architecture", "")))


@dataclass(frozen=True)
class VerifyResult:
    image: str
    manifest: str
    sha256: str
    role: str
    standard_id: str
    standard_version: str
    ok: bool = True


def load_manifest(image: Path) -> dict[str, Any]:
    path = manifest_path(image)
    if not path.is_file():
        raise InputError(
            f"there is no manifest beside {image}",
            hint=f"an image is verified against {path.name}, written by provision image build",
            path=path,
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the manifest cannot be read: {exc}", path=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("sha256"), str):
        raise InputError("the manifest has no sha256 of the image", path=path)
    return data


def verify_image(image: Path) -> VerifyResult:
    """The image's bytes hash to what its manifest says, or an `InputError` naming it."""
    if not image.is_file():
        raise InputError("no such image file", path=image)
    data = load_manifest(image)
    actual = sha256_of(image)
    if actual != data["sha256"]:
        raise InputError(
            f"the image does not match its manifest: sha256 {actual[:16]}…, "
            f"manifest says {str(data['sha256'])[:16]}…",
            hint="the image changed after it was built (or is damaged); build it again",
            path=image,
        )
    standard = data.get("standard") or {}
    return VerifyResult(
        image=str(image),
        manifest=str(manifest_path(image)),
        sha256=actual,
        role=str(data.get("role", "")),
        standard_id=str(standard.get("id", "")),
        standard_version=str(standard.get("version", "")),
    )
