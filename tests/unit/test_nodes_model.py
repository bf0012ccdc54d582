"""Execution nodes as data: who runs which host, and the rules a set of nodes keeps."""

from __future__ import annotations

import pytest

from provision.inventory import Inventory, build_inventory, parse_register
from provision.model.nodes import (
    Node,
    NodeError,
    assign_hosts,
    specificity,
    validate_nodes,
)
from tests.helpers.inventory import register_text

GAZIPUR = ["gaz-001-fs01", "gaz-002-fs01", "gaz-003-lab01", "gaz-003-lab02"]


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return build_inventory(parse_register(register_text()))


def test_specificity_is_the_deepest_key() -> None:
    assert specificity("division:dhaka") < specificity("district:gazipur")
    assert specificity("district:gazipur") < specificity("upazila:gazipur/kaliganj")
    assert specificity("upazila:gazipur/kaliganj") < specificity("union:bahadursadi")
    assert specificity("union:bahadursadi") < specificity("site:GAZ-003")
    assert specificity("district:gazipur,site:GAZ-003") == specificity("site:GAZ-003")
    assert specificity("role:lab_pc") == 0
    assert specificity("district:gazipur,!site:GAZ-003") == specificity("district:gazipur")


def test_a_node_runs_what_it_serves_and_the_rest_runs_from_the_control_node(
    inventory: Inventory,
) -> None:
    nodes = [Node("gazipur", "gaz-001-fs01", "district:gazipur")]
    hosts = list(inventory.hosts)
    assigned = assign_hosts(nodes, hosts, inventory)
    assert assigned == {
        None: ["gaz-001-fs01", "jhe-001-fs01", "khu-014-lab01", "khu-015-lab01", "khu-001-web01"],
        "gazipur": ["gaz-002-fs01", "gaz-003-lab01", "gaz-003-lab02"],
    }
    assert sorted(h for part in assigned.values() for h in part) == sorted(hosts)


def test_the_most_specific_node_wins(inventory: Inventory) -> None:
    nodes = [
        Node("gazipur", "gaz-001-fs01", "district:gazipur"),
        Node("kaliganj", "gaz-002-fs01", "upazila:gazipur/kaliganj"),
    ]
    validate_nodes(nodes, inventory)
    assigned = assign_hosts(nodes, GAZIPUR, inventory)
    # Both node hosts run from the control node; Kaliganj's sites go to its own node.
    assert assigned == {None: ["gaz-001-fs01", "gaz-002-fs01"], "kaliganj": GAZIPUR[2:]}
    # The order the nodes are listed in does not matter.
    assert assign_hosts(nodes[::-1], GAZIPUR, inventory) == assigned


def test_only_the_targets_are_assigned(inventory: Inventory) -> None:
    nodes = [Node("gazipur", "gaz-001-fs01", "district:gazipur")]
    assert assign_hosts(nodes, ["gaz-003-lab02", "khu-014-lab01"], inventory) == {
        "gazipur": ["gaz-003-lab02"],
        None: ["khu-014-lab01"],
    }
    assert assign_hosts([], ["khu-014-lab01"], inventory) == {None: ["khu-014-lab01"]}
    assert assign_hosts(nodes, [], inventory) == {}


def test_overlap_at_the_same_level_is_refused(inventory: Inventory) -> None:
    nodes = [
        Node("gazipur", "gaz-001-fs01", "district:gazipur"),
        Node("labs", "gaz-002-fs01", "district:gazipur,role:lab_pc"),
    ]
    with pytest.raises(NodeError, match="both serve 2 host") as caught:
        validate_nodes(nodes, inventory)
    assert caught.value.node == "labs"
    assert caught.value.hint


def test_an_unknown_host_is_refused(inventory: Inventory) -> None:
    with pytest.raises(NodeError, match="'gaz-009-fs01', which is not in the inventory"):
        validate_nodes([Node("gazipur", "gaz-009-fs01", "district:gazipur")], inventory)


def test_a_node_serving_itself_is_refused(inventory: Inventory) -> None:
    with pytest.raises(NodeError, match="serves only itself"):
        validate_nodes([Node("gazipur", "gaz-001-fs01", "host:gaz-001-fs01")], inventory)
    # Nor only other nodes: their work runs from the control node.
    nodes = [
        Node("gazipur", "gaz-001-fs01", "district:gazipur"),
        Node("kaliganj", "gaz-002-fs01", "site:GAZ-001"),
    ]
    with pytest.raises(NodeError, match="'kaliganj' serves no host"):
        validate_nodes(nodes, inventory)


def test_names_selections_and_hosts_are_checked(inventory: Inventory) -> None:
    with pytest.raises(NodeError, match="not valid"):
        validate_nodes([Node("Gazipur Node", "gaz-001-fs01", "district:gazipur")], inventory)
    with pytest.raises(NodeError, match="no district named 'gazipor'") as caught:
        validate_nodes([Node("gazipur", "gaz-001-fs01", "district:gazipor")], inventory)
    assert caught.value.hint == "did you mean 'Gazipur'?"
    twice = [
        Node("gazipur", "gaz-001-fs01", "district:gazipur"),
        Node("gazipur2", "gaz-001-fs01", "district:khulna"),
    ]
    with pytest.raises(NodeError, match="both run on host 'gaz-001-fs01'"):
        validate_nodes(twice, inventory)
    same_name = [twice[0], Node("gazipur", "jhe-001-fs01", "district:khulna")]
    with pytest.raises(NodeError, match="two nodes named 'gazipur'"):
        validate_nodes(same_name, inventory)
