"""Portal hosting on the lab's portal host, end to end through the product's services.

Three portals (two static, one PHP) deployed by a recorded rollout, served over
HTTPS with certificates from the department CA; each answers the control node
with its own content; the PHP portal's pool user cannot read the other portals'
files, and no published file is readable by all; the host's address and unknown
names get nothing; a second deploy changes nothing; bad input changes nothing on
the host, a new portal nginx refuses included; a certificate near expiry is
renewed; a removed portal comes back from backup with the same checksums, and
its last archive is on the control node. Everything is checked on the host or
over HTTPS.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from provision.errors import InputError
from provision.portal import (
    PortalRequest,
    add_portal,
    backup_portal,
    check_portals,
    https_get,
    list_backups,
    load_register,
    plan_deploy,
    prepare_deploy,
    register_path,
    remove_portal,
    restore_portal,
)
from provision.portal import ca as portal_ca
from provision.rollout import run_rollout
from tests.helpers.lab import Lab
from tests.helpers.portal_lab import HOST, ROOT, Portals, portal_lab

# A module fixture rolls the baseline out over lab hosts first: on a loaded machine
# that alone can take longer than the suite's per-test timeout.
pytestmark = [pytest.mark.lab, pytest.mark.timeout(2400)]

STATIC_A = "gazipur.gov.bd"
STATIC_B = "kaliganj.gazipur.gov.bd"
PHP = "nagari.kaliganj.gazipur.gov.bd"


def write_content(root: Path) -> Path:
    """The three portals' content under `root` (in the workspace: content may come from
    nowhere else), some of it world-writable on purpose."""
    for domain, files in {
        STATIC_A: {"index.html": f"<h1>{STATIC_A}</h1>\n", "about/index.html": "about A\n"},
        STATIC_B: {"index.html": f"<h1>{STATIC_B}</h1>\n"},
        PHP: {
            "index.php": "<?php echo 'php-portal:' . (40 + 2) . ':'"
            " . posix_getpwuid(posix_geteuid())['name'];\n",
            # Tries to read another portal's file: open_basedir must refuse it.
            "peek.php": "<?php $r = @file_get_contents($_GET['f']);"
            " echo $r === false ? 'refused' : 'READ:' . $r;\n",
            "upload.php": "<?php"
            " file_put_contents(__DIR__ . '/../data/note.txt', 'written by php');"
            " echo 'stored';\n",
        },
    }.items():
        for name, text in files.items():
            path = root / domain / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    # Modes on the control node do not travel: the host gets its own.
    (root / STATIC_A / "about").chmod(0o777)
    (root / STATIC_A / "about" / "index.html").chmod(0o666)
    return root


@pytest.fixture(scope="module")
def portals(lab: Lab) -> Iterator[Portals]:
    content = write_content(lab.settings.workspace / "sites" / "portal-lab")
    yield portal_lab(
        lab,
        content,
        ((STATIC_A, "static"), (STATIC_B, "static"), (PHP, "php")),
        # As docs/portals.md shows it: overrides the role's own default (16m).
        {STATIC_A: ("client_max_body_size 64m;",)},
    )


class _Sni(http.client.HTTPSConnection):
    """HTTPS to an address with `domain` as SNI (None: none, as for a bare address)."""

    def __init__(self, address: str, domain: str | None, ca_file: Path | None) -> None:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if ca_file is None:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        super().__init__(address, 443, timeout=60, context=context)
        self._domain = domain
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self._domain)


def post(portals: Portals, domain: str, size: int) -> int:
    """The HTTP status of a POST of `size` bytes to https://domain/."""
    connection = _Sni(portals.address, domain, portals.ca_file)
    try:
        connection.request("POST", "/", body=b"x" * size, headers={"Host": domain})
        return connection.getresponse().status
    finally:
        connection.close()


