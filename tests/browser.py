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
from collections.abc import Callable, Iterator
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
        if not os.access(wanted, os.X_OK):
            pytest.fail(f"CESAGRAM_CHROMIUM={wanted} is not an executable file")
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


class _Shared:
    """The one browser of the session: test modules import the fixture, each gets this one."""

    users = 0
    browser: Browser | None = None
    stop: Callable[[], None] | None = None


def _start(root: Path) -> tuple[Browser, Callable[[], None]]:
    """Start Chromium and connect Playwright to it; return the browser and how to stop both."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright's Python package is not installed (pip install -e '.[test]')")
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium on this machine: scripts/setup.sh installs Debian's chromium when run as root")
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
        playwright = sync_playwright().start()
        connection = playwright.chromium.connect_over_cdp(endpoint)
    except BaseException:
        _stop(process)
        raise

    def stop() -> None:
        try:
            connection.close()
            playwright.stop()
        finally:
            _stop(process)

    return Browser(connection), stop


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the session, stopped by PID after its last user."""
    if _Shared.browser is None:
        _Shared.browser, _Shared.stop = _start(tmp_path_factory.mktemp("chromium"))
    _Shared.users += 1
    try:
        yield _Shared.browser
    finally:
        _Shared.users -= 1
        if _Shared.users == 0 and _Shared.stop is not None:
            stop, _Shared.browser, _Shared.stop = _Shared.stop, None, None
            stop()
