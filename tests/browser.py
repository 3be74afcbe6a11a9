"""A headless Chromium for page tests: the system browser, started and stopped by its PID.

The browser is Debian's ``chromium`` (``scripts/setup.sh`` installs it), started here as a
process of its own with DevTools on a loopback port; Playwright's Python package connects
to it over CDP (nothing is downloaded: no ``playwright install``). Tests that need it skip
with the reason when the package or the browser is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")
_DEVTOOLS = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:\d+/\S+)")
STARTUP_S = 60.0


def chromium_executable() -> str | None:
    """``CESAGRAM_CHROMIUM``, else the first Chromium found on this machine."""
    wanted = os.environ.get("CESAGRAM_CHROMIUM")
    if wanted:
        return wanted
    for name in _CANDIDATES:
        path = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Page:
    """A Playwright page with the console errors and uncaught exceptions it has had."""

    page: Any
    errors: list[str] = field(default_factory=list)


class Browser:
    """Opens pages in one running browser; each page in its own context of the given size."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def open(self, path: Path, *, width: int = 1280, height: int = 800) -> Page:
        context = self.connection.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        opened = Page(page)
        page.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: opened.errors.append(f"uncaught: {error}"))
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        return opened


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the browser and its helpers: its process group, whose id is its PID."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    try:  # helpers (renderer, zygote) that outlived the main process
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the session, stopped by PID at the end."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright's Python package is not installed (pip install -e '.[test]')")
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium on this machine: scripts/setup.sh installs Debian's chromium when run as root")
    root = tmp_path_factory.mktemp("chromium")
    log = root / "chromium.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--no-sandbox",  # tests run as root in CI
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={root / 'profile'}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_S
        endpoint = None
        while endpoint is None:
            found = _DEVTOOLS.search(log.read_text(errors="replace"))
            if found:
                endpoint = found.group(1)
            elif process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium ({executable}) did not start: {log.read_text(errors='replace')[-2000:]}")
            else:
                time.sleep(0.1)
        with sync_playwright() as playwright:
            connection = playwright.chromium.connect_over_cdp(endpoint)
            try:
                yield Browser(connection)
            finally:
                connection.close()
    finally:
        _stop(process)
