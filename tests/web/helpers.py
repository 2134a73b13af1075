"""What the browser tests share besides fixtures."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page

from tests.app_process import AppProcess

# Password of every demo account on the test server (HOICHAN_DEMO_PASSWORD).
DEMO_PASSWORD = "e2e-demo-password-1"


class DemoServer(AppProcess):
    """`hoichan serve` as `make run` starts it: migrate, seed-demo, serve."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, HOICHAN_DEMO_PASSWORD=DEMO_PASSWORD)
        self.run("migrate")
        self.run("seed-demo")


@dataclass
class PageLog:
    """What the page said: console errors and uncaught exceptions."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    def problems(self) -> list[str]:
        return self.errors + [m for m in self.console if m.startswith("error:")]


def enter_room(page: Page, ready: str, host: Page | None = None, seconds: float = 60) -> None:
    """Past the device preview without camera and microphone and, if the page waits in the
    lobby, admitted by `host`; until `ready` (a selector) shows."""
    deadline = time.monotonic() + seconds
    admitted = False
    while time.monotonic() < deadline:
        page.wait_for_selector(
            f"{ready}, [data-testid=lobby], [data-testid=join-without-media]",
            timeout=seconds * 1000)
        if page.locator(ready).count():
            return
        skip = page.get_by_test_id("join-without-media")
        if skip.count() and skip.is_visible():
            skip.click()
        elif host is not None and not admitted and page.get_by_test_id("lobby").count():
            admit = host.get_by_test_id("lobby-list").get_by_test_id("admit")
            if admit.count():
                admit.first.click()
                admitted = True
        page.wait_for_timeout(100)
    page.wait_for_selector(ready, timeout=1)
