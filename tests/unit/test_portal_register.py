"""The portal register: validation at file:line and field, atomic edits, office lookup."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from provision.errors import InputError, StateError
from provision.portal import (
    PortalRequest,
    add_portal,
    ca,
    find_office,
    list_portals,
    load_register,
    register_path,
    remove_portal,
)
from provision.portal.model import Portal, check_domain
from provision.settings import Settings
from tests.helpers.portal import portal_workspace


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return portal_workspace(tmp_path)


REQUEST = PortalRequest(host="portal01", kind="static", content="sites/a", domain="gazipur.gov.bd")


def test_add_fills_the_office_from_the_admin_tree_and_writes_yaml(settings: Settings) -> None:
    added = add_portal(settings, REQUEST)
    assert added.place == ("Dhaka", "Gazipur") and added.level == "district"
    assert added.office == "Gazipur district office"
    by_office = add_portal(
        settings, replace(REQUEST, domain="", office="Gazipur/Kaliganj", kind="php")
    )
    assert by_office.domain == "kaliganj.gazipur.gov.bd" and by_office.level == "upazila"
    text = register_path(settings).read_text()
    assert text.startswith("# The portal register")
    again = load_register(register_path(settings))
    assert [p.domain for p in again.portals] == ["gazipur.gov.bd", "kaliganj.gazipur.gov.bd"]
    assert again.portals[1] == by_office  # round trip, line numbers aside
    assert [p.domain for p in list_portals(settings, "portal02")] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"domain": "GAZIPUR.gov.bd."}, "already registered"),
        ({"domain": "new.gov.bd", "host": "nowhere"}, "not in the inventory"),
        ({"domain": "new.gov.bd", "host": "fs01"}, "does not have the portal_host role"),
        ({"domain": "bad_name..gov"}, "not a valid domain"),
        ({"domain": "10.213.6.5"}, "is an IP address, not a domain name"),
        ({"domain": "2001:db8::1"}, "is an IP address, not a domain name"),
        ({"domain": "new.gov.bd", "content": "sites/missing"}, "does not exist"),
        ({"domain": "", "office": "Nowhere"}, "no office named"),
        ({"domain": "", "office": "Kaliganj"}, "offices are named"),
    ],
)
def test_bad_additions_change_nothing(
    settings: Settings, change: dict[str, str], message: str
) -> None:
    add_portal(settings, REQUEST)
    before = register_path(settings).read_bytes()
    with pytest.raises(InputError, match=message) as caught:
        add_portal(settings, replace(REQUEST, **change))
    assert caught.value.hint
    assert register_path(settings).read_bytes() == before
    assert not list(register_path(settings).parent.glob("*.tmp"))


def test_duplicate_domain_names_the_line_of_the_first_entry(settings: Settings) -> None:
    add_portal(settings, REQUEST)
    with pytest.raises(InputError) as caught:
        add_portal(settings, REQUEST)
    lines = register_path(settings).read_text().splitlines()
    first = lines.index("- domain: gazipur.gov.bd") + 1
    assert caught.value.path == register_path(settings) and caught.value.line == first


def _write(settings: Settings, body: str) -> Path:
    path = register_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (
            "portals:\n- domain: a.gov.bd\n  host: portal01\n  kind: static\n  content: x\n"
            "- domain: a.gov.bd\n  host: portal01\n  kind: php\n  content: x\n",
            6,
            "registered twice (first on line 2)",
        ),
        ("portals:\n- domain: a.gov.bd\n  host: portal01\n  kind: java\n  content: x\n", 4, "kind"),
        ("portals:\n- domain: -a.gov\n  host: portal01\n  kind: php\n  content: x\n", 2, "domain"),
        ("portals:\n- domain: a.gov.bd\n  kind: php\n  content: x\n", 2, "no 'host'"),
        (
            "portals:\n- domain: a.gov.bd\n  host: p\n  kind: php\n  content: x\n  colour: red\n",
            6,
            "'colour' is not a portal field",
        ),
        (
            "portals:\n- domain: a.gov.bd\n  host: p\n  kind: php\n  content: x\n  contacts:\n"
            "  - name: A\n    email: nope\n",
            8,
            "not an e-mail",
        ),
        (
            "portals:\n- domain: a.gov.bd\n  host: p\n  kind: php\n  content: x\n"
            "  tls: {cert: c}\n",
            6,
            "'tls'",
        ),
        ("portals: [\n", 2, "not valid YAML"),
        (
            "portals:\n- domain: a.gov.bd\n  host: p\n  kind: php\n  content: x\n"
            "- domain: 10.213.6.5\n  host: p\n  kind: php\n  content: x\n",
            6,
            "field 'domain': '10.213.6.5' is an IP address",
        ),
    ],
)
def test_register_mistakes_are_reported_at_their_line(
    settings: Settings, body: str, line: int, words: str
) -> None:
    path = _write(settings, body)
    with pytest.raises(InputError) as caught:
        load_register(path)
    assert words in caught.value.message
    assert (caught.value.path, caught.value.line) == (path, line)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_a_host_that_left_the_inventory_is_reported_at_its_entry(settings: Settings) -> None:
    path = _write(
        settings,
        "portals:\n- domain: a.gov.bd\n  host: portal01\n  kind: static\n  content: sites/a\n"
        "- domain: b.gov.bd\n  host: fs01\n  kind: static\n  content: sites/b\n",
    )
    with pytest.raises(InputError, match=r"field 'host'.*portal_host role") as caught:
        list_portals(settings)
    assert (caught.value.path, caught.value.line) == (path, 6)


def test_remove_takes_the_entry_out_and_an_unknown_one_is_an_error(settings: Settings) -> None:
    add_portal(settings, REQUEST)
    with pytest.raises(InputError, match="no portal"):
        remove_portal(settings, "other.gov.bd")
    assert remove_portal(settings, "gazipur.gov.bd").portal.domain == "gazipur.gov.bd"
    assert load_register(register_path(settings)).portals == []


def test_remove_revokes_the_certificate_unless_another_environment_lists_it(
    settings: Settings,
) -> None:
    ca.init_ca(settings)
    add_portal(settings, REQUEST)
    add_portal(settings, replace(REQUEST, domain="kaliganj.gazipur.gov.bd"))
    issued = ca.issue(settings, "gazipur.gov.bd")
    kept_cert = ca.issue(settings, "kaliganj.gazipur.gov.bd")
    # The staging register lists kaliganj too, and shares this state directory's CA.
    staging = register_path(settings).with_name("staging.yml")
    staging.write_text(
        "portals:\n- domain: kaliganj.gazipur.gov.bd\n  host: s1\n  kind: static\n"
        "  content: sites/a\n"
    )

    done = remove_portal(settings, "gazipur.gov.bd")
    assert done.revoked is not None and done.revoked.serial == issued.serial
    assert ca.cert_status(settings, "gazipur.gov.bd") is None
    assert not issued.key_path.exists()
    revoked = [e for e in ca.read_index(settings) if e.status == "R"]
    assert [(e.subject, int(e.serial, 16)) for e in revoked] == [
        ("/CN=gazipur.gov.bd", issued.serial)
    ]

    kept = remove_portal(settings, "kaliganj.gazipur.gov.bd")
    assert kept.revoked is None and kept.kept_for == ("staging",)
    still = ca.cert_status(settings, "kaliganj.gazipur.gov.bd")
    assert still is not None and still.serial == kept_cert.serial
    assert still.key_path.exists()


def test_without_an_inventory_the_error_says_how_to_get_one(tmp_path: Path) -> None:
    settings = portal_workspace(tmp_path)
    (settings.inventory_path / "hosts.yml").unlink()
    with pytest.raises(StateError, match="no inventory"):
        add_portal(settings, REQUEST)


def test_domains_and_users() -> None:
    assert check_domain(" Www.Gazipur.GOV.bd. ") == "www.gazipur.gov.bd"
    for bad in ("gazipur", "a..b", "-a.b", "a_b.gov.bd", "x" * 64 + ".bd", "a.b.123"):
        with pytest.raises(InputError, match="is not a valid domain name"):
            check_domain(bad)
    with pytest.raises(InputError, match=r"'1\.2\.3\.4' is an IP address, not a domain name"):
        check_domain("1.2.3.4")
    short = Portal("a.gov.bd", "h", "php", "x")
    assert short.user == "p-a-gov-bd"
    long_one = Portal("gunaighornorthup.comilla.gov.bd", "h", "php", "x")
    other = Portal("gunaighornorthup.comilla.gov.bd.example", "h", "php", "x")
    assert len(long_one.user) <= 32 and long_one.user != other.user


def test_office_lookup_by_path_name_and_domain() -> None:
    assert find_office("Dhaka/Gazipur").portal == "www.gazipur.gov.bd"
    assert find_office("gazipur/kaliganj").path == ("Dhaka", "Gazipur", "Kaliganj")
    assert find_office("kaliganj.gazipur.gov.bd").level == "upazila"
