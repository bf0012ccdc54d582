"""waivers.yml: loading, the errors that name the line, and matching by every scope kind."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from provision.errors import InputError
from provision.model.inventory.problems import ProblemsError
from provision.model.standards.model import AppliesTo, Control, Standard
from provision.model.waivers import Scope, Waiver, WaiverSet
from provision.standards.waivers import load_waivers

TODAY = date(2026, 11, 28)

HOSTS = ("gaz-kal-lab01", "gaz-kal-lab02", "jas-cho-fs01")
GROUPS = (
    "division_dhaka",
    "district_gazipur",
    "upazila_gazipur_kaliganj",
    "union_gazipur_kaliganj_bahadursadi",
    "site_dhk_014",
    "role_lab_pc",
    "division_khulna",
    "district_jashore",
    "district_jhenaidah",
    "upazila_jashore_chougachha",
    "upazila_jhenaidah_kaliganj",
)

PLACE = {
    "division": "Dhaka",
    "district": "Gazipur",
    "upazila": "Kaliganj",
    "union": "Bahadursadi",
    "site": "DHK-014",
}
HOST_GROUPS = (
    "division_dhaka",
    "district_gazipur",
    "upazila_gazipur_kaliganj",
    "union_gazipur_kaliganj_bahadursadi",
    "site_dhk_014",
    "role_lab_pc",
)


def _control(control_id: str, severity: str = "high") -> Control:
    return Control(control_id, control_id, "", severity, AppliesTo(), (), (), None)


STANDARD = Standard(
    "test-std", "1", "Test", ("lab_pc",), ("debian-12",), (_control("SSH-001"), _control("PKG-002"))
)


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "waivers.yml"
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


def _load(path: Path, today: date = TODAY) -> WaiverSet:
    return load_waivers(path, STANDARD, known_hosts=HOSTS, known_groups=GROUPS, today=today)


GOOD_ENTRY = """\
  - id: W-001
    control: SSH-001
    scope: "district:Gazipur"
    justification: Legacy agent needs it until March
    approver: Head of Infrastructure
    approved: 2026-11-01
    expires: 2027-02-01
