"""The real administrative tree, read from the copy shipped in `provision.data.bd_admin`.

Lookups are by normalised name along the path (a name alone is not a key: upazila
and union names repeat across districts).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from provision.inventory.names import normalise


@dataclass(frozen=True)
class Place:
    """One office in the tree: its level, real names along the path, and portal."""

    level: str
    #: Real names from the division down to this place, e.g. ("Dhaka", "Gazipur").
    path: tuple[str, ...]
    name_bn: str
    portal: str

    @property
    def name(self) -> str:
        return self.path[-1]


@dataclass
class AdminTree:
    """Every place, keyed by the tuple of normalised names along its path."""

    places: dict[tuple[str, ...], Place] = field(default_factory=dict)
    #: Children of each place (and of the root, ``()``), in data order.
    children: dict[tuple[str, ...], list[Place]] = field(default_factory=dict)

    def find(self, *names: str) -> Place | None:
        """The place at the path of (any-case) names, division first, or None."""
        return self.places.get(tuple(normalise(n) for n in names))

    def below(self, *names: str) -> list[Place]:
        """The places directly below a path (divisions for the empty path)."""
        return self.children.get(tuple(normalise(n) for n in names), [])

    def key(self, place: Place) -> tuple[str, ...]:
        return tuple(normalise(n) for n in place.path)

    def _add(self, place: Place) -> None:
        key = self.key(place)
        if key in self.places:  # the data repeats four unions; the first row wins
            return
        self.places[key] = place
        self.children.setdefault(key[:-1], []).append(place)


def _rows(name: str) -> list[list[str]]:
    text = resources.files("provision.data.bd_admin").joinpath(name).read_text("utf-8")
    return list(csv.reader(io.StringIO(text)))


@lru_cache(maxsize=1)
def load_tree() -> AdminTree:
    """The whole tree (8 divisions, 64 districts, 494 upazilas, 4,540 unions)."""
    tree = AdminTree()
    divisions: dict[str, tuple[str, ...]] = {}
    districts: dict[str, tuple[str, ...]] = {}
    upazilas: dict[str, tuple[str, ...]] = {}
    for row_id, name, name_bn, portal in _rows("divisions.csv"):
        divisions[row_id] = (name,)
        tree._add(Place("division", (name,), name_bn, portal))
    for row_id, parent, name, name_bn, _lat, _lon, portal in _rows("districts.csv"):
        districts[row_id] = (*divisions[parent], name)
        tree._add(Place("district", districts[row_id], name_bn, portal))
    for row_id, parent, name, name_bn, portal in _rows("upazilas.csv"):
        upazilas[row_id] = (*districts[parent], name)
        tree._add(Place("upazila", upazilas[row_id], name_bn, portal))
    for _row_id, parent, name, name_bn, portal in _rows("unions.csv"):
        tree._add(Place("union", (*upazilas[parent], name), name_bn, portal))
    return tree
