"""The department CA (keys 0600, issue, renew inside the window) and portal health over
real TLS: a local HTTPS server with a certificate the CA issued, checked with SNI."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from provision.errors import InputError, StateError
from provision.infra import crypto
from provision.portal import (
    PortalRequest,
    add_portal,
    ca,
    check_portal,
    plan_deploy,
    prepare_deploy,
)
from provision.settings import Settings
from tests.helpers.portal import portal_workspace


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return portal_workspace(tmp_path)


def test_init_writes_a_private_key_and_refuses_to_replace_it(settings: Settings) -> None:
    with pytest.raises(StateError, match="no certificate authority") as missing:
        ca.ca_info(settings)
    assert missing.value.hint == "create one with provision ca init"
    info = ca.init_ca(settings)
    assert info.key_path.stat().st_mode & 0o777 == 0o600
    assert ca.ca_dir(settings).stat().st_mode & 0o777 == 0o700
    assert crypto.certificate_info(info.cert_path.read_bytes()).is_ca
    key_before = info.key_path.read_bytes()
    with pytest.raises(StateError, match="already exists"):
        ca.init_ca(settings)
    assert info.key_path.read_bytes() == key_before


def test_issue_ensure_and_renew_within_the_window(settings: Settings) -> None:
    ca.init_ca(settings)
    root = ca.ca_info(settings).cert_path.read_bytes()
    first = ca.ensure(settings, "a.gov.bd")
    assert first.action == "issued" and 396 < first.days_left <= 397
    assert first.key_path.stat().st_mode & 0o777 == 0o600
    chain = first.chain_path.read_bytes()
    assert chain.count(b"BEGIN CERTIFICATE") == 2 and chain.endswith(root)
    assert crypto.issued_by(first.cert_path.read_bytes(), root)
    assert crypto.key_matches(first.cert_path.read_bytes(), first.key_path.read_bytes())
    assert crypto.certificate_info(chain).dns_names == ("a.gov.bd",)
    assert ca.ensure(settings, "a.gov.bd").action == "kept"

    short = ca.issue(settings, "a.gov.bd", days=10)
    assert short.action == "renewed" and short.days_left < 11
    assert ca.ensure(settings, "a.gov.bd", renew_within_days=5).serial == short.serial
    renewed = ca.ensure(settings, "a.gov.bd", renew_within_days=30)
    assert renewed.action == "renewed" and renewed.serial != short.serial
    assert [s.domain for s in ca.issued(settings)] == ["a.gov.bd"]


def test_a_ca_key_readable_by_others_is_refused(settings: Settings) -> None:
    info = ca.init_ca(settings)
    info.key_path.chmod(0o644)
    with pytest.raises(StateError, match="readable by others"):
        ca.issue(settings, "a.gov.bd")


def test_a_prepared_deploy_issues_certificates_and_passes_paths_never_keys(
    settings: Settings,
) -> None:
    add_portal(
        settings,
        PortalRequest(host="portal01", kind="php", content="sites/a", domain="a.gov.bd"),
    )
    add_portal(
        settings,
        PortalRequest(host="portal02", kind="static", content="sites/b", domain="b.gov.bd"),
    )
    with pytest.raises(StateError, match="no certificate authority"):
        plan_deploy(settings, "portal01")
    ca.init_ca(settings)
    with pytest.raises(InputError, match="no host with the portal_host role"):
        plan_deploy(settings, "fs01")
    deploy = plan_deploy(settings, "portal01")
    assert deploy.plan.hosts == ["portal01"]
    assert deploy.plan.options.tags == ("role::portal_host",)
    assert [(c.domain, c.action) for c in deploy.certificates] == [("a.gov.bd", "issue")]
    assert [c.domain for c in prepare_deploy(settings, deploy)] == ["a.gov.bd"]
    text = deploy.vars_file.read_text()
    assert "PRIVATE KEY" not in text and "BEGIN" not in text
    import yaml

    data = yaml.safe_load(text)["provision_portals"]
    assert list(data) == ["portal01"]
    entry = data["portal01"][0]
    assert entry["user"] == "p-a-gov-bd" and entry["kind"] == "php"
    assert Path(entry["tls_key"]).stat().st_mode & 0o777 == 0o600
    assert Path(entry["content"]).is_dir()


def test_external_certificates_are_checked_against_the_domain(
    settings: Settings, tmp_path: Path
) -> None:
    other = crypto.new_root_ca("Outside CA", "Outside", 30)
    pair = crypto.issue_server_certificate(other, ["ext.gov.bd"], 30)
    (tmp_path / "c.pem").write_bytes(pair.cert_pem)
    crypto.write_secret(tmp_path / "k.pem", pair.key_pem)
    request = PortalRequest(
        host="portal01",
        kind="static",
        content="sites/a",
        domain="ext.gov.bd",
        tls_cert=str(tmp_path / "c.pem"),
        tls_key=str(tmp_path / "k.pem"),
    )
    with pytest.raises(InputError, match=r"not for wrong\.gov\.bd"):
        add_portal(settings, replace(request, domain="wrong.gov.bd"))
    wrong_key = crypto.issue_server_certificate(other, ["ext.gov.bd"], 30)
    crypto.write_secret(tmp_path / "k2.pem", wrong_key.key_pem)
    with pytest.raises(InputError, match="is not the key"):
        add_portal(
            settings, PortalRequest(**{**request.__dict__, "tls_key": str(tmp_path / "k2.pem")})
        )
    added = add_portal(settings, request)
    assert added.tls is not None
    deploy = plan_deploy(settings, "portal01")  # no department CA needed for it
    assert deploy.certificates == []


# -- health over real TLS ------------------------------------------------------------


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def https_server(chain: Path, key: Path) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_health_verifies_chain_name_and_expiry(settings: Settings, tmp_path: Path) -> None:
    info = ca.init_ca(settings)
    cert = ca.issue(settings, "a.gov.bd")
    with https_server(cert.chain_path, cert.key_path) as port:
        good = check_portal("a.gov.bd", "127.0.0.1", ca_file=info.cert_path, port=port)
        assert good.ok and good.http_status == 200 and good.department_ca
        assert good.days_left is not None and 396 < good.days_left <= 397
        # The name the host presents must be the portal's.
        wrong = check_portal("b.gov.bd", "127.0.0.1", ca_file=info.cert_path, port=port)
        assert wrong.status == "untrusted" and "hostname" in wrong.message.lower()
        # Another CA's root does not vouch for it.
        stranger = tmp_path / "stranger.crt"
        stranger.write_bytes(crypto.new_root_ca("Stranger", "X", 10).cert_pem)
        untrusted = check_portal("a.gov.bd", "127.0.0.1", ca_file=stranger, port=port)
        assert untrusted.status == "untrusted" and untrusted.days_left is not None
    short = ca.issue(settings, "a.gov.bd", days=5)
    with https_server(short.chain_path, short.key_path) as port:
        soon = check_portal("a.gov.bd", "127.0.0.1", ca_file=info.cert_path, port=port)
        assert soon.status == "expiring" and not soon.ok
        # 4.99 days: whole days rounded down, as WEB-001 counts them (not "5 days").
        assert 4 < soon.days_left < 5  # type: ignore[operator]
        assert soon.message == "certificate expires in 4 days"
        assert ca.whole_days(soon.days_left) == 4  # type: ignore[arg-type]
    gone = check_portal("a.gov.bd", "127.0.0.1", ca_file=info.cert_path, port=port, timeout=2)
    assert gone.status == "unreachable" and gone.message


def test_an_ip_address_gets_no_certificate(settings: Settings) -> None:
    ca.init_ca(settings)
    for address in ("10.213.6.5", "::1", "[2001:db8::1]"):
        with pytest.raises(InputError, match="is an IP address, not a domain name"):
            ca.issue(settings, address)
    assert ca.issued(settings) == []


def test_the_index_records_every_issue_renewal_and_revocation(settings: Settings) -> None:
    ca.init_ca(settings)
    first = ca.issue(settings, "a.gov.bd")
    [entry] = ca.read_index(settings)
    assert (entry.status, entry.revoked, entry.subject) == ("V", "", "/CN=a.gov.bd")
    assert int(entry.serial, 16) == first.serial
    second = ca.issue(settings, "a.gov.bd")  # the new certificate supersedes the old one
    old, new = ca.read_index(settings)
    assert old.status == "R" and old.revoked.endswith(",superseded")
    assert (new.status, int(new.serial, 16)) == ("V", second.serial)

    revoked = ca.revoke(settings, "A.gov.bd")
    assert revoked is not None and revoked.serial == second.serial
    assert [e.status for e in ca.read_index(settings)] == ["R", "R"]
    assert ca.read_index(settings)[1].revoked.endswith(",cessationOfOperation")
    # The key is gone, the certificate kept apart; nothing is listed as issued any more.
    assert not revoked.key_path.exists() and not revoked.cert_path.parent.exists()
    [kept] = (ca.ca_dir(settings) / "revoked").iterdir()
    assert kept.read_bytes().startswith(b"-----BEGIN CERTIFICATE")
    assert ca.issued(settings) == [] and ca.cert_status(settings, "a.gov.bd") is None
    assert ca.revoke(settings, "a.gov.bd") is None
    # The index is OpenSSL's: six tab-separated fields a line.
    for text in ca.index_path(settings).read_text().splitlines():
        assert len(text.split("\t")) == 6
