"""The standard as data: controls, their parameters, checks and enforcement.

Plain frozen dataclasses with no I/O. The compliance service evaluates `Check`s
against evidence collected from hosts; the rollout side enforces a control by
running its role with its tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("low", "medium", "high", "critical")

#: Parameter types and the Python values they accept.
PARAMETER_TYPES = ("str", "int", "bool", "list[str]", "list[int]", "map")


@dataclass(frozen=True)
class Parameter:
    """A value a control is checked and enforced with.

    `name` is also the Ansible variable the enforcing role reads (prefixed with
    the role's name), so a group_vars file overrides it for a group of hosts.
    """

    name: str
    type: str
    default: Any
    description: str = ""
    choices: tuple[Any, ...] = ()
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "description": self.description,
        }
        if self.choices:
            data["choices"] = list(self.choices)
        return data


@dataclass(frozen=True)
class Check:
    """One declarative test over host evidence, e.g. `sshd_setting`.

    `fields` are as written in the standard: values may still hold `${param}`
    references; `resolve_check` substitutes a host's parameter values.
    """

    type: str
    fields: Mapping[str, Any]
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, **dict(self.fields)}


@dataclass(frozen=True)
class Enforcement:
    """The role that brings a host to this control, and the tag that runs only it."""

    role: str
    tag: str


@dataclass(frozen=True)
class AppliesTo:
    """Which hosts a control concerns. An empty tuple means "every one"."""

    roles: tuple[str, ...] = ()
    os: tuple[str, ...] = ()

    def matches(self, role: str | None = None, os_release: str | None = None) -> bool:
        """True if the control applies; an unknown role or OS (None) does not exclude."""
        if role is not None and self.roles and role not in self.roles:
            return False
        return not (os_release is not None and self.os and os_release not in self.os)


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    rationale: str
    severity: str
    applies_to: AppliesTo
    parameters: tuple[Parameter, ...]
    checks: tuple[Check, ...]
    #: None for controls no role can enforce (hardware): they are checked only.
    enforce: Enforcement | None
    references: tuple[str, ...] = ()
    line: int | None = None
    #: Names of every parameter the checks refer to (own or another control's).
    uses: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "rationale": self.rationale,
            "severity": self.severity,
            "applies_to": {"roles": list(self.applies_to.roles), "os": list(self.applies_to.os)},
            "parameters": [p.as_dict() for p in self.parameters],
            "checks": [c.as_dict() for c in self.checks],
            "enforce": None
            if self.enforce is None
            else {"role": self.enforce.role, "tag": self.enforce.tag},
            "references": list(self.references),
        }


@dataclass(frozen=True)
class Standard:
    """One version of one published standard."""

    id: str
    version: str
    title: str
    roles: tuple[str, ...]
    os_releases: tuple[str, ...]
    controls: tuple[Control, ...]
    path: str = ""
    #: sha256 of the file: which exact text a compliance result was judged by.
    digest: str = ""

    def control(self, control_id: str) -> Control:
        for control in self.controls:
            if control.id == control_id:
                return control
        raise KeyError(control_id)

    def applicable(self, role: str | None = None, os_release: str | None = None) -> list[Control]:
        """The controls that apply to a host of `role` running `os_release`."""
        return [c for c in self.controls if c.applies_to.matches(role, os_release)]

    @property
    def parameters(self) -> dict[str, Parameter]:
        """Every parameter of the standard by name (names are unique in a standard)."""
        return {p.name: p for c in self.controls for p in c.parameters}

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "roles": list(self.roles),
            "os_releases": list(self.os_releases),
            "digest": self.digest,
            "controls": [c.as_dict() for c in self.controls],
        }
