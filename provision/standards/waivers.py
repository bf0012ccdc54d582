"""The waivers file (waivers.yml): read it, fingerprint it, add a waiver to it.

The rules of a waiver are the domain's (`provision.model.waivers`); this module
is where they meet the file people edit. Adding a waiver appends its text, so
the file's comments and order stay as people wrote them; the whole new text is
checked before it replaces the file, in one step.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from datetime import date
from pathlib import Path

from provision.errors import InputError
from provision.infra.atomic import write_atomic
from provision.infra.yamlfile import load_located, parse_located
from provision.model.inventory.problems import ProblemsError
from provision.model.standards.model import Standard
from provision.model.waivers import Waiver, WaiverSet, parse_waivers, waiver_entry


def load_waivers(
    path: Path,
    standard: Standard,
    *,
    known_hosts: Collection[str],
    known_groups: Collection[str],
    today: date,
) -> WaiverSet:
    """Read and check `path` against `standard` and the inventory; a missing file is no waiver.

    Every problem in the file is collected; if there is any, one `InputError`
    (a `ProblemsError` holding them all) names the first one's line and field.
    Scopes are checked against `known_hosts` and `known_groups` (the inventory's
    host and group names); an empty collection means "no inventory to check
    against", and that kind of scope is then taken as written.
    """
    if not path.exists():
        return WaiverSet(path=path)
    if path.is_dir():
        raise InputError("is a folder, not a waivers file", hint="point at waivers.yml", path=path)
    located = load_located(path, dates_as_text=True)
    waivers, problems = parse_waivers(
        located,
        standard,
        known_hosts=known_hosts,
        known_groups=known_groups,
        today=today,
    )
    if problems:
        raise ProblemsError(path, problems, " in the waivers")
    return WaiverSet(tuple(waivers), path=path, digest=located.digest)


def waivers_digest(path: Path) -> str | None:
    """sha256 of the file's bytes, or None when there is no file."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


#: The head of a waivers.yml that `add_waiver` creates.
NEW_FILE_HEAD = """\
---
# Approved exceptions to the controls of the standards in standards/.
# Keep this file under version control. See docs/waivers.md.
waivers:
"""

_WAIVERS_KEY = re.compile(r"^waivers:[ \t]*(\[\s*\]|null|~)?[ \t]*(#.*)?$", re.MULTILINE)
_ITEM = re.compile(r"^([ \t]*)- ", re.MULTILINE)


def add_waiver(
    path: Path,
    waiver: Waiver,
    standard: Standard,
    *,
    known_hosts: Collection[str],
    known_groups: Collection[str],
    today: date,
) -> WaiverSet:
    """Append `waiver` to the file at `path` (created if missing), keeping its comments.

    Refuses an expiry that is not after `today`: a waiver written today must
    still be in force tomorrow. The new text is checked as a whole, with the
    same rules as `load_waivers`, before it replaces the file (atomically); on any
    problem the file is left as it was. Returns the file's waivers afterwards.
    """
    if waiver.expires <= today:
        raise InputError(
            f"expiry {waiver.expires.isoformat()} is not after today ({today.isoformat()})",
            hint="a new waiver must expire in the future: --expires YYYY-MM-DD",
        )
    text = path.read_text(encoding="utf-8") if path.exists() else NEW_FILE_HEAD
    key = _WAIVERS_KEY.search(text)
    if key is None:
        data = parse_located(text, path, dates_as_text=True).data
        if (isinstance(data, dict) and "waivers" in data) or not isinstance(data, dict | None):
            raise InputError(
                "cannot find a block 'waivers:' list to add to",
                hint="write the list as '- control: …' items under 'waivers:' at the top level",
                path=path,
            )
        key_text = text + ("" if text.endswith("\n") or not text else "\n") + "waivers:\n"
        text, key = key_text, _WAIVERS_KEY.search(key_text)
        assert key is not None
    if key.group(1):  # "waivers: []": the list becomes a block list
        text = text[: key.start()] + "waivers:" + text[key.end() :]
    item = _ITEM.search(text, key.start())
    indent = item.group(1) if item else "  "
    if not text.endswith("\n"):
        text += "\n"
    text += waiver_entry(waiver, indent)
    located = parse_located(text, path, dates_as_text=True)
    waivers, problems = parse_waivers(
        located, standard, known_hosts=known_hosts, known_groups=known_groups, today=today
    )
    if problems:
        raise ProblemsError(path, problems, " once the waiver is added")
    if not any(w.id == waiver.id for w in waivers):  # pragma: no cover - a defect if reached
        raise InputError("the new waiver did not parse back", path=path)
    write_atomic(path, text)
    return WaiverSet(tuple(waivers), path=path, digest=located.digest)
