"""Tell people about a compliance run that found new failures or drift.

Two channels, each used when configured in provision.yml (or PROVISION_*):

* a **webhook**: an HTTP(S) POST of a small JSON document (`notify_webhook`);
* **email** through an SMTP server (`notify_email_to`, `smtp_host`, `smtp_port`,
  `smtp_starttls`, `smtp_user`, `smtp_password_file`).

What is sent is a summary: counts, the worst districts, what changed in each
direction (controls newly failing and controls repaired, as host and control),
the hosts with a newly failing control, and where the report is. Each host is
compared with its own last evidence (see provision.compliance.drift). A notice
goes out when something changed in either direction; only newly failing
controls are drift (event `compliance.drift`); a notice of repairs alone says
so (event `compliance.repaired`). Never a
password, an evidence value or a variable: nothing a host or a vault holds.
The SMTP password is read from its file (plain, vault-encrypted, or a client
script) at sending time, and appears in no message, warning or log.

A channel that fails (server down, refused, timed out) gives a warning line,
never an exception: the run's own result matters more than its notice.

    warnings = notify_compliance(settings, ComplianceNotice(run_id=12, ...))
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from provision.access import secrets
from provision.errors import ProvisionError
from provision.infra import crypto
from provision.settings import Settings

#: The version of the webhook's JSON document; bumped on any incompatible change.
#: 2: `repaired` added, `drifted_hosts` holds only hosts with a newly failing
#: control, and `event` is compliance.repaired when nothing got worse.
FORMAT = 2
#: At most this many new failures and drifted hosts are listed; the rest are counted.
LISTED = 50


@dataclass(frozen=True)
class ComplianceNotice:
    """What a compliance run has to tell: built by `compliance run`, sent by `notify_compliance`."""

    run_id: int
    #: (host, control id) pairs that fail (or error, or did not report) now and did
    #: not in the host's last evidence: drift, the worse direction.
    new_failures: Sequence[tuple[str, str]] = ()
    #: Hosts with a newly failing control.
    drifted_hosts: Sequence[str] = ()
    #: (host, control id) pairs that were failing and pass now: the better direction.
    repaired: Sequence[tuple[str, str]] = ()
    #: The report written by the run, if one was.
    report_path: Path | None = None
    env: str = ""
    #: Counts of the run, e.g. {"hosts": 120, "compliant": 97, "non_compliant": 20,
    #: "unreachable": 3}; shown as they are.
    counts: Mapping[str, int] = field(default_factory=dict)
    #: The worst districts first: (district, share of its hosts fully compliant, 0..1).
    worst_districts: Sequence[tuple[str, float]] = ()
    #: The newest run the hosts were compared with, when there was one.
    compared_with: int | None = None

    @property
    def newsworthy(self) -> bool:
        """A control that changed direction (newly failing, or repaired) is worth a message."""
        return bool(self.new_failures or self.repaired)

    @property
    def event(self) -> str:
        """compliance.drift when something got worse; compliance.repaired for repairs only."""
        return "compliance.drift" if self.new_failures else "compliance.repaired"

    def subject(self) -> str:
        parts = []
        if self.new_failures:
            hosts = len({h for h, _ in self.new_failures})
            parts.append(
                f"drift: {len(self.new_failures)} controls newly failing on {_hosts(hosts)}"
            )
        if self.repaired:
            hosts = len({h for h, _ in self.repaired})
            parts.append(f"{len(self.repaired)} controls repaired on {_hosts(hosts)}")
        if self.repaired and not self.new_failures:
            parts.append("nothing newly failing")
        where = f" in {self.env}" if self.env else ""
        return f"provision compliance run {self.run_id}{where}: " + ", ".join(parts or ["no news"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "event": self.event,
            "run_id": self.run_id,
            "compared_with": self.compared_with,
            "env": self.env,
            "node": socket.gethostname(),
            "summary": self.subject(),
            "counts": dict(self.counts),
            "worst_districts": [
                {"district": d, "compliant_share": round(share, 4)}
                for d, share in self.worst_districts[:5]
            ],
            "new_failures": [
                {"host": h, "control": c} for h, c in list(self.new_failures)[:LISTED]
            ],
            "new_failures_total": len(self.new_failures),
            "drifted_hosts": list(self.drifted_hosts)[:LISTED],
            "drifted_hosts_total": len(self.drifted_hosts),
            "repaired": [{"host": h, "control": c} for h, c in list(self.repaired)[:LISTED]],
            "repaired_total": len(self.repaired),
            "report": str(self.report_path) if self.report_path else None,
        }

    def text(self) -> str:
        """The plain-text body of the mail."""
        lines = [self.subject(), ""]
        if self.counts:
            lines.append("counts: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()))
        if self.compared_with is not None:
            lines.append(
                f"each host compared with its last evidence (newest: run {self.compared_with})"
            )
        if self.worst_districts:
            lines += ["", "worst districts (share of hosts fully compliant):"]
            lines += [f"  {d}: {share:.0%}" for d, share in self.worst_districts[:5]]
        for label, pairs in (
            ("newly failing (worse)", self.new_failures),
            ("repaired (better)", self.repaired),
        ):
            if pairs:
                lines += ["", f"{label} ({len(pairs)}):"]
                lines += [f"  {h} {c}" for h, c in list(pairs)[:LISTED]]
                if len(pairs) > LISTED:
                    lines.append(f"  … and {len(pairs) - LISTED} more")
        lines.append("")
        if self.report_path:
            lines.append(f"report: {self.report_path}")
        lines.append(f"details: provision compliance drift --run {self.run_id}")
        return "\n".join(lines) + "\n"


def _hosts(n: int) -> str:
    return f"{n} host" + ("" if n == 1 else "s")


def notify_compliance(settings: Settings, summary: ComplianceNotice) -> list[str]:
    """Send `summary` to every configured channel; return a warning per channel that failed.

    Nothing is sent when the notice has no news (nothing newly failing or repaired) or no
    channel is configured; an empty list means every configured channel took it.
    """
    if not summary.newsworthy:
        return []
    warnings = []
    if settings.notify_webhook:
        problem = send_webhook(settings.notify_webhook, summary, timeout=settings.notify_timeout)
        if problem:
            warnings.append(problem)
    if settings.notify_email_to:
        problem = send_email(settings, summary)
        if problem:
            warnings.append(problem)
    return warnings


def _shown_url(url: str) -> str:
    """The URL without what may be a secret (user info, path, query): scheme://host:port."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def send_webhook(url: str, summary: ComplianceNotice, *, timeout: float = 10) -> str | None:
    """POST the notice as JSON; None when the endpoint answered 2xx, else a warning line."""
    shown = _shown_url(url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return f"webhook {shown}: not an http(s) URL; notice not sent (fix notify_webhook)"
    body = json.dumps(summary.as_dict(), sort_keys=True).encode()
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "provision-notify"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only, checked above
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"webhook {shown}: answered HTTP {exc.code}; notice not delivered"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError | socket.timeout):
            reason = f"no answer within {timeout:g}s"
        return f"webhook {shown}: {reason}; notice not delivered"
    if not 200 <= status < 300:
        return f"webhook {shown}: answered HTTP {status}; notice not delivered"
    return None


