"""Build one signed bundle per role and site of the selected hosts.

A bundle carries what its hosts need to apply their standard by themselves:
the playbook of their role and the roles it uses, the evidence playbook and
module, the standard, the hosts' inventory slice with their variables resolved
(vaulted values left out: a bundle is copied to PCs that students use, so it
carries no secret, plain or encrypted), each host's evidence request, and a
signed manifest. See docs/pull.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from provision.bundles import signing
from provision.bundles.archive import pack
from provision.bundles.manifest import CONTENT, MANIFEST, SIGNATURE, Manifest
from provision.compliance.service import plan_host
from provision.errors import InputError
from provision.infra.atomic import write_atomic
from provision.inventory import slice_inventory
from provision.inventory.targets import select_targets
from provision.model.places import normalise
from provision.rollout.revision import git_revision
from provision.settings import Settings
from provision.standards.service import pick_standard

#: A bundle a PC has not replaced within this long is refused: a stolen or
#: forgotten copy stops being policy.
DEFAULT_VALID_DAYS = 30
#: Playbooks that are not a role's own: evidence, site.yml, and those that set up pull mode.
_NOT_ROLE_PLAYBOOKS = {"compliance.yml", "site.yml", "pull_agents.yml", "bundle_servers.yml"}
#: What the PC's local ansible-playbook reads (no SSH settings: it runs -c local).
ANSIBLE_CFG = b"""\
# Written by provision bundle build: settings for a local apply on the host.
[defaults]
roles_path = playbooks/roles
interpreter_python = auto_silent
retry_files_enabled = False
"""


@dataclass(frozen=True)
class BuiltBundle:
    """One bundle written: where, for which hosts, how big."""

    path: Path
    manifest: Manifest
    size: int


@dataclass(frozen=True)
class BuildResult:
    serial: int
    out_dir: Path
    bundles: tuple[BuiltBundle, ...]


def serial_path(settings: Settings) -> Path:
    return settings.state_path / "bundles" / "serial"


def last_serial(settings: Settings) -> int:
    path = serial_path(settings)
    try:
        return int(path.read_text().strip())
    except FileNotFoundError:
        return 0
    except ValueError:
        raise InputError(
            "does not hold a bundle serial number", hint="write the last serial in it", path=path
        ) from None


# -- what a role's hosts need ------------------------------------------------------------


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot be read: {exc}", path=path) from None


def _plays(path: Path) -> list[dict[str, Any]]:
    data = _load_yaml(path)
    return [p for p in data if isinstance(p, dict)] if isinstance(data, list) else []


def playbook_for(playbooks: Path, role: str) -> Path:
    """The playbook whose plays target `role_<role>` (lab_pcs.yml for lab_pc)."""
    group = f"role_{role}"
    for path in sorted(playbooks.glob("*.yml")):
        if path.name in _NOT_ROLE_PLAYBOOKS:
            continue
        for play in _plays(path):
            hosts = str(play.get("hosts", ""))
            if group in {t.strip() for t in hosts.replace(",", ":").split(":")}:
                return path
    raise InputError(
        f"no playbook in {playbooks} targets the group {group}",
        hint=f"add one whose play has hosts: {group}, or leave role {role} out of the selection",
    )


def _role_names(entries: Any) -> Iterator[str]:
    for entry in entries or []:
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            name = entry.get("role") or entry.get("name")
            if name:
                yield str(name)


def roles_of(playbook: Path, roles_dir: Path) -> list[str]:
    """Every role `playbook` uses, with the roles those depend on (meta/main.yml)."""
    wanted = [n for play in _plays(playbook) for n in _role_names(play.get("roles"))]
    found: list[str] = []
    while wanted:
        name = wanted.pop(0)
        if name in found:
            continue
        if not (roles_dir / name).is_dir():
            raise InputError(f"uses role {name!r}, which {roles_dir} does not have", path=playbook)
        found.append(name)
        meta = roles_dir / name / "meta" / "main.yml"
        if meta.is_file():
            data = _load_yaml(meta)
            if isinstance(data, dict):
                wanted.extend(_role_names(data.get("dependencies")))
    return sorted(found)


def _tree(folder: Path, prefix: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        files[prefix + path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


# -- the inventory slice without secrets -------------------------------------------------


def _is_vaulted(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"__ansible_vault"}


def without_vaulted(values: Any, where: str, withheld: list[str]) -> Any:
    """`values` with every vaulted value taken out; `withheld` gets where each was."""
    if isinstance(values, Mapping):
        kept = {}
        for key, item in values.items():
            if _is_vaulted(item):
                withheld.append(f"{where}.{key}")
                continue
            kept[key] = without_vaulted(item, f"{where}.{key}", withheld)
        return kept
    if isinstance(values, list):
        kept_list = []
        for index, item in enumerate(values):
            if _is_vaulted(item):
                withheld.append(f"{where}[{index}]")
                continue
            kept_list.append(without_vaulted(item, f"{where}[{index}]", withheld))
        return kept_list
    return values


#: How the control node reaches a host: meaningless on the host itself, which
#: applies its bundle with `-c local`.
_REMOTE_ONLY = ("ansible_host", "ansible_port", "ansible_user", "ansible_ssh_", "ansible_sftp_")


def local_vars(values: Mapping[str, Any]) -> dict[str, Any]:
    """A host's variables for a local apply: connection settings replaced by local."""
    kept = {k: v for k, v in values.items() if not k.startswith(_REMOTE_ONLY)}
    kept["ansible_connection"] = "local"
    return kept


