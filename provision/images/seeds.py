"""Unattended installer answers ("seeds") for a new machine of a role.

    result = write_seed(settings, SeedRequest(role="lab_pc", os="debian-12", out=Path("seed")))

A Debian preseed (`preseed.cfg`) or an Ubuntu autoinstall (`user-data` and
`meta-data`, cloud-init NoCloud), rendered from `templates/seeds/` with values
from the standard: time zone (TIME-001), locale (LAB-001), the automation
account (ACC-001) with the control node's public key, its sudo grant in the
file ACC-002 checks, partitioning for the role, sshd and python3. A machine
installed from a seed is ready for `provision bootstrap` (or a rollout) without
a password ever being typed.

Seeds install from the installation medium alone (no network mirror), so a
technician with a USB stick can install a school's PCs offline.

Every seed is checked before anything is written: the preseed by
`debconf-set-selections --checkonly`, the user-data as YAML and by the shape
the Ubuntu installer and cloud-init expect. No password is written unless a
password *hash* is given, and then the folder is readable by its owner only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provision.access import keys
from provision.errors import ConfigError, InputError, PrerequisiteError
from provision.images.output import check_folder_target, write_folder
from provision.infra.render import render
from provision.model.standards.model import Standard
from provision.settings import Settings
from provision.standards.service import pick_standard

OS_RELEASES = ("debian-12", "ubuntu-24.04")

#: Keyboard of the installed system: Bangladesh's PCs ship with US QWERTY keys;
#: Bangla is typed through an input method on top of it (the `bd` layout).
KEYBOARD_LAYOUT = "us"
#: Locale when the standard names none (LAB-001 applies to PCs only).
DEFAULT_LOCALE = "en_US.UTF-8"
DEFAULT_TIMEZONE = "Asia/Dhaka"


@dataclass(frozen=True)
class Partitioning:
    """How the installer lays out the disk for a role."""

    #: debian-installer partman-auto/method and recipe
    debian_method: str
    debian_recipe: str
    #: Ubuntu autoinstall storage layout name
    ubuntu_layout: str
    description: str


#: PCs get one root filesystem (simple to reimage); servers keep /var (package
#: cache, portals, logs) and /home apart on LVM, so a full cache never fills /.
PARTITIONING: dict[str, Partitioning] = {
    "lab_pc": Partitioning("regular", "atomic", "direct", "one root filesystem and swap"),
    "digital_centre_pc": Partitioning(
        "regular", "atomic", "direct", "one root filesystem and swap"
    ),
    "field_server": Partitioning(
        "lvm", "multi", "lvm", "LVM with /home, /var and /tmp apart from /"
    ),
    "portal_host": Partitioning(
        "lvm", "multi", "lvm", "LVM with /home, /var and /tmp apart from /"
    ),
}

#: What would set a password: a crypt hash, cloud-init's passwd keys.
_ANY_PASSWORD = re.compile(r"\$(y|6|5)\$|\bpasswd:\s*\S|plain_text_passwd")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,40}$")
#: crypt(3) hashes the installers accept: yescrypt, SHA-512, SHA-256.
_HASH = re.compile(r"^\$(y|6|5)\$[./A-Za-z0-9$=,]+$")


@dataclass(frozen=True)
class SeedRequest:
    role: str
    os: str
    out: Path
    site: str | None = None
    force: bool = False
    password_hash_file: Path | None = None
    standard: str | None = None


@dataclass(frozen=True)
class SeedValues:
    """Everything a seed template is rendered with (no secret but a hash, if asked)."""

    role: str
    os: str
    hostname: str
    site: str
    timezone: str
    locale: str
    extra_locales: tuple[str, ...]
    keyboard: str
    user: str
    public_key: str
    sudoers_path: str
    sudoers_rule: str
    password_hash: str | None
    partitioning: Partitioning
    packages: tuple[str, ...]
    standard_id: str
    standard_version: str


@dataclass(frozen=True)
class SeedResult:
    out: Path
    files: tuple[Path, ...]
    values: SeedValues
    key_fingerprint: str


def check_os(os_release: str) -> str:
    if os_release not in OS_RELEASES:
        raise InputError(
            f"unknown OS '{os_release}'",
            hint="seeds exist for " + ", ".join(OS_RELEASES),
        )
    return os_release


def check_role(standard: Standard, role: str) -> str:
    if role not in standard.roles or role not in PARTITIONING:
        known = [r for r in standard.roles if r in PARTITIONING]
        raise InputError(
            f"unknown role '{role}'",
            hint=f"roles of {standard.id}: " + ", ".join(known),
        )
    return role


def read_password_hash(path: Path) -> str:
    """A crypt(3) hash from a file; a plain-text password is refused, never written."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"cannot read the password hash: {exc.strerror}", path=path) from None
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", path=path) from None
    if not _HASH.match(text) or "\n" in text:
        raise InputError(
            "does not hold one crypt(3) password hash ($y$…, $6$… or $5$…)",
            hint="make one with: mkpasswd -m yescrypt > FILE (a plain password is never accepted)",
            path=path,
        )
    return text


