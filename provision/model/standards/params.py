"""A host's parameter values: the standard's defaults, overridden by inventory variables.

A parameter's name is the Ansible variable its role reads, so an override is an
ordinary inventory variable (`group_vars/district_gazipur.yml`:
`ssh_hardening_max_auth_tries: 3`) and Ansible and provision see the same value.
Layers go lowest first, as Ansible merges them: group_vars/all, then each group
by depth (then name), then host_vars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provision.errors import InputError
from provision.model.standards.checks import CHECK_TYPES
from provision.model.standards.model import Check, Control, Parameter, Standard
from provision.model.standards.parse import REFERENCE, type_ok


@dataclass(frozen=True)
class VarLayer:
    """One source of variables, named for error messages (a file, or 'host NAME')."""

    source: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class ResolvedParameter:
    name: str
    value: Any
    #: "default", or the layer that set it (e.g. inventories/lab/group_vars/role_lab_pc.yml).
    source: str


def resolve_parameters(
    standard: Standard, layers: Sequence[VarLayer], names: Sequence[str] | None = None
) -> dict[str, ResolvedParameter]:
    """Each parameter's value for one host (all of them, or just `names`).

    An override of the wrong type, or outside the parameter's choices, is an
    `InputError` naming the file that set it: enforcing a standard with a bad
    value must stop before anything runs.
    """
    declared = standard.parameters
    wanted = declared if names is None else {n: declared[n] for n in names}
    resolved: dict[str, ResolvedParameter] = {}
    for name, parameter in wanted.items():
        value, source = parameter.default, "default"
        for layer in layers:
            if name in layer.values:
                value, source = layer.values[name], layer.source
        if source != "default":
            _check_override(parameter, value, source)
        resolved[name] = ResolvedParameter(name, value, source)
    return resolved


def _check_override(parameter: Parameter, value: Any, source: str) -> None:
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        raise InputError(
            f"{source}: '{parameter.name}' is a Jinja expression; provision checks "
            "compliance with literal values only",
            hint="write the value itself",
        )
    if not type_ok(parameter.type, value):
        raise InputError(
            f"{source}: '{parameter.name}' must be {parameter.type}, not {value!r}",
            hint=f"the standard declares it {parameter.type} (default {parameter.default!r})",
        )
    if parameter.choices and value not in parameter.choices:
        raise InputError(
            f"{source}: '{parameter.name}' is {value!r}, not one of "
            + ", ".join(repr(c) for c in parameter.choices),
        )


def control_parameters(control: Control) -> list[str]:
    """Names of the parameters a control uses: its own and those its checks refer to."""
    names = [p.name for p in control.parameters]
    return names + [n for n in control.uses if n not in names]


def resolve_check(check: Check, values: Mapping[str, Any]) -> Check:
    """The check with `${name}` replaced by values; a whole-value reference keeps its type."""

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            whole = REFERENCE.fullmatch(value)
            if whole:
                return values[whole.group(1)]
            return REFERENCE.sub(lambda m: _text(values[m.group(1)]), value)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    assert check.type in CHECK_TYPES
    return Check(check.type, {k: fill(v) for k, v in check.fields.items()}, check.line)


def _text(value: Any) -> str:
    # Inside a text, a bool is written as apt, sshd and systemd write it.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve_control_checks(control: Control, values: Mapping[str, Any]) -> tuple[Check, ...]:
    """Every check of a control with a host's parameter values filled in."""
    return tuple(resolve_check(c, values) for c in control.checks)
