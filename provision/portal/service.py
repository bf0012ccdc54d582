"""Portal services: edit and read the register, deploy through a rollout, back up, restore.

    portal = add_portal(settings, PortalRequest(domain="gazipur.gov.bd", host="dhk-gaz-portal01",
                                                kind="static", content="sites/gazipur"))
    deploy = plan_deploy(settings, "role:portal_host")   # what would be issued: changes nothing
    prepare_deploy(settings, deploy)                     # confirmed: issue, renew, write the vars
    result = run_rollout(settings, deploy.plan)          # recorded in the store like any rollout

Every change to the register is checked whole before it is written (atomically),
so a refused change leaves the file as it was. Deploys, backups and restores run
as rollouts of playbooks/portal_*.yml: each is a run in the store. What reaches
Ansible is a generated variables file of domains and control-node paths, never a
key's contents.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from provision.errors import InputError, StateError
from provision.infra import crypto
from provision.inventory import select_hosts, slice_inventory
from provision.inventory.files import LoadedInventory
from provision.inventory.targets import load_environment
from provision.model.inventory.tree import Place, load_tree
from provision.model.places import match_key
from provision.portal import ca
from provision.portal.content import check_content
from provision.portal.model import (
    KINDS,
    Contact,
    ExternalTls,
    Portal,
    Register,
    check_domain,
    load_register,
    save_register,
)
from provision.rollout import RolloutOptions, RolloutPlan, RolloutResult, plan_rollout, run_rollout
from provision.settings import Settings

ROLE_SELECTION = "role:portal_host"


def register_path(settings: Settings) -> Path:
    """`portals/<env>.yml` in the workspace."""
    return settings.portal_register_path


def backups_dir(settings: Settings, domain: str) -> Path:
    """Where backups of `domain` are copied on the control node."""
    return settings.state_path / "portal-backups" / domain


# -- the register -------------------------------------------------------------


def _portal_hosts(loaded: LoadedInventory) -> set[str]:
    return set(select_hosts(loaded.inventory, ROLE_SELECTION))


def check_host(loaded: LoadedInventory, host: str) -> None:
    """InputError unless `host` is in the inventory with the portal_host role."""
    if host not in loaded.inventory.hosts:
        raise InputError(
            f"host {host!r} is not in the inventory {loaded.folder}",
            hint="give a host of this environment (provision inventory show role:portal_host)",
        )
    if host not in _portal_hosts(loaded):
        raise InputError(
            f"host {host!r} does not have the portal_host role",
            hint="serve portals from a portal host (provision inventory show role:portal_host), "
            "or give the host that role in the site register",
        )


def load_checked(settings: Settings) -> tuple[Register, LoadedInventory]:
    """The register, each portal's host checked against the inventory (errors at file:line)."""
    register = load_register(register_path(settings))
    loaded = load_environment(settings.inventory_path)
    for portal in register.portals:
        try:
            check_host(loaded, portal.host)
        except InputError as exc:
            raise InputError(
                f"field 'host': {exc.message}",
                hint=exc.hint,
                path=register.path,
                line=portal.line,
            ) from None
    return register, loaded


def find_office(query: str) -> Place:
    """The office (a place in the admin tree) named by `query`.

    `query` is a path of names, division or district first ("Dhaka/Gazipur/Kaliganj",
    "Gazipur/Kaliganj"), a single name when it is unique, or a portal domain.
    """
    tree = load_tree()
    text = query.strip()
    bare = text.lower().rstrip(".").removeprefix("www.")
    by_domain = [p for p in tree.places.values() if p.portal.lower().removeprefix("www.") == bare]
    if by_domain:
        return by_domain[0]
    parts = [match_key(p) for p in text.split("/") if p.strip()]
    if not parts:
        raise InputError("--office is empty", hint="give an office name, e.g. Gazipur/Kaliganj")
    found = [
        place
        for key, place in tree.places.items()
        if len(key) >= len(parts) and key[-len(parts) :] == tuple(parts)
    ]
    if not found:
        raise InputError(
            f"no office named {query!r} in the administrative tree",
            hint="give its name as in provision/data/bd_admin (district/upazila/union), "
            "e.g. Gazipur/Kaliganj",
        )
    if len(found) > 1:
        shown = ", ".join("/".join(p.path) for p in found[:5])
        raise InputError(
            f"{len(found)} offices are named {query!r}: {shown}"
            + (", …" if len(found) > 5 else ""),
            hint="give more of its path, e.g. District/Upazila/Union",
        )
    return found[0]


def _place_of(domain: str) -> Place | None:
    try:
        return find_office(domain)
    except InputError:
        return None


