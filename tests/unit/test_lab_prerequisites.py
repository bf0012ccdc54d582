"""A machine that cannot run the lab gets one clear line, and nothing is touched."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.errors import ExitStatus
from provision.lab import service


def _lab_up(workspace: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["--workspace", str(workspace), "lab", "up"],
        env={
            "PROVISION_LAB_SUBNET": "10.213.11.0/24",
            "PROVISION_LAB_CACHE": str(workspace / "cache"),
        },
    )
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr


def _untouched(workspace: Path) -> None:
    assert not (workspace / ".provision" / "lab").exists()
    assert not (workspace / "inventories" / "lab").exists()
    assert not (workspace / "cache").exists()


def test_missing_debootstrap(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = service.find_tool
    monkeypatch.setattr(
        service, "find_tool", lambda name: None if name == "debootstrap" else real(name)
    )
    monkeypatch.setattr(service.os, "geteuid", lambda: 0)
    code, stderr = _lab_up(workspace)
    assert code == ExitStatus.BAD_INPUT
    assert stderr.splitlines() == [
        "lab up",
        "error: debootstrap is not installed",
        "hint: apt-get install debootstrap",
    ]
    _untouched(workspace)


def test_not_root(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service.os, "geteuid", lambda: 1000)
    code, stderr = _lab_up(workspace)
    assert code == ExitStatus.BAD_INPUT
    assert "the lab needs root" in stderr
    _untouched(workspace)


def test_bad_hosts_spec_is_refused_first(workspace: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--workspace", str(workspace), "lab", "up", "--hosts", "dhk-nowhere"]
    )
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert "unknown lab host 'dhk-nowhere'" in result.stderr
    _untouched(workspace)


def test_commands_on_a_lab_that_is_not_up(workspace: Path) -> None:
    for verb in ("stop", "start", "reset", "ssh"):
        result = CliRunner().invoke(
            cli, ["--workspace", str(workspace), "lab", verb, "dhk-kal-lab01"]
        )
        assert result.exit_code == ExitStatus.BAD_INPUT, verb
        assert "the lab is not up" in result.stderr
    status = CliRunner().invoke(cli, ["--workspace", str(workspace), "lab", "status", "--json"])
    assert status.exit_code == 0 and status.stdout.strip() == "[]"
