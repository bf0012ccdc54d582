"""What every report writer shares: its input, run summaries, atomic files, value text."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from provision.errors import InputError, StateError
from provision.infra.atomic import atomic_binary_output, atomic_output
from provision.model.compliance.model import PLACE_LEVELS, ComplianceRunInfo, HostReport
from provision.model.places import LEVELS, normalise, tree_group
from provision.model.standards.model import Standard
from provision.model.waivers import WaiverSet

#: The canonical JSON's format name; a reader checks it before anything else.
FORMAT_VERSION = "provision-compliance/1"

FORMATS: tuple[str, ...] = ("json", "junit", "csv", "html")

#: The formats that can be written gzip-compressed (a browser opens HTML as it is).
COMPRESSIBLE: tuple[str, ...] = ("json", "junit", "csv")

#: Runs of more hosts than this write JSON, JUnit and CSV gzip-compressed unless told not
#: to (a 50,000-host run's JSON is about 1 GB plain, a few dozen MB compressed), and HTML
#: as a folder of pages rather than one page.
LARGE_RUN_HOSTS = 1000


@dataclass(frozen=True)
class RunPoint:
    """One earlier run, summed up: a point of the HTML trend chart."""

    run_id: int
    started_at: datetime
    standard_id: str
    standard_version: str
    hosts: int
    reported: int
    compliant: int
    median_score: float | None = None
    coverage: float | None = None

    @property
    def compliant_share(self) -> float | None:
        return self.compliant / self.reported if self.reported else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "standard_id": self.standard_id,
            "standard_version": self.standard_version,
            "hosts": self.hosts,
            "reported": self.reported,
            "compliant": self.compliant,
            "median_score": self.median_score,
            "coverage": self.coverage,
        }


@dataclass(frozen=True)
class ReportInput:
    """Everything a writer needs besides the stream of host reports."""

    run: ComplianceRunInfo
    by: str
    standard: Standard | None
    history: tuple[RunPoint, ...]
    now: datetime
    freshness: timedelta
    waivers: WaiverSet | None = None
    #: Write the file gzip-compressed (JSON, JUnit, CSV).
    compress: bool = False
    #: The place group (``district_gazipur``) the report is limited to, if any.
    place: str | None = None

    def title(self, control: str) -> str:
        if self.standard is None:
            return ""
        try:
            return self.standard.control(control).title
        except KeyError:
            return ""


def check_by(by: str) -> None:
    if by not in PLACE_LEVELS:
        raise InputError(
            f"cannot group a report by {by!r}", hint="--by one of: " + ", ".join(PLACE_LEVELS)
        )


def check_standard(run: ComplianceRunInfo, standard: Standard | None) -> None:
    """The standard given must be the one the run was judged by."""
    if standard is None:
        return
    if (standard.id, standard.version) != (run.standard_id, run.standard_version) or (
        standard.digest and run.standard_digest and standard.digest != run.standard_digest
    ):
        raise StateError(
            f"run {run.id} was judged by {run.standard_id} {run.standard_version} "
            f"({run.standard_digest[:12]}), not by {standard.id} {standard.version} "
            f"({standard.digest[:12]})",
            hint="report without the standard's titles, or check out the standard's "
            "file as it was for that run",
        )


def run_dict(run: ComplianceRunInfo) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "env": run.env,
        "selection": run.selection,
        "standard_id": run.standard_id,
        "standard_version": run.standard_version,
        "standard_digest": run.standard_digest,
        "waivers_digest": run.waivers_digest,
        "user": run.user,
        "node": run.node,
        "started_at": run.started_at.isoformat(),
        "finished_at": None if run.finished_at is None else run.finished_at.isoformat(),
        "git_revision": run.git_revision,
        "hosts": run.hosts,
    }


#: The JSON every writer writes: sorted keys, text as it is. One encoder for every call:
#: `json.dumps` with options builds a new one each time, a cost paid per result.
JSON_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)


def value_text(value: Any, limit: int | None = None) -> str:
    """Evidence as one line of text: strings as they are, anything else as compact JSON."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else JSON_ENCODER.encode(value)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


