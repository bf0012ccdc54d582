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
* Place names are compared as everywhere else (`names.match_key`: case, spaces
  and punctuation ignored), in English or Bangla, so ``district:Cox's-Bazar``,
  ``district:coxs_bazar``, ``district:"Cox's Bazar"`` and ``district:কক্সবাজার``
  are the tree's Coxsbazar. A value holding spaces is quoted (``'…'`` or ``"…"``,
  inside the argument); ``*`` and ``?`` are globs: ``district:*pur``.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache

from provision.errors import InputError
from provision.model.inventory.model import Inventory
from provision.model.inventory.register import ROLES, SITE_TYPES
from provision.model.inventory.tree import load_tree
from provision.model.places import LEVELS, match_key, normalise, tree_group

KEYS: tuple[str, ...] = (*LEVELS, "site", "site_type", "type", "role", "host", "group")
_GLOB = re.compile(r"([*?])")
#: One separator between alternatives: a ";" (spaces around it allowed) or spaces.
_SEPARATOR = re.compile(r"\s*;\s*|\s+")


@dataclass(frozen=True)
class Term:
    """One condition: `key` (None for a bare name) matches `pattern`; maybe negated.

    A level term without globs is resolved through the tree when parsed: `groups`
    are the tree groups of every place it names (in any spelling, English or
    Bangla) and `names` those places' names as match keys.
    """

    key: str | None
    pattern: str
    negate: bool = False
    text: str = ""
    groups: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    #: The value as written, for glob paths matched against group names.
    value: str = ""


@dataclass(frozen=True)
class Selection:
    """A parsed selection: a union of alternatives, each an intersection of terms."""

    alternatives: tuple[tuple[Term, ...], ...]
    text: str = ""

    @property
    def everything(self) -> bool:
        return not self.alternatives


def _norm_glob(value: str, norm: Callable[[str], str] = normalise) -> str:
    """Normalise a value but keep its glob characters."""
    parts = _GLOB.split(value)
    return "".join(p if p in ("*", "?") else norm(p) for p in parts)


def _is_glob(value: str) -> bool:
    return "*" in value or "?" in value


def _check_value(key: str, value: str, text: str) -> None:
    """Catch typos early: a role or site type that does not exist."""
    if _is_glob(value):
        return
    known = ROLES if key == "role" else SITE_TYPES
    if value not in known:
        close = difflib.get_close_matches(value, known, n=1)
        raise InputError(
            f"selection '{text}': no {key} '{value}'",
            hint=f"did you mean '{close[0]}'?" if close else f"{key}s: " + ", ".join(known),
        )


