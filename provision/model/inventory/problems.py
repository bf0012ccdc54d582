"""Problems found in a register or an inventory: where, what, and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provision.errors import InputError


@dataclass(frozen=True)
class Problem:
    """One thing wrong, with the file and line it was found at."""

    path: str
    line: int | None
    message: str
    hint: str | None = None
    #: "error" makes the input unusable; "warning" is reported and tolerated.
    severity: str = "error"

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        return f"{text}; {self.hint}" if self.hint else text

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity,
        }


class ProblemsError(InputError):
    """Some input has problems; all of them are in `problems`, nothing was written."""

    def __init__(self, path: Path | str, problems: list[Problem], what: str = "") -> None:
        errors = [p for p in problems if p.severity == "error"]
        first = errors[0] if errors else problems[0]
        if len(errors) == 1:
            message, hint, line = first.message, first.hint, first.line
        else:
            at = f" on line {first.line}" if first.line is not None else ""
            message = f"{len(errors)} problems{what}, the first{at}: {first.message}"
            hint, line = "fix every line listed and run again; nothing was written", None
        super().__init__(message, hint=hint, path=path, line=line)
        self.problems = problems
