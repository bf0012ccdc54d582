"""The lab's pure parts: host specs, addresses, the mirror and the cache check."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from provision.errors import InputError, PrerequisiteError
from provision.inventory import load_inventory, select_hosts
from provision.lab import rootfs
from provision.lab.inventory import KEY_NAME, KNOWN_HOSTS, known_hosts_lines, write_inventory
from provision.lab.spec import (
    DEFAULT_HOSTS,
    assign_addresses,
    check_subnet,
    control_address,
    parse_hosts_spec,
)
from provision.lab.state import HostRecord


def test_default_lab_is_one_machine_of_each_kind() -> None:
    hosts = parse_hosts_spec(None)
    assert [h.name for h in hosts] == [
        "dhk-gaz-fs01",
        "dhk-kal-fs01",
        "dhk-kal-lab01",
        "dhk-gaz-portal01",
    ]
    assert sorted({h.role for h in hosts}) == ["field_server", "lab_pc", "portal_host"]


def test_spec_mixes_names_and_role_counts_without_duplicates() -> None:
    hosts = parse_hosts_spec("dhk-kal-lab01, lab_pc:3,portal_host:1")
    names = [h.name for h in hosts]
    # lab_pc:3 is three more lab PCs, numbered after the one named.
    assert names == [
        "dhk-kal-lab01",
        "dhk-kal-lab02",
        "dhk-kal-lab03",
        "dhk-kal-lab04",
        "dhk-gaz-portal01",
    ]


@pytest.mark.parametrize(
    ("spec", "added"),
    [
        ("default,lab_pc:1@new", {"dhk-kal-lab02": True}),
        ("default,lab_pc:3", {f"dhk-kal-lab0{i}": False for i in (2, 3, 4)}),
        # Named hosts keep their names whatever the order of the entries.
        ("lab_pc:2,default", {"dhk-kal-lab02": False, "dhk-kal-lab03": False}),
        ("default,field_server:1@new", {"dhk-kal-fs02": True}),
        ("default,lab_pc:1,lab_pc:1@new", {"dhk-kal-lab02": False, "dhk-kal-lab03": True}),
    ],
)
def test_every_host_a_role_count_asks_for_is_added(spec: str, added: dict[str, bool]) -> None:
    hosts = parse_hosts_spec(spec)
    defaults = {h.name for h in parse_hosts_spec("default")}
    assert {h.name: h.new for h in hosts if h.name not in defaults} == added
    assert defaults <= {h.name for h in hosts}
    assert len({h.name for h in hosts}) == len(hosts)


def test_a_host_asked_for_as_new_and_as_installed_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        parse_hosts_spec("default,dhk-kal-lab01@new")
    assert caught.value.message == (
        "--hosts asks for dhk-kal-lab01 as an installed machine and,"
        " in 'dhk-kal-lab01@new', as a new one"
    )
    assert caught.value.hint == "name dhk-kal-lab01 once, with @new or without it"
    # The same host asked for twice in the same way is still one host.
    assert [h.name for h in parse_hosts_spec("dhk-kal-fs01,default,dhk-kal-fs01")].count(
        "dhk-kal-fs01"
    ) == 1


@pytest.mark.parametrize(
    ("spec", "message", "hint"),
    [
        ("dhk-nope", "unknown lab host 'dhk-nope'", "use one of dhk-gaz-fs01"),
        ("printer:2", "unknown role 'printer' in 'printer:2'", "roles: field_server, lab_pc"),
        ("lab_pc:0", "'lab_pc:0' needs a count from 1 to", "e.g. lab_pc:3"),
        ("lab_pc:x", "'lab_pc:x' needs a count from 1 to", "e.g. lab_pc:3"),
        ("lab_pc:999", "'lab_pc:999' needs a count from 1 to", "e.g. lab_pc:3"),
        (",", "--hosts names no host", "e.g. --hosts default,lab_pc:3"),
        ("@new", "'@new' names no host", "e.g. lab_pc:2@new"),
    ],
)
def test_bad_specs_are_refused_with_a_hint(spec: str, message: str, hint: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_hosts_spec(spec)
    assert message in caught.value.message
    assert hint in caught.value.hint


def test_a_spec_of_more_hosts_than_the_lab_runs_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        parse_hosts_spec("default,lab_pc:200")
    assert caught.value.message == "--hosts asks for 204 hosts; the lab runs at most 200"


def test_addresses_are_stable_and_skip_taken_ones() -> None:
    network = check_subnet("10.213.7.0/24")
    assert control_address(network) == "10.213.7.1"
    hosts = assign_addresses(list(DEFAULT_HOSTS), network, {"dhk-kal-fs01": "10.213.7.10"})
    assert {h.name: h.address for h in hosts} == {
        "dhk-gaz-fs01": "10.213.7.11",
        "dhk-kal-fs01": "10.213.7.10",
        "dhk-kal-lab01": "10.213.7.12",
        "dhk-gaz-portal01": "10.213.7.13",
    }


@pytest.mark.parametrize(
    ("subnet", "message"),
    [
        ("8.8.8.0/24", "must be a private network of /24 or larger"),
        ("10.1.2.0/28", "must be a private network of /24 or larger"),
        ("not-a-net", "is not an IPv4 network"),
        ("10.1.2.5/24", "is not an IPv4 network"),  # host bits set
    ],
)
def test_subnet_must_be_a_private_slash_24_or_larger(subnet: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        check_subnet(subnet)
    assert caught.value.message.startswith(f"lab_subnet {subnet}") or (
        caught.value.message.startswith(f"lab_subnet '{subnet}'")
    )
    assert message in caught.value.message
    assert caught.value.hint == "e.g. lab_subnet: 10.213.7.0/24"


def test_mirror_is_read_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian/\nSuites: bookworm bookworm-updates\n"
    )
    assert rootfs.debian_mirror(tmp_path) == "http://mirror.invalid/debian"


def test_mirror_is_read_from_one_line_lists(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://mirror.invalid/debian bookworm main\n"
    )
    assert rootfs.debian_mirror(tmp_path) == "http://mirror.invalid/debian"


def test_no_mirror_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(PrerequisiteError) as caught:
        rootfs.debian_mirror(tmp_path)
    assert caught.value.message == (
        f"no Debian {rootfs.SUITE} mirror found in {tmp_path}/sources.list(.d)"
    )
    assert "add the Debian mirror to apt's sources" in caught.value.hint


def test_half_built_or_stale_cache_is_detected(tmp_path: Path) -> None:
    root = tmp_path / "debian-bookworm"
    assert rootfs.cache_status(root) == "missing"
    for name in rootfs.REQUIRED_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    assert rootfs.cache_status(root).startswith("broken: the build never finished")
    (root / rootfs.MARKER).write_text(json.dumps({"format": rootfs.FORMAT - 1}))
    assert rootfs.cache_status(root).startswith("broken: built by an older")
    (root / rootfs.MARKER).write_text(json.dumps({"format": rootfs.FORMAT}))
    assert rootfs.cache_status(root) == "ready"
    (root / "usr/sbin/sshd").unlink()
    assert rootfs.cache_status(root) == "broken: lacks usr/sbin/sshd"


def _records() -> list[HostRecord]:
    network = ipaddress.IPv4Network("10.213.7.0/24")
    records = [HostRecord.of(h) for h in assign_addresses(list(DEFAULT_HOSTS), network, {})]
    for record in records:
        record.host_key = f"ssh-ed25519 AAAAkey{record.name}"
    return records


def test_inventory_groups_follow_the_admin_tree(tmp_path: Path) -> None:
    write_inventory(tmp_path, _records())
    loaded = load_inventory(tmp_path).inventory
    assert select_hosts(loaded, "role:lab_pc") == ["dhk-kal-lab01"]
    assert select_hosts(loaded, "district:gazipur,role:field_server") == [
        "dhk-gaz-fs01",
        "dhk-kal-fs01",
    ]
    assert select_hosts(loaded, "union:gazipur/kaliganj/nagari") == ["dhk-kal-lab01"]
    assert select_hosts(loaded, "site:DHK-GAZ-DC") == ["dhk-gaz-fs01", "dhk-gaz-portal01"]


def test_inventory_has_hosts_keys_and_strict_checking(tmp_path: Path) -> None:
    import yaml

    records = _records()
    write_inventory(tmp_path, records)
    loaded = load_inventory(tmp_path).inventory
    assert loaded.hosts["dhk-gaz-fs01"]["ansible_host"] == "10.213.7.10"
    connection = yaml.safe_load((tmp_path / "group_vars/all/lab_connection.yml").read_text())
    assert "StrictHostKeyChecking=yes" in connection["ansible_ssh_common_args"]
    known = (tmp_path / KNOWN_HOSTS).read_text().splitlines()
    assert known == known_hosts_lines(sorted(records, key=lambda r: r.name))
    assert known[0].startswith("dhk-gaz-fs01,10.213.7.10 ssh-ed25519 ")


def test_ansible_reads_the_lab_inventory_without_warnings(tmp_path: Path) -> None:
    """Key and known hosts must not be mistaken for inventory sources."""
    import subprocess

    from provision.infra import crypto
    from provision.infra.runner import tool_path

    records = _records()
    write_inventory(tmp_path, records)
    crypto.write_private_key(tmp_path / KEY_NAME, crypto.new_ed25519())
    binary = tool_path("ansible-inventory")
    assert binary is not None
    proc = subprocess.run(
        [str(binary), "-i", str(tmp_path), "--list"],
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": f"{binary.parent}:/usr/bin:/bin",
            "ANSIBLE_NOCOLOR": "1",
            "HOME": str(tmp_path),
        },
    )
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    assert "dhk-kal-lab01" in proc.stdout


def test_every_lab_subnet_has_a_bridge_name_of_its_own() -> None:
    from provision.lab.network import bridge_name

    subnets = [
        "10.213.7.0/24",
        "10.213.20.0/24",
        "10.214.20.0/24",
        "192.168.20.0/24",
        "172.16.0.0/16",
        "10.213.0.0/24",
    ]
    names = [bridge_name(check_subnet(s)) for s in subnets]
    assert len(set(names)) == len(names)
    assert all(len(n) <= 15 for n in names)  # the kernel's IFNAMSIZ - 1
    assert bridge_name(check_subnet("10.213.7.0/24")) == "pvlab-0ad507"
