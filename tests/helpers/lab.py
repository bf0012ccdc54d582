"""The lab of real hosts for tests: its test subnets, its settings, the `Lab` handle.

Used by the `lab` fixture (tests/integration/conftest.py) and by the lab tests
that bring up labs of their own (test_lab_lifecycle, test_bootstrap).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provision.errors import ProvisionError
from provision.lab import network, service
from provision.lab.inventory import ssh_options
from provision.lab.spec import check_subnet
from provision.settings import Settings, load_settings
from tests.helpers.workspace import make_workspace

#: Test labs take 10.213.N.0/24 for the first free N in this range.
TEST_SUBNETS = range(20, 250)
SUBNET_CLAIMS = Path("/run/provision-test-labs")


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


def claim_test_subnet() -> str:
    """A lab subnet no other test run on this machine is using.

    Several test runs may share a machine (two developers, a CI run): each claims a
    subnet by creating a folder (atomic) named after it, holding its pid. A claim
    whose process is gone is taken over.
    """
    SUBNET_CLAIMS.mkdir(parents=True, exist_ok=True)
    for octet in TEST_SUBNETS:
        subnet = f"10.213.{octet}.0/24"
        claim = SUBNET_CLAIMS / str(octet)
        owner = claim / "pid"
        try:
            claim.mkdir()
        except FileExistsError:
            try:
                alive = Path(f"/proc/{int(owner.read_text())}").exists()
            except (OSError, ValueError):
                alive = True  # being claimed right now
            if alive or network.bridge_exists(network.bridge_name(check_subnet(subnet))):
                continue
        if network.bridge_exists(network.bridge_name(check_subnet(subnet))):
            shutil.rmtree(claim, ignore_errors=True)  # in use by a lab outside the tests
            continue
        owner.write_text(str(os.getpid()))
        return subnet
    raise RuntimeError("no free test lab subnet")


def release_test_subnet(subnet: str) -> None:
    octet = subnet.split(".")[2]
    shutil.rmtree(SUBNET_CLAIMS / octet, ignore_errors=True)


def lab_settings(root: Path, subnet: str) -> Settings:
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
