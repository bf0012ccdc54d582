"""A lab of its own whose two field servers are execution nodes (`lab up --nodes`).

    gazipur   on dhk-gaz-fs01   serves district:gazipur          runs dhk-gaz-portal01
    kaliganj  on dhk-kal-fs01   serves upazila:gazipur/kaliganj  runs dhk-kal-lab01

Tests that need nodes take `nodes_lab(root, hosts_spec)`: it claims a test
subnet, boots the lab, sets both nodes up with the role, and takes it all down.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provision.lab import service
from provision.lab.inventory import ssh_options
from provision.nodes.lab import LabNodesResult, up_with_nodes
from tests.helpers.lab import Lab, claim_test_subnet, lab_settings, release_test_subnet


@dataclass
class NodesLab(Lab):
    nodes: LabNodesResult | None = None

    def push(self, name: str, source: Path, target: str) -> None:
        """Copy a control-node file to a lab host (over SSH, strict host keys)."""
        with source.open("rb") as stream:
            subprocess.run(
                [
                    "ssh",
                    *ssh_options(self.inventory),
                    f"root@{self.address(name)}",
                    f"cat > {target}",
                ],
                stdin=stream,
                check=True,
                timeout=120,
            )


@contextmanager
def nodes_lab(root: Path, hosts_spec: str | None = None) -> Iterator[NodesLab]:
    subnet = claim_test_subnet()
    settings = lab_settings(root / "workspace", subnet)
    try:
        result = up_with_nodes(settings, hosts_spec)
        yield NodesLab(settings, result.up.hosts, result)
    finally:
        service.down(settings)
        release_test_subnet(subnet)
