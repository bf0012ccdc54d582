"""The selection language every command that targets hosts uses.

Grammar (one positional argument; quote it in the shell)::

    selection    := alternative ( (";" | whitespace) alternative )*     union (OR)
    alternative  := term ( "," term )*                                   intersection (AND)
    term         := ["!"] ( key ":" value | name )                       "!" excludes
    key          := division | district | upazila | union | site | site_type | type
                  | role | host | group

* ``,`` binds tighter than ``;``: ``district:gazipur,role:lab_pc;site:KHU-014`` is
  (Gazipur AND lab PCs) OR site KHU-014.
* An alternative of exclusions only starts from every host:
  ``!role:lab_pc`` is every host that is not a lab PC.
* Values are compared after the group-name normalisation (`names.normalise`), so
  ``district:Cox's-Bazar``, ``district:coxs_bazar`` and ``district:COXS BAZAR``
  (quoted) are the same; ``*`` and ``?`` are globs: ``district:*pur``.
* ``upazila:`` and ``union:`` take a bare name (every upazila of that name, in any
  district) or a path: ``upazila:gazipur/kaliganj``, ``union:gazipur/kaliganj/tumulia``.
* A term without a key is a host name or glob (``gzp-001-fs01``, ``khu-*``) or a
  group name (``role_lab_pc``), as in Ansible's ``--limit``.
* No selection (None, or the empty text a command stores for "no argument") is
  every host, and so is the word ``all``. Any other text must name something: a
  selection of separators only (``;``, ``" ; "``) or with an empty term anywhere
  (``a;;b``, ``a,``) is an error, so that a typo never widens to the whole fleet.

Level terms pick the ``<level>_*`` groups whose ``provision_<level>`` variable (the
place's real name) matches, and every host in them; for a hand-written group without
that variable, its name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from provision.errors import InputError
from provision.inventory.model import Inventory
from provision.inventory.names import LEVELS, normalise
from provision.inventory.register import ROLES, SITE_TYPES
from provision.inventory.tree import load_tree

KEYS: tuple[str, ...] = (*LEVELS, "site", "site_type", "type", "role", "host", "group")
_GLOB = re.compile(r"([*?])")
#: One separator between alternatives: a ";" (spaces around it allowed) or spaces.
_SEPARATOR = re.compile(r"\s*;\s*|\s+")


@dataclass(frozen=True)
class Term:
    """One condition: `key` (None for a bare name) matches `pattern`; maybe negated."""

    key: str | None
    pattern: str
    negate: bool = False
    text: str = ""


@dataclass(frozen=True)
class Selection:
    """A parsed selection: a union of alternatives, each an intersection of terms."""

    alternatives: tuple[tuple[Term, ...], ...]
    text: str = ""

    @property
    def everything(self) -> bool:
        return not self.alternatives


def _norm_glob(value: str) -> str:
    """Normalise a value but keep its glob characters."""
    parts = _GLOB.split(value)
    return "".join(p if p in ("*", "?") else normalise(p) for p in parts)


def _check_value(key: str, value: str, text: str) -> None:
    """Catch typos early: a level, role or site type that does not exist."""
    if "*" in value or "?" in value:
        return
    if key in ("role", "site_type"):
        known = ROLES if key == "role" else SITE_TYPES
        if value not in known:
            close = difflib.get_close_matches(value, known, n=1)
            raise InputError(
                f"selection '{text}': no {key} '{value}'",
                hint=f"did you mean '{close[0]}'?" if close else f"{key}s: " + ", ".join(known),
            )
    elif key in LEVELS:
        names = _level_names(key)
        last = value.split("/")[-1]
        if last not in names:
            close = difflib.get_close_matches(last, sorted(names), n=1)
            raise InputError(
                f"selection '{text}': no {key} named '{last}' in the tree",
                hint=f"did you mean '{close[0]}'?" if close else "check the spelling",
            )


def _level_names(level: str) -> set[str]:
    tree = load_tree()
    return {key[-1] for key, place in tree.places.items() if place.level == level}


def parse_selection(text: str | None) -> Selection:
    """Parse a selection; `InputError` (exit 3) naming the bad term when it is wrong."""
    if not text:
        return Selection((), "")
    if not text.strip():
        raise InputError(
            f"selection {text!r} is only spaces",
            hint="leave SELECTION out, or write 'all', to mean every host",
        )
    text = text.strip()
    alternatives: list[tuple[Term, ...]] = []
    for chunk in _SEPARATOR.split(text):
        if not chunk:
            raise InputError(
                f"selection '{text}' has an empty alternative (a ';' with nothing on one side)",
                hint="remove the stray ';'; leave SELECTION out, or write 'all', to mean "
                "every host",
            )
        terms: list[Term] = []
        for raw in chunk.split(","):
            item = raw.strip()
            negate = item.startswith("!")
            item = item[1:].strip() if negate else item
            if not item:
                raise InputError(
                    f"selection '{text}' has an empty term",
                    hint="write terms like district:gazipur,role:lab_pc (see docs/inventory.md)",
                )
            if ":" in item:
                key, _, value = item.partition(":")
                key = key.strip().lower()
                if key not in KEYS:
                    raise InputError(
                        f"selection '{text}': unknown key '{key}'",
                        hint="keys: " + ", ".join(KEYS),
                    )
                key = "site_type" if key == "type" else key
                if key == "host":
                    pattern = value.strip()
                else:
                    pattern = "/".join(_norm_glob(p) for p in value.split("/"))
                if not pattern:
                    raise InputError(f"selection '{text}': '{item}' has no value")
                _check_value(key, pattern, text)
                terms.append(Term(key, pattern, negate, raw.strip()))
            else:
                terms.append(Term(None, item, negate, raw.strip()))
        alternatives.append(tuple(terms))
    return Selection(tuple(alternatives), text)


class _Matcher:
    """Evaluates terms against one inventory, computing each lookup once."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory

    def hosts_of(self, name: str) -> set[str]:
        """Every host in a group, directly or through its children."""
        found: set[str] = set()
        seen: set[str] = set()
        stack = [name]
        while stack:
            group = self.inventory.groups.get(stack.pop())
            if group is None or group.name in seen:
                continue
            seen.add(group.name)
            found.update(group.hosts)
            stack.extend(group.children)
        if name == "all":
            found.update(self.inventory.hosts)
        return found

    def in_groups(self, pattern: str) -> set[str]:
        if "*" not in pattern and "?" not in pattern:
            return self.hosts_of(pattern)
        found: set[str] = set()
        for name in self.inventory.groups:
            if fnmatchcase(name, pattern):
                found |= self.hosts_of(name)
        return found

    def level(self, level: str, pattern: str) -> set[str]:
        """Hosts in the tree groups of `level` whose name (or path) matches."""
        prefix = level + "_"
        parts = pattern.split("/")
        found: set[str] = set()
        for name, group in self.inventory.groups.items():
            if not name.startswith(prefix):
                continue
            if len(parts) > 1:  # a path: match the group name, district first
                keep = max(1, LEVELS.index(level))
                hit = fnmatchcase(name, prefix + "_".join(parts[-keep:]))
            else:
                label = group.vars.get(f"provision_{level}")
                if isinstance(label, str) and label:
                    hit = fnmatchcase(normalise(label), pattern)
                else:  # a hand-written group: its name ends with the place's name
                    qualified = level in ("upazila", "union")
                    hit = fnmatchcase(name, f"{prefix}{pattern}") or (
                        qualified and fnmatchcase(name, f"{prefix}*_{pattern}")
                    )
            if hit:
                found |= self.hosts_of(name)
        return found

    def term(self, term: Term) -> set[str]:
        key, pattern = term.key, term.pattern
        if key in LEVELS:
            return self.level(key, pattern)
        if key == "role":
            return self.in_groups("role_" + pattern)
        if key == "site_type":
            return self.in_groups("site_type_" + pattern)
        if key == "site":
            return self.in_groups("site_" + pattern)
        if key == "group":
            return self.in_groups(pattern)
        hosts = {h for h in self.inventory.hosts if fnmatchcase(h, pattern)}
        if key is None:
            hosts |= self.in_groups(pattern)
        return hosts


def select_hosts(inventory: Inventory, selection: Selection | str | None) -> list[str]:
    """The hosts a selection picks, in inventory order."""
    if not isinstance(selection, Selection):
        selection = parse_selection(selection)
    if selection.everything:
        return list(inventory.hosts)
    matcher = _Matcher(inventory)
    chosen: set[str] = set()
    everyone: set[str] | None = None
    for alternative in selection.alternatives:
        positive = [t for t in alternative if not t.negate]
        picked: set[str]
        if positive:
            sets = sorted((matcher.term(t) for t in positive), key=len)
            picked = set(sets[0])
            for other in sets[1:]:
                picked &= other
        else:
            everyone = everyone if everyone is not None else set(inventory.hosts)
            picked = set(everyone)
        for term in alternative:
            if term.negate and picked:
                picked -= matcher.term(term)
        chosen |= picked
    return [h for h in inventory.hosts if h in chosen]


def describe(terms: Iterable[Term]) -> str:
    """A term list written back as selection text."""
    return ",".join(t.text for t in terms)
