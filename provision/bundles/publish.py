"""Publish built bundles on the district field servers, as a recorded rollout.

`plan_publish` only reads: it checks every bundle (a bad one is never
published), picks the field servers and plans a rollout of
playbooks/bundle_servers.yml. `prepare_publish`, once the user said yes, lays
out the tree the servers serve (bundles/NAME/FILE and latest.json), the
htpasswd file of the PCs' upload secrets, each server's certificate from the
department CA and the run's variables file; then the rollout runs like any
other and is recorded in the store.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from provision.bundles import signing
from provision.bundles.manifest import Manifest
from provision.bundles.verify import verify_bundle
from provision.errors import InputError, StateError
from provision.infra.atomic import write_atomic
from provision.inventory import slice_inventory
from provision.inventory.targets import load_environment
from provision.model.inventory.select import select_hosts
from provision.portal import ca
from provision.rollout import RolloutOptions, RolloutPlan, plan_rollout
from provision.settings import Settings

PLAYBOOK = "bundle_servers.yml"
#: Inventory variable that puts a PC into pull mode.
PULL_MODE = "provision_pull_mode"


@dataclass(frozen=True)
class PublishPlan:
    plan: RolloutPlan
    source: Path
    bundles: tuple[tuple[Path, Manifest], ...]
    #: Field server -> the DNS name its certificate is for.
    servers: dict[str, str]
    #: PCs in pull mode whose upload secrets the servers take.
    pull_hosts: tuple[str, ...]
    vars_file: Path
    tree: Path


def tokens_dir(settings: Settings) -> Path:
    """Per-PC upload secrets; the pull_agent role's password lookup reads the same files."""
    return settings.state_path / "pull" / "tokens"


def newest_build(settings: Settings) -> Path:
    folder = settings.state_path / "bundles"
    built = sorted(p for p in folder.glob("[0-9]*") if p.is_dir()) if folder.is_dir() else []
    if not built:
        raise StateError(
            f"no bundles have been built in {folder}",
            hint="build them first with provision bundle build SELECTION",
        )
    return built[-1]


def _is_on(value: object) -> bool:
    return value is True or str(value).lower() in ("true", "yes", "1")


def plan_publish(
    settings: Settings,
    selection: str | None = None,
    *,
    source: Path | None = None,
    check: bool = False,
) -> PublishPlan:
    """Check the bundles in `source` (default: the newest build) and plan the rollout."""
    folder = source or newest_build(settings)
    files = sorted(folder.glob("*.tar.gz"))
    if not files:
        raise InputError(
            "holds no bundles (*.tar.gz)", hint="see provision bundle build", path=folder
        )
    signers = signing.key_info(settings).allowed_signers_path
    bundles = tuple((path, verify_bundle(path, signers)) for path in files)
    loaded = load_environment(settings.inventory_path)
    chosen = select_hosts(loaded.inventory, selection or "role:field_server")
    hostvars = slice_inventory(loaded.inventory, chosen, loaded.folder)["all"]["hosts"]
    servers = {
        h: str(v.get("bundle_server_name") or "")
        for h, v in hostvars.items()
        if v.get("provision_role") == "field_server"
    }
    if not servers:
        raise InputError(
            f"the selection {selection or 'role:field_server'!r} names no field server",
            hint="check it with provision inventory show role:field_server",
        )
    for host, name in servers.items():
        if not name:
            raise InputError(
                f"field server {host} has no bundle_server_name",
                hint="set bundle_server_name (the DNS name its PCs use) in its host_vars",
            )
        ca.plan_certificate(settings, name)  # a missing CA is refused while planning
    everyone = slice_inventory(loaded.inventory, sorted(loaded.inventory.hosts), loaded.folder)
    pull_hosts = tuple(
        sorted(h for h, v in everyone["all"]["hosts"].items() if _is_on(v.get(PULL_MODE)))
    )
    serial = max(m.serial for _, m in bundles)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = settings.state_path / "bundles" / "published" / f"{serial:06d}-{stamp}"
    options = RolloutOptions(
        playbook=PLAYBOOK,
        selection=";".join(sorted(servers)),
        check=check,
        tags=("role::bundle_server",),
        vars_file=str(base / "vars.yml"),
    )
    return PublishPlan(
        plan_rollout(settings, options),
        folder,
        bundles,
        servers,
        pull_hosts,
        base / "vars.yml",
        base / "www",
    )


def token_of(settings: Settings, host: str) -> str:
    """`host`'s upload secret, made (0600) the first time it is asked for."""
    path = tokens_dir(settings) / host
    if path.is_file():
        return path.read_text().split()[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    token = secrets.token_urlsafe(30)
    write_atomic(path, token + "\n", new_mode=0o600)
    return token


def htpasswd_line(host: str, token: str, salt: bytes | None = None) -> str:
    """nginx's {SSHA} form: base64(sha1(secret + salt) + salt). Only a hash leaves."""
    salt = salt if salt is not None else os.urandom(8)
    digest = hashlib.sha1(token.encode() + salt).digest()  # noqa: S324 (nginx's format)
    return f"{host}:{{SSHA}}{base64.b64encode(digest + salt).decode()}\n"


def prepare_publish(settings: Settings, publish: PublishPlan) -> None:
    """Lay out the published tree, secrets' hashes, certificates and the run's variables."""
    tree = publish.tree / "bundles"
    newest: dict[str, tuple[Path, Manifest]] = {}
    for path, manifest in publish.bundles:
        if manifest.name not in newest or manifest.serial > newest[manifest.name][1].serial:
            newest[manifest.name] = (path, manifest)
    for name, (path, manifest) in sorted(newest.items()):
        folder = tree / name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / path.name)
        latest = {"serial": manifest.serial, "file": path.name}
        write_atomic(folder / "latest.json", json.dumps(latest, sort_keys=True) + "\n")
    lines = "".join(htpasswd_line(h, token_of(settings, h)) for h in publish.pull_hosts)
    private = publish.vars_file.parent
    write_atomic(private / "htpasswd", lines, new_mode=0o600)
    for name in sorted(set(publish.servers.values())):
        ca.ensure(settings, name)
    portals = ca.ca_dir(settings) / "portals"
    variables = {
        "bundle_server_publish_src": str(publish.tree),
        "bundle_server_htpasswd_src": str(private / "htpasswd"),
        "bundle_server_cert_src": f"{portals}/{{{{ bundle_server_name }}}}/fullchain.pem",
        "bundle_server_key_src": f"{portals}/{{{{ bundle_server_name }}}}/privkey.pem",
    }
    write_atomic(publish.vars_file, yaml.safe_dump(variables, sort_keys=True))
