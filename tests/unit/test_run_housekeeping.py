"""Run-folder housekeeping: each kind of run keeps its own newest folders, never another's.

Every run (a rollout's wave, a compliance audit, a lab ping) gets a private data
dir `<state>/runs/<utc time>-<kind>-…`; the runner prunes them per kind, so a
daily audit neither grows the state directory without bound nor eats the
rollout history.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from provision.compliance.service import plan_audit, run_audit
from provision.infra import runner
from provision.settings import Settings, load_settings
from tests.conftest import REPO, make_workspace


def _old_folders(state: Path, kind: str, count: int, detail: str = "1") -> list[Path]:
    """`count` folders as earlier versions named them: `<time>-<kind>-<detail>-<id>`."""
    folder = state / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        path = folder / f"2025010{1 + i // 60 % 9}T00{i % 60:02d}00Z-{kind}-{detail}-{i:08x}"
        path.mkdir()
        made.append(path)
    return made


def _kinds(state: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in (state / "runs").iterdir():
        kind = runner.run_kind(path)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def test_pruning_one_kind_keeps_its_newest_and_never_touches_another(tmp_path: Path) -> None:
    state = tmp_path / "state"
    rollouts = _old_folders(state, "rollout", 5, "3-w1")
    audits = _old_folders(state, "compliance", 5)
    pings = _old_folders(state, "lab", 2, "ping")

    removed = runner.prune_run_dirs(state, "compliance", keep=2)

    assert removed == audits[:3]  # the oldest first
    assert all(p.is_dir() for p in rollouts + pings + audits[3:])
    assert _kinds(state) == {"rollout": 5, "compliance": 2, "lab": 2}


def test_a_new_run_folder_names_its_kind(tmp_path: Path) -> None:
    path = runner.new_run_dir(tmp_path / "state", "compliance", "12")
    assert path.parent == tmp_path / "state" / "runs"
    assert runner.run_kind(path) == "compliance" and "-compliance-12-" in path.name
    assert runner.run_kind(runner.new_run_dir(tmp_path / "state", "lab-ping")) == "lab"
    with pytest.raises(ValueError, match="kind"):
        runner.prune_run_dirs(tmp_path / "state", "rollout-1", keep=1)


def _audit_workspace(root: Path) -> Settings:
    workspace = make_workspace(root / "workspace")
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", workspace / "standards")
    folder = workspace / "inventories" / "lab"
    folder.mkdir(parents=True, exist_ok=True)
    hosts = {"pc1": {"ansible_connection": "local", "provision_role": "lab_pc"}}
    (folder / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return load_settings(workspace=workspace, environ={})


def test_a_compliance_run_prunes_its_own_folders_and_never_the_rollouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _audit_workspace(tmp_path)
    state = settings.state_path
    keep = runner.KEEP_RUN_DIRS
    rollouts = _old_folders(state, "rollout", keep + 3, "7-w2")
    audits = _old_folders(state, "compliance", keep + 3)

    def no_ansible(playbook: Path, **kwargs: object) -> runner.PlaybookResult:
        private = kwargs["private_data_dir"]
        assert isinstance(private, Path)
        return runner.PlaybookResult("successful", 0, {}, private)

    monkeypatch.setattr(runner, "run_playbook", no_ansible)
    run_audit(settings, plan_audit(settings))

    assert all(p.is_dir() for p in rollouts), "a compliance run pruned rollout folders"
    assert _kinds(state) == {"rollout": keep + 3, "compliance": keep}
    assert not any(p.is_dir() for p in audits[:4])  # its own oldest went, the new one stayed
