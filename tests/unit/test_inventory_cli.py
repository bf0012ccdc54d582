"""`provision inventory ...` through the real command group: exit codes, output, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.errors import ExitStatus
from tests.helpers.inventory import GOOD_ROWS, generated, write, write_hosts


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "provision.yml").write_text("env: production\n")
    return tmp_path


def run(ws: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--workspace", str(ws), *args])
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result


def test_import_then_show_tree_validate(ws: Path) -> None:
    register = write(ws / "register.csv")
    result = run(ws, "inventory", "import", str(register))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "8 hosts" in result.output and "added 8" in result.output
    assert (ws / "inventories" / "production" / "hosts.yml").is_file()

    shown = run(ws, "inventory", "show", "district:gazipur,role:lab_pc", "--json")
    assert shown.exit_code == 0
    assert [h["host"] for h in json.loads(shown.stdout)] == ["gaz-003-lab01", "gaz-003-lab02"]

    sliced = run(ws, "inventory", "show", "site:KHU-014", "--slice")
    assert list(json.loads(sliced.stdout)["all"]["hosts"]) == ["khu-014-lab01"]

    tree = json.loads(run(ws, "inventory", "tree", "--depth", "4", "--json").stdout)
    assert tree["hosts"] == 8
    dhaka = next(c for c in tree["children"] if c["name"] == "Dhaka")
    assert dhaka["hosts"] == 4 and dhaka["children"][0]["name"] == "Gazipur"

    valid = run(ws, "inventory", "validate", "--json")
    assert valid.exit_code == 0 and json.loads(valid.stdout)["valid"] is True


def test_reimport_lists_changes(ws: Path) -> None:
    run(ws, "inventory", "import", str(write(ws / "r.csv")))
    changed = write(ws / "r2.csv", GOOD_ROWS[1:])
    result = run(ws, "inventory", "import", str(changed), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["removed"] == ["gaz-001-fs01"]


def test_env_option_on_the_subcommand(ws: Path) -> None:
    result = run(ws, "inventory", "import", str(write(ws / "r.csv")), "--env", "staging")
    assert result.exit_code == 0
    assert (ws / "inventories" / "staging" / "hosts.yml").is_file()
    assert not (ws / "inventories" / "production").exists()


def test_bad_register_exits_3_names_every_line_and_writes_nothing(ws: Path) -> None:
    rows = [GOOD_ROWS[0].replace("10.1.0.10", "10.1.0"), GOOD_ROWS[1], GOOD_ROWS[1]]
    result = run(ws, "inventory", "import", str(write(ws / "bad.csv", rows)))
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert "bad.csv:2: address '10.1.0' is not an IPv4 or IPv6 address" in result.stderr
    assert "bad.csv:4: duplicate hostname 'gaz-002-fs01' (first on line 3)" in result.stderr
    assert "nothing was written" in result.stderr
    assert not (ws / "inventories").exists()


def test_missing_register_file_is_bad_input(ws: Path) -> None:
    result = run(ws, "inventory", "import", str(ws / "nope.csv"))
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert "nope.csv: does not exist" in result.stderr


def test_validate_a_register_and_a_broken_environment(ws: Path) -> None:
    bad = write(ws / "bad.csv", [GOOD_ROWS[0].replace("lab_pc", "x").replace("field_server", "x")])
    result = run(ws, "inventory", "validate", str(bad))
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert "bad.csv:2: unknown role 'x'" in result.stderr

    folder = ws / "inventories" / "production"
    write_hosts(folder, {"role_lab_pc": {"lab-a": "10.0.0.1", "lab-b": "10.0.0.1", "lab-c": None}})
    (folder / "group_vars").mkdir()
    (folder / "group_vars" / "role_lab_pcs.yml").write_text("x: 1\n")
    report = run(ws, "inventory", "validate", "--json")
    assert report.exit_code == ExitStatus.BAD_INPUT
    problems = json.loads(report.stdout)["problems"]
    messages = {(p["line"], p["message"]) for p in problems}
    assert (7, "host 'lab-b' has the address 10.0.0.1 of host 'lab-a'") in messages
    assert (9, "host 'lab-c' has no address") in messages
    assert (5, "host 'lab-a' is in 0 division groups (none)") in messages
    assert any(p["severity"] == "warning" and "role_lab_pcs" in p["path"] for p in problems)


def test_show_without_an_inventory_is_bad_input(ws: Path) -> None:
    result = run(ws, "inventory", "show")
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert "provision inventory import" in result.stderr


def test_bad_selection_is_bad_input(ws: Path) -> None:
    run(ws, "inventory", "import", str(write(ws / "r.csv")))
    result = run(ws, "inventory", "show", "district:gazipor")
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert "did you mean 'Gazipur'?" in result.stderr


@pytest.mark.parametrize("selection", ["", " ", ";", " ; ", "role:lab_pc;"])
@pytest.mark.parametrize(
    "command",
    [("inventory", "show"), ("inventory", "tree"), ("rollout", "ping.yml"), ("compliance", "run")],
)
def test_an_empty_selection_never_means_every_host(
    ws: Path, command: tuple[str, ...], selection: str
) -> None:
    run(ws, "inventory", "import", str(write(ws / "r.csv")))
    result = run(ws, *command, selection)
    assert result.exit_code == ExitStatus.BAD_INPUT, result.output
    assert "write 'all'" in result.stderr or "empty alternative" in result.stderr
    assert not (ws / ".provision").exists()  # no run recorded, no state opened


def test_validate_counts_in_english_and_no_hosts_for_a_register_that_never_parsed(
    ws: Path,
) -> None:
    bad = ws / "bad.csv"
    bad.write_text("hostname,address\nx,1\n")
    result = run(ws, "inventory", "validate", str(bad))
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert result.stdout.strip() == f"{bad}: not valid (1 error, 0 warnings)"
    assert json.loads(run(ws, "inventory", "validate", str(bad), "--json").stdout)["hosts"] is None
    good = write(ws / "good.csv", GOOD_ROWS[:1])
    one = run(ws, "inventory", "validate", str(good))
    assert one.stdout.strip() == f"{good}: valid (1 host, 0 errors, 0 warnings)"


def test_a_register_with_thousands_of_bad_rows_shows_the_first_50_and_a_count(ws: Path) -> None:
    register = generated(ws / "big.csv", 3000)
    lines = register.read_text().splitlines()
    broken = [lines[0]] + [line.replace(",10.", ",x10.") for line in lines[1:]]
    register.write_text("\n".join(broken) + "\n")
    result = run(ws, "inventory", "validate", str(register))
    assert result.exit_code == ExitStatus.BAD_INPUT
    printed = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(printed) == 50
    assert printed[0].startswith(f"error: {register}:2: address 'x10.")
    assert "… and 2,950 more problems (--json lists them all)" in result.stderr
    assert result.stdout.strip() == f"{register}: not valid (3,000 errors, 0 warnings)"
    listed = json.loads(run(ws, "inventory", "validate", str(register), "--json").stdout)
    assert len(listed["problems"]) == 3000


def test_generate(ws: Path) -> None:
    out = ws / "gen.csv"
    result = run(ws, "inventory", "generate", "--hosts", "120", "--out", str(out))
    assert result.exit_code == 0
    assert len(out.read_text().splitlines()) == 121
    assert run(ws, "inventory", "validate", str(out)).exit_code == 0


def test_every_command_has_an_example_in_its_help(ws: Path) -> None:
    for command in ("import", "validate", "show", "tree", "generate"):
        text = run(ws, "inventory", command, "--help").output
        assert "Example" in text and f"provision inventory {command}" in text
