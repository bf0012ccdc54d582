"""Headless Chromium opening a local page: the DOM it built, and how long that took.

Debian's `chromium` package; `CHROMIUM` is None where it is not installed (the
callers skip with the reason). The wall time covers Chromium's start, the
page's parse, layout and script, up to `--virtual-time-budget`; it is printed
by tests and benchmarks, never asserted.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: Why a caller skips when Chromium is missing.
MISSING = "Debian's chromium package is not installed (scripts/setup.sh)"


@dataclass(frozen=True)
class Opened:
    dom: str
    log: str
    seconds: float


def open_page(page: Path, profile: Path, *, proxy_port: int | None = None) -> Opened:
    """Load `page` in headless Chromium and return the DOM after its script ran."""
    if CHROMIUM is None:
        raise RuntimeError(MISSING)
    proxy = (
        [f"--proxy-server=http://127.0.0.1:{proxy_port}", "--proxy-bypass-list=<-loopback>"]
        if proxy_port is not None
        else []
    )
    started = time.perf_counter()
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
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            *proxy,
            "--virtual-time-budget=3000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return Opened(done.stdout, done.stderr, seconds)
