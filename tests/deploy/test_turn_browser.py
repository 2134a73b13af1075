"""The browser room through TURN only: headless Chromium, told to use relay candidates and
nothing else, reaches the SFU through coturn with the credentials of its join token. So the
room's peer connections take the join token's ice_servers (and keep their bundle and RTCP
mux policies)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.app_process import AppProcess
from tests.deploy.coturn import Coturn
from tests.web.helpers import DEMO_PASSWORD, chromium, sign_in

HOST = "doctor.bm@demo.hoichan.vn"

# Records the configuration of every peer connection the page makes, and makes each one
# gather relay candidates only: a connection that comes up went through the TURN server.
RELAY_ONLY = """(() => {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.__configs = [];
  function RelayOnly(config) {
    window.__configs.push(JSON.parse(JSON.stringify(config || {})));
    const pc = new Native({...config, iceTransportPolicy: 'relay'});
    window.__pcs.push(pc);
    return pc;
  }
  RelayOnly.prototype = Native.prototype;
  Object.setPrototypeOf(RelayOnly, Native);
  window.RTCPeerConnection = RelayOnly;
})()"""

# The transport of the first connected peer connection: its local candidate's type.
CONNECTED_VIA = """async () => {
  for (const pc of window.__pcs) {
    if (pc.connectionState !== 'connected') continue;
    const report = await pc.getStats();
    for (const s of report.values()) {
      if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) {
        return report.get(s.localCandidateId).candidateType;
      }
    }
  }
  return null;
}"""


@pytest.fixture
def turn_server(coturn: Coturn, tmp_path: Path) -> Iterator[AppProcess]:
    host, port = coturn.address
    server = AppProcess(tmp_path / "app", HOICHAN_DEMO_PASSWORD=DEMO_PASSWORD,
                        HOICHAN_TURN_URLS=f"turn:{host}:{port}",
                        HOICHAN_TURN_SECRET=coturn.secret,
                        HOICHAN_ICE_HOST_ADDRESSES="127.0.0.1")
    server.run("migrate")
    server.run("seed-demo")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1280, "height": 720})


def test_the_room_reaches_the_sfu_through_turn_alone(turn_server, coturn, page):
    page.add_init_script(RELAY_ONLY)
    page.goto(turn_server.url + "/login")
    sign_in(page, HOST)
    page.get_by_test_id("join").first.click()
    expect(page.get_by_test_id("preview")).to_be_visible(timeout=20_000)
    page.get_by_test_id("join-room").click()
    # The host publishes at once; alone in the room, it subscribes to nothing yet.
    page.wait_for_function(
        "() => window.__pcs.some((pc) => pc.connectionState === 'connected')", timeout=30_000)
    assert page.evaluate(CONNECTED_VIA) == "relay"
    for config in page.evaluate("() => window.__configs"):
        assert (config["bundlePolicy"], config["rtcpMuxPolicy"]) == ("max-bundle", "require")
        [server] = config["iceServers"]
        assert server["urls"] == [f"turn:127.0.0.1:{coturn.port}"]
        assert re.fullmatch(r"\d+:\d+", server["username"]) and server["credential"]
