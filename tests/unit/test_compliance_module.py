"""The evidence module, run as Ansible runs it (locally) and section by section."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from provision.infra.runner import tool_path
from tests.helpers.workspace import REPO

LIBRARY = REPO / "playbooks" / "library"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "provision_evidence", LIBRARY / "provision_evidence.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_files_section_reads_metadata_and_matching_lines(tmp_path: Path) -> None:
    path = tmp_path / "conf"
    path.write_text("# comment\nStorage=persistent\nMaxRetentionSec=90day\n")
    path.chmod(0o640)
    request = {
        "files": {
            str(path): ["^Storage=persistent$", "^Nope$", "(unbalanced"],
            str(tmp_path / "missing"): [],
            str(tmp_path): [],
        }
    }
    files = _module().collect(request)["files"]["files"]
    entry = files[str(path)]
    assert entry["exists"] and entry["mode"] == "0640" and entry["type"] == "file"
    assert entry["matches"]["^Storage=persistent$"] == "Storage=persistent"
    assert entry["matches"]["^Nope$"] is None
    assert "bad pattern" in entry["matches"]["(unbalanced"]["error"]
    assert files[str(tmp_path / "missing")] == {"exists": False}
    assert files[str(tmp_path)]["type"] == "directory"


def test_sections_fail_alone() -> None:
    evidence = _module().collect(
        {
            "sysctl": ["kernel.ostype", "no.such.key"],
            "users": ["root", "no-such-user-here"],
            "bogus": True,
            "hardware": True,
            "ports": True,
        }
    )
    assert evidence["sysctl"]["values"] == {"kernel.ostype": "Linux", "no.such.key": None}
    assert evidence["users"]["users"]["no-such-user-here"] is None
    assert evidence["users"]["users"]["root"]["uid"] == 0
    assert "unknown section" in evidence["bogus"]["error"]
    assert evidence["hardware"]["cpu_cores"] >= 1 and evidence["hardware"]["memory_mb"] > 0
    assert isinstance(evidence["ports"]["tcp"], list)
    assert "collected_at" in evidence


def _ansible(request: dict[str, Any], *extra: str) -> dict[str, Any]:
    binary = tool_path("ansible")
    assert binary is not None
    env = {**os.environ, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(
        [
            str(binary),
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-M",
            str(LIBRARY),
            "-m",
            "provision_evidence",
            "-a",
            json.dumps({"request": request}),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # "localhost | SUCCESS => {...}"
    head, _, body = proc.stdout.partition("=>")
    assert "SUCCESS" in head, proc.stdout
    return json.loads(body)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_ansible_runs_it_read_only_and_in_check_mode() -> None:
    request = {"sysctl": ["kernel.ostype"], "timezone": True}
    for extra in ((), ("--check",)):
        result = _ansible(request, *extra)
        assert result["changed"] is False
        assert result["evidence"]["sysctl"]["values"]["kernel.ostype"] == "Linux"
        assert result["evidence"]["os_release"]["id"]  # always collected
