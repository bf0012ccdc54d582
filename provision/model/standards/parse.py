"""Turn a standard's YAML into the model, or name every problem with its line.

Every problem in a file is collected (a person fixes them in one go), each with
`file:line`; if there is any, nothing is returned: a standard is used whole or
not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from provision.model.inventory.problems import Problem, ProblemsError
from provision.model.located import Located, PathKey
from provision.model.standards.checks import CHECK_TYPES, KIND_ACCEPTS, Field
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

#: The version of the file format this code reads (`format:` at the top).
FORMAT = 1

CONTROL_ID = re.compile(r"^[A-Z][A-Z0-9]*-\d{3}$")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
OS_RELEASE = re.compile(r"^[a-z]+-\d+(\.\d+)?$")
#: `${name}` inside a check field: a parameter's resolved value goes there.
REFERENCE = re.compile(r"\$\{([a-z][a-z0-9_]*)\}")
MODE = re.compile(r"^0[0-7]{3,4}$")

TOP_KEYS = {"format", "id", "version", "title", "roles", "os_releases", "controls"}
CONTROL_KEYS = {
    "id",
    "title",
    "rationale",
    "severity",
    "applies_to",
    "parameters",
    "check",
    "enforce",
    "references",
}
PARAMETER_KEYS = {"type", "default", "description", "choices"}


def build_standard(located: Located) -> Standard:
    """Validate one parsed standard file; raise `ProblemsError` naming each bad line."""
    return _Parser(located).standard()


def references_in(value: Any) -> Iterator[str]:
    """Names of the parameters a check value refers to."""
    if isinstance(value, str):
        yield from REFERENCE.findall(value)
    elif isinstance(value, list):
        for item in value:
            yield from references_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from references_in(item)


def type_ok(kind: str, value: Any) -> bool:
    """Does `value` fit a parameter type or a field kind?"""
    if kind in {"str", "mode"}:
        return isinstance(value, str) and (kind == "str" or bool(MODE.match(value)))
    if kind in {"int", "port"}:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return ok and (kind == "int" or 1 <= value <= 65535)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "scalar":
        return type_ok("str", value) or type_ok("int", value)
    if kind == "list[str]":
        return isinstance(value, list) and all(type_ok("str", v) for v in value)
    if kind == "list[int]":
        return isinstance(value, list) and all(type_ok("int", v) for v in value)
    if kind == "map":
        return isinstance(value, dict) and all(
            isinstance(k, str) and (type_ok("scalar", v)) for k, v in value.items()
        )
    return False


class _Parser:
    def __init__(self, located: Located) -> None:
        self.src = located
        self.problems: list[Problem] = []
        #: Parameters declared with a mistake (already reported): references to
        #: them are not reported again as undeclared.
        self.broken_parameters: set[str] = set()

    def problem(self, at: PathKey, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(str(self.src.path), self.src.line(at), message, hint))

    # -- helpers for typed fields ------------------------------------------------

    def text(self, body: Mapping[str, Any], at: PathKey, key: str, required: bool = True) -> str:
        value = body.get(key)
        if value is None:
            if required:
                self.problem(at, f"'{key}' is missing", f"add '{key}:'")
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            self.problem((*at, key), f"'{key}' must be text")
            return ""
        return str(value)

    def names(
        self, body: Mapping[str, Any], at: PathKey, key: str, pattern: re.Pattern[str]
    ) -> tuple[str, ...]:
        value = body.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem((*at, key), f"'{key}' must be a list of names")
            return ()
        for i, item in enumerate(value):
            if not pattern.match(item):
                self.problem((*at, key, i), f"'{item}' in '{key}' is not a valid name")
        return tuple(value)

    def unknown_keys(self, body: Mapping[str, Any], at: PathKey, allowed: set[str]) -> None:
        for key in body:
            if key not in allowed:
                self.problem(
                    (*at, key),
                    f"unknown key '{key}'",
                    "expected one of: " + ", ".join(sorted(allowed)),
                )

    # -- the document --------------------------------------------------------------

    def standard(self) -> Standard:
        data = self.src.data
        for key_path, line, first in self.src.duplicates:
            self.problems.append(
                Problem(
                    str(self.src.path),
                    line,
                    f"'{key_path[-1]}' appears twice in one mapping (first on line {first})",
                    "YAML keeps only the last; merge the two",
                )
            )
        if not isinstance(data, dict):
            self.problem((), "a standard must be a mapping with id, version and controls")
            raise ProblemsError(self.src.path, self.problems)
        self.unknown_keys(data, (), TOP_KEYS)
        if data.get("format") != FORMAT:
            self.problem(
                ("format",),
                f"'format' must be {FORMAT} (the standard file format this provision reads)",
            )
        standard_id = self.text(data, (), "id")
        if standard_id and not NAME.match(standard_id.replace("-", "_")):
            self.problem(("id",), f"standard id '{standard_id}' must be lower-case, digits, -")
        version = self.text(data, (), "version")
        title = self.text(data, (), "title")
        roles = self.names(data, (), "roles", NAME)
        os_releases = self.names(data, (), "os_releases", OS_RELEASE)
        if not roles:
            self.problem(("roles",), "'roles' must list the host roles the standard covers")
        if not os_releases:
            self.problem(("os_releases",), "'os_releases' must list the OS releases it covers")

        raw_controls = data.get("controls")
        controls: list[Control] = []
        indexed: list[tuple[int, Control]] = []
        if not isinstance(raw_controls, list) or not raw_controls:
            self.problem(("controls",), "'controls' must be a list of controls")
            raw_controls = []
        seen: dict[str, int | None] = {}
        owners: dict[str, str] = {}
        for index, body in enumerate(raw_controls):
            control = self.control(body, ("controls", index), roles, os_releases)
            if control is None:
                continue
            if control.id in seen:
                self.problem(
                    ("controls", index, "id"),
                    f"duplicate control id '{control.id}' (first on line {seen[control.id]})",
                    "control ids are stable and unique; give this control a new one",
                )
            seen.setdefault(control.id, control.line)
            for parameter in control.parameters:
                if parameter.name in owners:
                    self.problems.append(
                        Problem(
                            str(self.src.path),
                            parameter.line,
                            f"parameter '{parameter.name}' is already declared by "
                            f"{owners[parameter.name]}",
                            "declare it once and refer to it as ${name} from other controls",
                        )
                    )
                owners.setdefault(parameter.name, control.id)
            controls.append(control)
            indexed.append((index, control))
        self.check_references(indexed, raw_controls)
        if self.problems:
            raise ProblemsError(self.src.path, self.problems, " in the standard")
        return Standard(
            id=standard_id,
            version=version,
            title=title,
            roles=roles,
            os_releases=os_releases,
            controls=tuple(controls),
            path=str(self.src.path),
            digest=self.src.digest,
        )

    # -- one control ---------------------------------------------------------------

    def control(
        self, body: Any, at: PathKey, roles: tuple[str, ...], os_releases: tuple[str, ...]
    ) -> Control | None:
        if not isinstance(body, dict):
            self.problem(at, "a control must be a mapping (id, title, severity, check…)")
            return None
        self.unknown_keys(body, at, CONTROL_KEYS)
        control_id = self.text(body, at, "id")
        if control_id and not CONTROL_ID.match(control_id):
            self.problem(
                (*at, "id"),
                f"control id '{control_id}' must look like SSH-001",
                "an upper-case area, a dash and three digits",
            )
        severity = self.text(body, at, "severity")
        if severity and severity not in SEVERITIES:
            self.problem(
                (*at, "severity"),
                f"severity '{severity}' is not one of {', '.join(SEVERITIES)}",
            )
        applies = self.applies_to(body.get("applies_to"), (*at, "applies_to"), roles, os_releases)
        parameters = self.parameters(body.get("parameters"), (*at, "parameters"))
        checks = self.checks(body.get("check"), (*at, "check"))
        enforce = self.enforce(body, at, control_id)
        references = body.get("references") or []
        if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
            self.problem((*at, "references"), "'references' must be a list of texts")
            references = []
        uses = sorted({name for c in checks for name in references_in(dict(c.fields))})
        return Control(
            id=control_id,
            title=self.text(body, at, "title"),
            rationale=self.text(body, at, "rationale"),
            severity=severity,
            applies_to=applies,
            parameters=parameters,
            checks=checks,
            enforce=enforce,
            references=tuple(references),
            line=self.src.line(at),
            uses=tuple(uses),
        )

    def applies_to(
        self, body: Any, at: PathKey, roles: tuple[str, ...], os_releases: tuple[str, ...]
    ) -> AppliesTo:
        if body is None:
            return AppliesTo()
        if not isinstance(body, dict):
            self.problem(at, "'applies_to' must be a mapping with roles and/or os")
            return AppliesTo()
        self.unknown_keys(body, at, {"roles", "os"})
        wanted_roles = self.names(body, at, "roles", NAME)
        wanted_os = self.names(body, at, "os", OS_RELEASE)
        for i, role in enumerate(wanted_roles):
            if roles and role not in roles:
                self.problem(
                    (*at, "roles", i),
                    f"role '{role}' is not one of the standard's roles ({', '.join(roles)})",
                )
        for i, release in enumerate(wanted_os):
            if os_releases and release not in os_releases:
                self.problem(
                    (*at, "os", i),
                    f"OS release '{release}' is not one of the standard's "
                    f"({', '.join(os_releases)})",
                )
        return AppliesTo(wanted_roles, wanted_os)

    def parameters(self, body: Any, at: PathKey) -> tuple[Parameter, ...]:
        if body is None:
            return ()
        if not isinstance(body, dict):
            self.problem(at, "'parameters' must map each parameter name to its type and default")
            return ()
        found: list[Parameter] = []
        for name, spec in body.items():
            here = (*at, name)
            if not isinstance(name, str) or not NAME.match(name):
                self.problem(here, f"parameter name '{name}' must be a lower-case identifier")
                continue
            if not isinstance(spec, dict):
                self.problem(here, f"parameter '{name}' must be a mapping with type and default")
                continue
            self.unknown_keys(spec, here, PARAMETER_KEYS)
            self.broken_parameters.add(name)  # until it is found whole, below
            kind = spec.get("type")
            if kind not in PARAMETER_TYPES:
                self.problem(
                    (*here, "type"),
                    f"parameter '{name}' has type '{kind}'; expected one of "
                    + ", ".join(PARAMETER_TYPES),
                )
                continue
            if "default" not in spec:
                self.problem(here, f"parameter '{name}' has no default", "add 'default:'")
                continue
            default = spec["default"]
            if not type_ok(kind, default):
                self.problem(
                    (*here, "default"),
                    f"parameter '{name}' is {kind} but its default {default!r} is not",
                )
                continue
            choices = spec.get("choices") or []
            if not isinstance(choices, list):
                self.problem((*here, "choices"), f"'choices' of '{name}' must be a list")
                choices = []
            for i, choice in enumerate(choices):
                if not type_ok(kind, choice):
                    self.problem((*here, "choices", i), f"choice {choice!r} is not {kind}")
            if choices and default not in choices:
                self.problem((*here, "default"), f"default {default!r} is not one of the choices")
            self.broken_parameters.discard(name)
            found.append(
                Parameter(
                    name=name,
                    type=kind,
                    default=default,
                    description=str(spec.get("description") or ""),
                    choices=tuple(choices),
                    line=self.src.line(here),
                )
            )
        return tuple(found)

    def checks(self, body: Any, at: PathKey) -> tuple[Check, ...]:
        if body is None:
            self.problem(at, "control has no 'check'", "say how compliance verifies it")
            return ()
        items = body if isinstance(body, list) else [body]
        found: list[Check] = []
        for i, item in enumerate(items):
            here = (*at, i) if isinstance(body, list) else at
            check = self.check(item, here)
            if check is not None:
                found.append(check)
        if isinstance(body, list) and not body:
            self.problem(at, "'check' is an empty list")
        return tuple(found)

    def check(self, body: Any, at: PathKey) -> Check | None:
        if not isinstance(body, dict) or "type" not in body:
            self.problem(at, "a check must be a mapping with a 'type'")
            return None
        kind = body["type"]
        spec = CHECK_TYPES.get(kind) if isinstance(kind, str) else None
        if spec is None:
            self.problem(
                (*at, "type"),
                f"unknown check type '{kind}'",
                "expected one of: " + ", ".join(sorted(CHECK_TYPES)),
            )
            return None
        fields = {k: v for k, v in body.items() if k != "type"}
        self.unknown_keys(fields, at, set(spec.fields))
        for name, wanted in spec.fields.items():
            if wanted.required and name not in fields:
                self.problem(at, f"check '{kind}' needs '{name}'")
        for group in spec.one_of:
            if not any(g in fields for g in group):
                self.problem(at, f"check '{kind}' needs one of: {', '.join(group)}")
        for group in spec.exclusive:
            given = [g for g in group if g in fields]
            if len(given) > 1:
                self.problem(at, f"check '{kind}' takes only one of: {', '.join(given)}")
        for name, value in fields.items():
            declared = spec.fields.get(name)
            if declared is not None:
                self.field_value(kind, name, declared, value, (*at, name))
        return Check(kind, fields, self.src.line(at))

    def field_value(self, kind: str, name: str, field: Field, value: Any, at: PathKey) -> None:
        # A whole-value reference is typed when references are checked; a string
        # with references inside is checked as a string.
        if isinstance(value, str) and REFERENCE.fullmatch(value):
            return
        if not type_ok(field.kind, value):
            self.problem(at, f"'{name}' of check '{kind}' must be {field.kind}, not {value!r}")
        elif field.choices and value not in field.choices:
            allowed = ", ".join(field.choices)
            self.problem(at, f"'{name}' of check '{kind}' must be one of {allowed}")

    def enforce(self, body: Mapping[str, Any], at: PathKey, control_id: str) -> Enforcement | None:
        raw = body.get("enforce")
        if raw is None:
            return None
        here = (*at, "enforce")
        if not isinstance(raw, dict):
            self.problem(here, "'enforce' must be a mapping with role (and tag)")
            return None
        self.unknown_keys(raw, here, {"role", "tag"})
        role = self.text(raw, here, "role")
        if role and not NAME.match(role):
            self.problem((*here, "role"), f"role '{role}' is not a valid role name")
        tag = self.text(raw, here, "tag", required=False) or control_id
        return Enforcement(role, tag)

    # -- across controls ------------------------------------------------------------

    def check_references(self, indexed: list[tuple[int, Control]], raw: list[Any]) -> None:
        declared = {p.name: p for _, c in indexed for p in c.parameters}
        for index, control in indexed:
            raw_checks = raw[index].get("check")
            for ci, check in enumerate(control.checks):
                at: PathKey = ("controls", index, "check")
                if isinstance(raw_checks, list):
                    at = (*at, ci)
                spec = CHECK_TYPES[check.type]
                for name, value in check.fields.items():
                    for ref in references_in(value):
                        if ref in self.broken_parameters:
                            continue
                        if ref not in declared:
                            self.problem(
                                (*at, name),
                                f"'{name}' refers to parameter '{ref}', which no control declares",
                            )
                            continue
                        whole = isinstance(value, str) and REFERENCE.fullmatch(value)
                        field = spec.fields.get(name)
                        accepted = KIND_ACCEPTS.get(field.kind, ()) if field else ()
                        if whole and field and declared[ref].type not in accepted:
                            self.problem(
                                (*at, name),
                                f"'{name}' of check '{check.type}' must be {field.kind}, but "
                                f"parameter '{ref}' is {declared[ref].type}",
                            )
