"""Two app nodes behind the shipped nginx, sharing PostgreSQL and Redis: two doctors in
headless Chromium see each other; the node carrying their sockets and the room's media is
killed; without a click, both pages reconnect through nginx to the other node and decode
each other's video again.

And one node whose room is spread over its two SFU workers: Chromium's video crosses the
relay between them both ways; the worker carrying one doctor's subscribe connection is
killed, and that doctor's page alone rebuilds its media and decodes again."""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from redis import Redis

from signaling.cluster.subscriber_nodes import HOME
from tests.app_process import AppProcess
from tests.conftest import fresh_database
from tests.deploy.nginx import Nginx, start_nginx
from tests.web.helpers import DEMO_PASSWORD, TRACK_PCS, chromium, sign_in

REDIS_URL = "redis://127.0.0.1:6379/0"
HOST = "doctor.bm@demo.hoichan.vn"
DOCTOR = "doctor.ndi@demo.hoichan.vn"

# Video frames decoded on the peer connections made since the first ``since`` of them.
FRAMES_SINCE = """since => (async () => {
  let frames = 0;
  for (const pc of (window.__pcs || []).slice(since)) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
    });
  }
  return frames;
})()"""


class Deployment:
    def __init__(self, root: Path, database_url: str, names: tuple[str, ...] = ("a", "b"),
                 **env: str) -> None:
        self.prefix = f"test-{secrets.token_hex(4)}"
        env = {"HOICHAN_MEDIA_WORKERS": "0", **env}
        self.nodes = {name: AppProcess(
            root / name, HOICHAN_DATABASE_URL=database_url, HOICHAN_REDIS_URL=REDIS_URL,
            HOICHAN_REDIS_PREFIX=self.prefix, HOICHAN_NODE_ID=name,
            HOICHAN_NODE_TTL_SECONDS="2", HOICHAN_ICE_HOST_ADDRESSES="127.0.0.1",
            HOICHAN_JWT_SECRET="nodes-e2e-secret-" + "y" * 32,
            HOICHAN_TRUSTED_PROXIES="127.0.0.1",
            HOICHAN_DEMO_PASSWORD=DEMO_PASSWORD, **env) for name in names}
        self.nginx: Nginx | None = None

    def start(self) -> None:
        first = next(iter(self.nodes.values()))
        first.run("seed-demo")
        for node in self.nodes.values():
            node.start()

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for node in self.nodes.values():
            node.kill()
        self.forget()

    def subscribe_nodes(self) -> list[str]:
        """Where each member's subscribe connection is (a room spread over workers)."""
        home = self.media_node()
        with Redis.from_url(REDIS_URL, decode_responses=True) as redis:
            keys = list(redis.scan_iter(f"{self.prefix}:room-subscribers:*"))
            return [home if v == HOME else str(v) for key in keys for v in redis.hvals(key)]

    def worker_pid(self, node_id: str) -> int:
        with Redis.from_url(REDIS_URL, decode_responses=True) as redis:
            raw = redis.get(f"{self.prefix}:node:{node_id}")
        assert raw is not None, f"{node_id} sends no heartbeat"
        return int(json.loads(raw)["pid"])

    # Playwright's sync API keeps an event loop running in this thread: plain Redis here.
    def media_node(self) -> str | None:
        with Redis.from_url(REDIS_URL, decode_responses=True) as redis:
            values = redis.hvals(f"{self.prefix}:room-nodes")
        return str(values[0]) if values else None

    def forget(self) -> None:
        with Redis.from_url(REDIS_URL) as redis:
            keys = list(redis.scan_iter(f"{self.prefix}:*"))
            if keys:
                redis.delete(*keys)


@pytest.fixture
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path, fresh_database(request, tmp_path, "postgresql"))
    try:
        d.start()
        d.nginx = start_nginx(tmp_path / "nginx", *(n.port for n in d.nodes.values()))
        yield d
    finally:
        d.stop()


