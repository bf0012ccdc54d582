"""A large run's HTML folder opened in headless Chromium: the summary and a district page.

A generated run of 3,000 hosts (five districts) is written as a folder; Chromium
opens the summary and one district page through a proxy that refuses and
records every request. The DOM must hold what the page promises and no request
may leave the page. Load times are printed (pytest -s), never asserted;
benchmarks/report_pages.py measures them for 50,000 hosts. Skipped (with the
reason) where Debian's `chromium` package is not installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provision.reports import write_report
from tests.helpers.chromium import CHROMIUM, MISSING, open_page
from tests.helpers.fleet_reports import district_name, fleet, fleet_run, place_of
from tests.integration.test_report_html import BROWSER_SERVICES, RefusingProxy, request_host

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=MISSING)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HOSTS = 3000
CONTROLS = 30


@pytest.fixture
def proxy() -> Iterator[RefusingProxy]:
    server = RefusingProxy()
    yield server
    server.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pages") / "report"
    return write_report(
        fleet_run(HOSTS, NOW), fleet(HOSTS, CONTROLS, NOW), "html", out, now=NOW, pages=True
    )


def test_the_summary_opens_with_its_tree_and_links(
    folder: Path, proxy: RefusingProxy, tmp_path: Path
) -> None:
    index = folder / "index.html"
    opened = open_page(index, tmp_path / "profile", proxy_port=proxy.port)
    print(f"\nsummary: {index.stat().st_size:,} bytes, opened in {opened.seconds:.2f} s")
    dom = opened.dom
    assert "Compliance summary: production, run 7" in dom
    assert f"<b>{HOSTS}</b>hosts" in dom
    for n in range(1, 5):
        assert f'<a href="district_district_{n:02d}.html">District {n:02d}</a>' in dom
    assert district_name(0) in dom
    assert re.search(r'<tr class="worst-place">', dom)
    assert len(re.findall(r'<tr class="line" id="host-', dom)) == 50  # the worst hosts
    assert "<polyline" in dom and 'id="histogram"' in dom
    assert "Uncaught" not in opened.log, opened.log[-2000:]
    assert [r for r in proxy.requests if request_host(r) not in BROWSER_SERVICES] == []


def test_a_district_page_opens_with_its_hosts_and_evidence(
    folder: Path, proxy: RefusingProxy, tmp_path: Path
) -> None:
    page = folder / "district_district_03.html"
    opened = open_page(page, tmp_path / "profile", proxy_port=proxy.port)
    print(f"\ndistrict page: {page.stat().st_size:,} bytes, opened in {opened.seconds:.2f} s")
    dom = opened.dom
    assert '<a href="index.html">All places</a>' in dom
    hosts = set(re.findall(r'<tr class="line" id="host-([^"]+)"', dom))
    assert hosts == {
        f"host-{n:05d}" for n in range(HOSTS) if place_of(n)["district"] == "District 03"
    }
    assert "Upazila 024" in dom  # the district's upazilas, with their unions
    assert "Evidence of the worst" in dom and "is not as the standard asks" in dom
    assert "Uncaught" not in opened.log, opened.log[-2000:]
    assert [r for r in proxy.requests if request_host(r) not in BROWSER_SERVICES] == []
