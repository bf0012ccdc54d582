"""Which hosts the lab boots: names, roles, places in the admin tree, addresses.

Pure data: no I/O. `parse_hosts_spec` turns the `--hosts` option into a list of
`LabHost`; addresses are assigned from the lab subnet in a stable order so a host
keeps its address across `lab up` runs.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from provision.errors import InputError


@dataclass(frozen=True)
class Placement:
    """Where a host stands in the administrative tree and which site it serves."""

    division: str
    district: str
    upazila: str
    union: str
    site_code: str
    site_name: str
    site_type: str


@dataclass(frozen=True)
class LabHost:
    name: str
    role: str
    placement: Placement
    address: str = ""
    #: Boots as a machine arrives from the supplier: an `installer` account with a
    #: password, no automation account, no key, its host key not yet known.
    new: bool = False


GAZIPUR_DC = Placement(
    "Dhaka", "Gazipur", "", "", "DHK-GAZ-DC", "Gazipur district data centre", "district_data_centre"
)
KALIGANJ_UZ = Placement(
    "Dhaka", "Gazipur", "Kaliganj", "", "DHK-GAZ-KAL", "Kaliganj upazila office", "upazila_office"
)
NAGARI_SCHOOL = Placement(
    "Dhaka",
    "Gazipur",
    "Kaliganj",
    "Nagari",
    "DHK-KAL-NAG-S01",
    "Nagari high school lab",
    "school_lab",
)

#: The default lab: one machine of each kind the department runs.
DEFAULT_HOSTS: tuple[LabHost, ...] = (
    LabHost("dhk-gaz-fs01", "field_server", GAZIPUR_DC),
    LabHost("dhk-kal-fs01", "field_server", KALIGANJ_UZ),
    LabHost("dhk-kal-lab01", "lab_pc", NAGARI_SCHOOL),
    LabHost("dhk-gaz-portal01", "portal_host", GAZIPUR_DC),
)

#: Where extra hosts asked for by role (`lab_pc:3`) are placed, and their name stem.
ROLE_TEMPLATES: dict[str, tuple[str, Placement]] = {
    "field_server": ("dhk-kal-fs", KALIGANJ_UZ),
    "lab_pc": ("dhk-kal-lab", NAGARI_SCHOOL),
    "portal_host": ("dhk-gaz-portal", GAZIPUR_DC),
    "digital_centre_pc": (
        "dhk-kal-udc",
        Placement(
            "Dhaka",
            "Gazipur",
            "Kaliganj",
            "Nagari",
            "DHK-KAL-NAG-UDC",
            "Nagari union digital centre",
            "union_digital_centre",
        ),
    ),
}

#: Highest number of hosts one lab runs (a /24, the control node and headroom).
MAX_HOSTS = 200
FIRST_HOST_OCTET = 10
#: `--hosts` entries ending in this boot as new machines.
NEW_SUFFIX = "@new"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


def parse_hosts_spec(spec: str | None) -> list[LabHost]:
    """`--hosts` → hosts. Entries are comma-separated:

    * a host name from the default lab (`dhk-kal-lab01`),
    * `ROLE:COUNT` for COUNT more hosts of a role (`lab_pc:3` → dhk-kal-lab01…03,
      or dhk-kal-lab02…04 beside a dhk-kal-lab01 named in the same spec),
    * `default` for the four default hosts,

    each optionally ending in `@new` (`lab_pc:2@new`): those hosts boot as new
    machines arrive, to be bootstrapped (see `LabHost.new`). No spec means the
    default four. Every host the spec asks for is booted: a role count never
    folds into a host named elsewhere in the spec, and a host asked for both as
    a new machine and as an installed one is refused.
    """
    if spec is None or not spec.strip():
        return list(DEFAULT_HOSTS)
    # Named hosts first, so that role counts number their hosts after them
    # whatever the order of the entries.
    entries = [_parse_entry(raw) for raw in spec.split(",")]
    named: dict[str, LabHost] = {}
    for entry, new, raw in entries:
        if entry is not None and ":" not in entry:
            for host in _named_hosts(entry):
                _take(named, replace(host, new=new), raw)
    chosen: dict[str, LabHost] = {}
    for entry, new, _ in entries:
        if entry is None:
            continue
        if ":" in entry:
            for host in _hosts_for_role(entry, taken=named.keys() | chosen.keys()):
                chosen[host.name] = replace(host, new=new)
        else:
            for host in _named_hosts(entry):
                chosen.setdefault(host.name, named[host.name])
    if not chosen:
        raise InputError("--hosts names no host", hint="e.g. --hosts default,lab_pc:3")
    if len(chosen) > MAX_HOSTS:
        raise InputError(f"--hosts asks for {len(chosen)} hosts; the lab runs at most {MAX_HOSTS}")
    return list(chosen.values())


def _parse_entry(raw: str) -> tuple[str | None, bool, str]:
    """One `--hosts` entry → (what it names or None if empty, whether @new, as written)."""
    written = raw.strip()
    new = written.endswith(NEW_SUFFIX)
    entry = written.removesuffix(NEW_SUFFIX).strip()
    if not entry:
        if new:
            raise InputError(f"--hosts: '{written}' names no host", hint="e.g. lab_pc:2@new")
        return None, False, written
    return entry, new, written


def _named_hosts(entry: str) -> tuple[LabHost, ...]:
    if entry == "default":
        return DEFAULT_HOSTS
    known = {h.name: h for h in DEFAULT_HOSTS}
    if entry in known:
        return (known[entry],)
    raise InputError(
        f"--hosts: unknown lab host '{entry}'",
        hint="use one of "
        + ", ".join(known)
        + ", 'default', or ROLE:COUNT such as lab_pc:3, each optionally with @new "
        "(roles: " + ", ".join(ROLE_TEMPLATES) + ")",
    )


def _take(named: dict[str, LabHost], host: LabHost, raw: str) -> None:
    """Record a named host; the same host asked for twice must be asked for alike."""
    before = named.setdefault(host.name, host)
    if before.new != host.new:
        first, second = (
            ("a new machine", "an installed one")
            if before.new
            else (
                "an installed machine",
                "a new one",
            )
        )
        raise InputError(
            f"--hosts asks for {host.name} as {first} and, in '{raw}', as {second}",
            hint=f"name {host.name} once, with {NEW_SUFFIX} or without it",
        )


def _hosts_for_role(entry: str, taken: set[str]) -> list[LabHost]:
    """COUNT hosts of ROLE, numbered on from the names the spec has taken already."""
    role, _, count_text = entry.partition(":")
    if role not in ROLE_TEMPLATES:
        raise InputError(
            f"--hosts: unknown role '{role}' in '{entry}'",
            hint="roles: " + ", ".join(ROLE_TEMPLATES),
        )
    if not count_text.isdigit() or not 1 <= int(count_text) <= MAX_HOSTS:
        raise InputError(
            f"--hosts: '{entry}' needs a count from 1 to {MAX_HOSTS} after the colon",
            hint="e.g. lab_pc:3",
        )
    stem, placement = ROLE_TEMPLATES[role]
    hosts: list[LabHost] = []
    number = 1
    while len(hosts) < int(count_text):
        name = f"{stem}{number:02d}"
        if name not in taken:
            hosts.append(LabHost(name, role, placement))
        number += 1
    return hosts


def check_subnet(subnet: str) -> ipaddress.IPv4Network:
    """The lab subnet, which must be a private IPv4 /24 (or larger)."""
    try:
        network = ipaddress.IPv4Network(subnet, strict=True)
    except ValueError:
        raise InputError(
            f"lab_subnet '{subnet}' is not an IPv4 network", hint="e.g. lab_subnet: 10.213.7.0/24"
        ) from None
    if not network.is_private or network.prefixlen > 24:
        raise InputError(
            f"lab_subnet {subnet} must be a private network of /24 or larger",
            hint="e.g. lab_subnet: 10.213.7.0/24",
        )
    return network


def control_address(network: ipaddress.IPv4Network) -> str:
    """The control node's address on the lab bridge: the first in the subnet."""
    return str(network.network_address + 1)


def assign_addresses(
    hosts: list[LabHost], network: ipaddress.IPv4Network, taken: dict[str, str]
) -> list[LabHost]:
    """Give each host an address, keeping the ones it had (`taken`: name → address)."""
    used = set(taken.values())
    free = (
        str(network.network_address + i)
        for i in range(FIRST_HOST_OCTET, network.num_addresses - 1)
        if str(network.network_address + i) not in used
    )
    result = []
    for host in hosts:
        address = taken.get(host.name) or next(free)
        result.append(replace(host, address=address))
    for host in result:
        if not _NAME.match(host.name):
            raise InputError(f"'{host.name}' is not a valid host name")
    return result