def _parameter(standard: Standard, name: str, fallback: Any) -> Any:
    parameter = standard.parameters.get(name)
    return fallback if parameter is None else parameter.default


def seed_values(
    standard: Standard,
    *,
    role: str,
    os_release: str,
    user: str,
    public_key: str,
    site: str | None = None,
    password_hash: str | None = None,
) -> SeedValues:
    """The values of a seed for `role`, from the standard's parameters (pure)."""
    check_role(standard, role)
    check_os(os_release)
    if site is not None and not _SITE.match(site):
        raise InputError(
            f"--site '{site}' is not a site code",
            hint="letters, digits and dashes, e.g. DHK-KAL-NAG-S01",
        )
    if not _USER.match(user):
        raise InputError(
            f"automation_user '{user}' is not a valid account name",
            hint="set automation_user in provision.yml to a lower-case name, e.g. provision",
        )
    locales = [str(x) for x in _parameter(standard, "lab_pc_locales", [])]
    locale = str(_parameter(standard, "lab_pc_default_locale", DEFAULT_LOCALE))
    extra = tuple(
        entry.split()[0] for entry in locales if entry.split() and entry.split()[0] != locale
    )
    stem = role.replace("_", "-")
    hostname = f"{site.lower()}-{stem}" if site else stem
    return SeedValues(
        role=role,
        os=os_release,
        hostname=hostname[:63].strip("-"),
        site=site or "",
        timezone=str(_parameter(standard, "time_sync_timezone", DEFAULT_TIMEZONE)),
        locale=locale,
        extra_locales=extra,
        keyboard=KEYBOARD_LAYOUT,
        user=user,
        public_key=public_key.strip(),
        sudoers_path=f"/etc/sudoers.d/provision-{user}",
        sudoers_rule=f"{user} ALL=(ALL:ALL) NOPASSWD: ALL",
        password_hash=password_hash,
        partitioning=PARTITIONING[role],
        packages=("openssh-server", "python3", "sudo"),
        standard_id=standard.id,
        standard_version=standard.version,
    )


def render_seed(values: SeedValues) -> dict[str, str]:
    """The seed's files (name -> text), rendered but not yet checked."""
    if values.os == "debian-12":
        return {"preseed.cfg": render("seeds/debian-12/preseed.cfg.j2", v=values)}
    return {
        "user-data": render("seeds/ubuntu-24.04/user-data.j2", v=values),
        "meta-data": render("seeds/ubuntu-24.04/meta-data.j2", v=values),
    }


# -- checks ---------------------------------------------------------------------

_DEBCONF_TYPES = {"select", "boolean", "string", "multiselect", "note", "password", "text", "title"}


