"""`provision portal`: the register of office web portals; deploy, back up, restore."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option, selection_argument, strategy_option
from provision.errors import ExitStatus

if TYPE_CHECKING:
    from provision.portal import Portal, PortalHealth
    from provision.rollout import RolloutResult


@click.group()
def portal() -> None:
    """Manage the register of office web portals and deploy, back up and restore them.

    The register is portals/ENV.yml in the workspace: per portal its domain,
    office and place in the administrative tree, host, kind (static or php),
    content (a folder or archive) and contacts. `deploy` makes the hosts match
    it over HTTPS with certificates from the department CA (provision ca).

    \b
    Example:
      provision portal add --office Gazipur/Kaliganj --host dhk-gaz-portal01 \\
          --kind static --content sites/kaliganj
      provision portal list
      provision portal deploy role:portal_host --yes
      provision portal health --json
      provision portal backup kaliganj.gazipur.gov.bd
      provision portal restore kaliganj.gazipur.gov.bd
    """


def _portal_json(p: Portal) -> dict[str, Any]:
    data = p.record()
    data["user"] = p.user if p.kind == "php" else None
    data["tls"] = "external" if p.tls else "internal"
    return data


@portal.command()
@click.argument("domain", required=False, default="")
@click.option("--host", required=True, help="The portal host that serves it (role portal_host).")
@click.option("--kind", type=click.Choice(["static", "php"]), default="static", show_default=True)
@click.option(
    "--content",
    required=True,
    help="Folder or archive (.tar.gz, .tgz, .tar, .zip) to publish, relative to the workspace.",
)
@click.option(
    "--office",
    default="",
    help="The office in the administrative tree (District/Upazila[/Union] or a unique name); "
    "fills the domain when DOMAIN is left out.",
)
@click.option(
    "--contact", "contacts", multiple=True, metavar="NAME[,EMAIL[,PHONE]]", help="A contact."
)
@click.option("--tls-cert", default="", help="An externally issued certificate chain (PEM).")
@click.option("--tls-key", default="", help="Its private key (PEM).")
@click.option(
    "--nginx", "nginx_directives", multiple=True, metavar="DIRECTIVE", help="Extra nginx line."
)
@click.option("--json", "as_json", is_flag=True, help="Print the new entry as JSON.")
@env_option
@pass_app
def add(
    app: AppContext,
    domain: str,
    host: str,
    kind: str,
    content: str,
    office: str,
    contacts: tuple[str, ...],
    tls_cert: str,
    tls_key: str,
    nginx_directives: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add a portal to the register (nothing is written if any part is wrong).

    DOMAIN may be left out when --office names an office: its portal domain
    comes from the administrative tree. Refused: a domain already registered,
    a host not in the inventory or without the portal_host role, an invalid
    domain, content that does not exist.

    \b
    Example:
      provision portal add gazipur.gov.bd --host dhk-gaz-portal01 --content sites/gazipur
      provision portal add --office Gazipur/Kaliganj --host dhk-gaz-portal01 \\
          --kind php --content sites/kaliganj.tar.gz --contact "A. Rahman,a@example.org"
    """
    from provision.portal import Contact, PortalRequest, add_portal

    people = []
    for text in contacts:
        parts = [p.strip() for p in text.split(",")] + ["", ""]
        people.append(Contact(name=parts[0], email=parts[1], phone=parts[2]))
    request = PortalRequest(
        host=host,
        kind=kind,
        content=content,
        domain=domain,
        office=office,
        contacts=tuple(people),
        tls_cert=tls_cert,
        tls_key=tls_key,
        nginx_directives=nginx_directives,
    )
    added = add_portal(app.settings, request)
    if as_json:
        console.print_json(_portal_json(added))
        return
    console.out.print(
        f"added {added.domain} ({added.kind}) on {added.host}"
        + (f" for {added.office} ({'/'.join(added.place)})" if added.office else "")
        + "; publish it with: provision portal deploy "
        + added.host,
        markup=False,
    )


@portal.command("list")
@selection_argument()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@env_option
@pass_app
def list_command(app: AppContext, selection: str, as_json: bool) -> None:
    """List the registered portals (those on the hosts SELECTION names).

    Also checks the whole register: a mistake is reported at its file and line.

    \b
    Example:
      provision portal list
      provision portal list district:gazipur --json
    """
    from provision.portal import list_portals

    found = list_portals(app.settings, selection or None)
    if as_json:
        console.print_json([_portal_json(p) for p in found])
        return
    table = Table(title=f"portals ({len(found)})")
    for column in ("domain", "kind", "host", "office", "tls"):
        table.add_column(column)
    for p in found:
        table.add_row(p.domain, p.kind, p.host, p.office, "external" if p.tls else "internal")
    console.out.print(table)


