"""The lab as a pytest fixture: booted once per test session, taken down at the end.

Tests that need real hosts take the `lab` fixture (and are marked `lab`). Where
this machine cannot run the lab (not root, no systemd-nspawn, …) they are
skipped with the reason; they never pass without hosts. The test lab uses its
own workspace and its own subnet, so it never touches a lab a person has
running from the repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.errors import ProvisionError
from provision.lab import service
from provision.lab.inventory import ssh_options
from provision.settings import Settings, load_settings
from tests.conftest import make_workspace

TEST_SUBNET = "10.213.9.0/24"


@dataclass
class Lab:
    settings: Settings
    hosts: list[service.HostStatus]

    @property
    def inventory(self) -> Path:
        return self.settings.workspace / "inventories" / "lab"

    def address(self, name: str) -> str:
        return next(h.address for h in self.hosts if h.name == name)

    def ssh(self, name: str, command: str) -> str:
        """Run a command on a host over SSH (strict host keys) and return its stdout."""
        import subprocess

        proc = subprocess.run(
            ["ssh", *ssh_options(self.inventory), f"root@{self.address(name)}", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if proc.returncode != 0:
            raise AssertionError(f"{command!r} on {name} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout


def lab_settings(root: Path, subnet: str = TEST_SUBNET) -> Settings:
    workspace = make_workspace(root)
    return load_settings(
        workspace=workspace,
        environ={},
        flags={"lab_subnet": subnet, "state_dir": str(root / ".provision")},
    )


def lab_unavailable_reason() -> str | None:
    try:
        service.check_prerequisites()
    except ProvisionError as exc:
        return f"the lab cannot run here: {exc.message} ({exc.hint})"
    return None


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    settings = lab_settings(tmp_path_factory.mktemp("lab") / "workspace")
    try:
        result = service.up(settings)
        yield Lab(settings, result.hosts)
    finally:
        # Runs on failures and on Ctrl-C too (pytest tears fixtures down then).
        service.down(settings)
