"""A throwaway workspace with a lab of its own, for the benchmarks that need hosts."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provision.errors import ProvisionError
from provision.lab import service
from provision.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def lab_workspace(subnet: str, *, link_playbooks: bool = True) -> Iterator[Settings]:
    """Settings of a temporary workspace whose lab uses `subnet`.

    It never touches a lab a person has running from the repository. Exits with
    code 3 and one line when this machine cannot run the lab.
    """
    try:
        service.check_prerequisites()
    except ProvisionError as exc:
        print(f"cannot run the lab here: {exc.message}", file=sys.stderr)
        raise SystemExit(3) from None
    with tempfile.TemporaryDirectory(prefix="provision-bench-") as tmp:
        workspace = Path(tmp)
        shutil.copy(REPO / "ansible.cfg", workspace / "ansible.cfg")
        if link_playbooks:
            (workspace / "playbooks").symlink_to(REPO / "playbooks")
        else:
            (workspace / "playbooks").mkdir()
        (workspace / "inventories").mkdir()
        (workspace / "provision.yml").write_text("---\nenv: lab\n")
        yield load_settings(workspace=workspace, environ={}, flags={"lab_subnet": subnet})
