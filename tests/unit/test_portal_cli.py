"""`provision portal` and `provision ca` from the command line: output, JSON, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provision.cli.main import cli
from provision.errors import ExitStatus
from provision.settings import Settings
from tests.helpers.portal import portal_workspace


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return portal_workspace(tmp_path)


def run(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--workspace", str(settings.workspace), *args], catch_exceptions=False
    )


def test_ca_commands(settings: Settings) -> None:
    missing = run(settings, "ca", "show")
    assert missing.exit_code == ExitStatus.BAD_INPUT and "provision ca init" in missing.stderr
    made = run(settings, "ca", "init")
    assert made.exit_code == 0, made.output
    assert "PRIVATE" not in made.output
    shown = json.loads(run(settings, "ca", "show", "--json").stdout)
    assert "ICT Division Portal CA" in shown["subject"]
    assert run(settings, "ca", "init").exit_code == ExitStatus.BAD_INPUT
    issued = run(settings, "ca", "issue", "A.gov.bd", "--days", "20")
    assert issued.exit_code == 0 and "issued" in issued.stdout
    listed = json.loads(run(settings, "ca", "list", "--json").stdout)
    assert [(c["domain"], c["days_left"] < 21) for c in listed] == [("a.gov.bd", True)]
    bad = run(settings, "ca", "issue", "not a domain")
    assert bad.exit_code == ExitStatus.BAD_INPUT and "not a valid domain" in bad.stderr


def test_portal_add_list_show_remove(settings: Settings) -> None:
    added = run(
        settings,
        "portal",
        "add",
        "--office",
        "Gazipur/Kaliganj",
        "--host",
        "portal01",
        "--kind",
        "php",
        "--content",
        "sites/a",
        "--contact",
        "A. Rahman,a@example.org,+880100",
        "--json",
    )
    assert added.exit_code == 0, added.output
    entry = json.loads(added.stdout)
    assert entry["domain"] == "kaliganj.gazipur.gov.bd"
    assert (
        entry["place"] == "Dhaka/Gazipur/Kaliganj" and entry["user"] == "p-kaliganj-gazipur-gov-bd"
    )
    assert entry["contacts"] == [
        {"name": "A. Rahman", "email": "a@example.org", "phone": "+880100"}
    ]

    dup = run(
        settings,
        "portal",
        "add",
        "KALIGANJ.gazipur.gov.bd",
        "--host",
        "portal01",
        "--content",
        "sites/b",
    )
    assert dup.exit_code == ExitStatus.BAD_INPUT
    assert "portals/lab.yml:" in dup.stderr and "already registered" in dup.stderr
    assert "hint:" in dup.stderr
    role = run(settings, "portal", "add", "x.gov.bd", "--host", "fs01", "--content", "sites/b")
    assert role.exit_code == ExitStatus.BAD_INPUT and "portal_host role" in role.stderr

    listed = json.loads(run(settings, "portal", "list", "--json").stdout)
    assert [p["domain"] for p in listed] == ["kaliganj.gazipur.gov.bd"]
    table = run(settings, "portal", "list")
    assert "kaliganj.gazipur.gov.bd" in table.stdout
    shown = json.loads(run(settings, "portal", "show", "kaliganj.gazipur.gov.bd", "--json").stdout)
    assert shown["certificate"] is None and shown["backups"] == []
    removed = run(settings, "portal", "remove", "kaliganj.gazipur.gov.bd")
    assert removed.exit_code == 0 and "provision portal deploy portal01" in removed.stdout
    assert json.loads(run(settings, "portal", "list", "--json").stdout) == []


def test_deploy_without_yes_off_a_terminal_changes_nothing(settings: Settings) -> None:
    run(settings, "ca", "init")
    run(settings, "portal", "add", "a.gov.bd", "--host", "portal01", "--content", "sites/a")
    refused = run(settings, "portal", "deploy", "portal01")
    assert refused.exit_code == ExitStatus.BAD_INPUT and "--yes" in refused.stderr
    assert not (settings.state_path / "state.db").exists()


def test_restore_without_a_backup_says_how_to_make_one(settings: Settings) -> None:
    run(settings, "portal", "add", "a.gov.bd", "--host", "portal01", "--content", "sites/a")
    done = run(settings, "portal", "restore", "a.gov.bd")
    assert done.exit_code == ExitStatus.BAD_INPUT
    assert "no backup" in done.stderr and "provision portal backup a.gov.bd" in done.stderr


def test_health_reports_a_portal_that_does_not_answer(settings: Settings) -> None:
    run(settings, "ca", "init")
    # portal01 is 127.0.0.1 in the test inventory, where no portal answers on 443.
    run(settings, "portal", "add", "a.gov.bd", "--host", "portal01", "--content", "sites/a")
    done = run(settings, "portal", "health", "--json")
    assert done.exit_code == ExitStatus.HOSTS_FAILED
    [result] = json.loads(done.stdout)
    assert result["domain"] == "a.gov.bd" and result["address"] == "127.0.0.1"
    assert result["status"] in ("unreachable", "untrusted") and result["message"]


def test_help_has_examples() -> None:
    for args in (["portal", "--help"], ["portal", "deploy", "--help"], ["ca", "--help"]):
        shown = CliRunner().invoke(cli, args)
        assert shown.exit_code == 0 and "Example" in shown.output


def test_health_of_a_selection_that_matches_nothing_is_an_error(settings: Settings) -> None:
    run(settings, "ca", "init")
    empty = run(settings, "portal", "health")
    assert empty.exit_code == ExitStatus.BAD_INPUT
    assert "no portal is registered" in empty.stderr and "hint:" in empty.stderr
    run(settings, "portal", "add", "a.gov.bd", "--host", "portal01", "--content", "sites/a")
    typo = run(settings, "portal", "health", "portl01", "--json")
    assert typo.exit_code == ExitStatus.BAD_INPUT and typo.stdout == ""
    assert "'portl01' names no host" in typo.stderr
    bare = run(settings, "portal", "health", "portal02")  # a portal host serving no portal
    assert bare.exit_code == ExitStatus.BAD_INPUT
    assert "no registered portal is served by the hosts 'portal02' names" in bare.stderr


def test_show_prints_fields_not_python_values(settings: Settings) -> None:
    run(settings, "ca", "init")
    run(
        settings,
        *("portal", "add", "a.gov.bd", "--host", "portal01", "--content", "sites/a"),
        *("--contact", "A. Rahman,a@example.org,+880100", "--nginx", "client_max_body_size 64m;"),
    )
    run(settings, "ca", "issue", "a.gov.bd", "--days", "5")
    shown = run(settings, "portal", "show", "a.gov.bd")
    assert shown.exit_code == 0, shown.output
    for python in ("{", "}", "[", "]", "'", "None"):
        assert python not in shown.stdout, shown.stdout
    lines = shown.stdout.splitlines()
    assert "contacts:" in lines and "  - A. Rahman, a@example.org, +880100" in lines
    assert "nginx_directives:" in lines and "  - client_max_body_size 64m;" in lines
    assert "certificate:" in lines and "  days_left: 4" in lines
    assert "backups: none" in lines


def test_restore_from_a_file_that_is_no_backup_says_so_in_one_line(
    settings: Settings, tmp_path: Path
) -> None:
    run(settings, "portal", "add", "a.gov.bd", "--host", "portal01", "--content", "sites/a")
    junk = tmp_path / "notes.txt"
    junk.write_text("not an archive\n")
    done = run(settings, "portal", "restore", "a.gov.bd", "--from", str(junk))
    assert done.exit_code == ExitStatus.BAD_INPUT
    error, hint = done.stderr.strip().splitlines()
    assert error.endswith(f"the backup {junk} is not a .tar.gz archive")
    assert hint.startswith("hint:") and "provision portal backup" in hint
    assert "method" not in done.stderr and "ReadError" not in done.stderr


def test_ca_issue_and_portal_add_refuse_an_address(settings: Settings) -> None:
    run(settings, "ca", "init")
    bad = run(settings, "ca", "issue", "10.213.6.5")
    assert bad.exit_code == ExitStatus.BAD_INPUT and "is an IP address" in bad.stderr
    bad = run(settings, "portal", "add", "10.213.6.5", "--host", "portal01", "--content", "sites/a")
    assert bad.exit_code == ExitStatus.BAD_INPUT and "is an IP address" in bad.stderr
    assert not (settings.workspace / "portals").exists()


def test_ca_revokes_by_hand(settings: Settings) -> None:
    run(settings, "ca", "init")
    run(settings, "ca", "issue", "a.gov.bd")
    done = run(settings, "ca", "revoke", "a.gov.bd")
    assert done.exit_code == 0 and "revoked a.gov.bd" in done.stdout
    assert json.loads(run(settings, "ca", "list", "--json").stdout) == []
    again = run(settings, "ca", "revoke", "a.gov.bd")
    assert again.exit_code == ExitStatus.BAD_INPUT and "no certificate of a.gov.bd" in again.stderr
