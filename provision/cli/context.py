"""What the top-level group hands to every subcommand (settings, resolved lazily)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from provision.settings import Settings, load_settings


@dataclass
class AppContext:
    """Flags from the command line; settings are resolved when a command asks."""

    workspace: Path | None
    flags: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        # Resolved on first use, so that `--help` and `--version` work in any folder
        # and a bad provision.yml is reported as a clean error by the boundary.
        if self._settings is None:
            self._settings = load_settings(workspace=self.workspace, flags=self.flags)
        return self._settings

    def use_flag(self, name: str, value: object) -> None:
        """A command's own option for a setting (e.g. --strategy); settings are resolved again."""
        self.flags = {**self.flags, name: value}
        self._settings = None

    def use_env(self, env: str) -> None:
        """Switch to inventories/`env`/ (a command's own --env); settings are resolved again."""
        self.flags = {**self.flags, "env": env}
        self._settings = None


pass_app = click.make_pass_decorator(AppContext)
