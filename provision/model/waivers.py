"""Waivers: approved, dated exceptions to a standard's controls (waivers.yml).

A waiver says that one control need not hold for some hosts until a date, who
approved that and why. The file lives in the workspace under version control, so
every exception has an author, a review and a history. Pure domain code: it reads
one YAML file and answers "which waiver applies here, today?".

The file::

    waivers:
      - id: W-001                      # optional; default CONTROL@KIND:VALUE
        control: SSH-004               # a control id of the standard
        scope: "district:Gazipur"      # KIND:VALUE, see SCOPE_KINDS
        justification: Legacy monitoring needs root login until the new agent ships
        approver: Head of Infrastructure
        approved: 2026-11-01           # the day it was signed off
        expires: 2027-02-01            # from this day on it no longer applies

Scope kinds: ``host`` (a host name), ``group`` (an inventory group), and the
places of the administrative tree, ``division``, ``district``, ``upazila``,
``union`` and ``site`` (a site code). Upazila and union names repeat across
districts, so they may be written as a path: ``upazila:Gazipur/Kaliganj``,
``union:Gazipur/Kaliganj/Bahadursadi``. Place names are looked up in the tree
as the register and selections do (``provision.model.places.match_key``: case,
spaces and punctuation ignored, English or Bangla).

A waiver whose expiry has passed is not an error: it is *expired*. The audit then
evaluates the control normally and flags the expired waiver in the report. An
expiry that was already past when the waiver was written is an error: `expires`
must come after `approved`, and `approved` may not lie in the future.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from provision.model.compliance.model import PLACE_LEVELS
from provision.model.inventory.problems import Problem
from provision.model.inventory.tree import load_tree
from provision.model.located import Located, PathKey
from provision.model.places import LEVELS, match_key, normalise, tree_group
from provision.model.standards.model import Standard
from provision.model.words import with_article

#: Scope kinds, most specific first: when several active waivers match one host
#: and control, the most specific one is the one recorded.
SCOPE_KINDS: tuple[str, ...] = ("host", "site", "union", "upazila", "group", "district", "division")

#: Keys a waiver entry may have.
WAIVER_KEYS: tuple[str, ...] = (
    "id",
    "control",
    "scope",
    "justification",
    "approver",
    "approved",
    "expires",
)
_REQUIRED: tuple[str, ...] = WAIVER_KEYS[1:]

#: How many names a tree-level scope may hold in its path form (district first).
_PATH_DEPTH = {"division": 1, "district": 1, "upazila": 2, "union": 3, "site": 1}

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")


@dataclass(frozen=True)
class Scope:
    """Which hosts a waiver covers: `kind` is one of SCOPE_KINDS."""

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class Waiver:
    """One approved exception to one control, for the hosts in `scope`, until `expires`."""

    id: str
    control: str
    scope: Scope
    justification: str
    approver: str
    approved: date
    #: The first day the waiver no longer applies.
    expires: date
    #: The line of the entry in waivers.yml (None for one built in code).
    line: int | None = None

    def active(self, today: date) -> bool:
        """True while it applies: from `approved` up to the day before `expires`."""
        return self.approved <= today < self.expires

    def expired(self, today: date) -> bool:
        return today >= self.expires

    def as_dict(self, today: date | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "control": self.control,
            "scope": {"kind": self.scope.kind, "value": self.scope.value},
            "justification": self.justification,
            "approver": self.approver,
            "approved": self.approved.isoformat(),
            "expires": self.expires.isoformat(),
            "line": self.line,
        }
        if today is not None:
            data["state"] = "active" if self.active(today) else "expired"
            data["days_left"] = (self.expires - today).days
        return data


class _Matcher:
    """A waiver's scope, resolved once so that matching 5 million results stays cheap."""

    __slots__ = ("group", "groups", "names", "paths", "rank", "waiver")

    def __init__(self, waiver: Waiver) -> None:
        self.waiver = waiver
        kind, value = waiver.scope.kind, waiver.scope.value
        self.rank = SCOPE_KINDS.index(kind)
        self.names: tuple[str, ...] = ()
        self.group: str | None = None
        #: The tree groups of every place the scope names, in any spelling (Bangla too).
        self.groups: frozenset[str] = frozenset()
        #: Those places' English names from the district down (division: its name), as
        #: match keys, to compare with a host's place when its groups do not say.
        self.paths: frozenset[tuple[str, ...]] = frozenset()
        if kind == "site":
            self.names = (normalise(value),)
            self.group = "site_" + self.names[0]
        elif kind in PLACE_LEVELS:
            parts = value.split("/")
            self.names = tuple(match_key(n) for n in parts)
            places = load_tree().lookup(kind, parts)
            self.groups = frozenset(tree_group(kind, *p.path) for p in places)
            self.paths = frozenset(_keys_from_district(p.path) for p in places)

    def matches(self, host: str, groups: Collection[str], place: Mapping[str, str]) -> bool:
        kind, value = self.waiver.scope.kind, self.waiver.scope.value
        if kind == "host":
            return host == value
        if kind == "group":
            return value in groups
        if kind == "site":
            return self.group in groups or normalise(place.get("site", "")) == self.names[0]
        if any(g in groups for g in self.groups):
            return True
        if self.paths:
            levels = _PLACE_PATHS[kind]
            return _keys_from_district(tuple(place.get(lv, "") for lv in levels)) in self.paths
        # A place the tree does not know (a hand-written inventory): compare the names.
        own = place.get(kind)
        if own is None or match_key(own) != self.names[-1]:
            return False
        # A path form names the places above too: district first, then upazila.
        above = ("district", "upazila")[: len(self.names) - 1]
        return all(
            match_key(place.get(level, "")) == name
            for level, name in zip(above, self.names, strict=False)
        )


