"""Check a bundle as a PC does: signature, every checksum, nothing extra, not expired."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from provision.bundles import signing
from provision.bundles.archive import ArchiveError, unpack
from provision.bundles.manifest import CONTENT, MANIFEST, SIGNATURE, Manifest
from provision.errors import InputError


class BundleRefused(InputError):
    """A bundle that must not be applied: tampered, unsigned, of another key, expired."""


def check_bundle(
    data: bytes,
    allowed_signers: Path,
    *,
    now: datetime | None = None,
    where: Path | str = "bundle",
) -> tuple[Manifest, dict[str, bytes]]:
    """The manifest and files of a good bundle; BundleRefused saying why one is not."""

    def refuse(why: str, hint: str = "rebuild it with provision bundle build") -> BundleRefused:
        return BundleRefused(why, hint=hint, path=where)

    try:
        members = unpack(data)
    except ArchiveError as exc:
        raise refuse(str(exc)) from None
    if MANIFEST not in members:
        raise refuse("it has no manifest.json")
    if SIGNATURE not in members:
        raise refuse("it is not signed (no manifest.json.sig)")
    reason = signing.verify(allowed_signers, members[MANIFEST], members[SIGNATURE])
    if reason is not None:
        raise refuse(
            f"its signature is not by the department's bundle key: {reason}",
            hint=f"only bundles signed by the key in {allowed_signers} are applied",
        )
    try:
        manifest = Manifest.from_bytes(members[MANIFEST])
    except ValueError as exc:
        raise refuse(str(exc)) from None
    content = {n: d for n, d in members.items() if n not in (MANIFEST, SIGNATURE)}
    for name in sorted(content):
        if not name.startswith(CONTENT) or name not in manifest.files:
            raise refuse(f"it holds {name}, which its manifest does not list")
    for name, digest in sorted(manifest.files.items()):
        if name not in content:
            raise refuse(f"its manifest lists {name}, which it does not hold")
        if hashlib.sha256(content[name]).hexdigest() != digest:
            raise refuse(f"{name} does not match its checksum in the manifest")
    moment = now or datetime.now(UTC)
    if manifest.not_after <= moment:
        raise refuse(
            f"it expired at {manifest.not_after:%Y-%m-%d %H:%M} UTC (serial {manifest.serial})"
        )
    return manifest, content


def verify_bundle(path: Path, allowed_signers: Path, *, now: datetime | None = None) -> Manifest:
    """The manifest of the bundle at `path` once every check passed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the bundle: {exc.strerror}", path=path) from None
    return check_bundle(data, allowed_signers, now=now, where=path)[0]