@portal.command()
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@env_option
@pass_app
def show(app: AppContext, domain: str, as_json: bool) -> None:
    """Show one portal: its entry, certificate and backups on this control node.

    \b
    Example:
      provision portal show gazipur.gov.bd
    """
    from provision.portal import show_portal
    from provision.portal.ca import whole_days

    detail = show_portal(app.settings, domain)
    data = _portal_json(detail.portal)
    cert = detail.certificate
    data["certificate"] = (
        None
        if cert is None
        else {
            "path": str(cert.chain_path),
            "not_after": cert.not_after.isoformat(),
            "days_left": round(cert.days_left, 1),
        }
    )
    data["backups"] = [str(p) for p in detail.backups]
    if as_json:
        console.print_json(data)
        return
    if cert is not None:
        data["certificate"]["days_left"] = whole_days(cert.days_left)
    for line in _show_lines(data):
        console.out.print(line, markup=False)


def _show_lines(data: dict[str, Any]) -> list[str]:
    """`portal show` as people read it: one field a line, lists and mappings indented."""
    lines: list[str] = []
    for key, value in data.items():
        if value is None or value == []:
            lines.append(f"{key}: none")
        elif isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {v}" for k, v in value.items()]
        elif isinstance(value, list):
            lines.append(f"{key}:")
            for item in value:
                text = ", ".join(map(str, item.values())) if isinstance(item, dict) else item
                lines.append(f"  - {text}")
        else:
            lines.append(f"{key}: {value}")
    return lines


@portal.command()
@click.argument("domain")
@env_option
@pass_app
def remove(app: AppContext, domain: str) -> None:
    """Take a portal out of the register.

    Its department certificate is revoked (recorded in STATE_DIR/ca/index.txt,
    its key deleted) unless another environment's register lists the domain.
    The next deploy of its host archives the portal's content and data on the
    host, copies the archive to STATE_DIR/portal-backups/DOMAIN/, then removes
    its server block, PHP-FPM pool, system user, folder and certificate.

    \b
    Example:
      provision portal remove old.gazipur.gov.bd
      provision portal deploy dhk-gaz-portal01 --yes
    """
    from provision.portal import remove_portal

    done = remove_portal(app.settings, domain)
    gone = done.portal
    if done.revoked is not None:
        console.out.print(
            f"revoked its certificate (serial {done.revoked.serial:x}) in the CA's index",
            markup=False,
        )
    elif done.kept_for:
        console.out.print(
            f"kept its certificate: the register of {', '.join(done.kept_for)} still lists it",
            markup=False,
        )
    console.out.print(
        f"removed {gone.domain} from the register; retire it from {gone.host} with: "
        f"provision portal deploy {gone.host}",
        markup=False,
    )


