"""The link to the server goes and comes back: the room page says "reconnecting" and clears
it by itself, back in the room at the same view, with no click."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.web.helpers import DemoServer, PageLog, sign_in
from tests.web.viewer_page import RENDERED, go_to, wait_shown


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """Its own server: this test kills it."""
    s = DemoServer(tmp_path_factory.mktemp("reconnect"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_reconnecting_banner_comes_and_clears_by_itself(
        server: DemoServer, open_page: Callable[[PageLog | None], Page]) -> None:
    log = PageLog()
    page = open_page(log)
    page.goto(server.url + "/login")
    sign_in(page)
    page.get_by_test_id("join").first.click()
    page.get_by_test_id("join-without-media").click()
    page.wait_for_selector(RENDERED, timeout=60_000)
    page.get_by_test_id("viewport").click()
    go_to(page, 42)
    banner = page.get_by_test_id("reconnecting")
    expect(banner).to_be_hidden()

    server.kill()
    expect(banner).to_be_visible(timeout=20_000)
    time.sleep(1)  # down a while, as after a crash: the page's first retries find no server
    server.start()
    # Socket.IO retries with backoff; the page joins again with a fresh join token.
    expect(banner).to_be_hidden(timeout=30_000)
    wait_shown(page, 42)
    expect(page.get_by_test_id("members").locator("li")).to_have_count(1)
