"""The portal lab tests' set-up: portals registered on the lab's portal host.

Shared by tests/integration/test_portal_lab.py and test_portal_compliance.py,
which may run before or after each other in the same lab.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.errors import StateError
from provision.portal import (
    PortalRequest,
    add_portal,
    https_get,
    load_register,
    plan_deploy,
    prepare_deploy,
    register_path,
)
from provision.portal import ca as portal_ca
from provision.rollout import RolloutResult, run_rollout
from provision.settings import Settings
from tests.helpers.lab import Lab

HOST = "dhk-gaz-portal01"
ROOT = "/srv/portals"


@dataclass
class Portals:
    lab: Lab
    settings: Settings
    content: Path

    @property
    def address(self) -> str:
        return self.lab.address(HOST)

    @property
    def ca_file(self) -> Path:
        return portal_ca.ca_info(self.settings).cert_path

    def deploy(self, **kwargs: object) -> RolloutResult:
        plan = plan_deploy(self.settings, HOST, **kwargs)  # type: ignore[arg-type]
        prepare_deploy(self.settings, plan)
        return run_rollout(self.settings, plan.plan)

    def get(self, domain: str, path: str = "/") -> tuple[int, str]:
        answer = https_get(self.address, domain, path, ca_file=self.ca_file)
        return answer.status, answer.body.decode()

    def sh(self, command: str) -> str:
        return self.lab.ssh(HOST, command)

    def tree_sums(self, domain: str) -> str:
        return self.sh(
            f"cd {ROOT}/{domain} && find htdocs data -type f -print0 | sort -z "
            "| xargs -0 sha256sum; find htdocs data -printf '%p %u %g %m\\n' | sort"
        )


def portal_lab(
    lab: Lab,
    content: Path,
    portals: Sequence[tuple[str, str]],
    directives: dict[str, tuple[str, ...]] | None = None,
) -> Portals:
    """The lab's department CA (made once per session) and these (domain, kind) portals
    registered on HOST from `content`/<domain> (with their nginx `directives`), unless
    they already are.
    """
    settings = lab.settings
    try:
        portal_ca.ca_info(settings)
    except StateError:
        portal_ca.init_ca(settings)
    register = load_register(register_path(settings))
    for domain, kind in portals:
        if register.find(domain) is None:
            add_portal(
                settings,
                PortalRequest(
                    host=HOST,
                    kind=kind,
                    content=str(content / domain),
                    domain=domain,
                    nginx_directives=(directives or {}).get(domain, ()),
                ),
            )
    return Portals(lab, settings, content)
