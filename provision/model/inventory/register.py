"""The site register: one CSV row per machine, read and checked whole.

`parse_register` (over text) and `parse_register_bytes` return the records or
raise `ProblemsError` listing every problem with its CSV line, so that one run
shows everything to fix; `provision.inventory.read_register` reads the file. Tree-placement names
are matched to the real administrative tree case-insensitively (and after
normalisation), and the records carry the tree's own spelling.
"""

from __future__ import annotations

import csv
import difflib
import io
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from provision.model.inventory.problems import Problem, ProblemsError
from provision.model.inventory.tree import AdminTree, Place, load_tree
from provision.model.places import (
    LEVELS,
    RESERVED_GROUPS,
    match_key,
    normalise,
    role_group,
    site_group,
    site_type_group,
    tree_group,
)
from provision.model.words import with_article

#: Every column a register must have, in the order the generator writes them.
COLUMNS: tuple[str, ...] = (
    "division",
    "district",
    "upazila",
    "union",
    "site_code",
    "site_name",
    "site_type",
    "hostname",
    "address",
    "role",
    "asset_tag",
    "model",
    "cpu_cores",
    "ram_gb",
    "disk_gb",
    "purchase_year",
)
#: Columns that may be left empty.
OPTIONAL: frozenset[str] = frozenset({"upazila", "union", "model"})
NUMBERS: tuple[str, ...] = ("cpu_cores", "ram_gb", "disk_gb", "purchase_year")

ROLES: tuple[str, ...] = ("field_server", "lab_pc", "portal_host", "digital_centre_pc")
SITE_TYPES: tuple[str, ...] = (
    "district_data_centre",
    "upazila_office",
    "union_digital_centre",
    "school_lab",
)
#: Which levels of the tree a site of each type stands at (the deepest level named).
SITE_LEVELS: dict[str, tuple[str, ...]] = {
    "district_data_centre": ("district",),
    "upazila_office": ("upazila",),
    "union_digital_centre": ("union",),
    "school_lab": ("upazila", "union"),
}

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")
_SITE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_TEMPLATE = re.compile(r"\{\{|\{%|\{#")


@dataclass(frozen=True, slots=True)
class Record:
    """One machine of the register, checked, with the tree's spelling of its place."""

    line: int
    place: Place
    site_code: str
    site_name: str
    site_type: str
    hostname: str
    address: str
    role: str
    asset_tag: str
    model: str
    cpu_cores: int
    ram_gb: int
    disk_gb: int
    purchase_year: int

    @property
    def division(self) -> str:
        return self.place.path[0]

    @property
    def district(self) -> str:
        return self.place.path[1]

    @property
    def upazila(self) -> str:
        return self.place.path[2] if len(self.place.path) > 2 else ""

    @property
    def union(self) -> str:
        return self.place.path[3] if len(self.place.path) > 3 else ""

    def row(self) -> dict[str, str]:
        """The record as a register row (for writing a register back out)."""
        return {
            "division": self.division,
            "district": self.district,
            "upazila": self.upazila,
            "union": self.union,
            "site_code": self.site_code,
            "site_name": self.site_name,
            "site_type": self.site_type,
            "hostname": self.hostname,
            "address": self.address,
            "role": self.role,
            "asset_tag": self.asset_tag,
            "model": self.model,
            "cpu_cores": str(self.cpu_cores),
            "ram_gb": str(self.ram_gb),
            "disk_gb": str(self.disk_gb),
            "purchase_year": str(self.purchase_year),
        }


def _header_key(name: str) -> str:
    return normalise(name)


def _suggest(name: str, candidates: Iterable[str]) -> str | None:
    names = {match_key(c): c for c in candidates}
    close = difflib.get_close_matches(match_key(name), list(names), n=1, cutoff=0.75)
    return names[close[0]] if close else None


