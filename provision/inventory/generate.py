"""Registers of any size drawn from the real tree, for samples, tests and benchmarks.

Sites are dealt in a repeating pattern so that even a small register spans many
districts: a district data centre (2 field servers, 1 portal host), an upazila
office (1 field server), two union digital centres (2 PCs each) and a school lab
(15 lab PCs), until the wanted number of hosts is reached. The same arguments
always give the same register.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

from provision.errors import InputError
from provision.model.inventory.register import COLUMNS
from provision.model.inventory.tree import AdminTree, Place, load_tree
from provision.model.places import match_key, normalise

MODELS: dict[str, tuple[str, ...]] = {
    "field_server": ("Dell PowerEdge T150", "HPE ProLiant ML30 Gen10 Plus"),
    "portal_host": ("Dell PowerEdge R650", "HPE ProLiant DL360 Gen10 Plus"),
    "lab_pc": ("Walton Prelude N41", "HP ProDesk 400 G7", "Lenovo ThinkCentre M70t"),
    "digital_centre_pc": ("Walton Karonda KR34", "Dell OptiPlex 3000"),
}
HARDWARE: dict[str, tuple[int, int, int]] = {  # cores, RAM GB, disk GB
    "field_server": (8, 32, 2000),
    "portal_host": (16, 64, 1000),
    "lab_pc": (4, 8, 256),
    "digital_centre_pc": (4, 8, 500),
}
SCHOOLS = ("Govt. High School", "Model High School", "Girls' High School", "Pilot School")


def district_codes(tree: AdminTree) -> dict[str, str]:
    """A unique three-letter code per district (GAZ for Gazipur), in tree order."""
    codes: dict[str, str] = {}
    used: set[str] = set()
    for division in tree.below():
        for district in tree.below(*division.path):
            letters = normalise(district.name).replace("_", "").upper()
            code = letters[:3]
            for extra in letters[3:]:
                if code not in used:
                    break
                code = letters[:2] + extra
            used.add(code)
            codes[district.name] = code
    return codes


def _places(tree: AdminTree, roots: Sequence[Place], level: str) -> list[Place]:
    found: list[Place] = []
    stack = list(reversed(roots))
    while stack:
        place = stack.pop()
        if place.level == level:
            found.append(place)
        else:
            stack.extend(reversed(tree.below(*place.path)))
    return found


def generate_rows(
    hosts: int, *, divisions: Sequence[str] = (), seed: int = 1
) -> list[dict[str, str]]:
    """`hosts` register rows from the real tree (all of it, or only `divisions`)."""
    if hosts < 1:
        raise InputError("the number of hosts must be at least 1")
    tree = load_tree()
    roots = tree.below()
    if divisions:
        wanted = {match_key(d): d for d in divisions}
        roots = [d for d in roots if match_key(d.name) in wanted]
        unknown = [wanted[k] for k in wanted.keys() - {match_key(d.name) for d in roots}]
        if unknown:
            raise InputError(
                "no division named " + ", ".join(sorted(unknown)),
                hint="divisions: " + ", ".join(d.name for d in tree.below()),
            )
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    codes = district_codes(tree)
    districts = _places(tree, roots, "district")
    upazilas = _places(tree, roots, "upazila")
    unions = _places(tree, roots, "union")
    rng.shuffle(upazilas)
    rng.shuffle(unions)

    def cycle(places: list[Place]) -> Iterator[Place]:
        while True:
            yield from places

    streams: dict[str, Iterator[Place]] = {
        "district_data_centre": iter(districts),
        "upazila_office": iter(upazilas),
        "union_digital_centre": iter(unions),
        "school_lab": cycle(upazilas + unions),
    }
    pattern = (
        "district_data_centre",
        "upazila_office",
        "union_digital_centre",
        "union_digital_centre",
        "school_lab",
    )
    rows: list[dict[str, str]] = []
    site_numbers: dict[str, int] = {}
    site_index = 0
    while len(rows) < hosts:
        for site_type in pattern:
            place = next(streams[site_type], None)
            if place is None:
                continue
            district = place.path[1]
            number = site_numbers[district] = site_numbers.get(district, 0) + 1
            site_code = f"{codes[district]}-{number:03d}"
            if site_type == "district_data_centre":
                name = f"{district} District Data Centre"
                roles = ["field_server", "field_server", "portal_host"]
            elif site_type == "upazila_office":
                name = f"{place.name} Upazila ICT Office"
                roles = ["field_server"]
            elif site_type == "union_digital_centre":
                name = f"{place.name} Union Digital Centre"
                roles = ["digital_centre_pc"] * 2
            else:
                name = f"{place.name} {rng.choice(SCHOOLS)}"
                roles = ["lab_pc"] * 15
            site_index += 1
            counts: dict[str, int] = {}
            for role in roles:
                if len(rows) >= hosts:
                    break
                counts[role] = counts.get(role, 0) + 1
                rows.append(
                    _row(place, site_code, name, site_type, role, counts[role], site_index, rng)
                )
            if len(rows) >= hosts:
                break
    return rows


_ABBREVIATIONS = {
    "field_server": "fs",
    "portal_host": "web",
    "lab_pc": "lab",
    "digital_centre_pc": "pc",
}


def _row(
    place: Place,
    site_code: str,
    site_name: str,
    site_type: str,
    role: str,
    number: int,
    site_index: int,
    rng: random.Random,
) -> dict[str, str]:
    path = (*place.path, "", "")
    cores, ram, disk = HARDWARE[role]
    year = rng.randint(2016, 2024)
    third, fourth = divmod(site_index, 256)
    return {
        "division": path[0],
        "district": path[1],
        "upazila": path[2],
        "union": path[3],
        "site_code": site_code,
        "site_name": site_name,
        "site_type": site_type,
        "hostname": f"{site_code.lower()}-{_ABBREVIATIONS[role]}{number:02d}",
        "address": f"10.{third % 256}.{fourth}.{9 + number + (10 if role == 'portal_host' else 0)}",
        "role": role,
        "asset_tag": f"BD-ICT-{year}-{site_index:05d}-{role[:1].upper()}{number:02d}",
        "model": rng.choice(MODELS[role]),
        "cpu_cores": str(cores),
        "ram_gb": str(ram),
        "disk_gb": str(disk),
        "purchase_year": str(year),
    }


def render_register(rows: Sequence[dict[str, str]]) -> str:
    """Rows as register CSV text (header first)."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_register(rows: Sequence[dict[str, str]], path: Path) -> Path:
    """Write rows as a UTF-8 register CSV at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_register(rows), encoding="utf-8")
    return path