#: The levels, division first, of the path of a place of each level.
_PLACE_PATHS = {level: LEVELS[: depth + 1] for depth, level in enumerate(LEVELS)}


def _keys_from_district(path: tuple[str, ...]) -> tuple[str, ...]:
    """Match keys of a path's names from the district down (a division: its own name)."""
    return tuple(match_key(n) for n in (path if len(path) == 1 else path[1:]))


@dataclass
class WaiverSet:
    """The waivers of one file, indexed by control."""

    waivers: tuple[Waiver, ...] = ()
    path: Path | None = None
    #: sha256 of the file as read (None when there was no file).
    digest: str | None = None
    _by_control: dict[str, list[_Matcher]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for waiver in self.waivers:
            self._by_control.setdefault(waiver.control, []).append(_Matcher(waiver))
        for matchers in self._by_control.values():
            matchers.sort(key=lambda m: (m.rank, m.waiver.id))

    def __len__(self) -> int:
        return len(self.waivers)

    def __iter__(self) -> Iterator[Waiver]:
        return iter(self.waivers)

    def get(self, waiver_id: str) -> Waiver | None:
        return next((w for w in self.waivers if w.id == waiver_id), None)

    def match(
        self,
        control: str,
        host: str,
        groups: Collection[str],
        place: Mapping[str, str],
        today: date,
    ) -> tuple[Waiver | None, Waiver | None]:
        """(active waiver, expired waiver) for `control` on `host`, as of `today`.

        The active one is the most specific active waiver whose scope covers the
        host (host, site, union, upazila, group, district, division; then by id).
        The expired one is given only when no active waiver matches: the waiver
        that matched most recently (latest expiry), for the report to flag while
        the control is evaluated normally. `groups` are the host's inventory
        groups (with their ancestors), `place` its names by PLACE_LEVELS.
        """
        matchers = self._by_control.get(control)
        if not matchers:
            return None, None
        expired: Waiver | None = None
        for matcher in matchers:
            waiver = matcher.waiver
            if waiver.approved > today or not matcher.matches(host, groups, place):
                continue
            if today < waiver.expires:
                return waiver, None
            if expired is None or waiver.expires > expired.expires:
                expired = waiver
        return None, expired

    def active(self, today: date) -> list[Waiver]:
        return [w for w in self.waivers if w.active(today)]

    def expired(self, today: date) -> list[Waiver]:
        return [w for w in self.waivers if w.expired(today)]


def parse_waivers(
    located: Located,
    standard: Standard,
    *,
    known_hosts: Collection[str],
    known_groups: Collection[str],
    today: date,
) -> tuple[list[Waiver], list[Problem]]:
    """The waivers of a parsed file and every problem found in it (both may be non-empty)."""
    file = str(located.path)
    problems: list[Problem] = []

    def problem(at: PathKey, message: str, hint: str | None = None) -> None:
        problems.append(Problem(file, located.line(at), message, hint))

    for dup, line, first in located.duplicates:
        problems.append(
            Problem(file, line, f"'{dup[-1]}' appears twice (first on line {first})", "keep one")
        )
    data = located.data
    if data is None:
        return [], problems
    if not isinstance(data, dict):
        problem((), "the file must be a mapping with a 'waivers:' list", "see docs/waivers.md")
        return [], problems
    for key in data:
        if key != "waivers":
            problem((key,), f"unknown key '{key}'", "the only top-level key is 'waivers'")
    entries = data.get("waivers")
    if entries is None:
        return [], problems
    if not isinstance(entries, list):
        problem(("waivers",), "'waivers' must be a list of waivers", "start each with '- control:'")
        return [], problems
    controls = {c.id for c in standard.controls}
    context = _ScopeContext(frozenset(known_hosts), frozenset(known_groups))
    waivers: list[Waiver] = []
    seen: dict[str, int | None] = {}
    for index, entry in enumerate(entries):
        at: PathKey = ("waivers", index)
        before = len(problems)
        waiver = _parse_entry(
            entry, at, located.line(at), controls, standard, context, today, problem
        )
        if waiver is None or len(problems) > before:
            continue
        if waiver.id in seen:
            problem(
                (*at, "id") if "id" in entry else at,
                f"waiver id '{waiver.id}' is used twice (first on line {seen[waiver.id]})",
                "give each waiver its own id: W-001, W-002…",
            )
            continue
        seen[waiver.id] = waiver.line
        waivers.append(waiver)
    return waivers, problems


@dataclass(frozen=True)
class _ScopeContext:
    hosts: frozenset[str]
    groups: frozenset[str]


def _parse_entry(
    entry: Any,
    at: PathKey,
    line: int | None,
    controls: set[str],
    standard: Standard,
    context: _ScopeContext,
    today: date,
    problem: Any,
) -> Waiver | None:
    if not isinstance(entry, dict):
        problem(at, "a waiver must be a mapping (control, scope, justification…)")
        return None
    for key in entry:
        if key not in WAIVER_KEYS:
            problem((*at, key), f"unknown key '{key}'", "known keys: " + ", ".join(WAIVER_KEYS))
    for key in _REQUIRED:
        if key not in entry or entry[key] is None or entry[key] == "":
            what = "who approved it" if key == "approver" else "why it is needed"
            hint = {
                "justification": f"say {what}",
                "approver": f"say {what}",
                "approved": "the day it was approved, as YYYY-MM-DD",
                "expires": "the day it stops applying, as YYYY-MM-DD",
            }.get(key)
            problem(at, f"waiver has no {key}", hint)
    control = _text(entry.get("control"))
    if control and control not in controls:
        problem(
            (*at, "control"),
            f"unknown control '{control}' (not in {standard.id} {standard.version})",
            "use a control id from: provision standards show",
        )
    for key in ("justification", "approver"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            problem((*at, key), f"'{key}' must be text")
        elif isinstance(value, str) and value and not value.strip():
            problem((*at, key), f"'{key}' is blank")
    scope = _parse_scope(entry.get("scope"), (*at, "scope"), context, problem)
    approved = _date(entry.get("approved"), (*at, "approved"), problem)
    expires = _date(entry.get("expires"), (*at, "expires"), problem)
    if approved is not None and approved > today:
        problem(
            (*at, "approved"),
            f"approved on {approved.isoformat()}, which is after today ({today.isoformat()})",
            "write the day the waiver was actually approved",
        )
    if approved is not None and expires is not None and expires <= approved:
        problem(
            (*at, "expires"),
            f"expires on {expires.isoformat()}, not after it was approved "
            f"({approved.isoformat()}): the expiry was already past when it was written",
            "an expiry must be a later day than 'approved'",
        )
    waiver_id = entry.get("id")
    if waiver_id is not None and (not isinstance(waiver_id, str) or not _ID.match(waiver_id)):
        problem((*at, "id"), f"bad waiver id {waiver_id!r}", "use letters, digits and -: W-001")
        return None
    if not (control and scope and approved and expires):
        return None
    justification = _text(entry.get("justification"))
    approver = _text(entry.get("approver"))
    if not (justification and approver):
        return None
    return Waiver(
        id=waiver_id or f"{control}@{scope}",
        control=control,
        scope=scope,
        justification=justification,
        approver=approver,
        approved=approved,
        expires=expires,
        line=line,
    )


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _date(value: Any, at: PathKey, problem: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        problem(at, f"'{at[-1]}' must be a day (YYYY-MM-DD), not a time", None)
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    problem(at, f"bad date {value!r} for '{at[-1]}'", "write it as YYYY-MM-DD")
    return None


def _parse_scope(value: Any, at: PathKey, context: _ScopeContext, problem: Any) -> Scope | None:
    if value is None or value == "":
        return None  # reported as missing
    if not isinstance(value, str) or ":" not in value:
        problem(
            at,
            f"bad scope {value!r}: write KIND:VALUE",
            "kinds: " + ", ".join(SCOPE_KINDS) + " (e.g. host:dhk-kal-lab01, district:Gazipur)",
        )
        return None
    kind, _, name = (part.strip() for part in value.partition(":"))
    if kind not in SCOPE_KINDS:
        problem(at, f"bad scope kind '{kind}'", "kinds: " + ", ".join(SCOPE_KINDS))
        return None
    if not name:
        problem(at, f"scope '{value}' names no {kind}", f"write {kind}:NAME")
        return None
    scope = Scope(kind, name)
    message = _check_scope(scope, context)
    if message:
        problem(at, message[0], message[1])
        return None
    return scope


def _check_scope(scope: Scope, context: _ScopeContext) -> tuple[str, str] | None:
    """A (message, hint) when the scope names nothing in the inventory."""
    kind, value = scope.kind, scope.value
    if kind == "host":
        if context.hosts and value not in context.hosts:
            return f"bad scope: no host '{value}' in the inventory", "check the host name"
        return None
    if kind == "group":
        if context.groups and value not in context.groups:
            return (
                f"bad scope: no group '{value}' in the inventory",
                "list groups with provision inventory tree",
            )
        return None
    parts = value.split("/")
    if any(not match_key(n) for n in parts) or len(parts) > _PATH_DEPTH[kind]:
        depth = _PATH_DEPTH[kind]
        form = ["District", "District/Upazila", "District/Upazila/Union"][depth - 1]
        return f"bad scope: '{value}' is not {with_article(kind)} name", f"write {kind}:{form}"
    if kind == "site":
        if context.groups and "site_" + normalise(value) not in context.groups:
            return f"bad scope: no site '{value}' in the inventory", "check the site code"
        return None
    places = load_tree().lookup(kind, parts)
    if not places and not context.groups:
        return f"bad scope: no {kind} '{value}' in the tree", "check the spelling"
    if not context.groups:
        return None
    if not places:  # a hand-written inventory may name places the tree does not know
        suffix = "_" + "_".join(normalise(n) for n in parts)
        if any(g.startswith(kind + "_") and g.endswith(suffix) for g in context.groups):
            return None
        return f"bad scope: no {kind} '{value}' in the inventory", f"check the {kind} name"
    found = [p for p in places if tree_group(kind, *p.path) in context.groups]
    if not found:
        return f"bad scope: no {kind} '{value}' in the inventory", f"check the {kind} name"
    if len(found) > 1:
        return (
            f"bad scope: {len(found)} {kind}s are called '{value}'",
            "name the one you mean: "
            + " or ".join(f"{kind}:" + "/".join(p.path[1:]) for p in found),
        )
    return None


def waiver_entry(waiver: Waiver, indent: str = "  ") -> str:
    """The YAML of one waiver, as `add_waiver` appends it (strings JSON-quoted)."""

    def quoted(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)

    pad = indent + "  "
    return (
        f"{indent}- id: {quoted(waiver.id)}\n"
        f"{pad}control: {quoted(waiver.control)}\n"
        f"{pad}scope: {quoted(str(waiver.scope))}\n"
        f"{pad}justification: {quoted(waiver.justification)}\n"
        f"{pad}approver: {quoted(waiver.approver)}\n"
        f"{pad}approved: {waiver.approved.isoformat()}\n"
        f"{pad}expires: {waiver.expires.isoformat()}\n"
    )