def test_three_portals_are_served_over_https_with_the_department_ca(portals: Portals) -> None:
    result = portals.deploy()
    assert result.status == "succeeded", result.results
    assert result.results[HOST].outcome == "changed"
    # Each answers the control node with its own content, verified against the CA.
    assert portals.get(STATIC_A) == (200, f"<h1>{STATIC_A}</h1>\n")
    assert portals.get(STATIC_A, "/about/") == (200, "about A\n")
    assert portals.get(STATIC_B) == (200, f"<h1>{STATIC_B}</h1>\n")
    user = load_register(register_path(portals.settings)).find(PHP).user  # type: ignore[union-attr]
    assert portals.get(PHP) == (200, f"php-portal:42:{user}")
    # Not trusted without the department CA: the chain is the CA's, not a public one.
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(portals.address, STATIC_A, ca_file=None)
    # Plain HTTP is redirected to HTTPS; security headers are sent.
    connection = http.client.HTTPConnection(portals.address, 80, timeout=10)
    connection.request("GET", "/x", headers={"Host": STATIC_B})
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://{STATIC_B}/x"
    headers = https_get(portals.address, STATIC_A, ca_file=portals.ca_file).headers
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert "server" not in headers or "/" not in headers["server"]  # no version
    # Keys on the host are root's alone; per-portal logs exist.
    assert portals.sh(f"stat -c '%a %U' /etc/ssl/portals/{PHP}/privkey.pem").split() == [
        "600",
        "root",
    ]
    assert portals.sh(f"ls /var/log/nginx/portals/{STATIC_A}.access.log").strip()
    # The register's client_max_body_size replaces the role's 16m; the others keep it.
    assert post(portals, STATIC_A, 20 * 1024 * 1024) == 405  # not 413: the body was allowed
    assert post(portals, STATIC_B, 20 * 1024 * 1024) == 413
    # Health: every portal ok, chained to the CA, about 397 days left.
    health = {h.domain: h for h in check_portals(portals.settings, HOST)}
    assert set(health) == {STATIC_A, STATIC_B, PHP}
    for h in health.values():
        assert h.ok and h.department_ca and h.http_status == 200, h
        assert h.days_left is not None and 390 < h.days_left <= 397


def test_published_files_are_readable_by_their_portal_only(portals: Portals) -> None:
    user = load_register(register_path(portals.settings)).find(PHP).user  # type: ignore[union-attr]
    for domain, group in ((STATIC_A, "www-data"), (STATIC_B, "www-data"), (PHP, user)):
        htdocs = f"{ROOT}/{domain}/htdocs"
        # Nothing is readable, writable or searchable by all, whatever it was here.
        assert portals.sh(f"find {htdocs} -perm /o=rwx") == "", domain
        assert set(portals.sh(f"find {htdocs} -printf '%u:%g\\n'").split()) == {f"root:{group}"}
    about = f"{ROOT}/{STATIC_A}/htdocs/about"
    assert portals.sh(f"stat -c %a {about} {about}/index.html").split() == ["750", "640"]
    # nginx reads the PHP portal's files through its group (static files are nginx's).
    assert f"{user}:" in portals.sh(f"getent group {user}") and "www-data" in portals.sh(
        f"getent group {user}"
    )


def test_the_hosts_address_and_unknown_names_get_nothing(portals: Portals) -> None:
    # Debian's default site and PHP-FPM's stock www pool (www-data) are gone.
    assert portals.sh("ls /etc/nginx/sites-enabled/") == ""
    assert portals.sh("ls /etc/php/8.2/fpm/pool.d/").split() == [f"{PHP}.conf"]
    assert "www-data" not in portals.sh("ps -o user:32= -C php-fpm8.2 || true")
    # HTTPS to the address (no SNI) or an unknown name: refused before any certificate.
    for name in (None, "unknown.gov.bd"):
        with pytest.raises(ssl.SSLError):
            _Sni(portals.address, name, None).connect()
    # Plain HTTP for the address or an unknown name: closed without an answer.
    for host in (portals.address, "unknown.gov.bd"):
        connection = http.client.HTTPConnection(portals.address, 80, timeout=10)
        connection.request("GET", "/", headers={"Host": host})
        with pytest.raises(http.client.RemoteDisconnected):
            connection.getresponse()
        connection.close()
    assert portals.get(STATIC_A) == (200, f"<h1>{STATIC_A}</h1>\n")


def test_the_php_portal_cannot_read_another_portals_files(portals: Portals) -> None:
    user = load_register(register_path(portals.settings)).find(PHP).user  # type: ignore[union-attr]
    # As the pool's own user, on the host: its own files yes, the others' no.
    portals.sh(f"runuser -u {user} -- cat {ROOT}/{PHP}/htdocs/index.php")
    for other in (f"{ROOT}/{STATIC_A}/htdocs/index.html", f"{ROOT}/{STATIC_B}/htdocs/index.html"):
        out = portals.sh(f"runuser -u {user} -- cat {other} 2>&1 || echo DENIED")
        assert "Permission denied" in out and "DENIED" in out
    out = portals.sh(f"runuser -u {user} -- ls {ROOT}/{STATIC_A} 2>&1 || echo DENIED")
    assert "DENIED" in out
    out = portals.sh(f"runuser -u {user} -- cat /etc/ssl/portals/{PHP}/privkey.pem 2>&1 || true")
    assert "Permission denied" in out
    # Through PHP itself: open_basedir refuses another portal's files.
    status, body = portals.get(PHP, f"/peek.php?f={ROOT}/{STATIC_A}/htdocs/index.html")
    assert (status, body) == (200, "refused")
    status, body = portals.get(PHP, f"/peek.php?f={ROOT}/{PHP}/htdocs/index.php")
    assert body.startswith("READ:")
    # The pool can write its data/ folder, not its code.
    assert portals.get(PHP, "/upload.php") == (200, "stored")
    assert portals.sh(f"cat {ROOT}/{PHP}/data/note.txt") == "written by php"
    out = portals.sh(f"runuser -u {user} -- touch {ROOT}/{PHP}/htdocs/x 2>&1 || echo DENIED")
    assert "DENIED" in out


