"""provision: configuration management and provisioning for the national fleet.

The few things a script needs, importable from here (loaded on first use, so
that `import provision` and the command line stay quick):

    from provision import load_settings, load_inventory, select_hosts
    from provision import RolloutOptions, plan_rollout, run_rollout, resume_rollout
    from provision import plan_audit, run_audit, audit, write_run_reports
    from provision import sweep, run_playbook

    settings = load_settings()
    plan = plan_rollout(settings, RolloutOptions("site.yml", "district:gazipur", batch="25%"))
    result = run_rollout(settings, plan)       # result.exit_status: 0, 4, 5 or 130
    checked = audit(settings, "district:gazipur")
    write_run_reports(settings, checked.run.id, Path("reports"), ["html", "json"])
    swept = sweep(settings, "role:lab_pc")

Everything else is internal and may move; docs/architecture.md is the map.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_PUBLIC = {
    "load_settings": "provision.settings",
    "Settings": "provision.settings",
    "ProvisionError": "provision.errors",
    "ExitStatus": "provision.errors",
    "load_inventory": "provision.inventory",
    "select_hosts": "provision.inventory",
    "RolloutOptions": "provision.rollout",
    "plan_rollout": "provision.rollout",
    "run_rollout": "provision.rollout",
    "resume_rollout": "provision.rollout",
    "plan_audit": "provision.compliance.service",
    "run_audit": "provision.compliance.service",
    "audit": "provision.compliance.service",
    "write_run_reports": "provision.reports.service",
    "sweep": "provision.access.preflight",
    "run_playbook": "provision.infra.runner",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'provision' has no attribute {name!r}")
