"""The lab's first playbook: every host answers over SSH and says what it runs."""

from __future__ import annotations

from provision.errors import StateError
from provision.infra import runner
from provision.lab.service import LabPaths
from provision.settings import Settings

PING_PLAYBOOK = "ping.yml"


def ping(settings: Settings, on_event: runner.EventCallback | None = None) -> runner.PlaybookResult:
    """Run playbooks/ping.yml over inventories/lab/ with strict host key checking."""
    paths = LabPaths.of(settings)
    if not (paths.inventory_dir / "hosts.yml").is_file():
        raise StateError("the lab is not up", hint="start it with provision lab up")
    try:
        return runner.run_playbook(
            settings.playbooks_path / PING_PLAYBOOK,
            workspace=settings.workspace,
            private_data_dir=runner.new_run_dir(settings.state_path, "lab", "ping"),
            inventory=paths.inventory_dir,
            forks=settings.forks,
            on_event=on_event,
            state_path=settings.state_path,
        )
    finally:
        runner.prune_run_dirs(settings.state_path, "lab")
