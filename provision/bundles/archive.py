"""Reproducible bundle archives: the same files give the same bytes.

Members are sorted, every one owned by 0:0 with no user names, stamped with one
fixed time (the bundle's build time), modes normalised to 0644/0755; the gzip
header carries no time or name. Reading accepts regular files only, never a
link, a device, an absolute path or `..`: a bundle is unpacked on a PC as root.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import PurePosixPath

#: The most a bundle may unpack to: a bundle is playbooks and variables, not data.
MAX_BYTES = 256 * 1024 * 1024


class ArchiveError(ValueError):
    """An archive that is not a bundle's."""


def pack(files: Mapping[str, bytes], mtime: int, executable: frozenset[str] = frozenset()) -> bytes:
    """A .tar.gz of `files` (archive path -> bytes), byte-for-byte reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o755 if name in executable else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def _safe(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def unpack(data: bytes) -> dict[str, bytes]:
    """Archive path -> bytes of every member; ArchiveError for anything not a bundle's."""
    found: dict[str, bytes] = {}
    total = 0
    try:
        # Whole, first: a cut or corrupt stream is refused even where tarfile would
        # stop reading before the damage.
        raw = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ArchiveError(f"it is not a whole .tar.gz ({exc})") from None
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    raise ArchiveError(f"member {member.name!r} is not a regular file")
                if not _safe(member.name):
                    raise ArchiveError(f"member {member.name!r} has an unsafe path")
                if member.name in found:
                    raise ArchiveError(f"member {member.name!r} is in it twice")
                total += member.size
                if total > MAX_BYTES:
                    raise ArchiveError(f"it unpacks to more than {MAX_BYTES} bytes")
                handle = tar.extractfile(member)
                assert handle is not None  # a regular file always has one
                found[member.name] = handle.read()
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"it is not a readable .tar.gz ({exc})") from None
    return found
