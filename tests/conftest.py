"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def repo_root() -> Path:
    return REPO


def make_workspace(target: Path) -> Path:
    """A workspace of provision's own content (playbooks, ansible.cfg) in `target`.

    Tests work in a copy so that they never write into the repository's
    inventories/ or state directory, nor into a lab a person has running.
    """
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "ansible.cfg", target / "ansible.cfg")
    (target / "playbooks").symlink_to(REPO / "playbooks")
    (target / "inventories").mkdir(exist_ok=True)
    (target / "standards").mkdir(exist_ok=True)
    (target / "provision.yml").write_text("---\nenv: lab\n")
    return target


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "workspace")