@portal.command()
@selection_argument()
@click.option(
    "--renew-within",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    metavar="DAYS",
    help="Renew department certificates that expire within DAYS.",
)
@click.option("--batch", metavar="N|P%", help="Wave size (see provision rollout).")
@click.option("--max-fail", metavar="P%", default="0%", show_default=True, help="Stop threshold.")
@click.option("--check", is_flag=True, help="Preview in check mode: nothing is changed.")
@click.option("--diff", is_flag=True, help="Show what would change in files.")
@click.option("--yes", is_flag=True, help="Start without confirming the plan.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's results as JSON.")
@env_option
@strategy_option
@pass_app
def deploy(
    app: AppContext,
    selection: str,
    renew_within: float,
    batch: str | None,
    max_fail: str,
    check: bool,
    diff: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Make the portal hosts of SELECTION serve exactly their portals in the register.

    Issues missing department certificates and renews those expiring within
    --renew-within days first, then runs playbooks/portal_hosts.yml (tag
    role::portal_host) as a rollout recorded in the store (provision runs).
    Portals a host served that the register no longer gives it are archived
    on the host and removed.

    \b
    Example:
      provision portal deploy --yes
      provision portal deploy dhk-gaz-portal01 --check --diff
    """
    from provision.cli.rollout import _confirm, _drive
    from provision.portal import plan_deploy, prepare_deploy
    from provision.rollout import run_rollout

    deploy_plan = plan_deploy(
        app.settings,
        selection or None,
        renew_within_days=renew_within,
        check=check,
        diff=diff,
        batch=batch,
        max_fail=max_fail,
    )
    for planned in deploy_plan.certificates:
        if planned.action != "keep":
            console.err.print(
                f"certificate of {planned.domain}: will {planned.action} it", markup=False
            )
    plan = deploy_plan.plan
    _confirm(plan, yes)
    # Confirmed: only now are certificates issued and the run's files written.
    for cert in prepare_deploy(app.settings, deploy_plan):
        if cert.action != "kept":
            console.err.print(
                f"certificate of {cert.domain} {cert.action} (until {cert.not_after:%Y-%m-%d})",
                markup=False,
            )
    _drive(
        app,
        len(plan.hosts),
        as_json,
        lambda display, stop: run_rollout(app.settings, plan, on_progress=display, stop=stop),
    )


def _exit_for(result: RolloutResult) -> None:
    for host, r in sorted(result.results.items()):
        if r.outcome in ("failed", "unreachable"):
            console.err.print(
                f"{host} {r.outcome} at {r.failed_task!r}: {r.message or ''}", markup=False
            )
    if result.exit_status != ExitStatus.SUCCESS:
        raise click.exceptions.Exit(int(result.exit_status))


@portal.command()
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@env_option
@pass_app
def backup(app: AppContext, domain: str, as_json: bool) -> None:
    """Archive DOMAIN's content and data on its host and copy the archive here.

    Archives are dated (DOMAIN-YYYYMMDDTHHMMSSZ.tar.gz); the host keeps the
    newest portal_host_backup_keep (7), this control node keeps every copy in
    STATE_DIR/portal-backups/DOMAIN/. The run is recorded (provision runs).

    \b
    Example:
      provision portal backup gazipur.gov.bd
    """
    from provision.portal import backup_portal

    done = backup_portal(app.settings, domain)
    if as_json:
        console.print_json(
            {
                "domain": done.portal.domain,
                "run": done.result.run_id,
                "status": done.result.status,
                "archive": str(done.archive) if done.archive else None,
            }
        )
    elif done.archive:
        console.out.print(f"run {done.result.run_id}: backed up to {done.archive}", markup=False)
    _exit_for(done.result)


@portal.command()
@click.argument("domain")
@click.option(
    "--from",
    "archive",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The archive to restore (default: the newest backup on this control node).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@env_option
@pass_app
def restore(app: AppContext, domain: str, archive: Path | None, as_json: bool) -> None:
    """Put DOMAIN's content and data back from a backup.

    The portal must be in the register and deployed (a removed portal: add it
    again and deploy first). Its current content and data are replaced.

    \b
    Example:
      provision portal restore gazipur.gov.bd
      provision portal restore gazipur.gov.bd --from .provision/portal-backups/…/x.tar.gz
    """
    from provision.portal import restore_portal

    done = restore_portal(app.settings, domain, archive)
    if as_json:
        console.print_json(
            {
                "domain": done.portal.domain,
                "run": done.result.run_id,
                "status": done.result.status,
                "archive": str(done.archive),
            }
        )
    else:
        console.out.print(
            f"run {done.result.run_id}: {done.result.status}, restored from {done.archive}",
            markup=False,
        )
    _exit_for(done.result)


def _health_json(h: PortalHealth) -> dict[str, Any]:
    return {
        "domain": h.domain,
        "host": h.host,
        "address": h.address,
        "status": h.status,
        "http_status": h.http_status,
        "days_left": None if h.days_left is None else round(h.days_left, 1),
        "not_after": h.not_after.isoformat() if h.not_after else None,
        "issuer": h.issuer,
        "department_ca": h.department_ca,
        "message": h.message,
    }


@portal.command()
@selection_argument()
@click.option(
    "--warn-days", type=click.FloatRange(min=0), default=30, show_default=True, metavar="DAYS"
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@env_option
@pass_app
def health(app: AppContext, selection: str, warn_days: float, as_json: bool) -> None:
    """Check that each portal answers over HTTPS with a trusted, current certificate.

    Connects to the serving host's address with the portal's domain as SNI,
    verifies the chain against the department CA (external certificates: the
    system trust store) and reports days to expiry. Exit 4 when a portal is not ok.

    \b
    Example:
      provision portal health
      provision portal health district:gazipur --json
    """
    from provision.portal import check_portals
    from provision.portal.ca import whole_days

    found = check_portals(app.settings, selection or None, warn_days=warn_days)
    if as_json:
        console.print_json([_health_json(h) for h in found])
    else:
        table = Table(title="portal health")
        for column in ("domain", "host", "status", "http", "days left", "message"):
            table.add_column(column)
        for h in found:
            table.add_row(
                h.domain,
                h.host,
                h.status,
                str(h.http_status or ""),
                "" if h.days_left is None else str(whole_days(h.days_left)),
                h.message,
            )
        console.out.print(table)
    if any(not h.ok for h in found):
        raise click.exceptions.Exit(int(ExitStatus.HOSTS_FAILED))
