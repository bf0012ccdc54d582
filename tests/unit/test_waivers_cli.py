"""`provision waivers validate|list|add` on a workspace with an imported inventory."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.errors import ExitStatus
from tests.helpers.inventory import write

REPO = Path(__file__).resolve().parents[2]
TODAY = datetime.now(UTC).date()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "provision.yml").write_text("env: production\n")
    (tmp_path / "standards").mkdir()
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", tmp_path / "standards")
    register = write(tmp_path / "register.csv")
    result = run(tmp_path, "inventory", "import", str(register))
    assert result.exit_code == 0, result.output
    return tmp_path


def run(ws: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--workspace", str(ws), *args])
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result


def _entry(wid: str, control: str, scope: str, approved: str, expires: str) -> str:
    return (
        f'  - id: {wid}\n    control: {control}\n    scope: "{scope}"\n'
        "    justification: Needed for the old backup agent\n"
        "    approver: Director (Infrastructure)\n"
        f"    approved: {approved}\n    expires: {expires}\n"
    )


def test_validate_and_list(ws: Path) -> None:
    past = (TODAY - timedelta(days=100)).isoformat()
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    later = (TODAY + timedelta(days=30)).isoformat()
    (ws / "waivers.yml").write_text(
        "waivers:\n"
        + _entry("W-001", "SSH-004", "district:Gazipur", past, later)
        + _entry("W-002", "HW-002", "site:GAZ-003", past, yesterday),
        encoding="utf-8",
    )
    result = run(ws, "waivers", "validate")
    assert result.exit_code == 0, result.output
    assert "2 waivers, 1 active, 1 expired; valid" in result.output

    listed = run(ws, "waivers", "list", "--json")
    assert listed.exit_code == 0
    data = json.loads(listed.stdout)
    assert [(w["id"], w["state"]) for w in data["waivers"]] == [
        ("W-002", "expired"),
        ("W-001", "active"),
    ]
    assert data["waivers"][1]["approver"] == "Director (Infrastructure)"
    expired = json.loads(run(ws, "waivers", "list", "--expired", "--json").stdout)
    assert [w["id"] for w in expired["waivers"]] == ["W-002"]
    table = run(ws, "waivers", "list", "--active")
    assert "W-001" in table.output and "W-002" not in table.output


def test_validate_names_every_bad_line(ws: Path) -> None:
    past = (TODAY - timedelta(days=10)).isoformat()
    later = (TODAY + timedelta(days=30)).isoformat()
    (ws / "waivers.yml").write_text(
        "waivers:\n"
        + _entry("W-001", "SSH-999", "district:Gazipur", past, later)
        + _entry("W-002", "SSH-004", "upazila:Kaliganj", past, later),
        encoding="utf-8",
    )
    result = run(ws, "waivers", "validate")
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert f"{ws / 'waivers.yml'}:3: unknown control 'SSH-999'" in result.output
    # Kaliganj is an upazila of Gazipur and of Jhenaidah in this inventory.
    assert f"{ws / 'waivers.yml'}:11: bad scope: 2 upazilas are called 'Kaliganj'" in result.output
    as_json = run(ws, "waivers", "validate", "--json")
    assert as_json.exit_code == ExitStatus.BAD_INPUT
    assert [p["line"] for p in json.loads(as_json.stdout)["problems"]] == [3, 11]


def test_add_refuses_a_past_expiry_and_keeps_comments(ws: Path) -> None:
    path = ws / "waivers.yml"
    shutil.copy(REPO / "waivers.yml", path)
    before = path.read_text(encoding="utf-8")
    refused = run(
        ws, "waivers", "add", "SSH-004", "host:gaz-003-lab01",
        "--justification", "x", "--approver", "y", "--expires", TODAY.isoformat(),
    )  # fmt: skip
    assert refused.exit_code == ExitStatus.BAD_INPUT
    assert "not after today" in refused.output
    assert path.read_text(encoding="utf-8") == before
    bad_scope = run(
        ws, "waivers", "add", "SSH-004", "host:nobody",
        "--justification", "x", "--approver", "y", "--expires", "2099-01-01",
    )  # fmt: skip
    assert bad_scope.exit_code == ExitStatus.BAD_INPUT and "no host 'nobody'" in bad_scope.output
    assert path.read_text(encoding="utf-8") == before

    added = run(
        ws, "waivers", "add", "SSH-004", "upazila:Gazipur/Kaliganj", "--id", "W-010",
        "--justification", 'Agent "legacy": root login', "--approver", "CISO",
        "--expires", "2099-01-01",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    text = path.read_text(encoding="utf-8")
    assert text.startswith(before.replace("waivers: []\n", "waivers:\n"))
    listed = json.loads(run(ws, "waivers", "list", "--json").stdout)["waivers"]
    assert [(w["id"], w["justification"]) for w in listed] == [
        ("W-010", 'Agent "legacy": root login')
    ]
    assert run(ws, "waivers", "validate").exit_code == 0
    again = run(
        ws, "waivers", "add", "SSH-004", "district:Gazipur", "--id", "W-010",
        "--justification", "x", "--approver", "y", "--expires", "2099-01-01",
    )  # fmt: skip
    assert again.exit_code == ExitStatus.BAD_INPUT and "used twice" in again.output


def test_add_creates_the_file(ws: Path) -> None:
    before = datetime.now(UTC).date()  # the day the waiver is added on (a run may span midnight)
    result = run(
        ws, "waivers", "add", "HW-002", "site:GAZ-003",
        "--justification", "PCs replaced in 2027", "--approver", "Director",
        "--expires", "2099-06-30",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = json.loads(run(ws, "waivers", "list", "--json").stdout)["waivers"]
    assert listed[0]["id"] == "HW-002@site:GAZ-003"
    after = datetime.now(UTC).date()
    assert listed[0]["approved"] in {before.isoformat(), after.isoformat()}


def test_validate_takes_env_after_the_verb_as_the_warning_suggests(ws: Path) -> None:
    past = (TODAY - timedelta(days=10)).isoformat()
    later = (TODAY + timedelta(days=30)).isoformat()
    (ws / "waivers.yml").write_text(
        "waivers:\n" + _entry("W-001", "SSH-004", "host:gaz-003-lab01", past, later),
        encoding="utf-8",
    )
    # No inventory in `lab`: the scopes cannot be checked, and the warning says how.
    unchecked = run(ws, "--env", "lab", "waivers", "validate")
    assert unchecked.exit_code == 0, unchecked.output
    assert "choose one with --env" in unchecked.stderr
    for args in (
        ("waivers", "validate", "--env", "production"),
        ("waivers", "list", "--env", "production"),
    ):
        result = run(ws, "--env", "lab", *args)
        assert result.exit_code == 0, result.output
        assert "not checked" not in result.stderr
    # The subcommand's --env is the one used: a host of no inventory there is refused.
    (ws / "inventories" / "staging").mkdir()
    shutil.copy(ws / "inventories" / "production" / "hosts.yml", ws / "inventories" / "staging")
    (ws / "waivers.yml").write_text(
        "waivers:\n" + _entry("W-001", "SSH-004", "host:nowhere-01", past, later),
        encoding="utf-8",
    )
    refused = run(ws, "waivers", "validate", "--env", "staging")
    assert refused.exit_code == ExitStatus.BAD_INPUT
    assert "no host 'nowhere-01' in the inventory" in refused.output
