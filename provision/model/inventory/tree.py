"""The real administrative tree, read from the copy shipped in `provision.data.bd_admin`.

Lookups go down the path, one level at a time, and compare names with
`names.match_key` (case, spaces and punctuation ignored), by the English name or
the Bangla one. A name alone is not a key: upazila and union names repeat across
districts.

Two places under one parent may share an English name. When they are the same
office listed twice (same Bangla name, same portal) they are one place. When
they differ (Natai in Brahmanbaria Sadar is two unions, North and South), both
are kept, each named with its code from the data, ``Natai (242)`` and
``Natai (243)``, so that their groups, Bangla names and portals stay apart; the
bare ``Natai`` then matches both, which a register must resolve (see
`AdminTree.below_named`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from provision.model.places import LEVELS, match_key


@dataclass(frozen=True)
class Place:
    """One office in the tree: its level, real names along the path, and portal."""

    level: str
    #: Real names from the division down to this place, e.g. ("Dhaka", "Gazipur").
    path: tuple[str, ...]
    name_bn: str
    portal: str
    #: The place's id in the data (kept to tell apart two places of one name).
    code: str = ""
    #: The name without the code, when the code had to be added to it.
    base_name: str = ""

    @property
    def name(self) -> str:
        return self.path[-1]

    def describe(self) -> str:
        """``'Natai (242)' (নাটাই (দক্ষিন), natais.brahmanbaria.gov.bd)``, for errors."""
        return f"'{self.name}' ({self.name_bn}, {self.portal})"


@dataclass
class AdminTree:
    """Every place, keyed by the tuple of match keys along its (English) path."""

    places: dict[tuple[str, ...], Place] = field(default_factory=dict)
    #: Children of each place (and of the root, ``()``), in data order.
    children: dict[tuple[str, ...], list[Place]] = field(default_factory=dict)
    #: (parent's key, a match key of a child's English, bare or Bangla name) -> children.
    named: dict[tuple[tuple[str, ...], str], list[Place]] = field(default_factory=dict)
    #: (level, a match key of a place's name) -> every place of that level and name.
    by_level: dict[tuple[str, str], list[Place]] = field(default_factory=dict)

    def find(self, *names: str) -> Place | None:
        """The one place at the path of names (any spelling, English or Bangla), or None."""
        parent: Place | None = None
        for name in names:
            found = self.below_named(parent, name)
            if len(found) != 1:
                return None
            parent = found[0]
        return parent

    def below_named(self, parent: Place | None, name: str) -> list[Place]:
        """The places directly below `parent` (None: the divisions) that `name` may mean.

        Usually one or none; two or more when the name is shared (``Natai``) and
        the caller has to say which (by code, or by its Bangla name).
        """
        key = () if parent is None else self.key(parent)
        return self.named.get((key, match_key(name)), [])

    def below(self, *names: str) -> list[Place]:
        """The places directly below a path (divisions for the empty path)."""
        if not names:
            return self.children.get((), [])
        place = self.find(*names)
        return [] if place is None else self.children.get(self.key(place), [])

    def lookup(self, level: str, names: Sequence[str]) -> list[Place]:
        """Every place of `level` whose path ends with `names` (each in any spelling).

        ``lookup("upazila", ["Kaliganj"])`` is the four Kaliganj upazilas;
        ``lookup("upazila", ["Gazipur", "Kaliganj"])`` only Gazipur's.
        """
        if not names:
            return []
        found = self.by_level.get((level, match_key(names[-1])), [])
        above = [match_key(n) for n in names[:-1]]
        if not above:
            return list(found)
        result = []
        for place in found:
            start = len(place.path) - 1 - len(above)  # the path index of above[0]
            if start < 0:
                continue
            key = self.key(place)
            ancestors = [self.places[key[: start + i + 1]] for i in range(len(above))]
            if all(k in _keys(a) for k, a in zip(above, ancestors, strict=True)):
                result.append(place)
        return result

    def key(self, place: Place) -> tuple[str, ...]:
        return tuple(match_key(n) for n in place.path)

    def _add(self, place: Place) -> None:
        key = self.key(place)
        self.places[key] = place
        self.children.setdefault(key[:-1], []).append(place)
        for name_key in _keys(place):
            self.named.setdefault((key[:-1], name_key), []).append(place)
            self.by_level.setdefault((place.level, name_key), []).append(place)


def _keys(place: Place) -> set[str]:
    """The match keys a place answers to: its name, its name without code, its Bangla name."""
    keys = {match_key(place.name), match_key(place.name_bn)}
    if place.base_name:
        keys.add(match_key(place.base_name))
    keys.discard("")
    return keys


def _rows(name: str) -> list[list[str]]:
    text = resources.files("provision.data.bd_admin").joinpath(name).read_text("utf-8")
    return list(csv.reader(io.StringIO(text)))


def _level(
    tree: AdminTree,
    level: str,
    rows: list[tuple[str, tuple[str, ...], str, str, str]],
) -> dict[str, tuple[str, ...]]:
    """Add one level's rows (id, parent path, name, Bangla name, portal); id -> path."""
    namesakes: dict[tuple[tuple[str, ...], str], set[tuple[str, str]]] = {}
    for _row_id, parent, name, name_bn, portal in rows:
        namesakes.setdefault((parent, match_key(name)), set()).add((name_bn, portal))
    paths: dict[str, tuple[str, ...]] = {}
    first: dict[tuple[tuple[str, ...], str, str, str], tuple[str, ...]] = {}
    for row_id, parent, name, name_bn, portal in rows:
        same = (parent, match_key(name), name_bn, portal)
        if same in first:  # the same office listed twice: one place
            paths[row_id] = first[same]
            continue
        shared = len(namesakes[(parent, match_key(name))]) > 1
        shown = f"{name} ({row_id})" if shared else name
        place = Place(level, (*parent, shown), name_bn, portal, row_id, name if shared else "")
        tree._add(place)
        paths[row_id] = first[same] = place.path
    return paths


@lru_cache(maxsize=1)
def load_tree() -> AdminTree:
    """The whole tree (8 divisions, 64 districts, 494 upazilas, 4,538 unions)."""
    tree = AdminTree()
    divisions = _level(
        tree, LEVELS[0], [(i, (), n, bn, w) for i, n, bn, w in _rows("divisions.csv")]
    )
    districts = _level(
        tree,
        LEVELS[1],
        [(i, divisions[p], n, bn, w) for i, p, n, bn, _lat, _lon, w in _rows("districts.csv")],
    )
    upazilas = _level(
        tree, LEVELS[2], [(i, districts[p], n, bn, w) for i, p, n, bn, w in _rows("upazilas.csv")]
    )
    _level(tree, LEVELS[3], [(i, upazilas[p], n, bn, w) for i, p, n, bn, w in _rows("unions.csv")])
    return tree