def _canonical(data: Any) -> bytes:
    return (json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode()


# -- building ----------------------------------------------------------------------------


def bundle_name(role: str, site: str) -> str:
    return f"{role}.{normalise(site) or 'no_site'}"


def _groups(hostvars: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], list[str]]:
    groups: dict[tuple[str, str], list[str]] = {}
    for host, values in hostvars.items():
        role = values.get("provision_role")
        if not role:
            raise InputError(
                f"host {host} has no provision_role, so no bundle can be made for it",
                hint="give it a role in the register, or leave it out of the selection",
            )
        site = str(values.get("provision_site_code") or "")
        groups.setdefault((str(role), site), []).append(host)
    return groups


def build_bundles(
    settings: Settings,
    selection: str = "",
    *,
    out_dir: Path | None = None,
    valid_days: int = DEFAULT_VALID_DAYS,
    serial: int | None = None,
    now: datetime | None = None,
    progress: Callable[[BuiltBundle], None] | None = None,
) -> BuildResult:
    """Write one signed bundle per role and site of the selected hosts.

    The serial is the last one built plus one unless given (the same serial and
    time give byte-identical bundles). Bad input (unknown selection, a missing
    key, a role without a playbook) is refused before anything is written.
    """
    if valid_days < 1:
        raise InputError("--valid-days must be at least 1", hint="give the validity in days")
    key = signing.key_info(settings)
    loaded, hosts = select_targets(settings.inventory_path, selection or None)
    standard = pick_standard(settings.standards_path, None)
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    number = serial if serial is not None else last_serial(settings) + 1
    if number < 1:
        raise InputError("--serial must be at least 1", hint="serials count up from 1")
    revision = git_revision(settings.workspace, settings.state_path)
    hostvars = slice_inventory(loaded.inventory, hosts, loaded.folder)["all"]["hosts"]
    memberships = loaded.inventory.memberships(hosts)
    playbooks = settings.playbooks_path
    shared = {
        CONTENT + "ansible.cfg": ANSIBLE_CFG,
        CONTENT + "playbooks/compliance.yml": (playbooks / "compliance.yml").read_bytes(),
        **_tree(playbooks / "library", CONTENT + "playbooks/library/"),
        CONTENT + "standard/" + Path(standard.path).name: Path(standard.path).read_bytes(),
    }
    planned = []
    for (role, site), members in sorted(_groups(hostvars).items()):
        playbook = playbook_for(playbooks, role)
        roles = roles_of(playbook, playbooks / "roles")
        planned.append((role, site, sorted(members), playbook, roles))
    target = out_dir or settings.state_path / "bundles" / f"{number:06d}"
    built: list[BuiltBundle] = []
    for role, site, members, playbook, roles in planned:
        files = dict(shared)
        files[CONTENT + "playbooks/" + playbook.name] = playbook.read_bytes()
        for name in roles:
            files.update(_tree(playbooks / "roles" / name, f"{CONTENT}playbooks/roles/{name}/"))
        withheld: list[str] = []
        requests: dict[str, Any] = {}
        inventory_hosts: dict[str, Any] = {}
        children: dict[str, dict[str, Any]] = {}
        for host in members:
            values = local_vars(without_vaulted(hostvars[host], host, withheld))
            plan = plan_host(standard, host, values, memberships.get(host, set()))
            requests[plan.request_key] = plan.request
            inventory_hosts[host] = {**values, "provision_evidence_key": plan.request_key}
            for group in sorted(memberships.get(host, set())):
                children.setdefault(group, {"hosts": {}})["hosts"][host] = None
        inventory = {"all": {"hosts": inventory_hosts, "children": children}}
        files[CONTENT + "inventory.json"] = _canonical(inventory)
        files[CONTENT + "evidence.json"] = _canonical({"provision_evidence_requests": requests})
        name = bundle_name(role, site)
        manifest = Manifest(
            name=name,
            role=role,
            site=site,
            serial=number,
            built_at=moment,
            not_after=moment + timedelta(days=valid_days),
            selection=selection,
            hosts=tuple(members),
            playbook="playbooks/" + playbook.name,
            standard_id=standard.id,
            standard_version=standard.version,
            revision=revision,
            files={n: hashlib.sha256(d).hexdigest() for n, d in files.items()},
            withheld=tuple(withheld),
        )
        raw = manifest.to_bytes()
        files[MANIFEST] = raw
        files[SIGNATURE] = signing.sign(key.key_path, raw)
        data = pack(files, int(moment.timestamp()))
        path = target / f"{name}.{number:06d}.tar.gz"
        target.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        done = BuiltBundle(path, manifest, len(data))
        built.append(done)
        if progress is not None:
            progress(done)
    if number > last_serial(settings):
        serial_path(settings).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(serial_path(settings), f"{number}\n")
    return BuildResult(number, target, tuple(built))
