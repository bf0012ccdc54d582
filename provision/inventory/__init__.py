"""Inventories from the site register: import, validate, select, and slice for Ansible.

The public surface (everything else is internal):

* `read_register(path)` -> list[Record]; raises `ProblemsError` listing every bad line
* `build_inventory(records)` -> Inventory
* `write_inventory(inventory, folder)`, `load_inventory(folder)` -> LoadedInventory
* `import_register(register, folder, dry_run=False)` -> ImportResult (with the diff)
* `validate_environment(folder)`, `validate_register(path)` -> ValidationReport
* `parse_selection(text)`, `select_hosts(inventory, selection)` -> list of host names
* `slice_inventory(inventory, hosts, folder)` -> dict; `write_slice(data, path)`
* `tree_group(level, *path)`, `role_group`, `site_type_group`, `site_group`, `normalise`
* `generate_rows(hosts, divisions=(), seed=1)`, `write_register(rows, path)`
"""

from provision.inventory.files import LoadedInventory, load_inventory, write_inventory
from provision.inventory.generate import generate_rows, write_register
from provision.inventory.register_file import read_register
from provision.inventory.service import ImportResult, import_register
from provision.inventory.slice import slice_inventory, write_slice
from provision.inventory.validate import (
    ValidationReport,
    validate_environment,
    validate_register,
)
from provision.model.inventory.diff import InventoryDiff, diff_inventories
from provision.model.inventory.model import HOST_VARS, Group, Inventory, build_inventory
from provision.model.inventory.problems import Problem, ProblemsError
from provision.model.inventory.register import (
    COLUMNS,
    ROLES,
    SITE_TYPES,
    Record,
    parse_register,
)
from provision.model.inventory.select import Selection, parse_selection, select_hosts
from provision.model.inventory.tree import AdminTree, Place, load_tree
from provision.model.places import (
    normalise,
    role_group,
    site_group,
    site_type_group,
    tree_group,
)

__all__ = [
    "COLUMNS",
    "HOST_VARS",
    "ROLES",
    "SITE_TYPES",
    "AdminTree",
    "Group",
    "ImportResult",
    "Inventory",
    "InventoryDiff",
    "LoadedInventory",
    "Place",
    "Problem",
    "ProblemsError",
    "Record",
    "Selection",
    "ValidationReport",
    "build_inventory",
    "diff_inventories",
    "generate_rows",
    "import_register",
    "load_inventory",
    "load_tree",
    "normalise",
    "parse_register",
    "parse_selection",
    "read_register",
    "role_group",
    "select_hosts",
    "site_group",
    "site_type_group",
    "slice_inventory",
    "tree_group",
    "validate_environment",
    "validate_register",
    "write_inventory",
    "write_register",
    "write_slice",
]
