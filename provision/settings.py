"""Settings, resolved in one precedence order, written down once.

    built-in defaults  <  workspace file (provision.yml)  <  PROVISION_* environment  <  flags

The workspace is the folder holding `provision.yml` (found by walking up from the
current directory), or the current directory when there is none. Every setting has
the same name in all four places: `forks` in provision.yml, `PROVISION_FORKS` in the
environment, `--forks` on the command line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from provision.errors import ConfigError
from provision.infra.yamlfile import syntax_error
from provision.model.words import with_article

WORKSPACE_FILE = "provision.yml"
ENV_PREFIX = "PROVISION_"


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about where it works and how."""

    workspace: Path
    #: Inventory environment: `inventories/<env>/`.
    env: str = "lab"
    #: Where runs, the state database and private data dirs live (relative to workspace).
    state_dir: Path = Path(".provision")
    #: Database URL; empty means SQLite at `<state_dir>/state.db`.
    db_url: str = ""
    #: How many hosts Ansible works on at once.
    forks: int = 20
    #: Ansible's strategy for rollouts: "fast" (mitogen, where the installed versions
    #: allow; else plain with a warning) or "plain" (Ansible's linear). docs/speed.md.
    strategy: str = "fast"
    #: The lab's private subnet (a /24); the control node takes .1, hosts from .10.
    lab_subnet: str = "10.213.7.0/24"
    #: Where the lab caches its Debian root filesystem, outside any repository.
    lab_cache: Path = Path("/var/cache/provision/lab")
    #: Show tracebacks for unexpected errors.
    debug: bool = False
    #: The control node's automation key (private; `.pub` beside it), relative to the
    #: workspace; empty means `<state_dir>/keys/automation_ed25519`. See docs/bootstrap.md.
    ssh_key: str = ""
    #: The account `provision bootstrap` creates on hosts; Ansible logs in as it afterwards.
    automation_user: str = "provision"
    #: The vault password: a file holding it, or an executable client script printing it
    #: (relative to the workspace); empty means ask. See docs/secrets.md.
    vault_password_file: str = ""
    #: Where `provision schedule` writes its systemd units. See docs/schedule.md.
    schedule_unit_dir: Path = Path("/etc/systemd/system")
    #: Compliance notifications: an HTTP(S) URL that receives a JSON POST; empty: none.
    notify_webhook: str = ""
    #: Compliance notifications by email: recipients, comma-separated; empty: none.
    notify_email_to: str = ""
    #: The sender of notification mail; empty means `provision@<this host's name>`.
    notify_email_from: str = ""
    #: Seconds a webhook or mail server has to answer before the notice is given up.
    notify_timeout: int = 10
    #: The mail server notifications go through.
    smtp_host: str = ""
    smtp_port: int = 587
    #: Upgrade the SMTP connection with STARTTLS (port 465 always uses TLS).
    smtp_starttls: bool = True
    #: Log in to the mail server as this user; empty: no login.
    smtp_user: str = ""
    #: The SMTP password: a file holding it (plain, or ansible-vault encrypted and
    #: opened with the vault password), or a client script printing it.
    smtp_password_file: str = ""

    @property
    def state_path(self) -> Path:
        return self.state_dir if self.state_dir.is_absolute() else self.workspace / self.state_dir

    # -- the workspace's own layout: each path spelled out here only ----------------

    @property
    def inventories_path(self) -> Path:
        """`inventories/`: one folder per environment."""
        return self.workspace / "inventories"

    @property
    def inventory_path(self) -> Path:
        """`inventories/<env>/`: this environment's inventory."""
        return self.inventories_path / self.env

    @property
    def playbooks_path(self) -> Path:
        return self.workspace / "playbooks"

    @property
    def standards_path(self) -> Path:
        """`standards/`: the standards a rollout or an audit can pick."""
        return self.workspace / "standards"

    @property
    def waivers_path(self) -> Path:
        """`waivers.yml` at the workspace's root."""
        return self.workspace / "waivers.yml"

    @property
    def portal_register_path(self) -> Path:
        """`portals/<env>.yml`: this environment's portal register."""
        return self.workspace / "portals" / f"{self.env}.yml"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.state_path / 'state.db'}"


_SETTABLE = {f.name: f for f in fields(Settings) if f.name != "workspace"}


def find_workspace(start: Path) -> Path:
    """The nearest folder at or above `start` holding provision.yml, else `start`."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / WORKSPACE_FILE).is_file():
            return folder
    return start


def _coerce(name: str, value: Any, source: str) -> Any:
    """Turn a raw value from a file or the environment into the setting's type."""
    default = getattr(Settings, name)
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(value)
        if isinstance(default, int):
            number = int(value)
            if number < 1:
                raise ValueError(value)
            return number
        if isinstance(default, Path):
            return Path(str(value)).expanduser()
        return str(value)
    except (TypeError, ValueError):
        kind = type(default).__name__
        raise ConfigError(
            f"setting '{name}' from {source} has the value {value!r}, which is not a valid {kind}",
            hint=f"give '{name}' {with_article(kind)} value",
        ) from None


def read_workspace_file(workspace: Path) -> dict[str, Any]:
    """Settings from `<workspace>/provision.yml`; unknown keys are an error."""
    path = workspace / WORKSPACE_FILE
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text", hint="save it as UTF-8", path=path) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise syntax_error(exc, path, ConfigError, text) from None
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping of setting: value", path=path)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _SETTABLE:
            raise ConfigError(
                f"unknown setting '{key}'",
                hint="known settings: " + ", ".join(sorted(_SETTABLE)),
                path=path,
            )
        values[key] = _coerce(key, value, str(path))
    return values


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from PROVISION_* variables (PROVISION_WORKSPACE is handled apart)."""
    values: dict[str, Any] = {}
    for name in _SETTABLE:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            values[name] = _coerce(name, environ[key], f"the environment ({key})")
    return values


def load_settings(
    *,
    workspace: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve the settings: defaults < provision.yml < PROVISION_* < flags.

    `flags` holds only the options the user gave on the command line (None means
    "not given", so it does not override anything below it).
    """
    environ = os.environ if environ is None else environ
    if workspace is None and environ.get(ENV_PREFIX + "WORKSPACE"):
        workspace = Path(environ[ENV_PREFIX + "WORKSPACE"])
    if workspace is None:
        workspace = find_workspace(cwd or Path.cwd())
    workspace = workspace.expanduser().resolve()
    if not workspace.is_dir():
        raise ConfigError(
            f"workspace {workspace} is not a folder",
            hint="pass --workspace with an existing folder, or run from inside one",
        )
    settings = Settings(workspace=workspace)
    layers = [
        read_workspace_file(workspace),
        read_environment(environ),
        {k: _coerce(k, v, "the command line") for k, v in (flags or {}).items() if v is not None},
    ]
    for layer in layers:
        settings = replace(settings, **layer)
    _check_env_name(settings.env)
    _check_strategy(settings.strategy)
    return settings


#: The values of the `strategy` setting (as provision.infra.strategy.STRATEGIES;
#: written out here because settings sit below every layer).
STRATEGIES = ("fast", "plain")


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"setting 'strategy' has the value {strategy!r}, which is not a strategy",
            hint="give 'strategy' one of: " + ", ".join(STRATEGIES) + " (docs/speed.md)",
        )


def _check_env_name(env: str) -> None:
    if not env or "/" in env or env.startswith("."):
        raise ConfigError(
            f"'{env}' is not an environment name",
            hint="use the name of a folder under inventories/, e.g. production or lab",
        )
