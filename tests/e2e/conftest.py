"""Browser tests: the real app on loopback, driven by a real headless Chromium.

Each server is ``voxmill api --mode embedded`` in a subprocess (see :mod:`webapp`) with its own
data directory and the joe voice from ``model-store/``: conversions really synthesize, events
really stream. Chromium is Debian's (``/usr/bin/chromium``; ``make browser`` installs it);
Playwright's own browser downloads are never used.

Screenshots land in ``tests/artifacts/e2e/`` (ignored by git), one per page state a test wants a
person to look at, plus one for every test that fails.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from webapp import API_KEY, ROOT, Server, start_server, stop_server

ARTIFACTS = ROOT / "tests" / "artifacts" / "e2e"
CHROMIUM = os.environ.get("VOXMILL_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def server(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app without API keys."""
    running = start_server(tmp_path_factory.mktemp("e2e-open"), None)
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def keyed_server(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app with ``VOXMILL_API_KEYS=test-key``."""
    running = start_server(tmp_path_factory.mktemp("e2e-keyed"), API_KEY)
    running.api_key = API_KEY
    yield running
    stop_server(running)


# Module scope, not session: Playwright's sync API runs an event loop in the main thread until it
# is stopped, and asyncio tests that run after the browser tests would find it still running.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's)."""
    from playwright.sync_api import sync_playwright

    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run 'make browser'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (failure shots of an earlier run are removed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("FAILED-*.png"):
        stale.unlink()
    return ARTIFACTS


@dataclass
class Tab:
    """A page plus what it did: every request URL, uncaught errors, and screenshots."""

    page: Any
    server: Server
    artifacts: Path
    requests: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self, route: str = "#/") -> None:
        """Load the app at a hash route and wait until its first page has rendered."""
        self.page.goto(f"{self.server.base_url}/{route}")
        self.page.wait_for_selector("main h1, dialog[open]")

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot as ``tests/artifacts/e2e/<name>.png``."""
        path = self.artifacts / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def urls(self) -> list[str]:
        return [r.url for r in self.requests]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def open_tab(
    browser: Any, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Tab]]:
    """``open_tab(server, viewport=DESKTOP)``: a fresh browser context (own storage) on a server.

    After the test: no uncaught JavaScript error happened, no request left loopback (no CDN,
    nothing external), and a failing test leaves a screenshot of each of its tabs.
    """
    tabs: list[tuple[Any, Tab]] = []

    def factory(server: Server, viewport: dict[str, int] | None = None) -> Tab:
        # Reduced motion: no progress-bar animation, so screenshots show the final state.
        context = browser.new_context(
            viewport=viewport or DESKTOP, accept_downloads=True, reduced_motion="reduce"
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        tab = Tab(page, server, artifacts)
        page.on("request", lambda req: tab.requests.append(req))
        page.on("pageerror", lambda error: tab.errors.append(str(error)))
        tabs.append((context, tab))
        return tab

    yield factory
    failed = request.node.stash.get(_FAILED, False)
    for number, (context, tab) in enumerate(tabs):
        if failed:
            tab.shot(f"FAILED-{request.node.name}-{number}")
        context.close()
    for _context, tab in tabs:
        assert not tab.errors, f"uncaught JavaScript errors: {tab.errors}"
        outside = [
            url
            for url in tab.urls()
            if urlsplit(url).scheme not in ("blob", "data")
            and urlsplit(url).hostname != "127.0.0.1"
        ]
        assert not outside, f"requests left loopback: {outside}"


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """``wait_until(condition, timeout=60, what=...)``: poll until truthy, return the value."""

    def wait(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.1)

    return wait
