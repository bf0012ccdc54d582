"""The repository, the test fixtures folder, and throwaway workspaces of provision's content."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = REPO / "tests" / "fixtures"


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
