"""How the viewer's frames reach the screen, in headless Chromium against the real server:
compressed frames decoded alike in every transfer syntax, and in the shared room a follower
on a weak link loading the host's slice ahead of its prefetch, with a preview first.

A server of its own: the room's shared view and an extra series (the demo CT's slices stored
as RLE) must not leak into the other browser tests, which expect the demo case alone."""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from playwright.sync_api import Page, Request, Route, expect
from pydicom.uid import RLELossless, generate_uid

from tests.web.helpers import DEMO_PASSWORD, DemoServer, PageLog, enter_room

HOST = "doctor.bm@demo.hoichan.vn"
FOLLOWER = "doctor.tbi@demo.hoichan.vn"
SLICES = 200
RENDERED = "[data-testid=viewer][data-rendered='1']"
RLE_SLICES = 4
RLE_SERIES_NUMBER = 99

HTJ2K = "1.2.840.10008.1.2.4.201"
JPEG_LS = "1.2.840.10008.1.2.4.80"
J2K = "1.2.840.10008.1.2.4.90"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"
# Mirrors frontend/src/viewer/loadOrder.ts: prefetch and wanted-slice requests in flight.
MOST_FRAME_REQUESTS = 2 + 2

# A weak link for the follower (Chromium's own throttling): 2 Mbit/s, 150 ms.
WEAK_LINK = {"offline": False, "latency": 150, "downloadThroughput": 250_000,
             "uploadThroughput": 250_000}

# What Cornerstone holds for a frame: its length and a digest of its values.
PIXELS = """async ([index, fresh]) => {
  const im = window.hoichanImaging;
  const el = document.querySelector('[data-testid=viewport]');
  const imageId = im.getEnabledElement(el).viewport.getImageIds()[index];
  const image = fresh ? await im.imageLoader.loadImage(imageId, {ignoreCache: true})
                      : im.cache.getImage(imageId);
  const px = image.getPixelData();
  let digest = 0, sum = 0;
  for (let i = 0; i < px.length; i++) {
    digest = (digest * 31 + (px[i] | 0)) >>> 0;
    sum += px[i];
  }
  return {length: px.length, digest, sum, syntax: image.transferSyntaxUID};
}"""

LIT = """() => {
  const c = document.querySelector('[data-testid=viewport] canvas');
  if (!c || !c.width) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 40) lit++;
  return lit / (d.length / 4);
}"""


def api(server: DemoServer, method: str, path: str, body: bytes, headers: dict[str, str]
        ) -> tuple[int, Any]:
    req = urllib.request.Request(server.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def store_rle_copy(server: DemoServer) -> None:
    """A few demo CT slices again, stored RLE-compressed as one more series of the study."""
    status, body = api(server, "POST", "/api/auth/login",
                       json.dumps({"email": "coordinator@demo.hoichan.vn",
                                   "password": DEMO_PASSWORD}).encode(),
                       {"Content-Type": "application/json"})
    assert status == 200, body
    token = body["access_token"]
    files = sorted((server.data_dir / "dicom").rglob("*.dcm"))
    assert len(files) >= SLICES, len(files)
    series_uid = generate_uid()
    boundary = uuid.uuid4().hex
    parts = []
    for path in sorted(files, key=lambda p: int(pydicom.dcmread(p, stop_before_pixels=True)
                                                .InstanceNumber))[:RLE_SLICES]:
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SeriesNumber = RLE_SERIES_NUMBER
        ds.SeriesDescription = "RLE copy"
        ds.compress(RLELossless)
        out = Path(server.data_dir.parent / "rle.dcm")
        ds.save_as(out, enforce_file_format=True)
        parts.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                     + out.read_bytes() + b"\r\n")
    status, body = api(server, "POST", "/dicomweb/studies",
                       b"".join(parts) + f"--{boundary}--\r\n".encode(),
                       {"Authorization": f"Bearer {token}",
                        "Content-Type": f'multipart/related; type="application/dicom"; '
                                        f"boundary={boundary}"})
    assert status == 200, body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    s = DemoServer(tmp_path_factory.mktemp("loading-server"))
    s.start()
    try:
        store_rle_copy(s)
        yield s
    finally:
        s.stop()


