"""Compliance notices, delivered to a real HTTP server and a real (tiny) SMTP server.

Both servers listen on 127.0.0.1 in this process; the webhook and the mail go
over real sockets through urllib and smtplib. What they receive is asserted,
and that the SMTP password is in no message, payload or warning.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from provision.compliance import notify
from provision.compliance.notify import ComplianceNotice, notify_compliance
from provision.infra import crypto
from provision.settings import Settings, load_settings

SMTP_PASSWORD = "smtp-secret-5c1d9e7a"
VAULT_PASSWORD = "vault-pass-notify-81f2"

NOTICE = ComplianceNotice(
    run_id=42,
    new_failures=[("dhk-kal-lab01", "SSH-001"), ("dhk-gaz-fs01", "PKG-002")],
    drifted_hosts=["dhk-kal-lab01", "dhk-gaz-fs01"],
    report_path=Path("/srv/provision/.provision/reports/run-42.html"),
    env="production",
    counts={"hosts": 120, "compliant": 97, "non_compliant": 20, "unreachable": 3},
    worst_districts=[("Gazipur", 0.61), ("Khulna", 0.8)],
    compared_with=41,
)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings(workspace: Path) -> Settings:
    return replace(load_settings(workspace=workspace, environ={}), notify_timeout=2)


# -- a webhook receiver -----------------------------------------------------------------


@dataclass
class Hook:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 204


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.received.append(json.loads(self.rfile.read(length)))
            state.headers.append(dict(self.headers))
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0KEN-in-the-path"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_receives_a_short_json_summary(settings: Settings, hook: Hook) -> None:
    warnings = notify_compliance(replace(settings, notify_webhook=hook.url), NOTICE)
    assert warnings == []
    (body,) = hook.received
    assert hook.headers[0]["Content-Type"] == "application/json"
    assert body["format"] == notify.FORMAT and body["run_id"] == 42
    assert body["new_failures"] == [
        {"host": "dhk-kal-lab01", "control": "SSH-001"},
        {"host": "dhk-gaz-fs01", "control": "PKG-002"},
    ]
    assert body["drifted_hosts"] == ["dhk-kal-lab01", "dhk-gaz-fs01"]
    assert body["counts"]["non_compliant"] == 20
    assert body["worst_districts"][0] == {"district": "Gazipur", "compliant_share": 0.61}
    assert body["report"] == str(NOTICE.report_path)
    assert "drift: 2 controls newly failing on 2 hosts" in body["summary"]
    assert body["event"] == "compliance.drift" and body["repaired"] == []


def test_nothing_is_sent_without_news(settings: Settings, hook: Hook) -> None:
    quiet = ComplianceNotice(run_id=43, counts={"hosts": 4})
    assert notify_compliance(replace(settings, notify_webhook=hook.url), quiet) == []
    assert hook.received == []


def test_a_failing_webhook_is_a_warning_that_hides_the_url_path(
    settings: Settings, hook: Hook
) -> None:
    hook.status = 500
    (warning,) = notify_compliance(replace(settings, notify_webhook=hook.url), NOTICE)
    assert "HTTP 500" in warning and "not delivered" in warning
    assert "T0KEN" not in warning  # a token in the URL's path is not repeated in logs


def test_an_unreachable_or_silent_webhook_is_a_warning_not_a_crash(settings: Settings) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    (refused,) = notify_compliance(
        replace(settings, notify_webhook=f"http://127.0.0.1:{port}/x"), NOTICE
    )
    assert "refused" in refused.lower() and "not delivered" in refused
    # A server that accepts and never answers: the timeout bounds the wait.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x"
        started = time.monotonic()
        (slow,) = notify_compliance(replace(settings, notify_webhook=url, notify_timeout=1), NOTICE)
    assert time.monotonic() - started < 60  # bounded (no timeout would wait for ever)
    assert "no answer within 1s" in slow or "timed out" in slow
    (bad,) = notify_compliance(replace(settings, notify_webhook="file:///etc/passwd"), NOTICE)
    assert "not an http(s) URL" in bad


# -- a tiny SMTP server ---------------------------------------------------------------


@dataclass
class Mailbox:
    port: int = 0
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)
    offer_starttls: bool = False
    accept_password: str = SMTP_PASSWORD


def _smtp_handler(box: Mailbox) -> type[socketserver.StreamRequestHandler]:
    import base64

    class Handler(socketserver.StreamRequestHandler):
        def say(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        def handle(self) -> None:
            self.say("220 test ESMTP")
            sender, recipients = "", []
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                box.transcript.append(line)
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    self.say("250-test")
                    if box.offer_starttls:
                        self.say("250-STARTTLS")
                    self.say("250 AUTH PLAIN LOGIN")
                elif verb == "AUTH":
                    parts = line.split()
                    mechanism = parts[1].upper()
                    first = parts[2] if len(parts) > 2 else ""
                    if mechanism == "PLAIN":
                        if not first:
                            self.say("334 ")
                            first = self.rfile.readline().decode().strip()
                        _zid, user, password = base64.b64decode(first).decode().split("\0")
                    else:  # LOGIN: the user, then the password, each on request
                        if not first:
                            self.say("334 VXNlcm5hbWU6")
                            first = self.rfile.readline().decode().strip()
                        user = base64.b64decode(first).decode()
                        self.say("334 UGFzc3dvcmQ6")
                        password = base64.b64decode(self.rfile.readline().strip()).decode()
                    box.logins.append(user)
                    if password == box.accept_password:
                        self.say("235 ok")
                    else:
                        self.say("535 authentication failed")
                elif verb == "MAIL":
                    sender = line.split(":", 1)[1].strip(" <>")
                    self.say("250 ok")
                elif verb == "RCPT":
                    recipients.append(line.split(":", 1)[1].strip(" <>"))
                    self.say("250 ok")
                elif verb == "DATA":
                    self.say("354 go on")
                    data = b""
                    while True:
                        chunk = self.rfile.readline()
                        if chunk in (b".\r\n", b""):
                            break
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    box.messages.append((sender, recipients, data))
                    self.say("250 queued")
                elif verb == "QUIT":
                    self.say("221 bye")
                    return
                else:
                    self.say("502 not here")

    return Handler


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _smtp_handler(box))
    server.daemon_threads = True
    box.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()


def _mail_settings(settings: Settings, box: Mailbox, password_file: Path) -> Settings:
    return replace(
        settings,
        notify_email_to="ops@example.org, audit@example.org",
        notify_email_from="provision@cn1.example.org",
        smtp_host="127.0.0.1",
        smtp_port=box.port,
        smtp_starttls=False,
        smtp_user="notifier",
        smtp_password_file=str(password_file),
    )


def _password_file(tmp_path: Path) -> Path:
    path = tmp_path / "smtp-password"
    path.write_text(SMTP_PASSWORD + "\n")
    path.chmod(0o600)
    return path


def test_email_is_delivered_with_the_summary_and_report_path(
    settings: Settings, mailbox: Mailbox, tmp_path: Path
) -> None:
    config = _mail_settings(settings, mailbox, _password_file(tmp_path))
    assert notify_compliance(config, NOTICE) == []
    assert mailbox.logins == ["notifier"]
    ((sender, recipients, data),) = mailbox.messages
    assert sender == "provision@cn1.example.org"
    assert recipients == ["ops@example.org", "audit@example.org"]
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert str(message["Subject"]).strip() == (
        "provision compliance run 42 in production: drift: 2 controls newly failing on 2 hosts"
    )
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "dhk-kal-lab01 SSH-001" in text and "Gazipur: 61%" in text
    assert f"report: {NOTICE.report_path}" in text
    # The password went to the server's AUTH, and nowhere into the mail.
    assert SMTP_PASSWORD.encode() not in data


def test_the_smtp_password_can_live_in_the_vault(
    settings: Settings, mailbox: Mailbox, tmp_path: Path
) -> None:
    sealed = tmp_path / "smtp-password.vault"
    sealed.write_bytes(crypto.vault_encrypt(SMTP_PASSWORD.encode() + b"\n", VAULT_PASSWORD))
    vault_pass = tmp_path / "vault-pass"
    vault_pass.write_text(VAULT_PASSWORD + "\n")
    config = replace(_mail_settings(settings, mailbox, sealed), vault_password_file=str(vault_pass))
    assert notify_compliance(config, NOTICE) == []
    assert len(mailbox.messages) == 1
    # Without the vault password it is a warning, and no mail goes out half-logged-in.
    (warning,) = notify_compliance(replace(config, vault_password_file=""), NOTICE)
    assert "vault-encrypted" in warning and len(mailbox.messages) == 1


def test_wrong_password_server_down_and_missing_starttls_are_warnings(
    settings: Settings, mailbox: Mailbox, tmp_path: Path
) -> None:
    config = _mail_settings(settings, mailbox, _password_file(tmp_path))
    mailbox.accept_password = "something-else"
    (refused,) = notify_compliance(config, NOTICE)
    assert "login as notifier refused (535)" in refused
    assert SMTP_PASSWORD not in refused and mailbox.messages == []

    (tls,) = notify_compliance(replace(config, smtp_starttls=True), NOTICE)
    assert "does not offer STARTTLS" in tls and mailbox.messages == []

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    (down,) = notify_compliance(replace(config, smtp_port=port), NOTICE)
    assert "connection refused" in down and "not delivered" in down


def test_both_channels_at_once_and_one_failing_does_not_stop_the_other(
    settings: Settings, mailbox: Mailbox, hook: Hook, tmp_path: Path
) -> None:
    config = replace(
        _mail_settings(settings, mailbox, _password_file(tmp_path)), notify_webhook=hook.url
    )
    hook.status = 503
    (warning,) = notify_compliance(config, NOTICE)
    assert warning.startswith("webhook") and "503" in warning
    assert len(mailbox.messages) == 1 and len(hook.received) == 1


def test_payload_lists_are_bounded(settings: Settings, hook: Hook) -> None:
    many = replace(
        NOTICE,
        new_failures=[(f"h{i:05d}", "SSH-001") for i in range(5000)],
        drifted_hosts=[f"h{i:05d}" for i in range(5000)],
    )
    assert notify_compliance(replace(settings, notify_webhook=hook.url), many) == []
    (body,) = hook.received
    assert len(body["new_failures"]) == notify.LISTED
    assert body["new_failures_total"] == 5000 and body["drifted_hosts_total"] == 5000