def test_a_second_deploy_changes_nothing(portals: Portals) -> None:
    result = portals.deploy()
    assert result.status == "succeeded"
    r = result.results[HOST]
    assert (r.outcome, r.changed) == ("ok", 0), r
    preview = portals.deploy(check=True)
    assert preview.results[HOST].outcome == "ok" and preview.results[HOST].changed == 0
    # No key's contents in any run's artifacts, generated variables or the store.
    state = portals.settings.state_path
    for path in [*(state / "runs").rglob("*"), *(state / "portal-runs").rglob("*")]:
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    for db in state.glob("state.db*"):
        assert b"PRIVATE KEY" not in db.read_bytes(), db


def test_bad_input_changes_nothing_and_says_why(portals: Portals) -> None:
    register = register_path(portals.settings)
    before = register.read_bytes()
    request = PortalRequest(host=HOST, kind="static", content=str(portals.content / STATIC_A))
    with pytest.raises(InputError, match="already registered") as dup:
        add_portal(portals.settings, replace(request, domain=STATIC_A.upper()))
    assert dup.value.path == register and dup.value.line is not None
    with pytest.raises(InputError, match="not in the inventory"):
        add_portal(portals.settings, replace(request, domain="new.gov.bd", host="nowhere01"))
    with pytest.raises(InputError, match="does not have the portal_host role"):
        add_portal(portals.settings, replace(request, domain="new.gov.bd", host="dhk-gaz-fs01"))
    with pytest.raises(InputError, match="not a valid domain"):
        add_portal(portals.settings, replace(request, domain="bad_domain..gov"))
    assert register.read_bytes() == before

    # A server block nginx -t refuses: the deploy fails, saying which portal and why,
    # and the host keeps its configuration and keeps serving.
    nginx_before = portals.sh(
        "cd /etc/nginx && find . -type f -print0 | sort -z | xargs -0 sha256sum"
    )
    text = before.decode().replace(
        f"- domain: {STATIC_B}\n",
        f"- domain: {STATIC_B}\n  nginx_directives:\n  - bogus_directive on;\n",
    )
    assert text != before.decode()
    register.write_text(text)
    try:
        result = portals.deploy()
    finally:
        register.write_bytes(before)
    r = result.results[HOST]
    assert r.outcome == "failed"
    assert STATIC_B in (r.message or "") and "unknown directive" in (r.message or ""), r.message
    nginx_after = portals.sh(
        "cd /etc/nginx && find . -type f -print0 | sort -z | xargs -0 sha256sum"
    )
    assert nginx_after == nginx_before
    assert portals.get(STATIC_B) == (200, f"<h1>{STATIC_B}</h1>\n")


def host_state(portals: Portals) -> str:
    """What a portal leaves on the host: folders, certificates, pools, users, groups, nginx."""
    return portals.sh(
        f"ls -a {ROOT} /etc/ssl/portals /etc/php/8.2/fpm/pool.d /etc/nginx/portals.d; "
        "getent passwd | sort; getent group | sort; "
        "cd /etc/nginx && find . -type f -print0 | sort -z | xargs -0 sha256sum"
    )


def test_a_new_portal_nginx_refuses_leaves_nothing_and_leftovers_are_retired(
    portals: Portals,
) -> None:
    refused = "refused.gazipur.gov.bd"
    before = host_state(portals)
    add_portal(
        portals.settings,
        PortalRequest(
            host=HOST,
            kind="php",
            content=str(portals.content / PHP),
            domain=refused,
            nginx_directives=("bogus_directive on;",),
        ),
    )
    try:
        result = portals.deploy()
    finally:
        remove_portal(portals.settings, refused)
    r = result.results[HOST]
    assert r.outcome == "failed"
    assert refused in (r.message or "") and "unknown directive" in (r.message or ""), r.message
    # No folder, key, pool, user or group of it: the host is as it was.
    assert host_state(portals) == before
    assert portals.get(STATIC_B) == (200, f"<h1>{STATIC_B}</h1>\n")

    # What such a portal left behind before (folder, key, pool, user, no block) is
    # retired by the next deploy like any portal the register no longer lists.
    left = "left.gazipur.gov.bd"
    user = load_register(register_path(portals.settings)).find(PHP).user  # type: ignore[union-attr]
    portals.sh(
        f"useradd --system --shell /usr/sbin/nologin --home-dir {ROOT}/{left} p-left && "
        f"install -d -o p-left -g www-data -m 0550 {ROOT}/{left} && "
        f"install -d {ROOT}/{left}/htdocs {ROOT}/{left}/data && "
        f"echo left > {ROOT}/{left}/htdocs/index.html && "
        f"install -d -m 0700 /etc/ssl/portals/{left} && "
        f"cp /etc/ssl/portals/{PHP}/privkey.pem /etc/ssl/portals/{left}/ && "
        f"sed 's/{PHP}/{left}/g; s/{user}/p-left/g' /etc/php/8.2/fpm/pool.d/{PHP}.conf "
        f"> /etc/php/8.2/fpm/pool.d/{left}.conf"
    )
    assert portals.deploy().status == "succeeded"
    assert host_state(portals) == before
    [archive] = list_backups(portals.settings, left)
    assert archive.name.endswith("-retired.tar.gz")
    assert archive.name in portals.sh(f"ls /var/backups/portals/{left}/")


