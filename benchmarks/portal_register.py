"""The portal register at the size of the whole country: every district, upazila and
union office's portal (about 5,100) on one portal host per district.

    .venv/bin/python benchmarks/portal_register.py

Prints, for one run on this machine: the time to load and validate the register
(every field checked, every line remembered) against PyYAML's plain safe_load of the
same file (the ratio is the price of line-numbered errors), the time to write it
atomically, and one `portal add` on the full register (read, check against the
inventory, write) — what a person waits for at the command line.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from provision.model.inventory.tree import load_tree
from provision.model.places import normalise
from provision.portal import PortalRequest, add_portal, load_register, register_path
from provision.portal.model import DOMAIN, Portal, Register, save_register
from provision.settings import load_settings


def _workspace(root: Path) -> tuple[Path, dict[str, str]]:
    tree = load_tree()
    districts = [p for p in tree.places.values() if p.level == "district"]
    hosts = {normalise(d.name): f"{normalise(d.name)[:8]}-portal01" for d in districts}
    inventory = {
        "all": {
            "children": {
                "role_portal_host": {
                    "hosts": {h: {"provision_role": "portal_host"} for h in hosts.values()}
                }
            }
        }
    }
    folder = root / "inventories" / "lab"
    folder.mkdir(parents=True)
    (folder / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (root / "provision.yml").write_text("---\nenv: lab\n")
    (root / "sites" / "default").mkdir(parents=True)
    return root, hosts


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, hosts = _workspace(Path(tmp))
        settings = load_settings(workspace=root, environ={})
        tree = load_tree()
        portals: list[Portal] = []
        seen: set[str] = set()
        for place in tree.places.values():
            domain = place.portal.lower().strip()
            if place.level == "division" or domain in seen or not DOMAIN.fullmatch(domain):
                continue
            seen.add(domain)
            portals.append(
                Portal(
                    domain=domain,
                    host=hosts[normalise(place.path[1])],
                    kind="php" if place.level == "union" else "static",
                    content="sites/default",
                    office=f"{place.name} {place.level} office",
                    place=place.path,
                    level=place.level,
                )
            )
        register = Register(register_path(settings), portals)

        start = time.perf_counter()
        save_register(register)
        write_s = time.perf_counter() - start
        text = register.path.read_text()

        start = time.perf_counter()
        yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        plain_s = time.perf_counter() - start

        start = time.perf_counter()
        loaded = load_register(register.path)
        load_s = time.perf_counter() - start
        assert len(loaded.portals) == len(portals)

        start = time.perf_counter()
        add_portal(
            settings,
            PortalRequest(
                host=next(iter(hosts.values())),
                kind="static",
                content="sites/default",
                domain="benchmark.example.gov.bd",
            ),
        )
        add_s = time.perf_counter() - start

    print(
        f"portals in the register:          {len(portals):>8}  ({len(text) / 1e6:.1f} MB of YAML)"
    )
    print(f"write (atomic):                   {write_s:>8.2f} s")
    print(f"PyYAML (libyaml) load alone:      {plain_s:>8.2f} s")
    print(
        f"load_register (checked, lines):   {load_s:>8.2f} s  ({load_s / plain_s:.1f}x plain load)"
    )
    print(f"portal add on the full register:  {add_s:>8.2f} s")


if __name__ == "__main__":
    main()
