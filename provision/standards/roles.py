"""Does the Ansible content agree with the standard?

The mechanism that carries parameters to hosts is plain Ansible: each parameter
is a variable of its enforcing role, and the role's `defaults/main.yml` holds the
standard's default. This module checks that the two agree (every parameter is a
role default with the same value, every enforcing role exists and has a task
tagged with the control's id), so that editing one without the other is caught
by `provision standards validate` and by the tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from provision.model.inventory.problems import Problem
from provision.model.standards.model import Standard


def check_roles(standard: Standard, roles_dir: Path) -> list[Problem]:
    """Every disagreement between the standard and the roles in `roles_dir`."""
    problems: list[Problem] = []
    tags_cache: dict[str, set[str]] = {}
    defaults_cache: dict[str, dict[str, Any]] = {}
    for control in standard.controls:
        if control.enforce is None:
            continue
        role = control.enforce.role
        where = standard.path
        role_dir = roles_dir / role
        if not role_dir.is_dir():
            problems.append(
                Problem(
                    where,
                    control.line,
                    f"{control.id} is enforced by role '{role}', which {roles_dir} does not have",
                )
            )
            continue
        if role not in tags_cache:
            tags_cache[role] = _task_tags(role_dir)
            defaults_cache[role] = _defaults(role_dir)
        if control.enforce.tag not in tags_cache[role]:
            problems.append(
                Problem(
                    where,
                    control.line,
                    f"role '{role}' has no task tagged {control.enforce.tag}",
                    f"tag the tasks that enforce {control.id} with '{control.enforce.tag}'",
                )
            )
        defaults = defaults_cache[role]
        for parameter in control.parameters:
            if parameter.name not in defaults:
                problems.append(
                    Problem(
                        where,
                        parameter.line,
                        f"parameter '{parameter.name}' is not a default of role '{role}'",
                        f"add it to {role_dir / 'defaults' / 'main.yml'}",
                    )
                )
            elif defaults[parameter.name] != parameter.default:
                problems.append(
                    Problem(
                        where,
                        parameter.line,
                        f"parameter '{parameter.name}' defaults to {parameter.default!r} here but "
                        f"to {defaults[parameter.name]!r} in role '{role}'",
                        "change one so that both say the same",
                    )
                )
    return problems


def _defaults(role_dir: Path) -> dict[str, Any]:
    path = role_dir / "defaults" / "main.yml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _task_tags(role_dir: Path) -> set[str]:
    tags: set[str] = set()
    for folder in ("tasks", "handlers"):
        for path in sorted((role_dir / folder).glob("*.yml")):
            tags.update(_tags(yaml.safe_load(path.read_text(encoding="utf-8"))))
    return tags


def _tags(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _tags(item)
    elif isinstance(node, dict):
        value = node.get("tags")
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            yield from (str(v) for v in value)
        for key in ("block", "rescue", "always"):
            yield from _tags(node.get(key))