def _level_term(level: str, value: str, text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The tree groups and name keys of the places a level value names; a typo is an error."""
    parts = [p.strip() for p in value.split("/")]
    if any(not p for p in parts):
        raise InputError(
            f"selection '{text}': '{level}:{value}' has an empty name in its path",
            hint=f"write {level}:NAME or a path from the district, e.g. upazila:gazipur/kaliganj",
        )
    places = load_tree().lookup(level, parts)
    if not places:
        names = _level_names(level)
        last = parts[-1]
        if match_key(last) in names:  # the name exists, not along this path
            raise InputError(
                f"selection '{text}': no {level} '{last}' in {'/'.join(parts[:-1])}",
                hint="check the path, or give the name alone for every place of that name",
            )
        close = difflib.get_close_matches(match_key(last), sorted(names), n=1)
        raise InputError(
            f"selection '{text}': no {level} named '{last}' in the tree",
            hint=f"did you mean '{names[close[0]]}'?" if close else "check the spelling",
        )
    groups = frozenset(tree_group(level, *p.path) for p in places)
    return groups, frozenset(match_key(p.name) for p in places)


@lru_cache(maxsize=len(LEVELS))
def _level_names(level: str) -> dict[str, str]:
    """Match key -> the tree's spelling, of every place name of `level`."""
    found: dict[str, str] = {}
    for place in load_tree().places.values():
        if place.level == level:
            for name in (place.name, place.base_name, place.name_bn):
                if name:
                    found.setdefault(match_key(name), place.base_name or place.name)
    return found


#: A quoted value, so that a name may hold spaces: ``upazila:"Brahmanbaria Sadar"``.
#: A quote opens only where a value or term starts, so ``Cox's-Bazar`` stays one word.
_QUOTED = re.compile(r"""(?:(?<=^)|(?<=[:;,!\s]))(["'])(.*?)\1(?=$|[;,\s])""")
_MASK = "\x00"


def _mask_quoted(match: re.Match[str], quoted: list[str]) -> str:
    quoted.append(match.group(0))
    return f"{_MASK}{len(quoted) - 1}{_MASK}"


def _mask_quotes(text: str) -> tuple[str, list[str]]:
    """`text` with each quoted value replaced by a marker, and the quoted values."""
    quoted: list[str] = []
    masked = _QUOTED.sub(lambda m: _mask_quoted(m, quoted), text)
    if re.search(r"""(?:^|[:;,!\s])["']""", masked):
        raise InputError(
            f"selection '{text}' has a quote that is not closed",
            hint="close it before the next ',' or ';': upazila:'Brahmanbaria Sadar'",
        )
    return masked, quoted


def _unmask(text: str, quoted: list[str], *, keep_quotes: bool = False) -> str:
    def back(match: re.Match[str]) -> str:
        value = quoted[int(match.group(1))]
        return value if keep_quotes else value[1:-1]

    return re.sub(f"{_MASK}(\\d+){_MASK}", back, text)


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
    masked, quoted = _mask_quotes(text)
    alternatives: list[tuple[Term, ...]] = []
    for chunk in _SEPARATOR.split(masked):
        if not chunk:
            raise InputError(
                f"selection '{text}' has an empty alternative (a ';' with nothing on one side)",
                hint="remove the stray ';'; leave SELECTION out, or write 'all', to mean "
                "every host",
            )
        terms: list[Term] = []
        for masked_raw in chunk.split(","):
            raw = _unmask(masked_raw, quoted, keep_quotes=True)
            item = _unmask(masked_raw.strip(), quoted)
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
                value = value.strip()
                groups: frozenset[str] = frozenset()
                names: frozenset[str] = frozenset()
                if key == "host":
                    pattern = value
                elif key in LEVELS:
                    pattern = "/".join(_norm_glob(p, match_key) for p in value.split("/"))
                else:
                    pattern = _norm_glob(value)
                if not pattern.strip("/"):
                    raise InputError(
                        f"selection '{text}': '{item}' has no value",
                        hint=f"write {key}:NAME",
                    )
                if key in ("role", "site_type"):
                    _check_value(key, pattern, text)
                elif key in LEVELS and not _is_glob(value):
                    groups, names = _level_term(key, value, text)
                terms.append(Term(key, pattern, negate, raw.strip(), groups, names, value))
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

    def level(self, level: str, term: Term) -> set[str]:
        """Hosts in the tree groups of `level` that the term names."""
        prefix = level + "_"
        parts = term.pattern.split("/")
        found: set[str] = set()
        for name, group in self.inventory.groups.items():
            if not name.startswith(prefix):
                continue
            label = group.vars.get(f"provision_{level}")
            labelled = isinstance(label, str) and bool(label)
            if term.groups:  # resolved through the tree when parsed
                hit = name in term.groups or (
                    len(parts) == 1 and labelled and match_key(str(label)) in term.names
                )
            elif len(parts) > 1:  # a glob path: match the group name, district first
                keep = max(1, LEVELS.index(level))
                globbed = [_norm_glob(p) for p in term.value.split("/")]
                hit = fnmatchcase(name, prefix + "_".join(globbed[-keep:]))
            elif labelled:
                hit = fnmatchcase(match_key(str(label)), term.pattern)
            else:  # a hand-written group: its name ends with the place's name
                qualified = level in ("upazila", "union")
                own = _norm_glob(term.value)
                hit = fnmatchcase(name, f"{prefix}{own}") or (
                    qualified and fnmatchcase(name, f"{prefix}*_{own}")
                )
            if hit:
                found |= self.hosts_of(name)
        return found

    def term(self, term: Term) -> set[str]:
        key, pattern = term.key, term.pattern
        if key in LEVELS:
            return self.level(key, term)
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
