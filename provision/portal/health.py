"""Portal health from the control node: does each portal answer over HTTPS with a
certificate that chains to the department CA and is not near expiry?

    from provision.portal.health import check_portals
    for h in check_portals(settings, "district:gazipur"):
        print(h.domain, h.status, h.days_left)

The request goes to the serving host's address with the portal's domain as SNI
and Host header, so it needs no DNS and checks exactly the host the register
names. Results are plain dataclasses for the CLI, compliance and reports.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from provision.errors import InputError, StateError
from provision.infra import crypto
from provision.inventory import select_hosts
from provision.inventory.targets import load_environment
from provision.portal import ca
from provision.portal.service import host_addresses, list_portals, register_path
from provision.settings import Settings

#: A certificate with fewer days left than this is reported as expiring.
WARN_DAYS = 30

STATUSES = ("ok", "expiring", "untrusted", "http_error", "unreachable")


@dataclass(frozen=True)
class HttpsResponse:
    status: int
    body: bytes
    certificate: crypto.CertificateInfo | None
    #: Response headers, names in lower case.
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PortalHealth:
    """One portal's answer: `status` is one of STATUSES; `ok` only for status ok."""

    domain: str
    host: str
    address: str
    status: str
    http_status: int | None = None
    days_left: float | None = None
    not_after: datetime | None = None
    issuer: str | None = None
    #: Verified against the department CA (False for an externally issued certificate).
    department_ca: bool = False
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Connection(http.client.HTTPSConnection):
    """HTTPS to an address, with SNI (and the certificate's name check) for a domain."""

    def __init__(
        self, address: str, domain: str, port: int, context: ssl.SSLContext, timeout: float
    ) -> None:
        super().__init__(address, port, timeout=timeout, context=context)
        self._domain = domain
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self._domain)


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verify against `ca_file` only (the department CA), or the system's trust store."""
    if ca_file is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=str(ca_file))


def https_get(
    address: str,
    domain: str,
    path: str = "/",
    *,
    ca_file: Path | None = None,
    port: int = 443,
    timeout: float = 10.0,
) -> HttpsResponse:
    """GET https://`domain``path` from `address`, verifying the chain and the name.

    Raises ssl.SSLCertVerificationError for a certificate that does not verify,
    OSError for a host that does not answer.
    """
    connection = _Connection(address, domain, port, tls_context(ca_file), timeout)
    try:
        connection.connect()
        der = connection.sock.getpeercert(binary_form=True) if connection.sock else None
        connection.request("GET", path, headers={"Host": domain, "User-Agent": "provision"})
        response = connection.getresponse()
        body = response.read()
        info = crypto.certificate_info_der(der) if der else None
        headers = {k.lower(): v for k, v in response.getheaders()}
        return HttpsResponse(response.status, body, info, headers)
    finally:
        connection.close()


def _peer_certificate(address: str, domain: str, port: int, timeout: float) -> bytes | None:
    """The certificate a host presents for `domain`, without verifying it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((address, port), timeout) as raw,
        context.wrap_socket(raw, server_hostname=domain) as tls,
    ):
        return tls.getpeercert(binary_form=True)


def check_portal(
    domain: str,
    address: str,
    *,
    host: str = "",
    ca_file: Path | None = None,
    warn_days: float = WARN_DAYS,
    port: int = 443,
    timeout: float = 10.0,
) -> PortalHealth:
    """One portal's health: HTTPS answer, chain to `ca_file` (or the system store), expiry."""
    base = PortalHealth(domain, host, address, "unreachable", department_ca=ca_file is not None)
    try:
        answer = https_get(address, domain, ca_file=ca_file, port=port, timeout=timeout)
    except ssl.SSLCertVerificationError as exc:
        info = None
        try:
            der = _peer_certificate(address, domain, port, timeout)
            info = crypto.certificate_info_der(der) if der else None
        except (OSError, ValueError):
            pass
        return PortalHealth(
            domain,
            host,
            address,
            "untrusted",
            days_left=info.days_left() if info else None,
            not_after=info.not_after if info else None,
            issuer=info.issuer if info else None,
            department_ca=ca_file is not None,
            message=f"certificate does not verify: {exc.verify_message or exc}",
        )
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        return PortalHealth(**{**base.__dict__, "message": f"no HTTPS answer: {exc}"})
    info = answer.certificate
    days = info.days_left() if info else None
    status, message = "ok", ""
    if answer.status >= 400:
        status, message = "http_error", f"HTTP {answer.status}"
    elif days is not None and days < warn_days:
        status, message = "expiring", f"certificate expires in {ca.whole_days(days)} days"
    return PortalHealth(
        domain,
        host,
        address,
        status,
        http_status=answer.status,
        days_left=days,
        not_after=info.not_after if info else None,
        issuer=info.issuer if info else None,
        department_ca=ca_file is not None,
        message=message,
    )


def _nothing_to_check(settings: Settings, selection: str | None) -> InputError:
    register = register_path(settings)
    if not selection:
        return InputError(
            f"no portal is registered in {register}, so there is nothing to check",
            hint="add one with provision portal add, or check another --env",
        )
    loaded = load_environment(settings.inventory_path)
    if not select_hosts(loaded.inventory, selection):
        return InputError(
            f"the selection {selection!r} names no host of {loaded.folder}",
            hint="check it with provision inventory show SELECTION (a typo matches nothing)",
        )
    return InputError(
        f"no registered portal is served by the hosts {selection!r} names",
        hint="see provision portal list for the portals and their hosts",
    )


def check_portals(
    settings: Settings,
    selection: str | None = None,
    *,
    warn_days: float = WARN_DAYS,
    timeout: float = 10.0,
    empty_ok: bool = False,
) -> list[PortalHealth]:
    """The health of every registered portal on the hosts `selection` names (all when None).

    Portals with a department certificate are verified against the CA's root
    certificate only; externally issued ones against the system trust store.
    Raises a ProvisionError for a bad register or selection (never for a portal
    that does not answer: that is a result), and an InputError when nothing is
    left to check, unless `empty_ok`: a typo in a timer's selection must not look
    like a healthy fleet.
    """
    portals = list_portals(settings, selection)
    if not portals and not empty_ok:
        raise _nothing_to_check(settings, selection)
    addresses = host_addresses(settings, sorted({p.host for p in portals}))
    try:
        root: Path | None = ca.ca_info(settings).cert_path
    except StateError:
        root = None
    results: list[PortalHealth] = []
    for portal in portals:
        address = addresses.get(portal.host, portal.host)
        if portal.tls is None and root is None:
            results.append(
                PortalHealth(
                    portal.domain,
                    portal.host,
                    address,
                    "untrusted",
                    department_ca=True,
                    message="there is no department CA on this control node (provision ca init)",
                )
            )
            continue
        results.append(
            check_portal(
                portal.domain,
                address,
                host=portal.host,
                ca_file=None if portal.tls else root,
                warn_days=warn_days,
                timeout=timeout,
            )
        )
    return results