def _decode(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ProblemsError(
            label,
            [
                Problem(
                    label,
                    line,
                    f"is not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be read)",
                    "save the spreadsheet as 'CSV UTF-8' and import it again",
                )
            ],
        ) from None


class _Checker:
    """Checks rows one by one, remembering what must stay unique."""

    def __init__(self, label: str, tree: AdminTree) -> None:
        self.label = label
        self.tree = tree
        self.problems: list[Problem] = []
        self.hostnames: dict[str, int] = {}
        self.addresses: dict[str, int] = {}
        self.asset_tags: dict[str, int] = {}
        self.sites: dict[str, tuple[int, tuple[str, ...], str, str]] = {}
        self.places: dict[tuple[str, str, str, str], Place] = {}

    def problem(self, line: int, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.label, line, message, hint))

    def place(self, line: int, row: dict[str, str]) -> Place | None:
        key = (row["division"], row["district"], row["upazila"], row["union"])
        known = self.places.get(key)
        if known is None:
            known = self._place(line, row)
            if known is not None:
                self.places[key] = known
        return known

    def _place(self, line: int, row: dict[str, str]) -> Place | None:
        parent: Place | None = None
        for level in LEVELS:
            value = row[level].strip()
            if not value:
                break
            found = self.tree.below_named(parent, value)
            within = f" in {parent.level} {parent.name}" if parent else ""
            if not found:
                options = [p.name for p in self.tree.below(*(parent.path if parent else ()))]
                close = _suggest(value, options)
                self.problem(
                    line,
                    f"no {level} named '{value}'{within}",
                    f"did you mean '{close}'?"
                    if close
                    else f"use {with_article(level)} name of the tree",
                )
                return None
            if len(found) > 1:
                self.problem(
                    line,
                    f"{len(found)} {level}s{within} are named '{value}': "
                    + " and ".join(p.describe() for p in found),
                    "write the one you mean as the tree names it ("
                    + " or ".join(f"'{p.name}'" for p in found)
                    + "), or by its Bangla name",
                )
                return None
            parent = found[0]
        given = [lv for lv in LEVELS if row[lv].strip()]
        if given != list(LEVELS[: len(given)]):
            gap = LEVELS[len([lv for lv in LEVELS[: len(given)] if lv in given])]
            self.problem(
                line,
                f"{given[-1]} is given but {gap} is empty",
                "fill in every level above the deepest one",
            )
            return None
        if parent is None or parent.level == LEVELS[0]:
            missing = "division" if parent is None else "district"
            self.problem(line, f"{missing} is empty", "every host stands in a district at least")
            return None
        return parent

    def number(self, line: int, row: dict[str, str], column: str) -> int:
        value = row[column].strip()
        if not value:
            self.problem(line, f"{column} is empty", f"give {column} as a whole number")
            return 0
        try:
            number = int(value)
        except ValueError:
            self.problem(line, f"{column} '{value}' is not a whole number", "write it as digits")
            return 0
        low, high = (1990, 2100) if column == "purchase_year" else (1, 1_000_000)
        if not low <= number <= high:
            self.problem(line, f"{column} {number} is out of range ({low}-{high})")
        return number

    def unique(self, seen: dict[str, int], key: str, line: int, what: str, value: str) -> None:
        first = seen.setdefault(key, line)
        if first != line:
            self.problem(
                line,
                f"duplicate {what} '{value}' (first on line {first})",
                f"give each host its own {what}, or remove one of the rows",
            )

    def record(self, line: int, row: dict[str, str]) -> Record | None:
        before = len(self.problems)
        for column in COLUMNS:
            value = row[column]
            if _TEMPLATE.search(value):
                self.problem(
                    line,
                    f"{column} holds '{{{{', '{{%' or '{{#', which Ansible reads as a template",
                    "remove the braces",
                )
            elif column not in OPTIONAL and column not in NUMBERS and not value.strip():
                self.problem(line, f"{column} is empty", f"every host needs {with_article(column)}")
        place = self.place(line, row)

        hostname = row["hostname"].strip()
        if hostname:
            if not _HOSTNAME.fullmatch(hostname):
                self.problem(
                    line,
                    f"hostname '{hostname}' is not a valid host name",
                    "use lower-case letters, digits, '-' and '.' (e.g. gzp-kal-lab01)",
                )
            self.unique(self.hostnames, hostname.casefold(), line, "hostname", hostname)

        address = row["address"].strip()
        if address:
            try:
                canonical = str(ipaddress.ip_address(address))
            except ValueError:
                self.problem(
                    line,
                    f"address '{address}' is not an IPv4 or IPv6 address",
                    "write it like 10.20.1.15 or 2001:db8::15",
                )
            else:
                self.unique(self.addresses, canonical, line, "address", address)
                address = canonical

        role = row["role"].strip().lower()
        if role and role not in ROLES:
            close = _suggest(role, ROLES)
            self.problem(
                line,
                f"unknown role '{row['role'].strip()}'",
                f"did you mean '{close}'?" if close else "use one of " + ", ".join(ROLES),
            )
        site_type = row["site_type"].strip().lower()
        if site_type and site_type not in SITE_TYPES:
            close = _suggest(site_type, SITE_TYPES)
            self.problem(
                line,
                f"unknown site_type '{row['site_type'].strip()}'",
                f"did you mean '{close}'?" if close else "use one of " + ", ".join(SITE_TYPES),
            )
        elif site_type and place is not None and place.level not in SITE_LEVELS[site_type]:
            wanted = " or ".join(SITE_LEVELS[site_type])
            self.problem(
                line,
                f"{with_article(site_type)} stands at {wanted} level, but this row names "
                f"{with_article(place.level)}",
                f"fill in (or empty) upazila and union so the deepest level is the {wanted}",
            )

        site_code = row["site_code"].strip()
        site_name = row["site_name"].strip()
        if site_code and not _SITE_CODE.fullmatch(site_code):
            self.problem(
                line,
                f"site_code '{site_code}' has characters other than letters, digits, '-', '_'",
                "use a code like KHU-014",
            )
        if site_code and place is not None:
            mine = (line, place.path, site_name, site_type)
            first = self.sites.setdefault(site_code.casefold(), mine)
            if first[1:] != mine[1:]:
                self.problem(
                    line,
                    f"site {site_code} differs from its row on line {first[0]} "
                    "(place, site_name or site_type)",
                    "give every row of one site the same place, name and type",
                )

        asset_tag = row["asset_tag"].strip()
        if asset_tag:
            self.unique(self.asset_tags, asset_tag.casefold(), line, "asset_tag", asset_tag)
        numbers = {column: self.number(line, row, column) for column in NUMBERS}
        if len(self.problems) > before or place is None:
            return None
        return Record(
            line=line,
            place=place,
            site_code=site_code,
            site_name=site_name,
            site_type=site_type,
            hostname=hostname,
            address=address,
            role=role,
            asset_tag=asset_tag,
            model=row["model"].strip(),
            cpu_cores=numbers["cpu_cores"],
            ram_gb=numbers["ram_gb"],
            disk_gb=numbers["disk_gb"],
            purchase_year=numbers["purchase_year"],
        )


