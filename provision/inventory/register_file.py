"""Read the site register file; the rules for its rows are the domain's."""

from __future__ import annotations

from pathlib import Path

from provision.model.inventory.problems import Problem, ProblemsError
from provision.model.inventory.register import Record, parse_register_bytes


def read_register(path: Path) -> list[Record]:
    """Read and check a register file (UTF-8 CSV with a header row)."""
    label = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProblemsError(label, [Problem(label, None, "does not exist")]) from None
    except IsADirectoryError:
        raise ProblemsError(label, [Problem(label, None, "is a folder, not a CSV file")]) from None
    except OSError as exc:
        problem = Problem(label, None, f"cannot be read: {exc.strerror}")
        raise ProblemsError(label, [problem]) from None
    return parse_register_bytes(data, label)
