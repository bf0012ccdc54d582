"""Find, validate and pick the standards of a workspace (what the CLI and services call)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.model.inventory.problems import Problem, ProblemsError
from provision.model.standards.model import Standard
from provision.standards.files import find_standards, load_standard
from provision.standards.roles import check_roles


@dataclass(frozen=True)
class Validation:
    """The outcome of validating one standard file."""

    path: Path
    standard: Standard | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.standard is not None and not any(p.severity == "error" for p in self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "id": self.standard.id if self.standard else None,
            "version": self.standard.version if self.standard else None,
            "controls": len(self.standard.controls) if self.standard else None,
            "problems": [p.as_dict() for p in self.problems],
        }


def validate_standard(path: Path, roles_dir: Path | None = None) -> Validation:
    """Load one standard and, given the roles folder, check the roles agree with it.

    Bad input in the file comes back as problems, not as an exception, so that
    several files can be reported in one run.
    """
    try:
        standard = load_standard(path)
    except ProblemsError as exc:
        return Validation(path, None, list(exc.problems))
    except InputError as exc:
        return Validation(path, None, [Problem(str(path), exc.line, exc.message, exc.hint)])
    problems = check_roles(standard, roles_dir) if roles_dir and roles_dir.is_dir() else []
    return Validation(path, standard, problems)


def standard_paths(folder: Path, files: tuple[Path, ...] = ()) -> list[Path]:
    """The files named, or every standard in `folder`; an error when there is none."""
    if files:
        return list(files)
    found = find_standards(folder)
    if not found:
        raise InputError(
            f"no standard in {folder}",
            hint="standards are YAML files in the workspace's standards/ folder",
        )
    return found


def pick_standard(folder: Path, wanted: str | None = None) -> Standard:
    """The standard named by `wanted` (a file or an id), or the only one in `folder`."""
    if wanted and Path(wanted).is_file():
        return load_standard(Path(wanted))
    paths = standard_paths(folder)
    if wanted is None:
        if len(paths) > 1:
            raise InputError(
                f"{folder} holds {len(paths)} standards; say which one",
                hint="--standard ID or --standard FILE (" + ", ".join(p.name for p in paths) + ")",
            )
        return load_standard(paths[0])
    for path in paths:
        standard = load_standard(path)
        if standard.id == wanted:
            return standard
    raise InputError(
        f"no standard with id or file '{wanted}' in {folder}",
        hint="see them with: provision standards validate",
    )