def test_a_certificate_near_expiry_is_renewed_by_the_next_deploy(portals: Portals) -> None:
    short = portal_ca.issue(portals.settings, STATIC_A, days=10)
    result = portals.deploy(renew_within_days=5)  # inside the window: kept and installed
    assert result.status == "succeeded"
    served = https_get(portals.address, STATIC_A, ca_file=portals.ca_file).certificate
    assert served is not None and served.serial == short.serial
    health = {h.domain: h for h in check_portals(portals.settings, HOST)}
    assert health[STATIC_A].status == "expiring" and health[STATIC_A].days_left < 11  # type: ignore[operator]
    # 9.99 days: whole days rounded down, as WEB-001 says it.
    assert health[STATIC_A].message == "certificate expires in 9 days"

    plan = plan_deploy(portals.settings, HOST)  # default window: 30 days
    assert {c.domain: c.action for c in plan.certificates}[STATIC_A] == "renew"
    renewed = {c.domain: c for c in prepare_deploy(portals.settings, plan)}[STATIC_A]
    assert renewed.action == "renewed" and renewed.days_left > 390
    result = run_rollout(portals.settings, plan.plan)
    assert result.status == "succeeded"
    served = https_get(portals.address, STATIC_A, ca_file=portals.ca_file).certificate
    assert served is not None and served.serial == renewed.serial != short.serial
    assert all(h.ok for h in check_portals(portals.settings, HOST))


def test_a_removed_portal_comes_back_from_its_backup(portals: Portals) -> None:
    entry = load_register(register_path(portals.settings)).find(PHP)
    assert entry is not None
    sums = portals.tree_sums(PHP)
    assert "data/note.txt" in sums  # written by the portal itself: only a backup has it
    done = backup_portal(portals.settings, PHP)
    assert done.result.status == "succeeded" and done.archive is not None
    assert done.archive.is_file() and done.archive.name.startswith(f"{PHP}-")
    assert portals.sh(f"ls /var/backups/portals/{PHP}/").split() == [done.archive.name]

    remove_portal(portals.settings, PHP)
    result = portals.deploy()
    assert result.status == "succeeded"
    gone = portals.sh(
        f"ls /etc/nginx/portals.d/ /etc/php/8.2/fpm/pool.d/; "
        f"test -e {ROOT}/{PHP} && echo FOLDER; getent passwd {entry.user} || true"
    )
    assert PHP not in gone and "FOLDER" not in gone and entry.user not in gone
    # The retired portal's archive is on the host and, a copy, on the control node;
    # its certificate is revoked.
    [retired] = [
        p for p in list_backups(portals.settings, PHP) if p.name.endswith("-retired.tar.gz")
    ]
    assert retired.name in portals.sh(f"ls /var/backups/portals/{PHP}/")
    assert portal_ca.cert_status(portals.settings, PHP) is None
    revoked = [e for e in portal_ca.read_index(portals.settings) if e.subject == f"/CN={PHP}"]
    assert revoked and all(e.status == "R" for e in revoked)
    with pytest.raises((ssl.SSLError, OSError)):
        https_get(portals.address, PHP, ca_file=portals.ca_file)
    # Restoring a portal that is not in the register is refused, saying so.
    with pytest.raises(InputError, match="no portal"):
        restore_portal(portals.settings, PHP)

    add_portal(
        portals.settings,
        PortalRequest(host=HOST, kind="php", content=entry.content, domain=PHP),
    )
    assert portals.deploy().status == "succeeded"
    assert "note.txt" not in portals.sh(f"ls {ROOT}/{PHP}/data/")
    restored = restore_portal(portals.settings, PHP)  # the newest: the retired archive
    assert restored.result.status == "succeeded" and restored.archive == retired
    assert portals.tree_sums(PHP) == sums
    assert portals.get(PHP)[1].startswith("php-portal:42:")