def _groups_made(records: list[Record]) -> dict[str, tuple[str, int]]:
    """Every group an import makes: name -> (what it is, the first line that makes it)."""
    made: dict[str, tuple[str, int]] = {}
    first = list(reversed(records))  # so that each dict below keeps the first line
    places = {r.place: r.line for r in first}
    for place, line in sorted(places.items(), key=lambda item: item[1]):
        for depth in range(1, len(place.path) + 1):
            level = LEVELS[depth - 1]
            what = f"the {level} {place.path[depth - 1]}"
            made.setdefault(tree_group(level, *place.path[:depth]), (what, line))
    for kind, name_of, values in (
        ("role", role_group, {r.role: r.line for r in first}),
        ("site type", site_type_group, {r.site_type: r.line for r in first}),
        ("site", site_group, {r.site_code: r.line for r in first}),
    ):
        for value, line in values.items():
            made.setdefault(name_of(value), (f"the {kind} {value}", line))
    return made


def _group_clashes(records: list[Record], label: str) -> list[Problem]:
    """Hosts named like a group: Ansible's own, or one the import makes from any row."""
    problems: list[Problem] = []
    # Every group the import makes is "<kind>_<name>": only a host name with a "_"
    # can clash, so the groups are worked out only when there is one.
    made = _groups_made(records) if any("_" in r.hostname for r in records) else {}
    for record in records:
        if record.hostname in RESERVED_GROUPS:
            problems.append(
                Problem(
                    label,
                    record.line,
                    f"hostname '{record.hostname}' is the name of Ansible's own group "
                    f"'{record.hostname}'",
                    "give the host another name (Ansible reserves 'all' and 'ungrouped')",
                )
            )
        elif record.hostname in made:
            what, line = made[record.hostname]
            problems.append(
                Problem(
                    label,
                    record.line,
                    f"hostname '{record.hostname}' is also the name of the group of {what} "
                    f"(made from line {line})",
                    "give the host another name; Ansible cannot tell a host from a group "
                    "of the same name",
                )
            )
    return problems


