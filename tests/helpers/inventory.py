"""Small registers and inventories for the inventory tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from provision.inventory.generate import generate_rows, render_register
from provision.model.inventory.register import COLUMNS

HEADER = ",".join(COLUMNS)

GOOD_ROWS = [
    "Dhaka,Gazipur,,,GAZ-001,Gazipur District Data Centre,district_data_centre,"
    "gaz-001-fs01,10.1.0.10,field_server,BD-1,Dell PowerEdge T150,8,32,2000,2022",
    "Dhaka,Gazipur,Kaliganj,,GAZ-002,Kaliganj Upazila ICT Office,upazila_office,"
    "gaz-002-fs01,10.1.1.10,field_server,BD-2,Dell PowerEdge T150,8,32,2000,2021",
    "Dhaka,Gazipur,Kaliganj,Bahadursadi,GAZ-003,Bahadursadi Govt. High School,school_lab,"
    "gaz-003-lab01,10.1.2.10,lab_pc,BD-3,HP ProDesk 400 G7,4,8,256,2020",
    "Dhaka,Gazipur,Kaliganj,Bahadursadi,GAZ-003,Bahadursadi Govt. High School,school_lab,"
    "gaz-003-lab02,10.1.2.11,lab_pc,BD-4,HP ProDesk 400 G7,4,8,256,2020",
    "Khulna,Jhenaidah,Kaliganj,,JHE-001,Kaliganj Upazila ICT Office,upazila_office,"
    "jhe-001-fs01,10.2.1.10,field_server,BD-5,Dell PowerEdge T150,8,32,2000,2019",
    "Khulna,Khulna,Digholia,,KHU-014,Digholia Model High School,school_lab,"
    "khu-014-lab01,10.3.14.10,lab_pc,BD-6,Walton Prelude N41,4,8,256,2023",
    "Khulna,Khulna,Digholia,,KHU-015,Digholia Girls' High School,school_lab,"
    "khu-015-lab01,10.3.15.10,lab_pc,BD-7,Walton Prelude N41,4,8,256,2023",
    "Khulna,Khulna,,,KHU-001,Khulna District Data Centre,district_data_centre,"
    "khu-001-web01,2001:db8::20,portal_host,BD-8,Dell PowerEdge R650,16,64,1000,2024",
]


def register_text(rows: list[str] | None = None) -> str:
    return HEADER + "\n" + "\n".join(GOOD_ROWS if rows is None else rows) + "\n"


def write(path: Path, rows: list[str] | None = None) -> Path:
    path.write_text(register_text(rows), encoding="utf-8")
    return path


def generated(path: Path, hosts: int, **kwargs: object) -> Path:
    path.write_text(render_register(generate_rows(hosts, **kwargs)), encoding="utf-8")  # type: ignore[arg-type]
    return path


#: One register row in Cox's Bazar, its district name as the test writes it.
COX = (
    "Chattagram,{district},,,COX-001,Coxsbazar District Data Centre,district_data_centre,"
    "cox-001-fs01,10.9.0.10,field_server,BD-90,Dell PowerEdge T150,8,32,2000,2022"
)
#: One register row in Natai union (spelt `union`), the n-th of a few alike.
NATAI = (
    "Chattagram,Brahmanbaria,Brahmanbaria Sadar,{union},BRA-00{n},Natai Union Digital Centre,"
    "union_digital_centre,bra-00{n}-pc01,10.9.1.1{n},digital_centre_pc,BD-9{n},Dell OptiPlex 3000,"
    "4,8,500,2022"
)


def hosts_yml(groups: Mapping[str, Mapping[str, str | None]]) -> str:
    """A hand-written hosts.yml: groups of hosts under `all`, each with its address
    (None: a host without one).

    The layout is fixed (two lines a host, one for a host without an address), so
    a test can name the line a problem is reported at.
    """
    lines = ["all:", "  children:"]
    for group, hosts in groups.items():
        lines += [f"    {group}:", "      hosts:"]
        for host, address in hosts.items():
            if address is None:
                lines.append(f"        {host}: {{}}")
            else:
                lines += [f"        {host}:", f"          ansible_host: {address}"]
    return "\n".join(lines) + "\n"


def write_hosts(folder: Path, groups: Mapping[str, Mapping[str, str | None]]) -> Path:
    """`hosts_yml(groups)` as `folder`/hosts.yml (the folder made if need be)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hosts.yml"
    path.write_text(hosts_yml(groups))
    return path
