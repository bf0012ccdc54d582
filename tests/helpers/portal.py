"""A small workspace for the portal unit tests: one portal host, one field server."""

from __future__ import annotations

from pathlib import Path

import yaml

from provision.settings import Settings, load_settings
from tests.helpers.workspace import make_workspace


def portal_workspace(root: Path) -> Settings:
    workspace = make_workspace(root / "workspace")
    folder = workspace / "inventories" / "lab"
    folder.mkdir(parents=True, exist_ok=True)
    inventory = {
        "all": {
            "children": {
                "role_portal_host": {
                    "hosts": {
                        "portal01": {"ansible_host": "127.0.0.1", "provision_role": "portal_host"},
                        "portal02": {"ansible_host": "10.9.9.9", "provision_role": "portal_host"},
                    }
                },
                "role_field_server": {
                    "hosts": {
                        "fs01": {"ansible_host": "10.0.0.1", "provision_role": "field_server"}
                    }
                },
            }
        }
    }
    (folder / "hosts.yml").write_text(yaml.safe_dump(inventory))
    for name in ("a", "b"):
        site = workspace / "sites" / name
        site.mkdir(parents=True)
        (site / "index.html").write_text(f"site {name}\n")
    return load_settings(workspace=workspace, environ={})
