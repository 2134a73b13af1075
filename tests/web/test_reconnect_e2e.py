"""The link to the server goes and comes back: the room page says "reconnecting" and clears
it by itself, back in the room at the same view, with no click."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import REPO, _free_port
from tests.web.helpers import DEMO_PASSWORD, PageLog
from tests.web.test_viewer_e2e import RENDERED, go_to, sign_in, wait_shown


class Restartable:
    """`hoichan serve` that the test can kill (as a crash or a lost link would) and start."""

    def __init__(self, root: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HOICHAN_")}
        self.env.update(HOICHAN_DATA_DIR=str(root / "var"), HOICHAN_HOST="127.0.0.1",
                        HOICHAN_PORT=str(self.port), HOICHAN_DICOM_PORT="0",
                        HOICHAN_DEMO_PASSWORD=DEMO_PASSWORD)
        self.log = root / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        for step in ("migrate", "seed-demo"):
            done = subprocess.run([sys.executable, "-m", "app.cli", step], cwd=REPO,
                                  env=self.env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], cwd=REPO,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("hoichan serve did not come up:\n" + self.log.read_text()[-3000:])

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restartable]:
    s = Restartable(tmp_path_factory.mktemp("reconnect"))
    s.start()
    try:
        yield s
    finally:
        s.kill()


def test_reconnecting_banner_comes_and_clears_by_itself(
        server: Restartable, open_page: Callable[[PageLog | None], Page]) -> None:
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
    time.sleep(1)
    server.start()
    # Socket.IO retries with backoff; the page joins again with a fresh join token.
    expect(banner).to_be_hidden(timeout=30_000)
    wait_shown(page, 42)
    expect(page.get_by_test_id("members").locator("li")).to_have_count(1)
