"""The HTML compliance report opened in headless Chromium: what is on the page, and no fetch.

Chromium loads the file with every request sent to a local proxy that records
it and refuses it; the report must send none. A control page with one external
image proves the proxy would have seen a fetch. Skipped (with the reason) where
Debian's `chromium` package is not installed.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from provision.model.compliance.model import ControlResult, HostReport
from provision.reports import write_report
from tests.helpers.compliance_samples import NOW, RUN, sample_history, sample_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: Chromium's own services (component updates, network time, sign-in): it calls them
#: whatever page it shows, flags or not. Only these exact hosts are not the page's.
BROWSER_SERVICES = frozenset(
    {
        "update.googleapis.com",
        "accounts.google.com",
        "clients1.google.com",
        "clients2.google.com",
        "clientservices.googleapis.com",
        "safebrowsing.googleapis.com",
        "optimizationguide-pa.googleapis.com",
        "content-autofill.googleapis.com",
        "redirector.gvt1.com",
        "edgedl.me.gvt1.com",
    }
)

#: Flags that keep Chromium's own traffic down (what is left is BROWSER_SERVICES).
QUIET = (
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater",
    "--disable-client-side-phishing-detection",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-pings",
    "--disable-domain-reliability",
    "--safebrowsing-disable-auto-update",
    "--disable-breakpad",
    "--no-default-browser-check",
    "--disable-field-trial-config",
)


def request_host(line: str) -> str:
    """The host a proxied request line goes to: `CONNECT h:443 …` or `GET http://h/… …`."""
    parts = line.split()
    target = parts[1] if len(parts) > 1 else ""
    if "://" in target:
        target = target.split("://", 1)[1].split("/", 1)[0]
    return target.rsplit(":", 1)[0] if ":" in target else target


pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium package is not installed (scripts/setup.sh)"
)


class RefusingProxy:
    """An HTTP proxy on 127.0.0.1 that writes down each request line and answers 403.

    Each connection is read on a thread of its own: Chromium opens connections
    ahead of need (preconnects) that may stay silent until it exits, and one
    silent connection must not hide the next one's request. A connection closed
    without sending a line asked for nothing and is not a request; one still
    silent after a minute is written down as unreadable.
    """

    def __init__(self) -> None:
        self._requests: list[str] = []
        self._handlers: list[threading.Thread] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[str]:
        """The request lines so far, once every connection accepted has been read."""
        for handler in list(self._handlers):
            handler.join(timeout=90)
        return list(self._requests)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            handler = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            self._handlers.append(handler)
            handler.start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(60)
            try:
                data = conn.recv(4096)
            except OSError:
                self._requests.append("(unreadable)")
                return
            if not data:
                return  # closed without a request: a preconnect, nothing fetched
            self._requests.append(data.decode("latin-1").split("\r\n", 1)[0])
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()


@pytest.fixture
def proxy() -> Iterator[RefusingProxy]:
    server = RefusingProxy()
    yield server
    server.close()


def _chromium(page: Path, proxy: RefusingProxy, profile: Path, *extra: str) -> tuple[str, str]:
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{proxy.port}",
            "--proxy-bypass-list=<-loopback>",
            "--virtual-time-budget=3000",
            *QUIET,
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def _fleet() -> list[HostReport]:
    """The four sample hosts plus 60 more in other districts, some failing."""
    reports = sample_reports()
    base = reports[0]
    for i in range(60):
        district = ("Bogura", "Sylhet", "Rangpur")[i % 3]
        place = {
            "division": {"Bogura": "Rajshahi", "Sylhet": "Sylhet", "Rangpur": "Rangpur"}[district],
            "district": district,
            "upazila": f"{district} Sadar",
            "union": f"Union {i % 4}",
            "site": f"{district[:3].upper()}-{i:03d}",
        }
        status = "fail" if i % 7 == 0 else "pass"
        results = (*base.results[:2], ControlResult("PKG-002", status, "medium"))
        reports.append(
            replace(base, host=f"{district.lower()}-{i:03d}", place=place, results=results)
        )
    return reports


def test_the_page_shows_the_tree_failures_and_scores_and_fetches_nothing(
    tmp_path: Path, proxy: RefusingProxy
) -> None:
    page = write_report(
        RUN,
        iter(_fleet()),
        "html",
        tmp_path / "report.html",
        by="upazila",
        history=sample_history(),
        now=NOW,
    )
    dom, log = _chromium(page, proxy, tmp_path / "profile", "--dump-dom")
    # The DOM after Chromium parsed the page and ran its script.
    for district in ("Gazipur", "Jashore", "Bogura", "Sylhet", "Rangpur"):
        assert district in dom, district
    assert "Chougachha" in dom  # an upazila: the tree goes down to --by
    assert re.search(r'data-host="gaz-003-lab02"', dom)
    assert "SSH-001" in dom and "critical: SSH-001" in dom
    assert "permitrootlogin" in dom  # expected vs actual evidence
    assert "50.0 %" in dom  # gaz-003-lab02's score
    assert "expired waiver W-000" in dom
    assert "<svg" in dom and "<polyline" in dom  # the charts and the trend
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "Uncaught" not in log, log[-2000:]
    shot = tmp_path / "report.png"
    _chromium(page, proxy, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.stat().st_size > 10_000
    page_requests = [r for r in proxy.requests if request_host(r) not in BROWSER_SERVICES]
    assert page_requests == []
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)


def test_the_proxy_would_see_a_fetch(tmp_path: Path, proxy: RefusingProxy) -> None:
    """The control: the same page with one external image does reach the proxy."""
    page = write_report(RUN, iter(sample_reports()), "html", tmp_path / "r.html", now=NOW)
    leaky = tmp_path / "leaky.html"
    leaky.write_text(
        page.read_text(encoding="utf-8").replace(
            "</main>", '<img src="http://reports.example.invalid/logo.png"></main>'
        ),
        encoding="utf-8",
    )
    _chromium(leaky, proxy, tmp_path / "profile", "--dump-dom")
    hosts = {request_host(r) for r in proxy.requests}
    assert "reports.example.invalid" in hosts - BROWSER_SERVICES
