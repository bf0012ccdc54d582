"""The group-naming rule and the shipped copy of the administrative tree."""

from __future__ import annotations

import pytest

from provision.inventory import load_tree, normalise, role_group, site_group, tree_group
from provision.model.places import LEVELS, match_key


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
    # 4,540 union rows; two are the same office listed twice (see the data README).
    assert counts == {"division": 8, "district": 64, "upazila": 494, "union": 4538}
    assert tree.find("dhaka", "GAZIPUR", "kaliganj") is not None
    assert tree.find("khulna", "jhenaidah", "kaliganj") is not None


def test_every_place_in_the_real_tree_gets_its_own_valid_group_name() -> None:
    tree = load_tree()
    names = [tree_group(p.level, *p.path) for p in tree.places.values()]
    assert len(set(names)) == len(names)
    assert all(n.replace("_", "").isalnum() and n.isascii() for n in names)
    # Kaliganj stands in four districts: four groups.
    assert sum(n.startswith("upazila_") and n.endswith("_kaliganj") for n in names) == 4


@pytest.mark.parametrize(
    "name", ["Cox's Bazar", "Coxs Bazar", "coxs_bazar", "COXS-BAZAR", "Coxsbazar"]
)
def test_names_match_ignoring_case_spaces_and_punctuation(name: str) -> None:
    assert match_key(name) == "coxsbazar"
    place = load_tree().find("Chattagram", name)
    assert place is not None and place.path == ("Chattagram", "Coxsbazar")


def test_bangla_names_match_too() -> None:
    tree = load_tree()
    assert tree.find("চট্টগ্রাম", "কক্সবাজার") == tree.find("Chattagram", "Coxsbazar")
    # Bangla keeps its vowel signs: two different names stay different.
    assert match_key("নাটাই (দক্ষিন)") != match_key("নাটাই (উত্তর)")


def test_two_unions_of_one_name_in_one_upazila_stay_apart() -> None:
    tree = load_tree()
    upazila = ("Chattagram", "Brahmanbaria", "Brahmanbaria Sadar")
    natai = tree.lookup("union", [*upazila[1:], "Natai"])
    assert [(p.name, p.name_bn, p.portal) for p in natai] == [
        ("Natai (242)", "নাটাই (দক্ষিন)", "natais.brahmanbaria.gov.bd"),
        ("Natai (243)", "নাটাই (উত্তর)", "natain.brahmanbaria.gov.bd"),
    ]
    assert tree.find(*upazila, "Natai") is None  # ambiguous: the caller must say which
    assert tree.find(*upazila, "natai 243") == natai[1]
    assert tree.find(*upazila, "নাটাই (উত্তর)") == natai[1]
    assert len({tree_group("union", *p.path) for p in natai}) == 2
    # The same office listed twice is one union.
    assert len(tree.lookup("union", ["Bhola", "Charfesson", "Awajpur"])) == 1


def test_the_admin_levels_are_defined_once() -> None:
    """The compliance model, the waivers and the portal register use the places' levels."""
    from provision.model import places, waivers
    from provision.model.compliance import model as compliance_model
    from provision.portal import model as portal_model

    assert portal_model.LEVELS is places.LEVELS
    assert compliance_model.PLACE_LEVELS is places.PLACE_LEVELS == (*LEVELS, "site")
    assert waivers._PLACE_PATHS["union"] == LEVELS