def check_preseed(text: str) -> None:
    """The preseed as debconf reads it: `debconf-set-selections --checkonly`, then our own
    line check (debconf only warns about an unknown type and still exits 0)."""
    tool = shutil.which("debconf-set-selections") or "/usr/bin/debconf-set-selections"
    if not Path(tool).exists():
        raise PrerequisiteError(
            "debconf-set-selections is not installed (it checks preseeds)",
            hint="apt-get install debconf",
        )
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        proc = subprocess.run(
            [tool, "--checkonly", handle.name], capture_output=True, text=True, check=False
        )
    problem = (proc.stderr or "").strip()
    if proc.returncode != 0 or problem:
        raise ConfigError(
            f"the rendered preseed does not pass debconf-set-selections --checkonly: "
            f"{problem.splitlines()[0] if problem else f'exit {proc.returncode}'}",
            hint="fix templates/seeds/debian-12/preseed.cfg.j2",
        )
    for number, line in enumerate(_joined_lines(text), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(None, 3)
        if len(fields) < 3 or fields[2] not in _DEBCONF_TYPES:
            raise ConfigError(
                f"preseed line {number} is not 'owner question type value': {line[:60]!r}",
                hint="fix templates/seeds/debian-12/preseed.cfg.j2",
            )
        value = fields[3].strip() if len(fields) > 3 else ""
        if fields[2] == "boolean" and value not in {"true", "false"}:
            raise ConfigError(
                f"preseed line {number}: boolean {fields[1]} is {value!r}",
                hint="fix templates/seeds/debian-12/preseed.cfg.j2",
            )


def _joined_lines(text: str) -> list[str]:
    """Lines as debconf reads them: a trailing backslash continues a line."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        lines.append(pending + raw)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def preseed_answers(text: str) -> dict[str, tuple[str, str]]:
    """question -> (type, value) of a preseed (for checks and tests)."""
    answers = {}
    for line in _joined_lines(text):
        fields = line.split(None, 3)
        if len(fields) >= 3 and not fields[0].startswith("#"):
            answers[fields[1]] = (fields[2], fields[3].strip() if len(fields) > 3 else "")
    return answers


def _fail(what: str) -> ConfigError:
    return ConfigError(
        f"the rendered autoinstall user-data is not valid: {what}",
        hint="fix templates/seeds/ubuntu-24.04/user-data.j2",
    )


def _expect(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise _fail(f"{where} lacks '{key}'")
    if not isinstance(data[key], kind):
        raise _fail(f"{where}.{key} is not a {getattr(kind, '__name__', kind)}")
    return data[key]


#: Keys the Ubuntu 24.04 installer knows at the top of `autoinstall:`.
AUTOINSTALL_KEYS = {
    "version",
    "interactive-sections",
    "early-commands",
    "locale",
    "refresh-installer",
    "keyboard",
    "source",
    "network",
    "proxy",
    "apt",
    "storage",
    "identity",
    "active-directory",
    "ubuntu-pro",
    "ssh",
    "codecs",
    "drivers",
    "oem",
    "snaps",
    "debconf-selections",
    "packages",
    "kernel",
    "kernel-crash-dumps",
    "timezone",
    "updates",
    "shutdown",
    "late-commands",
    "error-commands",
    "reporting",
    "user-data",
}


def parse_user_data(text: str) -> dict[str, Any]:
    """Parse and structure-check an autoinstall user-data; return it as data.

    Checks what the installer and cloud-init would refuse or silently ignore:
    the `#cloud-config` header, `autoinstall.version: 1`, known top-level keys,
    identity or user-data (one is required), the account with its key, ssh,
    storage layout, and the first-boot cloud-config (users, write_files).
    """
    if not text.startswith("#cloud-config\n"):
        raise _fail("the first line must be #cloud-config")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(f"YAML: {exc}") from None
    if not isinstance(data, dict):
        raise _fail("it is not a mapping")
    auto = _expect(data, "autoinstall", dict, "user-data")
    if auto.get("version") != 1:
        raise _fail("autoinstall.version must be 1")
    unknown = sorted(set(auto) - AUTOINSTALL_KEYS)
    if unknown:
        raise _fail("unknown autoinstall keys: " + ", ".join(unknown))
    if "identity" not in auto and "user-data" not in auto:
        raise _fail("autoinstall needs identity or user-data")
    _expect(auto, "locale", str, "autoinstall")
    _expect(_expect(auto, "keyboard", dict, "autoinstall"), "layout", str, "autoinstall.keyboard")
    _expect(auto, "timezone", str, "autoinstall")
    ssh = _expect(auto, "ssh", dict, "autoinstall")
    if ssh.get("install-server") is not True:
        raise _fail("autoinstall.ssh.install-server must be true")
    layout = _expect(
        _expect(auto, "storage", dict, "autoinstall"), "layout", dict, "autoinstall.storage"
    )
    if layout.get("name") not in {"direct", "lvm", "zfs"}:
        raise _fail("autoinstall.storage.layout.name must be direct, lvm or zfs")
    packages = _expect(auto, "packages", list, "autoinstall")
    if not all(isinstance(p, str) for p in packages):
        raise _fail("autoinstall.packages must be a list of names")
    for key in ("late-commands", "early-commands"):
        if key in auto and not all(isinstance(c, str | list) for c in auto[key]):
            raise _fail(f"autoinstall.{key} must be a list of commands")
    first_boot = _expect(auto, "user-data", dict, "autoinstall")
    users = _expect(first_boot, "users", list, "autoinstall.user-data")
    for index, user in enumerate(users):
        where = f"autoinstall.user-data.users[{index}]"
        if not isinstance(user, dict):
            raise _fail(f"{where} is not a mapping")
        _expect(user, "name", str, where)
        if "ssh_authorized_keys" in user and not all(
            isinstance(k, str) for k in user["ssh_authorized_keys"]
        ):
            raise _fail(f"{where}.ssh_authorized_keys must be a list of keys")
        if "plain_text_passwd" in user:
            raise _fail(f"{where} has a plain-text password")
    for index, item in enumerate(first_boot.get("write_files", [])):
        where = f"autoinstall.user-data.write_files[{index}]"
        _expect(item, "path", str, where)
        _expect(item, "content", str, where)
        if not re.fullmatch(r"0[0-7]{3}", str(item.get("permissions", "0644"))):
            raise _fail(f"{where}.permissions must be an octal string like '0440'")
    return data


def seed_user(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The account `name` of a parsed user-data (first-boot users)."""
    for user in data["autoinstall"]["user-data"]["users"]:
        if isinstance(user, dict) and user.get("name") == name:
            return dict(user)
    raise KeyError(name)


def check_user_data(text: str, values: SeedValues) -> None:
    """The user-data parses, has the expected shape, and carries the values given."""
    data = parse_user_data(text)
    auto = data["autoinstall"]
    try:
        user = seed_user(data, values.user)
    except KeyError:
        raise _fail(f"the automation account {values.user} is missing") from None
    if values.public_key not in user.get("ssh_authorized_keys", []):
        raise _fail(f"the account {values.user} lacks the control node's key")
    if auto["timezone"] != values.timezone:
        raise _fail(f"timezone is {auto['timezone']!r}, not {values.timezone!r}")


def check_meta_data(text: str) -> None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"the rendered meta-data is not YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("instance-id"), str):
        raise ConfigError(
            "the rendered meta-data lacks an instance-id",
            hint="fix templates/seeds/ubuntu-24.04/meta-data.j2",
        )


def check_seed(files: dict[str, str], values: SeedValues) -> None:
    """Every file of a rendered seed, checked; raises `ConfigError` on the first problem."""
    if values.os == "debian-12":
        check_preseed(files["preseed.cfg"])
        answers = preseed_answers(files["preseed.cfg"])
        if answers.get("time/zone", ("", ""))[1] != values.timezone:
            raise ConfigError("the rendered preseed does not set the standard's time zone")
    else:
        check_user_data(files["user-data"], values)
        check_meta_data(files["meta-data"])
    for name, text in files.items():
        if values.password_hash is None and re.search(_ANY_PASSWORD, text):
            raise ConfigError(f"the rendered {name} sets a password nobody asked for")


# -- the service ----------------------------------------------------------------


def write_seed(settings: Settings, request: SeedRequest) -> SeedResult:
    """Render, check and write one seed folder. Bad input changes nothing."""
    check_os(request.os)
    out = check_folder_target(request.out, force=request.force, what="output folder")
    standard = pick_standard(settings.standards_path, request.standard)
    check_role(standard, request.role)
    password_hash = (
        read_password_hash(request.password_hash_file) if request.password_hash_file else None
    )
    key = keys.load(settings)
    values = seed_values(
        standard,
        role=request.role,
        os_release=request.os,
        user=settings.automation_user,
        public_key=key.public_key,
        site=request.site,
        password_hash=password_hash,
    )
    files = render_seed(values)
    check_seed(files, values)
    # A folder with a password hash is for its owner's eyes only.
    mode = 0o600 if password_hash else 0o644
    write_folder(out, {name: (text, mode) for name, text in files.items()}, force=request.force)
    if password_hash:
        out.chmod(0o700)
    return SeedResult(out, tuple(out / name for name in files), values, key.fingerprint)
