"""Reading the site register: good rows, and each kind of bad row named by its line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from provision.inventory import (
    ProblemsError,
    import_register,
    load_inventory,
    parse_register,
    read_register,
)
from provision.model.inventory.register import _group_clashes
from tests.helpers.inventory import COX, GOOD_ROWS, HEADER, NATAI, register_text, write


def problems(path: Path) -> list[tuple[int | None, str]]:
    with pytest.raises(ProblemsError) as caught:
        read_register(path)
    return [(p.line, p.message) for p in caught.value.problems]


def test_good_register_is_read_with_the_trees_spelling(tmp_path: Path) -> None:
    rows = [GOOD_ROWS[0].replace("Dhaka,Gazipur", "DHAKA,gazipur"), *GOOD_ROWS[1:]]
    records = read_register(write(tmp_path / "r.csv", rows))
    assert len(records) == len(GOOD_ROWS)
    first = records[0]
    assert (first.division, first.district, first.upazila, first.union) == (
        "Dhaka",
        "Gazipur",
        "",
        "",
    )
    assert records[2].union == "Bahadursadi"
    assert records[-1].address == "2001:db8::20"
    assert records[2].cpu_cores == 4
    assert records[2].line == 4


def test_excel_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xef\xbb\xbf" + register_text().replace("\n", "\r\n").encode())
    assert len(read_register(path)) == len(GOOD_ROWS)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    header = HEADER.replace(",asset_tag", "")
    rows = [",".join(r.split(",")[:10] + r.split(",")[11:]) for r in GOOD_ROWS]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    [(line, message)] = problems(path)
    assert line == 1 and message == "missing column asset_tag"


def test_duplicate_hostname_names_both_lines(tmp_path: Path) -> None:
    row = GOOD_ROWS[3].replace("gaz-003-lab02", "gaz-003-lab01")
    assert problems(write(tmp_path / "r.csv", [*GOOD_ROWS[:3], row])) == [
        (5, "duplicate hostname 'gaz-003-lab01' (first on line 4)")
    ]


def test_duplicate_address_in_another_spelling(tmp_path: Path) -> None:
    row = GOOD_ROWS[3].replace("10.1.2.11", "10.1.2.10").replace("BD-4", "BD-44")
    row = row.replace("lab02", "lab03")
    ipv6 = GOOD_ROWS[7].replace("2001:db8::20", "2001:DB8:0::20").replace("web01", "web02")
    found = problems(write(tmp_path / "r.csv", [*GOOD_ROWS, row, ipv6.replace("BD-8", "BD-9")]))
    assert found == [
        (10, "duplicate address '10.1.2.10' (first on line 4)"),
        (11, "duplicate address '2001:DB8:0::20' (first on line 9)"),
    ]


def test_bad_address(tmp_path: Path) -> None:
    row = GOOD_ROWS[0].replace("10.1.0.10", "10.1.0.300")
    assert problems(write(tmp_path / "r.csv", [row])) == [
        (2, "address '10.1.0.300' is not an IPv4 or IPv6 address")
    ]


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("")
    assert problems(path) == [(1, "is empty")]
    path.write_text(HEADER + "\n")
    assert problems(path) == [(2, "has a header row but no hosts")]


def test_wrong_encoding_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    text = register_text().replace("Girls' High", "Girls\u2019 High")
    path.write_bytes(text.encode("cp1252"))
    [(line, message)] = problems(path)
    assert line == 8 and "is not UTF-8" in message


def test_too_many_fields(tmp_path: Path) -> None:
    row = GOOD_ROWS[1].replace("Kaliganj Upazila ICT Office", "Kaliganj, Upazila ICT Office")
    assert problems(write(tmp_path / "r.csv", [GOOD_ROWS[0], row])) == [
        (3, "has 17 fields, more than the 16 header columns")
    ]


def test_unknown_role_site_type_and_place_suggest_the_right_name(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    rows = [
        GOOD_ROWS[0].replace("field_server", "field_sever"),
        GOOD_ROWS[1].replace("upazila_office", "upazila_ofice"),
        GOOD_ROWS[2].replace("Gazipur", "Gazipor"),
    ]
    with pytest.raises(ProblemsError) as caught:
        read_register(write(path, rows))
    found = [(p.line, p.message, p.hint) for p in caught.value.problems]
    assert found == [
        (2, "unknown role 'field_sever'", "did you mean 'field_server'?"),
        (3, "unknown site_type 'upazila_ofice'", "did you mean 'upazila_office'?"),
        (4, "no district named 'Gazipor' in division Dhaka", "did you mean 'Gazipur'?"),
    ]
    assert "3 problems in the register, the first on line 2" in str(caught.value)


def test_place_must_fit_the_tree_and_the_site_type(tmp_path: Path) -> None:
    rows = [
        GOOD_ROWS[1].replace("Dhaka,Gazipur,Kaliganj", "Dhaka,Gazipur,Dighalia"),
        GOOD_ROWS[0].replace(",district_data_centre", ",union_digital_centre"),
        GOOD_ROWS[2].replace(",Kaliganj,", ",,"),
    ]
    found = problems(write(tmp_path / "r.csv", rows))
    assert [line for line, _ in found] == [2, 3, 4]
    assert found[0][1] == "no upazila named 'Dighalia' in district Gazipur"
    assert "union_digital_centre stands at union level" in found[1][1]
    assert found[2][1] == "union is given but upazila is empty"


def test_a_site_keeps_one_place_and_name(tmp_path: Path) -> None:
    row = GOOD_ROWS[3].replace("Bahadursadi Govt.", "Other")
    assert problems(write(tmp_path / "r.csv", [*GOOD_ROWS[:3], row]))[0][0] == 5


def test_template_braces_are_refused(tmp_path: Path) -> None:
    row = GOOD_ROWS[0].replace("Gazipur District Data Centre", "{{ ansible_host }}")
    [(line, message)] = problems(write(tmp_path / "r.csv", [row]))
    assert line == 2 and "template" in message


def test_every_problem_is_listed_in_one_run(tmp_path: Path) -> None:
    rows = [
        GOOD_ROWS[0].replace("10.1.0.10", "bad"),
        GOOD_ROWS[1],
        GOOD_ROWS[2].replace(",8,256,", ",eight,256,"),
        GOOD_ROWS[3].replace("gaz-003-lab02", "GAZ_003"),
    ]
    assert [line for line, _ in problems(write(tmp_path / "r.csv", rows))] == [2, 4, 5]


def test_bad_register_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "inventories" / "production"
    import_register(write(tmp_path / "good.csv"), folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    bad = write(tmp_path / "bad.csv", [*GOOD_ROWS[:5], GOOD_ROWS[5].replace("10.3.14.10", "x")])
    with pytest.raises(ProblemsError) as caught:
        import_register(bad, folder)
    assert [p.line for p in caught.value.problems] == [7]  # the bad address's row
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    fresh = tmp_path / "inventories" / "staging"
    with pytest.raises(ProblemsError) as caught:
        import_register(bad, fresh)
    assert [p.line for p in caught.value.problems] == [7]
    assert not fresh.exists()


@pytest.mark.parametrize("name", ["all", "ungrouped"])
def test_a_host_named_like_ansibles_own_groups_is_refused_at_its_line(
    tmp_path: Path, name: str
) -> None:
    rows = [GOOD_ROWS[0], GOOD_ROWS[1].replace("gaz-002-fs01", name), *GOOD_ROWS[2:]]
    folder = tmp_path / "inventories" / "production"
    with pytest.raises(ProblemsError) as caught:
        import_register(write(tmp_path / "r.csv", rows), folder)
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (3, f"hostname '{name}' is the name of Ansible's own group '{name}'")
    ]
    assert not folder.exists()


def test_a_host_named_like_a_group_the_import_makes_is_refused() -> None:
    # The register's host-name rule refuses '_', which every made group has; this
    # check stands behind it, should that rule ever be relaxed.
    records = parse_register(register_text())
    clash = replace(records[5], hostname="district_gazipur")
    problems = _group_clashes([*records[:5], clash, *records[6:]], "r.csv")
    assert [(p.line, p.message) for p in problems] == [
        (
            7,
            "hostname 'district_gazipur' is also the name of the group of the district "
            "Gazipur (made from line 2)",
        )
    ]


@pytest.mark.parametrize(
    "district", ["Cox's Bazar", "Coxs Bazar", "coxs_bazar", "COXSBAZAR", "কক্সবাজার"]
)
def test_place_names_match_ignoring_case_spaces_punctuation_and_in_bangla(
    tmp_path: Path, district: str
) -> None:
    records = read_register(write(tmp_path / "r.csv", [COX.format(district=district)]))
    assert records[0].district == "Coxsbazar"


def test_a_union_name_two_unions_share_is_refused_naming_both(tmp_path: Path) -> None:
    rows = [NATAI.format(union="Natai", n=1)]
    assert problems(write(tmp_path / "r.csv", rows)) == [
        (
            2,
            "2 unions in upazila Brahmanbaria Sadar are named 'Natai': "
            "'Natai (242)' (নাটাই (দক্ষিন), natais.brahmanbaria.gov.bd) and "
            "'Natai (243)' (নাটাই (উত্তর), natain.brahmanbaria.gov.bd)",
        )
    ]


def test_unions_of_one_name_keep_their_own_bangla_name_and_portal(tmp_path: Path) -> None:
    rows = [NATAI.format(union="Natai (242)", n=1), NATAI.format(union="নাটাই (উত্তর)", n=2)]
    folder = tmp_path / "inventories" / "production"
    import_register(write(tmp_path / "r.csv", rows), folder)
    inventory = load_inventory(folder).inventory
    unions = {
        name: (
            g.vars["provision_union"],
            g.vars["provision_union_bn"],
            g.vars["provision_union_portal"],
            g.hosts,
        )
        for name, g in inventory.groups.items()
        if name.startswith("union_")
    }
    assert unions == {
        "union_brahmanbaria_brahmanbaria_sadar_natai_242": (
            "Natai (242)",
            "নাটাই (দক্ষিন)",
            "natais.brahmanbaria.gov.bd",
            ["bra-001-pc01"],
        ),
        "union_brahmanbaria_brahmanbaria_sadar_natai_243": (
            "Natai (243)",
            "নাটাই (উত্তর)",
            "natain.brahmanbaria.gov.bd",
            ["bra-002-pc01"],
        ),
    }


def test_messages_use_the_right_article(tmp_path: Path) -> None:
    rows = [
        GOOD_ROWS[0].replace(",10.1.0.10,", ",,"),
        GOOD_ROWS[1].replace(",upazila_office,", ",union_digital_centre,"),
        GOOD_ROWS[0]
        .replace(",district_data_centre,", ",upazila_office,")
        .replace("-001-", "-009-"),
    ]
    with pytest.raises(ProblemsError) as caught:
        read_register(write(tmp_path / "r.csv", rows))
    found = {(p.line, p.message, p.hint) for p in caught.value.problems}
    messages = {message for _line, message, _hint in found}
    assert (2, "address is empty", "every host needs an address") in found
    assert "a union_digital_centre stands at union level, but this row names an upazila" in (
        messages
    )
    assert "an upazila_office stands at upazila level, but this row names a district" in messages
