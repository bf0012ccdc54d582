"""Where a node's account, worker and keys live: one set of paths for role and code."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import InputError
from provision.nodes import layout
from provision.nodes.lab import LAB_NODES, check_spec


def test_everything_of_the_node_sits_under_its_home_or_prefix() -> None:
    assert layout.USER == "provision-node"
    assert str(layout.HOME) == "/var/lib/provision-node"
    assert str(layout.RUNNER) == "/opt/provision-node/venv/bin/ansible-runner"
    assert str(layout.WORK_DIR) == "/var/lib/provision-node/jobs"
    for path in (layout.KEY, layout.KNOWN_HOSTS, layout.WORK_DIR):
        assert path.is_relative_to(layout.HOME)
    for path in (layout.VENV, layout.WHEELHOUSE, layout.RUNNER):
        assert path.is_relative_to(layout.PREFIX)


def test_the_control_node_keeps_nodes_under_its_state_dir(tmp_path: Path) -> None:
    assert layout.wheelhouse_dir(tmp_path) == tmp_path / "nodes" / "wheelhouse"
    assert layout.node_key(tmp_path, "gazipur") == tmp_path / "nodes" / "gazipur" / "id_ed25519"


def test_a_shard_reaches_its_hosts_with_the_node_s_key_and_host_keys() -> None:
    values = layout.shard_connection_vars()
    assert values["ansible_ssh_private_key_file"] == str(layout.KEY)
    assert f"UserKnownHostsFile={layout.KNOWN_HOSTS}" in values["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in values["ansible_ssh_common_args"]


def test_lab_nodes_need_both_field_servers_in_the_lab() -> None:
    check_spec(None)
    check_spec("default,lab_pc:3")
    with pytest.raises(InputError, match="needs the field servers dhk-kal-fs01"):
        check_spec("dhk-gaz-fs01,dhk-kal-lab01")
    with pytest.raises(InputError, match="dhk-gaz-fs01, dhk-kal-fs01"):
        check_spec("dhk-gaz-fs01@new,dhk-kal-fs01@new")
    assert [n.host for n in LAB_NODES] == ["dhk-gaz-fs01", "dhk-kal-fs01"]
