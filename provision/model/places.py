"""How names from the register become Ansible group names: one rule, written once.

The rule (`normalise`):

1. fold to ASCII (NFKD, combining marks dropped) and to lower case;
2. drop apostrophes (``Cox's Bazar`` -> ``coxs bazar``);
3. turn every run of other characters that are not ``a-z`` or ``0-9`` into one ``_``;
4. strip ``_`` from both ends.

Group names put the level first and, because upazila and union names repeat across
the country (there is a Kaliganj upazila in Gazipur, Jhenaidah, Lalmonirhat and
Satkhira), qualify the lower levels with their path through the tree:

=================  ==============================================================
level              group name
=================  ==============================================================
division           ``division_<division>``            ``division_dhaka``
district           ``district_<district>``            ``district_gazipur``
upazila            ``upazila_<district>_<upazila>``   ``upazila_gazipur_kaliganj``
union              ``union_<district>_<upazila>_<union>``
                                                       ``union_gazipur_kaliganj_bahadursadi``
role               ``role_<role>``                    ``role_lab_pc``
site type          ``site_type_<type>``               ``site_type_school_lab``
site               ``site_<code>``                    ``site_khu_014``
=================  ==============================================================

District names are unique nationwide, so ``district_<district>`` needs no division.
Every group name is a valid Ansible group name (letters, digits and ``_``, never a
leading digit), so Ansible neither warns about nor rewrites it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

#: The levels of the administrative tree, top down: the one list every module uses.
LEVELS: tuple[str, ...] = ("division", "district", "upazila", "union")
#: The levels a host's place is named by: the tree's, then the site it stands at.
PLACE_LEVELS: tuple[str, ...] = (*LEVELS, "site")
#: Groups Ansible makes itself in every inventory: no host may take their names
#: (Ansible warns "Found both group and host with same name" and patterns misfire).
RESERVED_GROUPS: tuple[str, ...] = ("all", "ungrouped")

_NOT_WORD = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=65536)
def normalise(name: str) -> str:
    """The normalised form of a name: ``"Cox's Bazar"`` -> ``"coxs_bazar"``."""
    folded = unicodedata.normalize("NFKD", name)
    ascii_text = folded.encode("ascii", "ignore").decode("ascii").casefold()
    ascii_text = ascii_text.replace("'", "").replace("\u2019", "")
    return _NOT_WORD.sub("_", ascii_text).strip("_")


def match_key(name: str) -> str:
    """How names of places are compared, everywhere: case, spaces and punctuation ignored.

    ``"Cox's Bazar"``, ``"Coxs Bazar"``, ``"coxs_bazar"`` and the tree's own
    ``"Coxsbazar"`` all give ``"coxsbazar"``. Letters and digits of any script are
    kept, so a Bangla name keeps its letters and vowel signs (``"কক্সবাজার"``) and
    matches the tree's Bangla name; accents on Latin letters are dropped. The
    register, the selection language and waiver scopes all compare with this one
    function (group names keep `normalise`, which a person reads).
    """
    return _match_key(name)


@lru_cache(maxsize=65536)
def _match_key(name: str) -> str:
    kept: list[str] = []
    for char in unicodedata.normalize("NFKD", name).casefold():
        kind = unicodedata.category(char)[0]
        if kind in "LN":
            kept.append(char)
        elif kind == "M" and kept and not kept[-1].isascii():
            kept.append(char)  # a Bangla vowel sign or virama, not a Latin accent
    return unicodedata.normalize("NFC", "".join(kept))


def tree_group(level: str, *path: str) -> str:
    """The group of a place in the tree, from its path of names (division first).

    ``tree_group("upazila", "Dhaka", "Gazipur", "Kaliganj")`` ->
    ``"upazila_gazipur_kaliganj"``. The division is only part of the name at the
    division level; from the upazila down the district qualifies the name.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown tree level {level!r}")
    depth = LEVELS.index(level) + 1
    if len(path) != depth:
        raise ValueError(f"{level} needs a path of {depth} names, got {len(path)}")
    parts = path[:1] if level == "division" else path[1:]
    return level + "_" + "_".join(normalise(p) for p in parts)


def role_group(role: str) -> str:
    """``role_group("lab_pc")`` -> ``"role_lab_pc"``."""
    return "role_" + normalise(role)


def site_type_group(site_type: str) -> str:
    """``site_type_group("school_lab")`` -> ``"site_type_school_lab"``."""
    return "site_type_" + normalise(site_type)


def site_group(site_code: str) -> str:
    """``site_group("KHU-014")`` -> ``"site_khu_014"``."""
    return "site_" + normalise(site_code)