def smtp_password(settings: Settings) -> str | None:
    """The SMTP password from `smtp_password_file` (plain, vaulted or a client script)."""
    if not settings.smtp_password_file:
        return None
    path = Path(settings.smtp_password_file).expanduser()
    if not path.is_absolute():
        path = settings.workspace / path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProvisionError(f"cannot read smtp_password_file: {exc.strerror}", path=path) from None
    if crypto.is_vault(data):
        source = secrets.configured_source(settings)
        if source is None:
            raise ProvisionError(
                "smtp_password_file is vault-encrypted but no vault_password_file is set",
                path=path,
            )
        plain = secrets.view(path, secrets.read_password(source)).decode()
        password = plain.splitlines()[0].strip() if plain.strip() else ""
        if not password:
            raise ProvisionError("smtp_password_file is empty", path=path)
        return password
    return secrets.read_password(path)


def send_email(settings: Settings, summary: ComplianceNotice) -> str | None:
    """Mail the notice to `notify_email_to`; None when the server took it, else a warning."""
    recipients = [r.strip() for r in settings.notify_email_to.split(",") if r.strip()]
    server = f"{settings.smtp_host or '?'}:{settings.smtp_port}"
    if not settings.smtp_host:
        return "email: notify_email_to is set but smtp_host is not; notice not sent"
    sender = settings.notify_email_from or f"provision@{socket.getfqdn()}"
    message = EmailMessage()
    message["Subject"] = summary.subject()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=socket.getfqdn())
    message.set_content(summary.text())
    message.add_attachment(
        json.dumps(summary.as_dict(), indent=1, sort_keys=True).encode(),
        maintype="application",
        subtype="json",
        filename=f"compliance-run-{summary.run_id}.json",
    )
    try:
        password = smtp_password(settings)
    except ProvisionError as exc:
        return f"email via {server}: {exc}; notice not sent"
    timeout = settings.notify_timeout
    try:
        if settings.smtp_port == 465:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=timeout,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        with client:
            client.ehlo()
            if settings.smtp_starttls and settings.smtp_port != 465:
                if not client.has_extn("starttls"):
                    return (
                        f"email via {server}: the server does not offer STARTTLS; notice not "
                        "sent (set smtp_starttls: false only for a server on a trusted link)"
                    )
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if settings.smtp_user:
                client.login(settings.smtp_user, password or "")
            refused = client.send_message(message, from_addr=sender, to_addrs=recipients)
    except smtplib.SMTPAuthenticationError as exc:
        return f"email via {server}: login as {settings.smtp_user} refused ({exc.smtp_code})"
    except smtplib.SMTPException as exc:
        return f"email via {server}: {_smtp_reason(exc)}; notice not delivered"
    except (OSError, ssl.SSLError) as exc:
        reason: Any = exc
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {timeout}s"
        elif isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        return f"email via {server}: {reason}; notice not delivered"
    finally:
        password = None
    if refused:
        return f"email via {server}: refused for " + ", ".join(sorted(refused))
    return None


def _smtp_reason(exc: smtplib.SMTPException) -> str:
    code = getattr(exc, "smtp_code", None)
    text = getattr(exc, "smtp_error", b"")
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    if code:
        return f"the server answered {code} {str(text).strip()}"
    return str(exc) or type(exc).__name__


__all__ = [
    "FORMAT",
    "ComplianceNotice",
    "notify_compliance",
    "send_email",
    "send_webhook",
    "smtp_password",
]
