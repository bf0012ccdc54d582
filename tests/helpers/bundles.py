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


#: Where Debian 12's ansible-core (what a PC in pull mode runs) is unpacked for tests.
DEBIAN_ANSIBLE = Path("/var/cache/provision/ansible-core-deb12")
_DEBIAN_PACKAGES = (
    "ansible-core",
    "python3-jinja2",
    "python3-markupsafe",
    "python3-packaging",
    "python3-resolvelib",
)


def debian_ansible_playbook() -> Path | None:
    """An ansible-playbook of Debian 12's own ansible-core package (2.14), or None.

    Fetched once with `apt-get download` from the machine's own apt sources and
    unpacked (not installed) under DEBIAN_ANSIBLE; run with Debian's /usr/bin/python3.
    """
    wrapper = DEBIAN_ANSIBLE / "ansible-playbook"
    if wrapper.is_file():
        return wrapper
    python = Path("/usr/bin/python3")
    if not python.is_file() or shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return None
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ansible-deb12-") as tmp:
        got = subprocess.run(
            ["apt-get", "download", *_DEBIAN_PACKAGES],
            cwd=tmp,
            capture_output=True,
            check=False,
            timeout=600,
        )
        debs = sorted(Path(tmp).glob("*.deb"))
        if got.returncode != 0 or len(debs) != len(_DEBIAN_PACKAGES):
            return None
        root = Path(tmp) / "root"
        for deb in debs:
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True, timeout=120)
        (Path(tmp) / "ansible-playbook").write_text(
            "#!/bin/sh\n"
            f"export PYTHONPATH={DEBIAN_ANSIBLE}/root/usr/lib/python3/dist-packages\n"
            f'exec {python} {DEBIAN_ANSIBLE}/root/usr/bin/ansible-playbook "$@"\n'
        )
        (Path(tmp) / "ansible-playbook").chmod(0o755)
        DEBIAN_ANSIBLE.parent.mkdir(parents=True, exist_ok=True)
        staging = DEBIAN_ANSIBLE.with_name(DEBIAN_ANSIBLE.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        shutil.move(str(root), staging / "root")
        shutil.move(str(Path(tmp) / "ansible-playbook"), staging / "ansible-playbook")
        try:
            staging.rename(DEBIAN_ANSIBLE)  # whole or not at all; another run may have won
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    return wrapper if wrapper.is_file() else None
