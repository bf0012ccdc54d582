"""A small pull-mode workspace: lab PCs at two sites, a digital centre PC, a vaulted canary."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import yaml

from provision.infra import crypto
from provision.settings import Settings, load_settings
from tests.helpers.workspace import REPO, make_workspace

#: A secret that must never be found in any bundle, plain or encrypted.
CANARY = "canary-7f3a9c-must-not-leave"


def _host(role: str, site: str, address: str) -> dict[str, str]:
    return {
        "ansible_host": address,
        "provision_role": role,
        "provision_site_code": site,
        "provision_district": "Gazipur",
    }


def pull_workspace(root: Path) -> tuple[Settings, str]:
    """Settings of the workspace, and the vault text of the canary it holds."""
    workspace = make_workspace(root / "workspace")
    shutil.copy(REPO / "standards" / "bd-ict-baseline.yml", workspace / "standards")
    folder = workspace / "inventories" / "lab"
    (folder / "host_vars").mkdir(parents=True)
    inventory = {
        "all": {
            "children": {
                "role_lab_pc": {
                    "hosts": {
                        "pc1": _host("lab_pc", "KHU-014", "10.0.0.11"),
                        "pc2": _host("lab_pc", "KHU-014", "10.0.0.12"),
                        "pc3": _host("lab_pc", "GAZ-001", "10.0.0.13"),
                    }
                },
                "role_digital_centre_pc": {
                    "hosts": {"dc1": _host("digital_centre_pc", "KHU-014", "10.0.0.21")}
                },
                "site_khu_014": {"hosts": {"pc1": None, "pc2": None, "dc1": None}},
            }
        }
    }
    (folder / "hosts.yml").write_text(yaml.safe_dump(inventory))
    vaulted = crypto.vault_encrypt(CANARY.encode(), "pw").decode()
    (folder / "host_vars" / "pc1.yml").write_text(
        "---\nlab_pc_wifi_psk: !vault |\n"
        + textwrap.indent(vaulted, "  ")
        + "lab_pc_nested:\n  token: !vault |\n"
        + textwrap.indent(vaulted, "    ")
        + "  plain: kept\n"
    )
    return load_settings(workspace=workspace, environ={}), vaulted


def demo_workspace(root: Path, demo_path: Path) -> Settings:
    """A pull workspace whose lab PC playbook only writes `demo_path` (see
    tests/fixtures/pull): what an agent applies on this machine, as root, in a test."""
    settings, _ = pull_workspace(root)
    playbooks = settings.workspace / "playbooks"
    playbooks.unlink()
    shutil.copytree(REPO / "tests" / "fixtures" / "pull" / "playbooks", playbooks)
    shutil.copy(REPO / "playbooks" / "compliance.yml", playbooks)
    shutil.copytree(REPO / "playbooks" / "library", playbooks / "library")
    set_demo(settings, demo_path, "one")
    return settings


def set_demo(settings: Settings, demo_path: Path, text: str) -> None:
    """What the next bundle for pc1 writes into `demo_path`."""
    group_vars = settings.inventory_path / "group_vars"
    group_vars.mkdir(exist_ok=True)
    (group_vars / "all.yml").write_text(
        yaml.safe_dump(
            {
                "pull_demo_path": str(demo_path),
                "pull_demo_text": text,
                # Tests run as root on a machine without sudo, and Ansible's
                # interpreter discovery may find a shim rather than a Python.
                "ansible_become": False,
                "ansible_python_interpreter": "/usr/bin/python3",
            }
        )
    )
