"""The department's certificate authority for portal TLS, kept by provision.

Files, under the state directory (never in version control):

    <state>/ca/root.key                      the CA's private key (0600)
    <state>/ca/root.crt                      the CA certificate clients trust
    <state>/ca/portals/<domain>/privkey.pem  a portal's key (0600)
    <state>/ca/portals/<domain>/cert.pem     its certificate
    <state>/ca/portals/<domain>/fullchain.pem  certificate then CA: what nginx serves
    <state>/ca/index.txt                     every certificate issued and revoked, in
                                             OpenSSL's `ca` database format
    <state>/ca/revoked/<domain>-<serial>.pem a revoked certificate (its key is deleted)

Keys are written 0600 from the start and never returned to callers or logged:
results carry paths and certificate facts only.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from provision.errors import InputError, StateError
from provision.infra import crypto
from provision.infra.atomic import write_atomic
from provision.portal.model import check_domain
from provision.settings import Settings

#: Validity of a portal certificate: 397 days, the most browsers accept.
CERT_DAYS = 397
#: A certificate with fewer days than this left is renewed by the next deploy.
RENEW_WITHIN_DAYS = 30
CA_DAYS = 3650


@dataclass(frozen=True)
class CaInfo:
    """The CA: where its files are and what its certificate says."""

    cert_path: Path
    key_path: Path
    subject: str
    not_after: datetime
    sha256: str


@dataclass(frozen=True)
class CertStatus:
    """A portal certificate the CA issued: its files and its expiry."""

    domain: str
    cert_path: Path
    chain_path: Path
    key_path: Path
    not_after: datetime
    days_left: float
    serial: int
    #: What the last call did: issued, renewed or kept.
    action: str = "kept"


def whole_days(days: float) -> int:
    """Days a certificate has left, in whole days rounded down: 4.9 is 4.

    The one rounding of days left for every report (portal health, ca list,
    WEB-001), so that a certificate is never "5 days" in one and "4" in another,
    and never shown a day later than it expires.
    """
    return math.floor(days)


def ca_dir(settings: Settings) -> Path:
    return settings.state_path / "ca"


def _paths(settings: Settings) -> tuple[Path, Path]:
    folder = ca_dir(settings)
    return folder / "root.crt", folder / "root.key"


def _portal_dir(settings: Settings, domain: str) -> Path:
    return ca_dir(settings) / "portals" / domain


def init_ca(
    settings: Settings,
    *,
    name: str = "ICT Division Portal CA",
    organisation: str = "ICT Division",
    days: int = CA_DAYS,
) -> CaInfo:
    """Create the CA's key and certificate; refused when one exists (it would orphan every cert)."""
    cert_path, key_path = _paths(settings)
    if cert_path.exists() or key_path.exists():
        raise StateError(
            f"a certificate authority already exists in {cert_path.parent}",
            hint="keep it: every portal certificate chains to it (see provision ca show)",
        )
    if days < 1:
        raise InputError("--days must be at least 1", hint="give the CA's validity in days")
    issued = crypto.new_root_ca(name, organisation, days)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.chmod(0o700)
    crypto.write_secret(key_path, issued.key_pem)
    cert_path.write_bytes(issued.cert_pem)
    return ca_info(settings)


def ca_info(settings: Settings) -> CaInfo:
    """The CA, or a StateError saying how to create it."""
    cert_path, key_path = _paths(settings)
    if not cert_path.is_file() or not key_path.is_file():
        raise StateError(
            f"there is no certificate authority in {cert_path.parent}",
            hint="create one with provision ca init",
        )
    info = crypto.certificate_info(cert_path.read_bytes())
    return CaInfo(cert_path, key_path, info.subject, info.not_after, info.sha256)


def _load(settings: Settings) -> crypto.Issued:
    info = ca_info(settings)
    mode = info.key_path.stat().st_mode & 0o777
    if mode & 0o077:
        raise StateError(
            f"the CA key {info.key_path} is readable by others (mode {mode:o})",
            hint=f"chmod 600 {info.key_path}",
        )
    return crypto.Issued(info.key_path.read_bytes(), info.cert_path.read_bytes())


def cert_status(settings: Settings, domain: str, action: str = "kept") -> CertStatus | None:
    """The CA-issued certificate of `domain`, or None if it has none."""
    folder = _portal_dir(settings, domain)
    cert = folder / "cert.pem"
    if not cert.is_file():
        return None
    info = crypto.certificate_info(cert.read_bytes())
    return CertStatus(
        domain=domain,
        cert_path=cert,
        chain_path=folder / "fullchain.pem",
        key_path=folder / "privkey.pem",
        not_after=info.not_after,
        days_left=info.days_left(),
        serial=info.serial,
        action=action,
    )


# -- the index: what the CA issued and revoked --------------------------------------
#
# One line per certificate, tab-separated, as `openssl ca` keeps it (so that
# openssl can make a CRL from it): status (V valid, R revoked), expiry, revocation
# time and reason (empty while valid), serial in hex, file name ("unknown"), subject.

#: RFC 5280 reasons used here: a certificate replaced by a new one, a portal gone.
SUPERSEDED = "superseded"
CESSATION = "cessationOfOperation"


def index_path(settings: Settings) -> Path:
    return ca_dir(settings) / "index.txt"


def _utctime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%y%m%d%H%M%SZ")


def _serial_hex(serial: int) -> str:
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


