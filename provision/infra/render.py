"""Render the Jinja2 templates in templates/ (reports, OS install seeds, systemd units).

The only jinja2 importer on the Python side (Ansible renders its roles' own
templates). Templates come from the project's `templates/` folder, beside the
package; autoescaping is on for HTML and XML so report data cannot inject markup.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from provision.errors import ConfigError

#: templates/ at the top of the project (the package is installed editable from it).
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@cache
def _environment(folder: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=jinja2.select_autoescape(("html", "htm", "xml", "j2.html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, /, folder: Path | None = None, **context: Any) -> str:
    """The text of `template` (a path under templates/) rendered with `context`.

    A missing template or a variable the template needs but was not given is a
    `ConfigError`: it is a defect of the installation, not of the user's input.
    """
    environment = _environment(folder or TEMPLATES)
    try:
        return environment.get_template(template).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(
            f"template {template} not found in {folder or TEMPLATES}",
            hint="reinstall provision from its source tree (make setup)",
        ) from exc
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"template {template}: {exc.message}") from exc
