"""End-to-end fixtures: the real server as `make run` starts it (migrate, seed-demo, serve, in
a temporary data directory on a free port), serving the built frontend, and Debian's
Chromium driven by Playwright. A failing test leaves a screenshot and the page's console in
tmp/artifacts/ (or $HOICHAN_TEST_ARTIFACTS)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from playwright.sync_api import Error as PlaywrightError

from tests.app_process import REPO
from tests.web.helpers import DIST, DemoServer, PageLog, chromium

ARTIFACTS = Path(os.environ.get("HOICHAN_TEST_ARTIFACTS", REPO / "tmp" / "artifacts"))


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    if not (DIST / "index.html").is_file():
        pytest.fail("frontend/dist is not built: run `make frontend` (make test does it)")
    server = DemoServer(tmp_path_factory.mktemp("e2e-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Per module: Playwright's sync API keeps an event loop running while it lives, and the
# asyncio tests of other modules (test_static.py) need none running.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                               call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Keeps each phase's report on the test item, for the page fixtures to see a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def page_log() -> PageLog:
    """The console of the `page` fixture's page."""
    return PageLog()


@pytest.fixture
def open_page(browser: Browser, request: pytest.FixtureRequest
              ) -> Iterator[Callable[[PageLog | None], Page]]:
    """Opens pages, each in a fresh browser context (own storage, as another user's browser)
    at 1280x720. On failure, each page's screenshot and console go to the artifacts."""
    opened: list[tuple[BrowserContext, Page, PageLog]] = []

    def open_one(log: PageLog | None = None) -> Page:
        log = log or PageLog()
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        pg = context.new_page()
        pg.set_default_timeout(20_000)
        pg.on("console", log.on_console)
        pg.on("pageerror", lambda exc: log.errors.append(f"pageerror: {exc}"))
        opened.append((context, pg, log))
        return pg

    try:
        yield open_one
    finally:
        report = getattr(request.node, "rep_call", None)
        failed = report is not None and report.failed
        for n, (context, pg, log) in enumerate(opened):
            if failed:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:] + f"-{n}"
                try:
                    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
                except Exception as exc:  # the page may be gone; keep the console anyway
                    log.errors.append(f"(screenshot failed: {exc})")
                (ARTIFACTS / f"{name}.console.txt").write_text(
                    "\n".join(log.console + log.errors) + "\n")
            leave_room(pg)
            context.close()


def leave_room(pg: Page) -> None:
    """Leaves the room a page is in, as its user would. Closing the page alone would keep
    its participant in the room for the reconnect grace, and the next test on the shared
    demo server would find that user still present (a failure here cascading there)."""
    with contextlib.suppress(PlaywrightError):
        leave = pg.locator("[data-testid=leave]")
        if leave.count() and leave.is_enabled():
            leave.click(timeout=2_000)
            pg.wait_for_url(lambda url: not url.endswith("/room"), timeout=5_000)


@pytest.fixture
def page(open_page: Callable[[PageLog | None], Page], page_log: PageLog) -> Page:
    return open_page(page_log)
