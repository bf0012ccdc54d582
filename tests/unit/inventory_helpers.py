"""Small registers for the inventory tests."""

from __future__ import annotations

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
