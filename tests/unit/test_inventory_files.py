"""Writing and reading inventories/ENV/: round trip, cache, re-import diff, your own vars."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provision.errors import InputError
from provision.inventory import (
    import_register,
    load_inventory,
    select_hosts,
    slice_inventory,
    write_slice,
)
from provision.inventory.files import CACHE_FILE, HOSTS_FILE
from tests.helpers.inventory import GOOD_ROWS, generated, write


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "inventories" / "production"
    import_register(write(tmp_path / "register.csv"), folder)
    return folder


def test_hosts_yml_is_ansible_yaml_with_the_tree_and_the_record(folder: Path) -> None:
    data = yaml.safe_load((folder / HOSTS_FILE).read_text())
    dhaka = data["all"]["children"]["division_dhaka"]
    gazipur = dhaka["children"]["district_gazipur"]
    assert gazipur["vars"]["provision_district_portal"] == "www.gazipur.gov.bd"
    assert gazipur["hosts"]["gaz-001-fs01"]["ansible_host"] == "10.1.0.10"
    kaliganj = gazipur["children"]["upazila_gazipur_kaliganj"]
    lab = kaliganj["children"]["union_gazipur_kaliganj_bahadursadi"]["hosts"]["gaz-003-lab01"]
    assert lab["provision_cpu_cores"] == 4 and lab["provision_purchase_year"] == 2020
    assert set(lab) == {
        "ansible_host",
        "provision_role",
        "provision_asset_tag",
        "provision_model",
        "provision_cpu_cores",
        "provision_ram_gb",
        "provision_disk_gb",
        "provision_purchase_year",
    }
    assert kaliganj["vars"]["provision_upazila"] == "Kaliganj"
    site = data["all"]["children"]["site_gaz_003"]
    assert site["vars"]["provision_site_name"] == "Bahadursadi Govt. High School"
    assert set(data["all"]["children"]["role_lab_pc"]["hosts"]) == {
        "gaz-003-lab01",
        "gaz-003-lab02",
        "khu-014-lab01",
        "khu-015-lab01",
    }
    assert data["all"]["children"]["site_khu_014"]["hosts"] == {"khu-014-lab01": None}
    assert data["all"]["children"]["site_khu_014"]["vars"]["provision_site_type"] == "school_lab"
    assert (folder / HOSTS_FILE).read_text().startswith("# Written by provision")


def test_the_cache_and_the_yaml_read_the_same(folder: Path) -> None:
    cached = load_inventory(folder).inventory
    (folder / CACHE_FILE).unlink()
    from_yaml = load_inventory(folder).inventory
    assert cached.hosts == from_yaml.hosts
    assert {n: (g.vars, sorted(g.hosts), sorted(g.children)) for n, g in cached.groups.items()} == {
        n: (g.vars, sorted(g.hosts), sorted(g.children)) for n, g in from_yaml.groups.items()
    }


def test_a_stale_cache_is_ignored(folder: Path) -> None:
    path = folder / HOSTS_FILE
    path.write_text(path.read_text().replace('"10.1.0.10"', '"10.9.9.9"'))
    assert load_inventory(folder).inventory.hosts["gaz-001-fs01"]["ansible_host"] == "10.9.9.9"


def test_reimport_reports_added_removed_changed_and_keeps_your_files(
    tmp_path: Path, folder: Path
) -> None:
    mine = {
        folder / "group_vars" / "district_gazipur.yml": "ntp_server: 10.1.0.1\n",
        folder / "host_vars" / "gaz-001-fs01" / "register.yml": "backup: nightly\n",
        folder / "group_vars" / "all" / "main.yml": "timezone: Asia/Dhaka\n",
    }
    for path, text in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    rows = [r for r in GOOD_ROWS if "gaz-002-fs01" not in r]
    rows[0] = rows[0].replace("10.1.0.10", "10.1.0.99")
    rows.append(
        "Khulna,Khulna,Digholia,,KHU-014,Digholia Model High School,school_lab,"
        "khu-014-lab02,10.3.14.11,lab_pc,BD-9,Walton Prelude N41,4,8,256,2023"
    )
    result = import_register(write(tmp_path / "changed.csv", rows), folder)
    assert result.written
    assert result.diff.added == ["khu-014-lab02"]
    assert result.diff.removed == ["gaz-002-fs01"]
    assert result.diff.changed == {"gaz-001-fs01": ["ansible_host"]}
    assert {p: p.read_text() for p in mine} == mine
    renamed = [r.replace("Bahadursadi Govt. High School", "Bahadursadi High School") for r in rows]
    result = import_register(write(tmp_path / "renamed.csv", renamed), folder)
    assert result.diff.changed == {
        "gaz-003-lab01": ["provision_site_name"],
        "gaz-003-lab02": ["provision_site_name"],
    }
    again = import_register(tmp_path / "renamed.csv", folder)
    assert again.diff.empty and not again.written


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "inventories" / "new"
    result = import_register(write(tmp_path / "r.csv"), folder, dry_run=True)
    assert len(result.diff.added) == len(GOOD_ROWS) and not folder.exists()


def test_a_hand_written_hosts_yml_is_never_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "inventories" / "lab"
    folder.mkdir(parents=True)
    (folder / HOSTS_FILE).write_text("all:\n  hosts:\n    lab-fs01:\n")
    with pytest.raises(InputError, match="written by hand"):
        import_register(write(tmp_path / "r.csv"), folder)
    assert (folder / HOSTS_FILE).read_text() == "all:\n  hosts:\n    lab-fs01:\n"


def test_slice_resolves_variables_in_ansibles_order(folder: Path, tmp_path: Path) -> None:
    files = {
        "group_vars/all.yml": "level: all\nfrom_all: 1\n",
        "group_vars/division_dhaka.yml": "level: division\n",
        "group_vars/district_gazipur/a.yml": "level: district\nntp: 10.1.0.1\n",
        "group_vars/role_lab_pc.yml": "level: role\n",
        "group_vars/union_gazipur_kaliganj_bahadursadi.yml": "level: union\n",
        "host_vars/gaz-003-lab02.yml": "level: host\nsecret: !vault |\n  $ANSIBLE_VAULT;1.1\n",
    }
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    loaded = load_inventory(folder)
    hosts = select_hosts(loaded.inventory, "district:gazipur")
    data = slice_inventory(loaded.inventory, hosts, folder)
    values = data["all"]["hosts"]
    assert list(values) == hosts
    assert values["gaz-001-fs01"]["level"] == "district"  # depth 2 beats depth 1
    assert values["gaz-003-lab01"]["level"] == "union"  # the deepest group wins
    assert values["gaz-003-lab02"]["level"] == "host"
    assert values["gaz-003-lab02"]["secret"] == {"__ansible_vault": "$ANSIBLE_VAULT;1.1\n"}
    assert values["gaz-003-lab01"]["ntp"] == "10.1.0.1"
    assert values["gaz-003-lab01"]["provision_upazila_portal"] == "kaliganj.gazipur.gov.bd"
    children = data["all"]["children"]
    assert set(children["role_lab_pc"]["hosts"]) == {"gaz-003-lab01", "gaz-003-lab02"}
    assert "district_khulna" not in children
    path = write_slice(data, tmp_path / "slice" / "hosts.json")
    assert path.read_text().startswith('{"all":')


def test_a_few_thousand_hosts_round_trip_quickly(tmp_path: Path) -> None:
    register = generated(tmp_path / "big.csv", 3000)
    folder = tmp_path / "inventories" / "big"
    result = import_register(register, folder)
    assert result.hosts == 3000
    loaded = load_inventory(folder)
    gazipur = select_hosts(loaded.inventory, "district:gazipur")
    placements = loaded.inventory.placements()
    assert gazipur and all(placements[h][:2] == ("Dhaka", "Gazipur") for h in gazipur)
    others = set(loaded.inventory.hosts) - set(gazipur)
    assert all(placements[h][1] != "Gazipur" for h in others)
