"""`provision ca`: The department's internal certificate authority for portal TLS."""

from __future__ import annotations

import click
from rich.table import Table

from provision.cli import console
from provision.cli.context import AppContext, pass_app


@click.group()
def ca() -> None:
    """The department's internal certificate authority for portal TLS.

    The CA's key and certificate live in STATE_DIR/ca/ (key mode 0600, never
    printed); portal certificates in STATE_DIR/ca/portals/DOMAIN/. `provision
    portal deploy` issues missing certificates and renews those within 30 days of
    expiry by itself; these commands are for a first setup and by hand.

    \b
    Example:
      provision ca init
      provision ca show
      provision ca issue gazipur.gov.bd
      provision ca list --json
      provision ca revoke old.gazipur.gov.bd
    """


@ca.command()
@click.option(
    "--name", default="ICT Division Portal CA", show_default=True, help="CA's common name."
)
@click.option(
    "--organisation", default="ICT Division", show_default=True, help="Organisation name."
)
@click.option(
    "--days", type=click.IntRange(min=1), default=3650, show_default=True, help="Validity."
)
@pass_app
def init(app: AppContext, name: str, organisation: str, days: int) -> None:
    """Create the CA's key and certificate (refused when a CA exists).

    \b
    Example:
      provision ca init --name "ICT Division Portal CA"
    """
    from provision.portal import ca as service

    info = service.init_ca(app.settings, name=name, organisation=organisation, days=days)
    console.out.print(f"wrote {info.cert_path} and {info.key_path} (0600)", markup=False)
    console.out.print(f"{info.subject}, valid until {info.not_after:%Y-%m-%d}", markup=False)
    console.out.print("clients trust the portals by trusting the certificate above", markup=False)


@ca.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def show(app: AppContext, as_json: bool) -> None:
    """Show the CA certificate: where it is, its subject, expiry and fingerprint.

    \b
    Example:
      provision ca show --json
    """
    from provision.portal import ca as service

    info = service.ca_info(app.settings)
    data = {
        "certificate": str(info.cert_path),
        "subject": info.subject,
        "not_after": info.not_after.isoformat(),
        "sha256": info.sha256,
    }
    if as_json:
        console.print_json(data)
        return
    for key, value in data.items():
        console.out.print(f"{key}: {value}", markup=False)


@ca.command()
@click.argument("domain")
@click.option(
    "--days", type=click.IntRange(min=1), default=397, show_default=True, help="Validity in days."
)
@pass_app
def issue(app: AppContext, domain: str, days: int) -> None:
    """Issue (or reissue, with a new key) the certificate of DOMAIN.

    The next `provision portal deploy` installs it on the portal's host.

    \b
    Example:
      provision ca issue gazipur.gov.bd
    """
    from provision.portal import ca as service

    status = service.issue(app.settings, domain, days=days)
    console.out.print(
        f"{status.action} {status.cert_path} (valid until {status.not_after:%Y-%m-%d}); "
        f"deploy it with provision portal deploy",
        markup=False,
    )


@ca.command()
@click.argument("domain")
@pass_app
def revoke(app: AppContext, domain: str) -> None:
    """Revoke the certificate of DOMAIN: recorded in STATE_DIR/ca/index.txt, its key deleted.

    `provision portal remove` does this by itself; this is for a certificate
    issued by hand. A deploy of a portal still registered issues it a new one.

    \b
    Example:
      provision ca revoke old.gazipur.gov.bd
    """
    from provision.errors import InputError
    from provision.portal import ca as service

    done = service.revoke(app.settings, domain)
    if done is None:
        raise InputError(f"the CA has no certificate of {domain}", hint="see provision ca list")
    console.out.print(
        f"revoked {done.domain} (serial {done.serial:x}); the certificate is kept in "
        f"{service.ca_dir(app.settings) / 'revoked'}",
        markup=False,
    )


@ca.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def list_command(app: AppContext, as_json: bool) -> None:
    """List the portal certificates the CA issued, with days to expiry.

    \b
    Example:
      provision ca list
    """
    from provision.portal import ca as service

    found = service.issued(app.settings)
    if as_json:
        console.print_json(
            [
                {
                    "domain": s.domain,
                    "certificate": str(s.cert_path),
                    "not_after": s.not_after.isoformat(),
                    "days_left": round(s.days_left, 1),
                    "serial": f"{s.serial:x}",
                }
                for s in found
            ]
        )
        return
    table = Table(title="portal certificates")
    for column in ("domain", "valid until", "days left"):
        table.add_column(column)
    for s in found:
        table.add_row(s.domain, f"{s.not_after:%Y-%m-%d}", str(service.whole_days(s.days_left)))
    console.out.print(table)