@contextmanager
def atomic_text(
    out: Path, *, encoding: str = "utf-8", newline: str | None = None, compress: bool = False
) -> Iterator[IO[str]]:
    """A text file that becomes `out` only when the block ends without an error.

    With `compress` the text goes through gzip on its way to the file: the
    writer still writes one host at a time, and nothing but gzip's window is
    held in memory. The gzip header carries no name and no time, so the same
    run gives the same bytes.
    """
    folder = out.parent
    if not folder.is_dir():
        raise InputError(
            f"folder {folder} does not exist", hint="create it or choose another --out"
        )
    if not compress:
        with atomic_output(out, mode=0o644, encoding=encoding, newline=newline) as handle:
            yield handle
        return
    with atomic_binary_output(out, mode=0o644) as raw:
        packed = gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0)
        text = io.TextIOWrapper(packed, encoding=encoding, newline=newline, write_through=False)
        yield text
        text.close()  # flushes the text, writes gzip's trailer; `raw` stays open for the rename


#: How many names a place term gives at each level (the district qualifies those below).
_TERM_NAMES = {"division": 1, "district": 1, "upazila": 2, "union": 3}


def place_group(text: str) -> str:
    """The place group a `--place` names: a group (``district_gazipur``) or a selection term.

    The selection language's place terms are accepted as they are written for
    `compliance run`: ``district:gazipur``, ``upazila:gazipur/kaliganj``,
    ``union:gazipur/kaliganj/bahadursadi``, ``division:dhaka``.
    """
    if ":" not in text:
        place_level(text)
        return text
    level, _, value = text.partition(":")
    names = [n for n in value.strip("'\"").split("/") if n]
    if level not in _TERM_NAMES or len(names) != _TERM_NAMES[level]:
        raise InputError(
            f"--place {text!r} is not one place",
            hint="division:NAME, district:NAME, upazila:DISTRICT/UPAZILA or "
            "union:DISTRICT/UPAZILA/UNION (or the place's group, district_gazipur)",
        )
    group = level + "_" + "_".join(normalise(n) for n in names)
    place_level(group)  # a name with nothing left once folded to ASCII names no place
    return group


def place_level(group: str) -> str:
    """The tree level of a place group name (``upazila_gazipur_kaliganj`` -> ``upazila``)."""
    for level in sorted(LEVELS, key=len, reverse=True):
        if group.startswith(level + "_") and len(group) > len(level) + 1:
            return level
    raise InputError(
        f"--place {group!r} is not a place group",
        hint="name a place as its inventory group: division_dhaka, district_gazipur, "
        "upazila_gazipur_kaliganj, union_gazipur_kaliganj_bahadursadi",
    )


def host_group(report: HostReport, level: str) -> str | None:
    """The group of `report`'s place at `level`, or None when its place stops above it."""
    depth = LEVELS.index(level) + 1
    path = tuple(report.place.get(lv) or "" for lv in LEVELS[:depth])
    if not all(path):
        return None
    return tree_group(level, *path)


def within(
    run: ComplianceRunInfo, reports: Iterable[HostReport], group: str
) -> Iterator[HostReport]:
    """The reports of hosts in place `group`; an error at the end if there were none.

    The error comes while the writer is still inside its atomic block, so a
    report of a place the run does not hold is never written (not even empty).
    """
    level = place_level(group)
    found = 0
    for report in reports:
        if host_group(report, level) == group:
            found += 1
            yield report
    if not found:
        raise InputError(
            f"run {run.id} has no host in {group}",
            hint="check the name against the run's places (the HTML summary lists them)",
        )


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """A folder that becomes `out` only when the block ends without an error.

    The pages are written into a temporary folder beside `out`, which is then
    renamed into place (an older report of that name is moved aside first and
    removed after): a reader sees the old folder or the new one, never a mix.
    """
    parent = out.parent
    if not parent.is_dir():
        raise InputError(
            f"folder {parent} does not exist", hint="create it or choose another --out"
        )
    if out.exists() and not out.is_dir():
        raise InputError(
            f"{out} is a file; a large run's HTML report is a folder",
            hint="choose another --out, or --one-page for a single page",
        )
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    try:
        yield scratch
        scratch.chmod(0o755)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _swap_in(scratch, out)


def _swap_in(scratch: Path, out: Path) -> None:
    """Rename the finished folder `scratch` to `out`, replacing an older `out` whole."""
    aside = None
    try:
        if out.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            out.replace(aside / out.name)
        scratch.replace(out)
    except BaseException:
        if aside is not None and not out.exists():
            (aside / out.name).replace(out)  # the old report back where it was
        shutil.rmtree(scratch, ignore_errors=True)
        if aside is not None and not (aside / out.name).exists():
            aside.rmdir()
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
