"""What the browser tests share besides fixtures (and what bench/room.py drives the same
way): Debian's Chromium, the demo server, signing in and entering the room, the API."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.app_process import REPO, AppProcess
from tests.web.viewer_page import RENDERED

# Password of every demo account on the test server (HOICHAN_DEMO_PASSWORD).
DEMO_PASSWORD = "e2e-demo-password-1"
HOST = "doctor.bm@demo.hoichan.vn"  # the central expert, host of the demo consultation

# A loaded 2-core machine (CI, or tests beside other work) needs more than Playwright's 5 s
# for what a browser shows after a round trip through the server.
expect.set_options(timeout=15_000)

DIST = REPO / "frontend" / "dist"
CHROMIUM = "/usr/bin/chromium"
# notes/browser-webrtc.md: what Debian's Chromium needs here, headless as root.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

# Every peer connection the page makes, for getStats() from the test.
TRACK_PCS = """(() => {
  const Native = window.RTCPeerConnection;
  const pcs = [];
  window.__pcs = pcs;
  function Tracked(...args) { const pc = new Native(...args); pcs.push(pc); return pc; }
  Tracked.prototype = Native.prototype;
  Object.setPrototypeOf(Tracked, Native);
  window.RTCPeerConnection = Tracked;
  // 320x240 at most: four pages encode and decode on one small machine.
  const md = navigator.mediaDevices;
  if (md && md.getUserMedia) {
    const open = md.getUserMedia.bind(md);
    md.getUserMedia = (c) => open(c && c.video
      ? {...c, video: {...(typeof c.video === 'object' ? c.video : {}),
                        width: {ideal: 320}, height: {ideal: 240}, frameRate: {ideal: 15}}}
      : c);
  }
})()"""


@contextmanager
def chromium(*extra_flags: str) -> Iterator[Browser]:
    """Debian's Chromium, headless, with the flags WebRTC needs here."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=[*CHROMIUM_FLAGS, *extra_flags])
        try:
            yield b
        finally:
            b.close()


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


def sign_in(page: Page, email: str = HOST) -> None:
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")


def enter_demo_room(page: Page, server: AppProcess, email: str = HOST, room: str | None = None,
                    host: Page | None = None, ready: str = RENDERED,
                    seconds: float = 60) -> str:
    """Signed in as ``email``: into the demo consultation's room (from the home page's join
    button, or at ``room``'s address once the home page is up), admitted by ``host`` if it
    waits in the lobby, until ``ready`` shows (by default: the viewer has rendered). The
    room's address."""
    page.goto(server.url + "/login")
    sign_in(page, email)
    if room is None:
        page.get_by_test_id("join").first.click()
    else:
        page.wait_for_selector("[data-testid=consultation]")
        page.goto(room)
    enter_room(page, ready, host, seconds)
    return page.url


def api(server: DemoServer, method: str, path: str, token: str | None = None,
        body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def token(server: DemoServer, email: str) -> str:
    status, body = api(server, "POST", "/api/auth/login",
                       body={"email": email, "password": DEMO_PASSWORD})
    assert status == 200, body
    return str(body["access_token"])
