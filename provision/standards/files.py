"""Standards as files: find them in `standards/`, read one, parse one from text."""

from __future__ import annotations

from pathlib import Path

from provision.infra.yamlfile import load_located, parse_located
from provision.model.standards.model import Standard
from provision.model.standards.parse import build_standard


def load_standard(path: Path) -> Standard:
    """Read and validate one standard file; raise `ProblemsError` naming each bad line."""
    return build_standard(load_located(path))


def parse_standard(text: str, path: Path) -> Standard:
    """The same from text (for tests and for files read elsewhere)."""
    return build_standard(parse_located(text, path))


def find_standards(folder: Path) -> list[Path]:
    """The standard files in a `standards/` folder (`*.yml`, `*.yaml`; no schemas)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in {".yml", ".yaml"} and p.is_file())
