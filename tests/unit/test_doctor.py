"""`provision doctor` tells the truth about this machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.errors import ExitStatus
from provision.infra import runner


def _checks(output: str) -> dict[str, dict[str, object]]:
    return {c["name"]: c for c in json.loads(output)["checks"]}


def test_healthy_control_node_passes(workspace: Path) -> None:
    result = CliRunner().invoke(cli, ["--workspace", str(workspace), "doctor", "--json"])
    assert result.exit_code == 0, result.output
    checks = _checks(result.stdout)
    for name in ("python", "ansible-core", "ansible-runner", "ansible-playbook", "workspace"):
        assert checks[name]["status"] == "pass", checks[name]
    assert checks["state directory"]["status"] == "pass"


def test_ansible_missing_from_path_is_said(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Neither beside "our" Python nor on PATH: provision cannot run playbooks.
    monkeypatch.setenv("PATH", str(workspace))
    monkeypatch.setattr(runner.sys, "executable", str(workspace / "no-python-here"))
    result = CliRunner().invoke(cli, ["--workspace", str(workspace), "doctor", "--json"])
    assert result.exit_code == ExitStatus.BAD_INPUT
    checks = _checks(result.stdout)
    assert checks["ansible-playbook"]["status"] == "fail"
    assert "make setup" in str(checks["ansible-playbook"]["fix"])
    assert checks["ansible on PATH"]["status"] == "warn"
    assert checks["ssh client"]["status"] == "fail"


def test_venv_not_on_path_is_a_warning_only(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    result = CliRunner().invoke(cli, ["--workspace", str(workspace), "doctor", "--json"])
    checks = _checks(result.stdout)
    assert checks["ansible-playbook"]["status"] == "pass"  # found beside our Python
    assert checks["ansible on PATH"]["status"] == "warn"
    assert "activate" in str(checks["ansible on PATH"]["fix"])


def test_workspace_without_content_fails(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--workspace", str(tmp_path), "doctor", "--json"])
    assert result.exit_code == ExitStatus.BAD_INPUT
    assert _checks(result.stdout)["workspace"]["status"] == "fail"


def test_table_output_names_what_to_do(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    result = CliRunner().invoke(cli, ["--workspace", str(workspace), "doctor"])
    assert "ansible on PATH" in result.stdout
    assert "what to do" in result.stdout
