"""nodes.yml: read with its lines, checked against the inventory, edited whole or not at all."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.errors import ExitStatus, InputError, StateError
from provision.inventory import build_inventory, parse_register, write_inventory
from provision.model.nodes import Node
from provision.nodes import registry, service
from provision.settings import Settings, load_settings
from tests.helpers.inventory import register_text
from tests.helpers.workspace import make_workspace


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    workspace = make_workspace(tmp_path / "workspace")
    folder = workspace / "inventories" / "lab"
    folder.mkdir(parents=True)
    write_inventory(build_inventory(parse_register(register_text())), folder)
    return load_settings(workspace=workspace, environ={})


def run(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--workspace", str(settings.workspace), *args], catch_exceptions=False
    )


def write(settings: Settings, text: str) -> Path:
    path = registry.nodes_path(settings)
    path.write_text(text, encoding="utf-8")
    return path


def test_add_list_remove_round_trip(settings: Settings) -> None:
    added = service.add_node(settings, "gazipur", "gaz-001-fs01", "district:gazipur")
    assert added.served == 3
    service.add_node(settings, "kaliganj", "jhe-001-fs01", "division:khulna")
    text = registry.nodes_path(settings).read_text()
    assert text.startswith("# The execution nodes")
    found = registry.load_nodes(registry.nodes_path(settings))
    assert found.nodes == [
        Node("gazipur", "gaz-001-fs01", "district:gazipur"),
        Node("kaliganj", "jhe-001-fs01", "division:khulna"),
    ]
    assert found.lines == {"gazipur": 6, "kaliganj": 9}
    assert [(e.served, e.runs) for e in service.list_nodes(settings)] == [(3, 3), (3, 3)]
    assert service.remove_node(settings, "gazipur").host == "gaz-001-fs01"
    assert [e.node.name for e in service.list_nodes(settings)] == ["kaliganj"]


def test_a_change_that_breaks_a_rule_writes_nothing(settings: Settings) -> None:
    service.add_node(settings, "gazipur", "gaz-001-fs01", "district:gazipur")
    before = registry.nodes_path(settings).read_text()
    with pytest.raises(InputError, match="both serve"):
        service.add_node(settings, "labs", "gaz-002-fs01", "district:gazipur")
    with pytest.raises(InputError, match="not in the inventory"):
        service.add_node(settings, "other", "no-such-host", "district:khulna")
    with pytest.raises(StateError, match="already"):
        service.add_node(settings, "gazipur", "jhe-001-fs01", "district:khulna")
    assert registry.nodes_path(settings).read_text() == before


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "nodes:\n  - name: a\n    host: gaz-001-fs01\n    colour: red\n",
            4,
            "unknown field 'colour'",
        ),
        ("nodes:\n  - name: a\n    host: gaz-001-fs01\n", 2, "field 'serves' is missing"),
        ("nodes:\n  - name: a\n    name: b\n", 3, "given twice"),
        ("nodes: {a: 1}\n", 1, "must be a list"),
        ("hosts: []\n", 1, "one key, nodes:"),
        ("nodes:\n  - name: [a\n", 2, "not valid YAML"),
    ],
)
def test_the_form_of_the_file_is_checked_at_its_line(
    settings: Settings, text: str, line: int, message: str
) -> None:
    path = write(settings, text)
    with pytest.raises(InputError, match=message) as caught:
        registry.load_nodes(path)
    assert (caught.value.path, caught.value.line) == (path, line)


def test_a_rule_broken_by_hand_is_reported_at_the_node_s_line(settings: Settings) -> None:
    path = write(
        settings,
        "nodes:\n"
        "  - name: gazipur\n    host: gaz-001-fs01\n    serves: district:gazipur\n"
        "  - name: other\n    host: gaz-002-fs01\n    serves: 'district:gazipur,role:lab_pc'\n",
    )
    listed = run(settings, "nodes", "list")
    assert listed.exit_code == ExitStatus.BAD_INPUT
    assert f"{path}:5: nodes 'gazipur' (district:gazipur) and 'other'" in listed.stderr
    assert "hint:" in listed.stderr
    assert "Traceback" not in listed.output


def test_the_command_line(settings: Settings) -> None:
    added = run(
        settings,
        "nodes",
        "add",
        "gazipur",
        "--host",
        "gaz-001-fs01",
        "--serves",
        "district:gazipur",
    )
    assert added.exit_code == 0, added.output
    assert "provision nodes setup gazipur" in added.stdout
    listed = json.loads(run(settings, "nodes", "list", "--json").stdout)
    assert listed == [
        {
            "name": "gazipur",
            "host": "gaz-001-fs01",
            "serves": "district:gazipur",
            "served": 3,
            "runs": 3,
        }
    ]
    bad = run(settings, "nodes", "add", "Bad Name", "--host", "jhe-001-fs01", "--serves", "x")
    assert bad.exit_code == ExitStatus.BAD_INPUT and "not valid" in bad.stderr
    typo = run(
        settings, "nodes", "add", "k", "--host", "jhe-001-fs01", "--serves", "district:khulan"
    )
    assert typo.exit_code == ExitStatus.BAD_INPUT and "did you mean 'Khulna'" in typo.stderr
    gone = run(settings, "nodes", "remove", "nobody")
    assert gone.exit_code == ExitStatus.BAD_INPUT and "no node named 'nobody'" in gone.stderr
    assert run(settings, "nodes", "remove", "gazipur").exit_code == 0
    assert json.loads(run(settings, "nodes", "list", "--json").stdout) == []


def test_ansible_does_not_read_nodes_yml_as_inventory(settings: Settings) -> None:
    service.add_node(settings, "gazipur", "gaz-001-fs01", "district:gazipur")
    done = subprocess.run(
        [str(Path(__file__).parents[2] / ".venv" / "bin" / "ansible-inventory"), "--list"],
        cwd=settings.workspace,
        env={"ANSIBLE_CONFIG": str(settings.workspace / "ansible.cfg"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    hosts = json.loads(done.stdout)["_meta"]["hostvars"]
    assert "gaz-001-fs01" in hosts and "nodes" not in hosts
    assert "nodes" not in done.stderr, done.stderr  # "Skipping 'nodes'": read as inventory