@pytest.fixture
def open_room(open_page: Callable[[PageLog | None], Page], server: DemoServer
              ) -> Callable[..., Page]:
    """Signs in as `email` and enters the room (`host`'s, who admits), diagnostics on."""
    def enter(email: str, log: PageLog, host: Page | None = None) -> Page:
        page = open_page(log)
        page.context.add_init_script(
            "try { localStorage.setItem('hoichan.diagnostics', '1') } catch {}")
        page.goto(server.url + "/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("button[type=submit]")
        if host is None:
            page.get_by_test_id("join").first.click()
        else:
            page.wait_for_selector("[data-testid=consultation]")
            page.goto(host.url)
        enter_room(page, RENDERED, host)
        return page
    return enter


def data(page: Page) -> dict[str, str]:
    return json.loads(page.evaluate(
        "JSON.stringify(document.querySelector('[data-testid=viewer]').dataset)"))


def wait_full(page: Page, index: int, timeout: float = 20_000) -> None:
    """Until slice `index`'s lossless frame is on screen, as the state asks."""
    page.wait_for_function(
        """i => { const d = document.querySelector('[data-testid=viewer]')?.dataset;
                  return d && d.imageIndex === String(i) && d.shownIndex === String(i)
                         && d.quality === 'full'; }""", arg=index, timeout=timeout)


def jump(page: Page, index: int) -> None:
    """One move of the slider (one shared state), as a drag released there."""
    page.eval_on_selector(
        "[data-testid=stack-slider]",
        "(s, i) => { s.value = String(i); s.dispatchEvent(new Event('input')); }", index)


def open_series(page: Page, number: int, count: int) -> None:
    """Opens series `number` of the case (the room may have been left on another)."""
    page.locator(f"[data-testid=series]:has-text('#{number} ')").click()
    page.wait_for_function(
        "n => document.querySelector('[data-testid=viewer]').dataset.imageCount === String(n)",
        arg=count)


def image_url(page: Page, index: int) -> str:
    return str(page.evaluate(
        """i => window.hoichanImaging.getEnabledElement(
             document.querySelector('[data-testid=viewport]')).viewport.getImageIds()[i]""",
        index)).removeprefix("wadors:")


def test_frames_decode_alike_in_every_transfer_syntax(open_room: Callable[..., Page]) -> None:
    log = PageLog()
    page = open_room(HOST, log)
    accept: dict[str, str | None] = {"value": None}

    def rewrite(route: Route) -> None:
        headers = dict(route.request.headers)
        if accept["value"] is not None:
            headers["accept"] = accept["value"]
        route.continue_(headers=headers)

    page.route("**/frames/*", rewrite)
    open_series(page, 1, SLICES)
    page.get_by_test_id("viewport").click()
    page.keyboard.press("0")  # the file's own window, whatever the room left
    modes = [  # (Accept, the syntax the frame must come in)
        (None, HTJ2K),  # the viewer's own list: HTJ2K for a frame stored uncompressed
        (f'multipart/related; type="image/jphc"; transfer-syntax={HTJ2K}', HTJ2K),
        (f'multipart/related; type="image/jls"; transfer-syntax={JPEG_LS}', JPEG_LS),
        (f'multipart/related; type="image/jp2"; transfer-syntax={J2K}', J2K),
        ('multipart/related; type="application/octet-stream"; transfer-syntax=*', EXPLICIT_LE),
    ]
    uncompressed = ('multipart/related; type="application/octet-stream"; '
                    f"transfer-syntax={EXPLICIT_LE}")
    for n, (value, syntax) in enumerate(modes):
        index = 20 + 37 * n
        accept["value"] = value
        page.evaluate("window.hoichanImaging.cache.purgeCache()")
        jump(page, index)
        wait_full(page, index)
        assert data(page)["transferSyntax"] == syntax, (value, data(page))
        page.wait_for_function(f"({LIT})() > 0.05")  # drawn: a body on a black ground
        held = page.evaluate(PIXELS, [index, False])
        assert held["syntax"] == syntax and held["length"] == 512 * 512, held
        accept["value"] = uncompressed
        plain = page.evaluate(PIXELS, [index, True])
        assert plain["syntax"] == EXPLICIT_LE, plain
        assert {k: held[k] for k in ("length", "digest", "sum")} == {
            k: plain[k] for k in ("length", "digest", "sum")
        }, (syntax, held, plain)

    # A series stored RLE-compressed comes as stored under the viewer's own list, and holds
    # what the demo CT's slices it was copied from (the first by number: an end) hold.
    accept["value"] = None
    ends = [*range(RLE_SLICES), *range(SLICES - RLE_SLICES, SLICES)]
    originals = {page.evaluate(PIXELS, [i, True])["digest"] for i in ends}
    open_series(page, RLE_SERIES_NUMBER, RLE_SLICES)
    page.get_by_test_id("viewport").focus()
    page.keyboard.press("Home")
    wait_full(page, 0)
    assert data(page)["transferSyntax"] == RLE, data(page)
    held = page.evaluate(PIXELS, [0, False])
    accept["value"] = uncompressed
    plain = page.evaluate(PIXELS, [0, True])
    assert held["digest"] == plain["digest"] and held["sum"] == plain["sum"], (held, plain)
    assert held["digest"] in originals
    assert log.problems() == []


def test_follower_on_a_weak_link_gets_the_hosts_slice_first(open_room: Callable[..., Page]) -> None:
    host_log, follower_log = PageLog(), PageLog()
    host = open_room(HOST, host_log)
    open_series(host, 1, SLICES)
    host.get_by_test_id("viewport").click()
    host.keyboard.press("0")
    jump(host, 100)
    wait_full(host, 100)
    follower = open_room(FOLLOWER, follower_log, host)
    wait_full(follower, 100)
    expect(follower.get_by_test_id("sync-text")).to_contain_text("Following")

    # Every frame request the follower makes, with when it started and ended.
    frames: dict[Request, list[float]] = {}
    in_flight = {"now": 0, "most": 0}

    def started(r: Request) -> None:
        if "/frames/" in r.url and "/rendered" not in r.url:
            frames[r] = [time.monotonic(), 0.0]
            in_flight["now"] += 1
            in_flight["most"] = max(in_flight["most"], in_flight["now"])

    def ended(r: Request) -> None:
        if r in frames:
            frames[r][1] = time.monotonic()
            in_flight["now"] -= 1

    follower.on("request", started)
    follower.on("requestfinished", ended)
    follower.on("requestfailed", ended)
    rendered: list[str] = []
    follower.on("request", lambda r: rendered.append(r.url) if "/rendered?" in r.url else None)

    # The follower's link turns weak while its prefetch is still busy (uncompressed, this
    # series is 100 MB; even compressed it takes minutes at 2 Mbit/s).
    cdp = follower.context.new_cdp_session(follower)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", WEAK_LINK)
    follower.wait_for_timeout(1500)
    assert int(data(follower)["loaded"]) < SLICES
    expect(follower.get_by_test_id("load-progress")).to_have_text(
        f"{data(follower)['loaded']} / {SLICES} loaded", timeout=2000
    )

    # The host jumps far: the follower says it is loading that slice, never passes the old
    # one off as the host's, shows a preview, then the slice in full quality.
    target = 170 if int(data(follower)["loaded"]) < 150 else 10
    url = image_url(follower, target)
    jumped = time.monotonic()
    jump(host, target)
    wait_full(host, target)
    follower.wait_for_function(
        "i => document.querySelector('[data-testid=viewer]').dataset.imageIndex === String(i)",
        arg=target,
    )
    status = follower.get_by_test_id("slice-status")
    expect(status).to_have_text(
        re.compile(rf"^(Loading slice {target + 1}…|Preview · full quality loading…)$")
    )
    assert data(follower)["shownIndex"] != str(target)
    follower.wait_for_function(
        "i => document.querySelector('[data-testid=viewer]').dataset.previewIndex === String(i)",
        arg=target,
        timeout=20_000,
    )
    expect(status).to_have_text("Preview · full quality loading…")
    expect(follower.get_by_test_id("slice-preview")).to_be_visible()
    wait_full(follower, target, timeout=60_000)
    shown_after = time.monotonic() - jumped
    expect(status).to_have_text("Full quality")
    expect(follower.get_by_test_id("slice-preview")).to_be_hidden()

    # Its frame was the first asked after the jump, and no prefetch started until it came.
    after = sorted(((t, r) for r, t in frames.items() if t[0] >= jumped), key=lambda x: x[0][0])
    assert after and after[0][1].url == url, [r.url for _, r in after[:5]]
    came = after[0][0][1]
    assert [r.url for (t, r) in after if t[0] < came] == [url]
    assert any(f"{url}/rendered?" in u for u in rendered), rendered
    assert in_flight["most"] <= MOST_FRAME_REQUESTS, in_flight
    print(f"host's slice in full quality on the follower {shown_after:.2f} s after the jump")

    # The link recovers: the whole series loads, and the progress goes away.
    cdp.send(
        "Network.emulateNetworkConditions",
        {**WEAK_LINK, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    follower.wait_for_function(
        f"() => document.querySelector('[data-testid=viewer]').dataset.loaded === '{SLICES}'",
        timeout=90_000,
    )
    expect(follower.get_by_test_id("load-progress")).to_be_hidden()
    assert host_log.problems() == [] and follower_log.problems() == []
