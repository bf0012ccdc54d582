"""The department's standards and waivers as files: load, validate, select, resolve.

The rules live in the domain (`provision.model.standards`, `provision.model.waivers`);
this package reads the files (`files`, `waivers`) and re-exports what callers use.
The public surface:

* `load_standard(path)` -> Standard; raises `ProblemsError` naming every bad line
* `find_standards(folder)` -> the standard files in a `standards/` folder
* `Standard.applicable(role, os_release)` -> the controls that apply to a host
* `resolve_parameters(standard, layers)` and `host_layers(inventory, host)`: a
  host's parameter values, the standard's defaults overridden by inventory vars
* `resolve_check(check, values)`: a check with `${param}` filled in, ready to
  evaluate against evidence (the compliance service's input)
* `check_roles(standard, roles_dir)`: the roles' defaults and tags agree with it
* `CHECK_TYPES`: every check type and its fields
"""

from provision.model.standards.checks import CHECK_TYPES, CheckType, normalise_sshd
from provision.model.standards.model import (
    PARAMETER_TYPES,
    SEVERITIES,
    AppliesTo,
    Check,
    Control,
    Enforcement,
    Parameter,
    Standard,
)
from provision.model.standards.params import (
    ResolvedParameter,
    VarLayer,
    control_parameters,
    resolve_check,
    resolve_control_checks,
    resolve_parameters,
)
from provision.model.standards.parse import FORMAT
from provision.standards.files import find_standards, load_standard, parse_standard
from provision.standards.hostvars import host_layers
from provision.standards.roles import check_roles

__all__ = [
    "CHECK_TYPES",
    "FORMAT",
    "PARAMETER_TYPES",
    "SEVERITIES",
    "AppliesTo",
    "Check",
    "CheckType",
    "Control",
    "Enforcement",
    "Parameter",
    "ResolvedParameter",
    "Standard",
    "VarLayer",
    "check_roles",
    "control_parameters",
    "find_standards",
    "host_layers",
    "load_standard",
    "normalise_sshd",
    "parse_standard",
    "resolve_check",
    "resolve_control_checks",
    "resolve_parameters",
]
