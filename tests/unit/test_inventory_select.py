"""The selection language: AND with ',', OR with ';' or a space, '!' to exclude."""

from __future__ import annotations

import pytest

from provision.errors import InputError
from provision.inventory import Inventory, build_inventory, parse_register, select_hosts
from tests.helpers.inventory import COX, NATAI, register_text

ALL = [
    "gaz-001-fs01",
    "gaz-002-fs01",
    "gaz-003-lab01",
    "gaz-003-lab02",
    "jhe-001-fs01",
    "khu-014-lab01",
    "khu-015-lab01",
    "khu-001-web01",
]


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return build_inventory(parse_register(register_text()))


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ("", ALL),
        (None, ALL),
        ("all", ALL),
        ("role:portal_host ; site:GAZ-002", ["gaz-002-fs01", "khu-001-web01"]),
        ("district:gazipur,role:lab_pc", ["gaz-003-lab01", "gaz-003-lab02"]),
        ("division:khulna,!site:KHU-014", ["jhe-001-fs01", "khu-015-lab01", "khu-001-web01"]),
        ("division:Khulna,!site:khu-014", ["jhe-001-fs01", "khu-015-lab01", "khu-001-web01"]),
        ("role:portal_host;site:GAZ-002", ["gaz-002-fs01", "khu-001-web01"]),
        ("role:portal_host site:GAZ-002", ["gaz-002-fs01", "khu-001-web01"]),
        ("!role:lab_pc", ["gaz-001-fs01", "gaz-002-fs01", "jhe-001-fs01", "khu-001-web01"]),
        ("upazila:kaliganj", ["gaz-002-fs01", "gaz-003-lab01", "gaz-003-lab02", "jhe-001-fs01"]),
        ("upazila:jhenaidah/kaliganj", ["jhe-001-fs01"]),
        ("union:bahadursadi", ["gaz-003-lab01", "gaz-003-lab02"]),
        ("gaz-003-*", ["gaz-003-lab01", "gaz-003-lab02"]),
        ("host:khu-01?-lab01", ["khu-014-lab01", "khu-015-lab01"]),
        ("role_portal_host", ["khu-001-web01"]),
        (
            "group:upazila_*_kaliganj,!host:gaz-003-lab02",
            ["gaz-002-fs01", "gaz-003-lab01", "jhe-001-fs01"],
        ),
        ("district:*na*", ["jhe-001-fs01", "khu-014-lab01", "khu-015-lab01", "khu-001-web01"]),
        ("type:school_lab,district:gazipur", ["gaz-003-lab01", "gaz-003-lab02"]),
        ("district:gazipur,district:khulna", []),
        ("no-such-host", []),
    ],
)
def test_selection(inventory: Inventory, selection: str | None, expected: list[str]) -> None:
    assert select_hosts(inventory, selection) == expected


@pytest.mark.parametrize(
    ("selection", "message", "hint"),
    [
        ("distrikt:gazipur", "unknown key 'distrikt'", "keys: division"),
        ("district:gazipor", "no district named 'gazipor'", "did you mean 'Gazipur'?"),
        ("role:lab", "no role 'lab'", "did you mean 'lab_pc'?"),
        ("district:gazipur,,role:lab_pc", "empty term", "district:gazipur,role:lab_pc"),
        ("site:", "has no value", None),
        (";", "empty alternative", "write 'all'"),
        (" ; ", "empty alternative", "write 'all'"),
        (";;", "empty alternative", "write 'all'"),
        ("role:lab_pc;", "empty alternative", None),
        ("; role:lab_pc", "empty alternative", None),
        ("role:lab_pc;;site:GAZ-002", "empty alternative", None),
        ("   ", "only spaces", "write 'all'"),
        (",", "empty term", None),
        ('district:"Coxs Bazar', "quote that is not closed", "close it"),
        ("upazila:gazipur/", "empty name in its path", None),
        ("upazila:khulna/kaliganj", "no upazila 'kaliganj' in khulna", "check the path"),
        ("role:lab_pc,", "empty term", None),
    ],
)
def test_bad_selection(inventory: Inventory, selection: str, message: str, hint: str) -> None:
    with pytest.raises(InputError) as caught:
        select_hosts(inventory, selection)
    assert message in caught.value.message
    if hint:
        assert caught.value.hint and hint in caught.value.hint


def test_hand_written_hosts_match_level_terms_by_group(inventory: Inventory) -> None:
    bare = Inventory()
    bare.group("division_dhaka")
    bare.group("district_gazipur", "division_dhaka")
    bare.group("upazila_gazipur_kaliganj", "district_gazipur").hosts.append("lab-fs02")
    bare.hosts["lab-fs02"] = {"ansible_host": "10.213.7.11"}
    assert select_hosts(bare, "district:gazipur") == ["lab-fs02"]
    assert select_hosts(bare, "upazila:gazipur/kaliganj") == ["lab-fs02"]
    assert select_hosts(bare, "division:khulna") == []
    assert select_hosts(bare, "upazila:kaliganj") == ["lab-fs02"]
    assert bare.placements() == {"lab-fs02": ("Dhaka", "Gazipur", "Kaliganj")}


def test_placements_of_an_imported_inventory(inventory: Inventory) -> None:
    placements = inventory.placements()
    assert placements["gaz-003-lab01"] == ("Dhaka", "Gazipur", "Kaliganj", "Bahadursadi")
    assert placements["khu-001-web01"] == ("Khulna", "Khulna")


def test_names_with_punctuation_and_bangla_names_select_their_hosts() -> None:
    rows = [
        COX.format(district="Coxsbazar"),
        NATAI.format(union="Natai (242)", n=1),
        NATAI.format(union="Natai (243)", n=2),
    ]
    inventory = build_inventory(parse_register(register_text(rows)))
    for text in ("Cox's-Bazar", "'Coxs Bazar'", '"Cox\'s Bazar"', "coxs_bazar", "কক্সবাজার", "cox*"):
        assert select_hosts(inventory, f"district:{text}") == ["cox-001-fs01"], text
    assert select_hosts(inventory, "union:natai") == ["bra-001-pc01", "bra-002-pc01"]
    assert select_hosts(inventory, "union:'Natai (243)'") == ["bra-002-pc01"]
    assert select_hosts(inventory, "union:'নাটাই (দক্ষিন)'") == ["bra-001-pc01"]
    assert select_hosts(inventory, "upazila:'ব্রাহ্মণবাড়িয়া সদর'") == ["bra-001-pc01", "bra-002-pc01"]
    assert select_hosts(inventory, "union:'brahmanbaria/brahmanbaria sadar/natai'") == [
        "bra-001-pc01",
        "bra-002-pc01",
    ]