@dataclass(frozen=True)
class IndexEntry:
    """One line of the CA's index."""

    status: str
    expires: str
    revoked: str
    serial: str
    subject: str

    def line(self) -> str:
        return "\t".join(
            (self.status, self.expires, self.revoked, self.serial, "unknown", self.subject)
        )


def read_index(settings: Settings) -> list[IndexEntry]:
    """The CA's index (empty for a CA made before it was kept)."""
    path = index_path(settings)
    if not path.is_file():
        return []
    found = []
    for text in path.read_text(encoding="utf-8").splitlines():
        fields = text.split("\t")
        if len(fields) == 6:
            found.append(IndexEntry(fields[0], fields[1], fields[2], fields[3], fields[5]))
    return found


def _write_index(settings: Settings, entries: list[IndexEntry]) -> None:
    write_atomic(index_path(settings), "".join(e.line() + "\n" for e in entries))


def _entry(status: CertStatus) -> IndexEntry:
    return IndexEntry(
        "V", _utctime(status.not_after), "", _serial_hex(status.serial), f"/CN={status.domain}"
    )


def _mark_revoked(settings: Settings, status: CertStatus, reason: str) -> None:
    """Record `status` revoked in the index (added first if the index never had it)."""
    entries = read_index(settings)
    serial = _serial_hex(status.serial)
    if not any(e.serial == serial for e in entries):
        entries.append(_entry(status))
    stamp = f"{_utctime(datetime.now(UTC))},{reason}"
    entries = [
        replace(e, status="R", revoked=stamp) if e.serial == serial and e.status == "V" else e
        for e in entries
    ]
    _write_index(settings, entries)


def _record_issued(settings: Settings, status: CertStatus) -> None:
    entries = read_index(settings)
    entries.append(_entry(status))
    _write_index(settings, entries)


def revoke(settings: Settings, domain: str, *, reason: str = CESSATION) -> CertStatus | None:
    """Revoke `domain`'s certificate: recorded in the index, its key deleted, the
    certificate kept in revoked/. None when the CA issued it none.
    """
    current = cert_status(settings, check_domain(domain))
    if current is None:
        return None
    _mark_revoked(settings, current, reason)
    kept = ca_dir(settings) / "revoked"
    kept.mkdir(mode=0o700, exist_ok=True)
    current.cert_path.replace(kept / f"{domain}-{_serial_hex(current.serial)}.pem")
    shutil.rmtree(current.cert_path.parent)  # the key and chain: never served again
    return current


def issue(settings: Settings, domain: str, *, days: int = CERT_DAYS) -> CertStatus:
    """Issue (or reissue) `domain`'s certificate with a new key; write key, cert and chain."""
    domain = check_domain(domain)
    if days < 1:
        raise InputError("--days must be at least 1", hint="give the certificate's validity")
    ca = _load(settings)
    previous = cert_status(settings, domain)
    issued = crypto.issue_server_certificate(ca, [domain], days)
    folder = _portal_dir(settings, domain)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    crypto.write_secret(folder / "privkey.pem", issued.key_pem)
    for name, data in (
        ("cert.pem", issued.cert_pem),
        ("fullchain.pem", issued.cert_pem + ca.cert_pem),
    ):
        write_atomic(folder / name, data)
    status = cert_status(settings, domain, "issued" if previous is None else "renewed")
    assert status is not None
    if previous is not None:
        _mark_revoked(settings, previous, SUPERSEDED)
    _record_issued(settings, status)
    return status


@dataclass(frozen=True)
class CertPlan:
    """What a deploy will do to one department certificate; planning it changes nothing."""

    domain: str
    #: issue (none yet), renew (expiring, incomplete or of another CA) or keep.
    action: str
    #: Where the chain and key are (or will be, once issued): what nginx is given.
    chain_path: Path
    key_path: Path
    #: The certificate there now, if any.
    current: CertStatus | None


def plan_certificate(
    settings: Settings, domain: str, *, renew_within_days: float = RENEW_WITHIN_DAYS
) -> CertPlan:
    """Whether `domain`'s certificate is to be issued, renewed or kept. Reads only.

    A certificate that no longer chains to the CA (a CA made anew) is renewed,
    as is one whose key or chain is missing.
    """
    folder = _portal_dir(settings, domain)
    ca = _load(settings)  # a missing CA, or a key others can read, is refused while planning
    current = cert_status(settings, domain)
    action = "issue"
    if current is not None:
        chained = crypto.issued_by(current.cert_path.read_bytes(), ca.cert_pem)
        complete = current.key_path.is_file() and current.chain_path.is_file()
        fresh = chained and complete and current.days_left > renew_within_days
        action = "keep" if fresh else "renew"
    return CertPlan(domain, action, folder / "fullchain.pem", folder / "privkey.pem", current)


def ensure(
    settings: Settings,
    domain: str,
    *,
    renew_within_days: float = RENEW_WITHIN_DAYS,
    days: int = CERT_DAYS,
) -> CertStatus:
    """`domain`'s certificate, issued when missing and renewed when `plan_certificate` says so."""
    planned = plan_certificate(settings, domain, renew_within_days=renew_within_days)
    if planned.action == "keep" and planned.current is not None:
        return planned.current
    return issue(settings, domain, days=days)


def issued(settings: Settings) -> list[CertStatus]:
    """Every portal certificate the CA issued, by domain."""
    folder = ca_dir(settings) / "portals"
    if not folder.is_dir():
        return []
    found = [cert_status(settings, d.name) for d in sorted(folder.iterdir()) if d.is_dir()]
    return [s for s in found if s is not None]
