"""The group-naming rule and the shipped copy of the administrative tree."""

from __future__ import annotations

from provision.inventory import load_tree, normalise, role_group, site_group, tree_group
from provision.inventory.names import LEVELS


def test_normalise() -> None:
    assert normalise("Cox's Bazar") == "coxs_bazar"
    assert normalise("  Purbadair (East) ") == "purbadair_east"
    assert normalise("Hat-Pukuria Ghatlabag") == "hat_pukuria_ghatlabag"
    assert normalise("CHATTAGRAM") == "chattagram"
    assert normalise("Bogura") == normalise("bogura")


def test_group_names_qualify_lower_levels_with_the_district() -> None:
    assert tree_group("division", "Dhaka") == "division_dhaka"
    assert tree_group("district", "Dhaka", "Gazipur") == "district_gazipur"
    assert tree_group("upazila", "Dhaka", "Gazipur", "Kaliganj") == "upazila_gazipur_kaliganj"
    assert (
        tree_group("union", "Dhaka", "Gazipur", "Kaliganj", "Bahadursadi")
        == "union_gazipur_kaliganj_bahadursadi"
    )
    assert role_group("lab_pc") == "role_lab_pc"
    assert site_group("KHU-014") == "site_khu_014"


def test_the_tree_is_whole() -> None:
    tree = load_tree()
    counts = {level: 0 for level in LEVELS}
    for place in tree.places.values():
        counts[place.level] += 1
    # 4,540 union rows, four of them repeated under the same upazila (see the data README).
    assert counts == {"division": 8, "district": 64, "upazila": 494, "union": 4536}
    assert tree.find("dhaka", "GAZIPUR", "kaliganj") is not None
    assert tree.find("khulna", "jhenaidah", "kaliganj") is not None


def test_every_place_in_the_real_tree_gets_its_own_valid_group_name() -> None:
    tree = load_tree()
    names = [tree_group(p.level, *p.path) for p in tree.places.values()]
    assert len(set(names)) == len(names)
    assert all(n.replace("_", "").isalnum() and n.isascii() for n in names)
    # Kaliganj stands in four districts: four groups.
    assert sum(n.startswith("upazila_") and n.endswith("_kaliganj") for n in names) == 4