"""


def test_missing_file_is_an_empty_set(tmp_path: Path) -> None:
    waivers = _load(tmp_path / "nothing.yml")
    assert len(waivers) == 0
    assert waivers.match("SSH-001", "gaz-kal-lab01", HOST_GROUPS, PLACE, TODAY) == (None, None)


def test_a_good_file_loads_with_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "# comment\nwaivers:\n" + GOOD_ENTRY)
    waivers = _load(path)
    [waiver] = list(waivers)
    assert waiver == Waiver(
        id="W-001",
        control="SSH-001",
        scope=Scope("district", "Gazipur"),
        justification="Legacy agent needs it until March",
        approver="Head of Infrastructure",
        approved=date(2026, 11, 1),
        expires=date(2027, 2, 1),
        line=3,
    )
    assert waivers.digest is not None and len(waivers.digest) == 64


def test_id_defaults_to_control_and_scope(tmp_path: Path) -> None:
    path = _write(tmp_path, "waivers:\n" + GOOD_ENTRY.replace("  - id: W-001\n    ", "  - "))
    [waiver] = list(_load(path))
    assert waiver.id == "SSH-001@district:Gazipur"


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("control: SSH-001", "control: SSH-999"), 4, "unknown control 'SSH-999'"),
        (("    justification: Legacy agent needs it until March\n", ""), 3, "no justification"),
        (("    approver: Head of Infrastructure\n", ""), 3, "no approver"),
        (('scope: "district:Gazipur"', 'scope: "planet:Mars"'), 5, "bad scope kind 'planet'"),
        (('scope: "district:Gazipur"', 'scope: "Gazipur"'), 5, "bad scope"),
        (('scope: "district:Gazipur"', 'scope: "district:Atlantis"'), 5, "no district"),
        (('scope: "district:Gazipur"', 'scope: "host:nobody"'), 5, "no host 'nobody'"),
        (('scope: "district:Gazipur"', 'scope: "group:nogroup"'), 5, "no group 'nogroup'"),
        (('scope: "district:Gazipur"', 'scope: "upazila:Kaliganj"'), 5, "2 upazilas"),
        (("expires: 2027-02-01", "expires: 2027-02-31"), 9, "bad date"),
        (("expires: 2027-02-01", "expires: soon"), 9, "bad date 'soon'"),
        (("expires: 2027-02-01", "expires: 2026-10-01"), 9, "not after it was approved"),
        (("approved: 2026-11-01", "approved: 2026-12-25"), 8, "after today"),
        (("    approver:", "    approvr: x\n    approver:"), 7, "unknown key 'approvr'"),
    ],
)
def test_each_malformed_waiver_names_its_line(
    tmp_path: Path, change: tuple[str, str], line: int, words: str
) -> None:
    body = ("waivers:\n" + GOOD_ENTRY).replace(*change)
    assert body != "waivers:\n" + GOOD_ENTRY
    path = _write(tmp_path, "# waivers\n" + body)
    with pytest.raises(InputError) as caught:
        _load(path)
    assert caught.value.line == line, str(caught.value)
    assert words in caught.value.message
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_every_problem_is_listed(tmp_path: Path) -> None:
    second = GOOD_ENTRY.replace("W-001", "W-002").replace("SSH-001", "NOPE-1")
    third = GOOD_ENTRY.replace("W-001", "W-003").replace("district:Gazipur", "moon:1")
    path = _write(tmp_path, "waivers:\n" + GOOD_ENTRY + second + third)
    with pytest.raises(ProblemsError) as caught:
        _load(path)
    assert [p.line for p in caught.value.problems] == [10, 18]
    assert "2 problems" in caught.value.message


def test_duplicate_ids_and_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "waivers:\n" + GOOD_ENTRY + GOOD_ENTRY)
    with pytest.raises(InputError, match="used twice"):
        _load(path)
    path = _write(
        tmp_path, "waivers:\n" + GOOD_ENTRY.replace("    approver:", "    id: X\n    approver:")
    )
    with pytest.raises(InputError, match="appears twice"):
        _load(path)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "waivers:\n  - control: [unclosed\n")
    with pytest.raises(InputError) as caught:
        _load(path)
    assert caught.value.line is not None
    assert "not valid YAML" in caught.value.message


@pytest.mark.parametrize(
    ("old", "new", "shown"),
    [
        # A key without its ':': PyYAML gives up on the next line.
        ('    scope: "district:Gazipur"\n', '    scope "district:Gazipur"\n', 'scope "district'),
        # A quote never closed: PyYAML gives up at the end of the file.
        ("    justification: Legacy", '    justification: "Legacy', 'justification: "Legacy'),
        # A key out of line with its neighbours.
        ("    approver: Head", "   approver: Head", "approver: Head"),
        # A '[' never closed.
        ("    control: SSH-001\n", "    control: [SSH-001\n", "control: [SSH-001"),
    ],
)
def test_a_yaml_syntax_error_is_reported_at_the_line_to_fix_and_shows_it(
    tmp_path: Path, old: str, new: str, shown: str
) -> None:
    text = "waivers:\n" + GOOD_ENTRY.replace(old, new)
    assert text != "waivers:\n" + GOOD_ENTRY
    path = tmp_path / "waivers.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        _load(path)
    wanted = next(i for i, line in enumerate(text.splitlines(), 1) if shown in line)
    assert caught.value.line == wanted, caught.value
    assert shown in caught.value.message


def test_an_expiry_passed_since_is_not_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "waivers:\n" + GOOD_ENTRY)
    later = date(2027, 3, 1)
    waivers = _load(path, today=later)
    assert [w.id for w in waivers.expired(later)] == ["W-001"]
    assert waivers.active(later) == []
    assert waivers.match("SSH-001", "gaz-kal-lab01", HOST_GROUPS, PLACE, later) == (
        None,
        waivers.get("W-001"),
    )
    # The last day before expiry it still applies; on the expiry day it does not.
    last_day, _ = waivers.match("SSH-001", "x", HOST_GROUPS, PLACE, date(2027, 1, 31))
    assert last_day is not None and last_day.id == "W-001"
    assert waivers.match("SSH-001", "x", HOST_GROUPS, PLACE, date(2027, 2, 1))[0] is None


def _one(kind: str, value: str) -> WaiverSet:
    waiver = Waiver(
        "W-1", "SSH-001", Scope(kind, value), "why", "who", date(2026, 1, 1), date(2027, 1, 1)
    )
    return WaiverSet((waiver,))


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("host", "gaz-kal-lab01"),
        ("group", "role_lab_pc"),
        ("site", "DHK-014"),
        ("union", "Bahadursadi"),
        ("union", "Gazipur/Kaliganj/Bahadursadi"),
        ("upazila", "Kaliganj"),
        ("upazila", "Gazipur/Kaliganj"),
        ("district", "Gazipur"),
        ("division", "Dhaka"),
    ],
)
def test_match_by_each_scope_kind(kind: str, value: str) -> None:
    waivers = _one(kind, value)
    # By place names alone (no groups), and by groups alone (no place).
    for groups, place in ((("role_lab_pc",) if kind == "group" else (), PLACE), (HOST_GROUPS, {})):
        active, expired = waivers.match("SSH-001", "gaz-kal-lab01", groups, place, TODAY)
        assert active is not None and active.id == "W-1", (groups, place)
        assert expired is None
    # Another control, another host elsewhere: no match.
    assert waivers.match("PKG-002", "gaz-kal-lab01", HOST_GROUPS, PLACE, TODAY) == (None, None)
    elsewhere = {"division": "Khulna", "district": "Jashore", "upazila": "Chougachha",
                 "union": "Narayanpur", "site": "KHU-001"}  # fmt: skip
    assert waivers.match("SSH-001", "jas-cho-fs01", ("district_jashore",), elsewhere, TODAY) == (
        None,
        None,
    )


def test_a_qualified_upazila_does_not_match_its_namesake() -> None:
    waivers = _one("upazila", "Gazipur/Kaliganj")
    jhenaidah = {"district": "Jhenaidah", "upazila": "Kaliganj"}
    assert waivers.match("SSH-001", "h", (), jhenaidah, TODAY) == (None, None)
    assert waivers.match("SSH-001", "h", (), {"district": "Gazipur", "upazila": "Kaliganj"}, TODAY)[
        0
    ]


def test_most_specific_active_waiver_wins_and_expired_is_flagged() -> None:
    def waiver(wid: str, kind: str, value: str, expires: date) -> Waiver:
        return Waiver(wid, "SSH-001", Scope(kind, value), "j", "a", date(2026, 1, 1), expires)

    host_expired = waiver("W-1", "host", "gaz-kal-lab01", date(2026, 6, 1))
    district = waiver("W-2", "district", "Gazipur", date(2027, 6, 1))
    division = waiver("W-3", "division", "Dhaka", date(2027, 6, 1))
    waivers = WaiverSet((division, district, host_expired))
    assert waivers.match("SSH-001", "gaz-kal-lab01", HOST_GROUPS, PLACE, TODAY) == (district, None)
    only_expired = WaiverSet((host_expired,))
    assert only_expired.match("SSH-001", "gaz-kal-lab01", (), {}, TODAY) == (None, host_expired)


def test_the_workspace_example_is_valid() -> None:
    from provision.standards.files import load_standard

    root = Path(__file__).resolve().parents[2]
    standard = load_standard(root / "standards" / "bd-ict-baseline.yml")
    waivers = load_waivers(
        root / "waivers.yml", standard, known_hosts=(), known_groups=(), today=TODAY
    )
    assert waivers.path == root / "waivers.yml"


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("district", "Cox's Bazar"),
        ("district", "Coxs Bazar"),
        ("district", "coxs_bazar"),
        ("district", "কক্সবাজার"),
        ("upazila", "Coxs Bazar/Cox's Bazar Sadar"),
        ("upazila", "কক্সবাজার সদর"),
    ],
)
def test_scopes_match_place_names_in_any_spelling_and_in_bangla(
    tmp_path: Path, kind: str, value: str
) -> None:
    groups = ("division_chattagram", "district_coxsbazar", "upazila_coxsbazar_coxsbazar_sadar")
    place = {"division": "Chattagram", "district": "Coxsbazar", "upazila": "Coxsbazar Sadar"}
    path = _write(
        tmp_path,
        "waivers:\n" + GOOD_ENTRY.replace('scope: "district:Gazipur"', f'scope: "{kind}:{value}"'),
    )
    waivers = load_waivers(
        path, STANDARD, known_hosts=("cox-fs01",), known_groups=groups, today=TODAY
    )
    for host_groups, host_place in ((groups, {}), ((), place)):
        active, _expired = waivers.match("SSH-001", "cox-fs01", host_groups, host_place, TODAY)
        assert active is not None and active.id == "W-001", (host_groups, host_place)