def parse_register(text: str, label: str = "register.csv") -> list[Record]:
    """Check register text; every record, or `ProblemsError` naming every bad line.

    Blank rows are skipped; columns beyond the known ones are ignored (a notes
    column, say), but a row with more fields than the header is an error.
    """
    if not text.strip():
        raise ProblemsError(
            label,
            [Problem(label, 1, "is empty", "a register has a header row and one row per host")],
        )
    checker = _Checker(label, load_tree())
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise ProblemsError(label, [Problem(label, 1, f"is not readable CSV: {exc}")]) from None
    keys = [_header_key(h) for h in header]
    missing = [c for c in COLUMNS if c not in keys]
    duplicated = sorted({k for k in keys if k and keys.count(k) > 1})
    header_problems = []
    if missing:
        header_problems.append(
            Problem(
                label,
                1,
                "missing column" + ("s " if len(missing) > 1 else " ") + ", ".join(missing),
                "the header row needs: " + ",".join(COLUMNS),
            )
        )
    if duplicated:
        header_problems.append(
            Problem(label, 1, "column " + ", ".join(duplicated) + " appears twice in the header")
        )
    if header_problems:
        raise ProblemsError(label, header_problems)
    index = {key: keys.index(key) for key in COLUMNS}
    records: list[Record] = []
    line = reader.line_num + 1
    try:
        for fields in reader:
            line, next_line = line, reader.line_num + 1
            if not fields or all(not f.strip() for f in fields):
                line = next_line
                continue
            if len(fields) != len(header):
                more = "more" if len(fields) > len(header) else "fewer"
                checker.problem(
                    line,
                    f"has {len(fields)} fields, {more} than the {len(header)} header columns",
                    "quote fields that hold commas, and check for a stray or missing comma",
                )
            else:
                row = {key: fields[i] for key, i in index.items()}
                record = checker.record(line, row)
                if record is not None:
                    records.append(record)
            line = next_line
    except csv.Error as exc:
        checker.problem(line, f"is not readable CSV: {exc}", "check the quotes on this line")
    checker.problems.extend(_group_clashes(records, label))
    checker.problems.sort(key=lambda p: p.line or 0)
    if checker.problems:
        raise ProblemsError(label, checker.problems, " in the register")
    if not records:
        raise ProblemsError(
            label, [Problem(label, 2, "has a header row but no hosts", "add one row per host")]
        )
    return records


def parse_register_bytes(data: bytes, label: str = "register.csv") -> list[Record]:
    """`parse_register` over the file's bytes: UTF-8 (with or without a BOM) is required."""
    return parse_register(_decode(data, label), label)