@dataclass(frozen=True)
class PortalRequest:
    """What `portal add` was given; empty fields are filled from the office where they can be."""

    host: str
    kind: str
    content: str
    domain: str = ""
    office: str = ""
    contacts: tuple[Contact, ...] = ()
    tls_cert: str = ""
    tls_key: str = ""
    nginx_directives: tuple[str, ...] = ()


def _resolve(settings: Settings, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else settings.workspace / p


def _check_external_tls(settings: Settings, tls: ExternalTls, domain: str) -> None:
    cert, key = _resolve(settings, tls.cert), _resolve(settings, tls.key)
    for label, path in (("certificate", cert), ("key", key)):
        if not path.is_file():
            raise InputError(f"the {label} file {path} does not exist", hint="give existing files")
    try:
        info = crypto.certificate_info(cert.read_bytes())
        matches = crypto.key_matches(cert.read_bytes(), key.read_bytes())
    except crypto.CertificateError as exc:
        raise InputError(f"{cert} or {key} {exc}", hint="give PEM files") from None
    if not matches:
        raise InputError(
            f"the key {key} is not the key of the certificate {cert}", hint="give the matching pair"
        )
    if domain not in info.dns_names:
        raise InputError(
            f"the certificate {cert} is not for {domain} (it names {', '.join(info.dns_names)})",
            hint="give a certificate whose subject alternative names include the domain",
        )


def add_portal(settings: Settings, request: PortalRequest) -> Portal:
    """Add one portal to the register; nothing is written unless all of it is right."""
    register, loaded = load_checked(settings)
    place = find_office(request.office) if request.office else None
    if request.domain:
        domain = check_domain(request.domain)
    elif place is not None and place.portal:
        domain = check_domain(place.portal)
    else:
        raise InputError(
            "give the portal's DOMAIN or its --office", hint="see provision portal add --help"
        )
    if place is None:
        place = _place_of(domain)
    existing = register.find(domain)
    if existing is not None:
        raise InputError(
            f"domain {domain} is already registered (served by {existing.host})",
            hint="pick another domain, or remove the old entry first (provision portal remove)",
            path=register.path,
            line=existing.line,
        )
    if request.kind not in KINDS:
        raise InputError(
            f"kind {request.kind!r} is not one of {', '.join(KINDS)}", hint="--kind static|php"
        )
    check_host(loaded, request.host)
    check_content(settings, request.content, extra_secrets=_tls_keys(register, request.tls_key))
    tls = None
    if request.tls_cert or request.tls_key:
        if not (request.tls_cert and request.tls_key):
            raise InputError("give both --tls-cert and --tls-key", hint="or neither, for the CA")
        tls = ExternalTls(request.tls_cert, request.tls_key)
        _check_external_tls(settings, tls, domain)
    portal = Portal(
        domain=domain,
        host=request.host,
        kind=request.kind,
        content=request.content,
        office=place_name(place) if place else "",
        place=place.path if place else (),
        level=place.level if place else "",
        contacts=request.contacts,
        tls=tls,
        nginx_directives=request.nginx_directives,
    )
    register.portals.append(portal)
    save_register(register)
    return portal


def place_name(place: Place) -> str:
    """An office's name as people say it: "Kaliganj upazila office"."""
    return f"{place.name} {place.level} office"


@dataclass(frozen=True)
class Removal:
    """A portal taken out of the register, and what became of its certificate."""

    portal: Portal
    #: The department certificate revoked (None: external TLS, or none issued).
    revoked: ca.CertStatus | None
    #: Other environments whose register still lists the domain (its certificate kept).
    kept_for: tuple[str, ...] = ()


def _other_registers(settings: Settings, domain: str) -> tuple[str, ...]:
    """The other environments whose register lists `domain` (they share the state dir's CA)."""
    mine = register_path(settings)
    found = []
    for path in sorted(mine.parent.glob("*.yml")):
        if path == mine:
            continue
        try:
            listed = load_register(path).find(domain) is not None
        except InputError:
            listed = True  # unreadable: it may list it, so its certificate stays
        if listed:
            found.append(path.stem)
    return tuple(found)


def remove_portal(settings: Settings, domain: str) -> Removal:
    """Take one portal out of the register (its host drops it at the next deploy).

    Its department certificate is revoked (recorded in the CA's index, key deleted)
    unless another environment's register still lists the domain.
    """
    register = load_register(register_path(settings))
    portal = register.find(domain)
    if portal is None:
        raise InputError(
            f"no portal {domain!r} in {register.path}", hint="see provision portal list"
        )
    register.portals.remove(portal)
    save_register(register)
    if portal.tls is not None:
        return Removal(portal, None)
    elsewhere = _other_registers(settings, portal.domain)
    if elsewhere:
        return Removal(portal, None, elsewhere)
    return Removal(portal, ca.revoke(settings, portal.domain))


def list_portals(settings: Settings, selection: str | None = None) -> list[Portal]:
    """The registered portals, those on the hosts `selection` names when given."""
    register, loaded = load_checked(settings)
    if not selection:
        return list(register.portals)
    hosts = set(select_hosts(loaded.inventory, selection))
    return [p for p in register.portals if p.host in hosts]


@dataclass(frozen=True)
class PortalDetail:
    portal: Portal
    certificate: ca.CertStatus | None
    backups: list[Path]


def show_portal(settings: Settings, domain: str) -> PortalDetail:
    register = load_register(register_path(settings))
    portal = register.find(domain)
    if portal is None:
        raise InputError(
            f"no portal {domain!r} in {register.path}", hint="see provision portal list"
        )
    cert = None if portal.tls else ca.cert_status(settings, portal.domain)
    return PortalDetail(portal, cert, list_backups(settings, portal.domain))


# -- deploying ----------------------------------------------------------------


def _tls_keys(register: Register, *more: str) -> tuple[str, ...]:
    """The external TLS key files of the register's portals (no content may publish them)."""
    return tuple(p.tls.key for p in register.portals if p.tls is not None) + more


def _content_source(settings: Settings, portal: Portal, register: Register) -> Path:
    """The checked folder or archive to publish.

    The content is checked again here, as at `portal add`: the register may have
    been edited by hand since.
    """
    try:
        return check_content(settings, portal.content, extra_secrets=_tls_keys(register))
    except InputError as exc:
        raise InputError(
            f"field 'content' of {portal.domain}: {exc.message}",
            hint=exc.hint,
            path=register.path,
            line=portal.line,
        ) from None


def _unpacked_dir(settings: Settings, domain: str) -> Path:
    """Where an archive of `domain`'s content is unpacked under the state dir."""
    return settings.state_path / "portal-content" / domain


def _unpack_content(settings: Settings, domain: str, source: Path) -> Path:
    """Unpack the archive `source` for `domain` (kept while the archive is unchanged)."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    target = _unpacked_dir(settings, domain)
    stamp = target.parent / f"{domain}.sha256"
    if target.is_dir() and stamp.is_file() and stamp.read_text().strip() == digest:
        return target
    staging = target.parent / f".{domain}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _unpack(source, staging)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, ValueError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(
            f"the content archive {source} of {domain} cannot be unpacked: {exc}",
            hint="give a readable .tar.gz, .tgz, .tar or .zip without absolute or '..' paths",
        ) from None
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)
    stamp.write_text(digest + "\n")
    return target


def _unpack(archive: Path, target: Path) -> None:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    raise ValueError(f"unsafe path {name!r}")
            z.extractall(target)  # noqa: S202 - every name was checked just above
        return
    with tarfile.open(archive) as t:
        t.extractall(target, filter="data")


def _host_entry(portal: Portal, content: Path, cert: Path, key: Path) -> dict[str, Any]:
    return {
        "domain": portal.domain,
        "kind": portal.kind,
        "content": str(content),
        "user": portal.user,
        "tls_cert": str(cert.resolve()),
        "tls_key": str(key.resolve()),
        "nginx_directives": list(portal.nginx_directives),
    }


@dataclass(frozen=True)
class RunVariables:
    """The variables file of one portal run: where it goes and what it says (not yet written)."""

    path: Path
    data: dict[str, Any]

    def write(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(
            "# Generated by provision for one run: domains and control-node paths, no secrets.\n"
            + yaml.safe_dump(self.data, sort_keys=True)
        )
        return self.path


def _run_variables(settings: Settings, label: str, data: dict[str, Any]) -> RunVariables:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return RunVariables(settings.state_path / "portal-runs" / f"{stamp}-{label}.yml", data)


@dataclass(frozen=True)
class DeployPlan:
    """A portal deploy as planned: nothing is issued or written until `prepare_deploy`."""

    plan: RolloutPlan
    portals: list[Portal]
    #: What the CA will do for each department certificate (issue, renew or keep).
    certificates: list[ca.CertPlan]
    #: Where the run's variables will be (written by `prepare_deploy`).
    vars_file: Path
    variables: RunVariables
    #: Content archives to unpack under the state dir, by domain.
    archives: dict[str, Path]
    #: Where retired portals' archives come back (made by `prepare_deploy`); None in check mode.
    fetch_dir: Path | None
    renew_within_days: float = ca.RENEW_WITHIN_DAYS


def _selected(loaded: LoadedInventory, selection: str | None) -> list[str]:
    portal_hosts = _portal_hosts(loaded)
    chosen = select_hosts(loaded.inventory, selection) if selection else sorted(portal_hosts)
    hosts = [h for h in chosen if h in portal_hosts]
    if not hosts:
        raise InputError(
            f"the selection {selection or 'all'!r} names no host with the portal_host role",
            hint="check it with provision inventory show role:portal_host",
        )
    return hosts


def plan_deploy(
    settings: Settings,
    selection: str | None = None,
    *,
    renew_within_days: float = ca.RENEW_WITHIN_DAYS,
    check: bool = False,
    diff: bool = False,
    batch: str | None = None,
    max_fail: str = "0%",
) -> DeployPlan:
    """Check the register and plan the deploy: which certificates to issue or renew, the
    run's variables, its waves. Changes nothing (`prepare_deploy` does, once confirmed).

    Every portal host of `selection` gets exactly the register's portals for it:
    a portal no longer listed for a host is retired there (archived, then removed).
    """
    register, loaded = load_checked(settings)
    hosts = _selected(loaded, selection)
    chosen = set(hosts)
    portals = [p for p in register.portals if p.host in chosen]
    if any(p.tls is None for p in portals):
        ca.ca_info(settings)  # a clear error before anything else when there is no CA
    # Every portal's content and external pair first: a bad one stops the deploy.
    sources = {p.domain: _content_source(settings, p, register) for p in portals}
    for portal in portals:
        if portal.tls is not None:
            _check_external_tls(settings, portal.tls, portal.domain)
    certificates: list[ca.CertPlan] = []
    by_host: dict[str, list[dict[str, Any]]] = {h: [] for h in hosts}
    for portal in portals:
        if portal.tls is not None:
            cert, key = _resolve(settings, portal.tls.cert), _resolve(settings, portal.tls.key)
        elif check:
            status = ca.cert_status(settings, portal.domain)
            if status is None:
                raise StateError(
                    f"{portal.domain} has no certificate yet; a preview cannot issue one",
                    hint="deploy without --check once, or issue it with provision ca issue",
                )
            cert, key = status.chain_path, status.key_path
        else:
            planned = ca.plan_certificate(
                settings, portal.domain, renew_within_days=renew_within_days
            )
            certificates.append(planned)
            cert, key = planned.chain_path, planned.key_path
        source = sources[portal.domain]
        content = source if source.is_dir() else _unpacked_dir(settings, portal.domain)
        by_host[portal.host].append(_host_entry(portal, content, cert, key))
    # Retired portals' archives come back here, beside the portal backups.
    fetch = settings.state_path / "portal-backups"
    variables = _run_variables(
        settings,
        f"deploy-{settings.env}",
        {"provision_portals": by_host, "portal_host_retired_fetch_dir": str(fetch)},
    )
    options = RolloutOptions(
        playbook="portal_hosts.yml",
        selection=";".join(hosts),
        batch=batch,
        max_fail=max_fail,
        check=check,
        diff=diff,
        tags=("role::portal_host",),
        vars_file=str(variables.path),
    )
    return DeployPlan(
        plan_rollout(settings, options),
        portals,
        certificates,
        variables.path,
        variables,
        {d: s for d, s in sources.items() if not s.is_dir()},
        None if check else fetch,
        renew_within_days,
    )


def prepare_deploy(settings: Settings, deploy: DeployPlan) -> list[ca.CertStatus]:
    """What a confirmed deploy does on the control node before its rollout runs.

    Unpacks content archives, issues and renews the planned certificates (a
    certificate renewed meanwhile is kept), makes the folder retired portals come
    back to and writes the run's variables. Returns each department certificate
    with what was done to it (issued, renewed or kept).
    """
    for domain, source in deploy.archives.items():
        _unpack_content(settings, domain, source)
    done = [
        ca.ensure(settings, c.domain, renew_within_days=deploy.renew_within_days)
        for c in deploy.certificates
    ]
    if deploy.fetch_dir is not None:
        deploy.fetch_dir.mkdir(parents=True, exist_ok=True)
        deploy.fetch_dir.chmod(0o700)
    deploy.variables.write()
    return done


# -- backups ------------------------------------------------------------------


def list_backups(settings: Settings, domain: str) -> list[Path]:
    """The backups of `domain` on the control node, newest first."""
    folder = backups_dir(settings, domain)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{domain}-*.tar.gz"), reverse=True)


@dataclass(frozen=True)
class BackupResult:
    portal: Portal
    result: RolloutResult
    #: The archive copied to the control node (None when the run failed).
    archive: Path | None


def _registered(settings: Settings, domain: str) -> Portal:
    register, _loaded = load_checked(settings)
    portal = register.find(domain)
    if portal is None:
        raise InputError(
            f"no portal {domain!r} in {register.path}",
            hint="see provision portal list (a removed portal must be added again to restore it)",
        )
    return portal


Runner = Callable[[RolloutPlan], RolloutResult]


def _default_runner(settings: Settings) -> Runner:
    return lambda plan: run_rollout(settings, plan)


def plan_backup(settings: Settings, domain: str) -> tuple[Portal, RolloutPlan, RunVariables]:
    """The backup's run and its variables (written, with the fetch folder, by `backup_portal`)."""
    portal = _registered(settings, domain)
    fetch = backups_dir(settings, portal.domain)
    variables = _run_variables(
        settings,
        f"backup-{portal.domain}",
        {"portal_host_backup_domain": portal.domain, "portal_host_backup_fetch_dir": str(fetch)},
    )
    options = RolloutOptions(
        playbook="portal_backup.yml", selection=portal.host, vars_file=str(variables.path)
    )
    return portal, plan_rollout(settings, options), variables


def backup_portal(settings: Settings, domain: str, *, runner: Runner | None = None) -> BackupResult:
    """A dated archive of the portal on its host (rotated there), copied to the control node."""
    portal, plan, variables = plan_backup(settings, domain)
    fetch = backups_dir(settings, portal.domain)
    fetch.mkdir(parents=True, exist_ok=True)
    fetch.chmod(0o700)
    variables.write()
    before = set(list_backups(settings, portal.domain))
    result = (runner or _default_runner(settings))(plan)
    fresh = [p for p in list_backups(settings, portal.domain) if p not in before]
    return BackupResult(portal, result, fresh[0] if fresh else None)


def plan_restore(
    settings: Settings, domain: str, archive: Path | None = None
) -> tuple[Portal, Path, RolloutPlan, RunVariables]:
    """The restore's run and its variables (written by `restore_portal`)."""
    portal = _registered(settings, domain)
    if archive is None:
        found = list_backups(settings, portal.domain)
        if not found:
            raise StateError(
                f"there is no backup of {portal.domain} on this control node",
                hint=f"make one with provision portal backup {portal.domain}",
            )
        archive = found[0]
    archive = archive.resolve()
    if not archive.is_file():
        raise InputError(f"the backup {archive} does not exist", hint="see provision portal show")
    try:
        with tarfile.open(archive, "r:gz") as t:
            names = t.getnames()
    except (tarfile.TarError, EOFError, OSError):
        # tarfile's own text lists every compression it tried, one per line: not for people.
        raise InputError(
            f"the backup {archive} is not a .tar.gz archive",
            hint=f"give an archive made by provision portal backup (see provision portal show "
            f"{portal.domain} for those on this control node)",
        ) from None
    if not any(n == "htdocs" or n.startswith("htdocs/") for n in names):
        raise InputError(
            f"the backup {archive} holds no htdocs/ folder",
            hint="give an archive portal backup made",
        )
    variables = _run_variables(
        settings,
        f"restore-{portal.domain}",
        {"portal_host_restore_domain": portal.domain, "portal_host_restore_archive": str(archive)},
    )
    options = RolloutOptions(
        playbook="portal_restore.yml", selection=portal.host, vars_file=str(variables.path)
    )
    return portal, archive, plan_rollout(settings, options), variables


@dataclass(frozen=True)
class RestoreResult:
    portal: Portal
    archive: Path
    result: RolloutResult


def restore_portal(
    settings: Settings, domain: str, archive: Path | None = None, *, runner: Runner | None = None
) -> RestoreResult:
    """Put the portal's content and data back from a backup (the newest one by default)."""
    portal, chosen, plan, variables = plan_restore(settings, domain, archive)
    variables.write()
    return RestoreResult(portal, chosen, (runner or _default_runner(settings))(plan))


def host_addresses(settings: Settings, hosts: list[str]) -> dict[str, str]:
    """Each host's address (ansible_host, else its name), from the inventory."""
    loaded = load_environment(settings.inventory_path)
    known = [h for h in hosts if h in loaded.inventory.hosts]
    data = slice_inventory(loaded.inventory, known, loaded.folder)["all"]["hosts"]
    return {h: str(data.get(h, {}).get("ansible_host") or h) for h in hosts}