@pytest.fixture
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """One node, two SFU workers; a room's second subscribe connection goes to the worker
    not receiving its publishers."""
    d = Deployment(tmp_path, fresh_database(request, tmp_path, "postgresql"), ("a",),
                   HOICHAN_MEDIA_WORKERS="2", HOICHAN_ROOM_HOME_SUBSCRIBERS="1")
    try:
        d.start()
        yield d
    finally:
        d.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    # The test's nginx has a self-signed certificate.
    with chromium("--ignore-certificate-errors") as b:
        yield b


def enter(page: Page, url: str, email: str) -> None:
    page.add_init_script(TRACK_PCS)
    page.goto(url + "/login")
    sign_in(page, email)
    page.get_by_test_id("join").first.click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=preview-video]')?.srcObject?.active")
    page.get_by_test_id("join-room").click()


def frames_since(page: Page, since: int) -> int:
    return int(page.evaluate(FRAMES_SINCE, since))


def wait_frames(page: Page, since: int, more_than: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while frames_since(page, since) <= more_than:
        assert time.monotonic() < deadline, f"no video decoded within {seconds} s"
        page.wait_for_timeout(250)


def on_air(browser: Browser, url: str) -> tuple[Page, Page]:
    """The host joins, admits a doctor, and both pages decode each other's video."""
    host = browser.new_page(viewport={"width": 1280, "height": 720})
    doctor = browser.new_page(viewport={"width": 1280, "height": 720})
    enter(host, url, HOST)
    expect(host.get_by_test_id("members")).to_contain_text("(you)")
    enter(doctor, url, DOCTOR)
    admit = host.locator("[data-testid=lobby-list] [data-testid=admit]:not([disabled])")
    expect(admit.first).to_be_visible(timeout=20_000)
    admit.first.click()
    for page in (host, doctor):
        wait_frames(page, 0, 10, 40)
    return host, doctor


def test_a_killed_node_s_room_comes_back_on_the_other_by_itself(deployment, browser):
    assert deployment.nginx is not None
    url = deployment.nginx.url
    host, doctor = on_air(browser, url)

    # Both sockets came from 127.0.0.1 to one node, where the room's media was placed.
    victim = deployment.media_node()
    assert victim in deployment.nodes
    before = {p: int(p.evaluate("() => window.__pcs.length")) for p in (host, doctor)}
    killed_at = time.monotonic()
    deployment.nodes[victim].kill()

    for page in (host, doctor):
        expect(page.get_by_test_id("reconnecting")).to_be_visible(timeout=20_000)
    for page in (host, doctor):
        expect(page.get_by_test_id("reconnecting")).to_be_hidden(timeout=30_000)
        # New peer connections, to the other node's SFU, decoding the other doctor.
        wait_frames(page, before[page], 10, 40)
    assert deployment.media_node() not in (None, victim)
    # The bound (seen here: under 2 s, with a 2 s node TTL).
    assert time.monotonic() - killed_at < 10
    expect(host.get_by_test_id("members").locator("li")).to_have_count(2)


def test_a_room_spread_over_two_workers_carries_chromium_video_and_loses_one(workers, browser):
    url = workers.nodes["a"].url
    host, doctor = on_air(browser, url)
    # The host subscribes where the publishers are received; the doctor, who joined
    # second, on the other worker: the host's video reached it through the relay.
    home = workers.media_node()
    assert home in ("a/w0", "a/w1")
    edge = "a/w1" if home == "a/w0" else "a/w0"
    assert sorted(workers.subscribe_nodes()) == sorted([home, edge])

    before = {p: int(p.evaluate("() => window.__pcs.length")) for p in (host, doctor)}
    host_frames = frames_since(host, 0)
    killed_at = time.monotonic()
    os.kill(workers.worker_pid(edge), signal.SIGKILL)
    # The doctor's page builds new connections (media:reset) and decodes the host again.
    wait_frames(doctor, before[doctor], 10, 20)
    assert time.monotonic() - killed_at < 10
    # The host kept its connections and goes on decoding the doctor's new publication.
    wait_frames(host, 0, host_frames + 10, 20)
    assert int(host.evaluate("() => window.__pcs.length")) == before[host]
    assert workers.media_node() == home

