"""Office web portals: the register, the department CA, deploys, backups and health.

from provision.portal import add_portal, plan_deploy, prepare_deploy, check_portals
"""

from provision.portal.health import PortalHealth, check_portal, check_portals, https_get
from provision.portal.model import Contact, ExternalTls, Portal, Register, load_register
from provision.portal.service import (
    BackupResult,
    DeployPlan,
    PortalDetail,
    PortalRequest,
    Removal,
    RestoreResult,
    add_portal,
    backup_portal,
    find_office,
    list_backups,
    list_portals,
    plan_deploy,
    prepare_deploy,
    register_path,
    remove_portal,
    restore_portal,
    show_portal,
)

__all__ = [
    "BackupResult",
    "Contact",
    "DeployPlan",
    "ExternalTls",
    "Portal",
    "PortalDetail",
    "PortalHealth",
    "PortalRequest",
    "Register",
    "Removal",
    "RestoreResult",
    "add_portal",
    "backup_portal",
    "check_portal",
    "check_portals",
    "find_office",
    "https_get",
    "list_backups",
    "list_portals",
    "load_register",
    "plan_deploy",
    "prepare_deploy",
    "register_path",
    "remove_portal",
    "restore_portal",
    "show_portal",
]
