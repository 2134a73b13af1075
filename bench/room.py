"""The browser room with three participants: the host and the two doctors of the demo
consultation, each in headless Chromium (Debian's /usr/bin/chromium through Playwright, the
fake camera and microphone at 320x240 as in the e2e tests).

The server is started as tests/web/conftest.py does (migrate, seed-demo, serve on a free
127.0.0.1 port, in a temporary data directory) and killed at the end. Each participant has
its own Chromium process (``--one-browser``: three contexts of one Chromium instead, each its
own storage and renderer, cheaper in memory), 1280x720.

Measured:

1. **Join to first remote frame**, per participant: from the click on "Join" in the device
   preview (after sign-in) until one of the page's RTCPeerConnections reports, in getStats(),
   an inbound-rtp video stream with framesDecoded > 0 (polled in the page every 20 ms). The
   doctors wait in the lobby until the host admits them (the bench clicks "Admit" as soon as
   it shows): their figure includes that wait, also given alone. The host's first remote
   frame can only come once a doctor is in: its figure is counted from the first admission.
2. **Sync latency**: the host takes control (one click: the presenter drives only until
   then) and, as the driver, makes ``--changes``
   changes, alternating the slice (ArrowDown in the viewer) and the window preset (keys 1-4:
   lung, mediastinum, bone, brain), waiting for every viewer to show each change and a
   short random pause before the next. Each page stamps, with
   ``performance.timeOrigin + performance.now()``, the driver's keydown (a capture
   listener) and every change of the viewer's ``data-shown-index`` / ``data-voi``
   attributes (a MutationObserver; the viewer sets them once the image or window
   is on the canvas: what tests/web/test_viewer_e2e.py waits for). Each page's clock is
   mapped to the bench's with the offset read over the Playwright round trip of smallest
   delay (error about half that round trip, a millisecond or two). Latency = follower's
   attribute change - driver's keydown, p50 and p95 per follower and kind. The driver's own
   keydown-to-render time is shown as a reference.

Bounded in time (``--budget``, 170 s by default): past it everything is torn down.

    .venv/bin/python bench/room.py [--changes 30] [--one-browser] [--screenshots docs/img]

``--screenshots DIR`` also writes DIR/room.png (the host's room: video grid and viewer,
1280x720) and DIR/viewer.png (a following doctor's viewer with a length and an ROI
measurement drawn by the host, 1920x1080).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.web.helpers import CHROMIUM, CHROMIUM_FLAGS, DIST, TRACK_PCS, DemoServer, sign_in
from tests.web.viewer_page import RENDERED

HOST = ("host", "doctor.bm@demo.hoichan.vn")
DOCTORS = [("doctor 1", "doctor.ndi@demo.hoichan.vn"), ("doctor 2", "doctor.tbi@demo.hoichan.vn")]
PRESET_KEYS = ["1", "2", "3", "4"]  # lung, mediastinum, bone, brain

# In every page before its own scripts: the join click, the first decoded remote frame, the
# keys pressed and the viewer's shown slice / window, each stamped on the page's clock.
INSTRUMENT = """(() => {
  const now = () => performance.timeOrigin + performance.now();
  const b = window.__bench = {joinClick: null, firstFrame: null, keys: [], changes: [], pcs: []};
  // Each peer connection's creation, connected state and first remote track: where the join
  // time goes.
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    const mark = {created: now(), connected: null, track: null};
    b.pcs.push(mark);
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'connected' && mark.connected === null) mark.connected = now();
    });
    pc.addEventListener('track', () => { if (mark.track === null) mark.track = now(); });
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
  Object.setPrototypeOf(window.RTCPeerConnection, Native);
  document.addEventListener('click', (e) => {
    if (b.joinClick === null && e.target.closest && e.target.closest('[data-testid=join-room]'))
      b.joinClick = now();
  }, true);
  document.addEventListener('keydown', (e) => b.keys.push([e.key, now()]), true);
  const poll = async () => {
    for (const pc of window.__pcs || []) {
      if (pc.connectionState === 'closed') continue;
      let decoding = false;
      try {
        (await pc.getStats()).forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video' && (s.framesDecoded || 0) > 0)
            decoding = true;
        });
      } catch (e) { /* closed meanwhile */ }
      if (decoding) { b.firstFrame = now(); return; }
    }
    setTimeout(poll, 20);
  };
  setTimeout(poll, 20);
  new MutationObserver((records) => {
    const t = now();
    for (const r of records) {
      const v = r.target.getAttribute(r.attributeName);
      if (v !== r.oldValue && r.target.dataset.testid === 'viewer')
        b.changes.push([r.attributeName, v, t]);
    }
  }).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                        attributeFilter: ['data-shown-index', 'data-voi']});
})()"""


class Budget(Exception):
    pass


def clock_offset(page: Page) -> float:
    """Page clock (ms) minus the bench's time.time() (ms), from the quickest of a few reads."""
    best: tuple[float, float] | None = None
    for _ in range(15):
        t0 = time.time()
        v = page.evaluate("performance.timeOrigin + performance.now()")
        t1 = time.time()
        rtt = t1 - t0
        if best is None or rtt < best[0]:
            best = (rtt, v - (t0 + t1) / 2 * 1000)
    assert best is not None
    return best[1]


def open_participant(browsers: list[Browser], launch: Any, url: str, email: str) -> Page:
    """A new Chromium for the participant (or a new context of the one Chromium)."""
    if launch is not None:
        browsers.append(launch())
    context = browsers[-1].new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.add_init_script(TRACK_PCS)
    page.add_init_script(INSTRUMENT)
    page.goto(url + "/login")
    sign_in(page, email)
    page.get_by_test_id("join").first.click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=preview-video]')?.srcObject?.active")
    return page


def admit_all(host: Page, doctor: Page) -> float:
    """Clicks Admit on the host's page as soon as it shows; the bench's time of the click."""
    deadline = time.monotonic() + 30
    admit = host.locator("[data-testid=lobby-list] [data-testid=admit]:not([disabled])")
    while time.monotonic() < deadline:
        if doctor.locator(RENDERED).count():  # came in without the lobby
            return time.time()
        if admit.count():
            t = time.time()
            try:
                admit.first.click(timeout=2_000)
                return t
            except PlaywrightError:  # admitted meanwhile: the list was redrawn
                pass
        time.sleep(0.02)
    raise SystemExit("the doctor was never admitted")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run(args: argparse.Namespace) -> None:
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="hoichan-bench-room-"))
    server = DemoServer(root)
    server.start()
    url = server.url
    print(f"server {url} up in {time.monotonic() - started:.1f} s; load average "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores",
          flush=True)
    try:
        with sync_playwright() as p:
            browsers: list[Browser] = []

            def launch() -> Browser:
                return p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_FLAGS)
            try:
                if args.one_browser:
                    browsers.append(launch())
                measure(browsers, None if args.one_browser else launch, url, args)
            finally:
                for b in browsers:
                    b.close()
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)
        print(f"total {time.monotonic() - started:.1f} s", flush=True)


def measure(browsers: list[Browser], launch: Any, url: str, args: argparse.Namespace) -> None:
    # ---------------------------------------------------------------- join
    host = open_participant(browsers, launch, url, HOST[1])
    host.get_by_test_id("join-room").click()
    host.wait_for_selector(RENDERED, timeout=60_000)
    pages = {HOST[0]: host}
    admitted: dict[str, float] = {}
    for name, email in DOCTORS:
        page = open_participant(browsers, launch, url, email)
        page.get_by_test_id("join-room").click()
        admitted[name] = admit_all(host, page)
        page.wait_for_selector(RENDERED, timeout=60_000)
        pages[name] = page
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(
            p.evaluate("window.__bench.firstFrame") for p in pages.values()):
        time.sleep(0.1)
    offsets = {name: clock_offset(p) for name, p in pages.items()}

    def bench_ms(name: str, page_ms: float | None) -> float | None:
        return None if page_ms is None else page_ms - offsets[name]

    join_rows: list[tuple[str, float | None, float | None, str]] = []
    phase_rows: list[tuple[str, list[str]]] = []
    first_admit = min(admitted.values()) * 1000
    for name, page in pages.items():
        b = page.evaluate("({joinClick: window.__bench.joinClick,"
                          " firstFrame: window.__bench.firstFrame, pcs: window.__bench.pcs})")
        click, frame = bench_ms(name, b["joinClick"]), bench_ms(name, b["firstFrame"])
        start = first_admit if name == HOST[0] else admitted[name] * 1000
        phases = [f"pc{i} " + " ".join(
            f"{k} {ms - start:.0f}" if (ms := bench_ms(name, pc[k])) is not None else f"{k} -"
            for k in ("created", "connected", "track")) for i, pc in enumerate(b["pcs"])]
        if frame is not None:
            phases.append(f"frame {frame - start:.0f}")
        phase_rows.append((name, phases))
        if name == HOST[0]:
            join_rows.append((name, None, None if frame is None else frame - first_admit,
                              "from the first doctor's admission"))
        else:
            lobby = admitted[name] * 1000 - click if click is not None else None
            total = frame - click if frame is not None and click is not None else None
            join_rows.append((name, lobby, total, "from the Join click, lobby included"))

    # ---------------------------------------------------------------- sync
    followers = [n for n, _ in DOCTORS]
    # With the presenter (doctor 1) in, the presenter drives by default: the host takes it.
    host.get_by_test_id("take-control").click()
    host.get_by_test_id("sync-text").filter(has_text="You are driving").wait_for()
    for n in followers:
        pages[n].get_by_test_id("sync-text").filter(has_text="Following").wait_for()
    host.get_by_test_id("viewport").click()
    host.keyboard.press("Home")
    for _ in range(4):
        host.keyboard.press("PageDown")  # a tenth of the stack each: to image 80
    host.keyboard.press("0")
    for n in followers:
        pages[n].wait_for_function(
            "() => { const d = document.querySelector('[data-testid=viewer]').dataset;"
            " return d.shownIndex === '80' && d.voi === '40,400'; }", timeout=10_000)
    time.sleep(0.5)
    for p in pages.values():
        p.evaluate("window.__bench.keys = []; window.__bench.changes = []")
    offsets = {name: clock_offset(p) for name, p in pages.items()}

    expected: list[tuple[str, str, str]] = []  # (kind, attribute, value)
    shown = 80
    preset = 0
    for i in range(args.changes):
        if time.monotonic() > args.deadline:
            raise Budget()
        if i % 2 == 0:
            shown += 1
            key, kind, attr, value = "ArrowDown", "slice", "data-shown-index", str(shown)
        else:
            key = PRESET_KEYS[preset % 4]
            preset += 1
            kind, attr = "window", "data-voi"
            value = {"1": "-600,1500", "2": "50,350", "3": "400,1800", "4": "40,80"}[key]
        host.keyboard.press(key)
        expected.append((kind, attr, value))
        dataset_key = "shownIndex" if attr == "data-shown-index" else "voi"
        for n, p in pages.items():
            try:
                p.wait_for_function(
                    "([k, v]) => document.querySelector('[data-testid=viewer]')?.dataset[k] === v",
                    arg=[dataset_key, value], timeout=5_000)
            except PlaywrightError:
                shown = p.evaluate(
                    "JSON.stringify(document.querySelector('[data-testid=viewer]').dataset)")
                raise SystemExit(f"change {i} ({kind} {value}) never shown on {n}: "
                                 f"{shown}") from None
        time.sleep(random.uniform(0.15, 0.35))

    keys = [(k, t - offsets[HOST[0]]) for k, t in host.evaluate("window.__bench.keys")]
    changes = {n: [(a, v, t - offsets[n]) for a, v, t in p.evaluate("window.__bench.changes")]
               for n, p in pages.items()}
    assert len(keys) == len(expected), (keys, expected)
    lat: dict[tuple[str, str], list[float]] = {}
    for (kind, attr, value), (_, t_key) in zip(expected, keys, strict=False):
        for n in pages:
            seen = next(t for a, v, t in changes[n] if a == attr and v == value and t >= t_key)
            lat.setdefault((n, kind), []).append(seen - t_key)
            lat.setdefault((n, "all"), []).append(seen - t_key)

    # ---------------------------------------------------------------- screenshots
    if args.screenshots:
        shots(pages, Path(args.screenshots))

    # ---------------------------------------------------------------- table
    print()
    print("Join phases, ms from admission (the host: from the first doctor's)")
    for name, phases in phase_rows:
        print(f"  {name:<10} " + "; ".join(phases))
    print("Join to first remote frame (one join each)")
    print(f"{'participant':<12} {'lobby wait ms':>14} {'first frame ms':>15}  counted")
    for name, lobby, total, note in join_rows:
        lw = "-" if lobby is None else f"{lobby:.0f}"
        tt = "-" if total is None else f"{total:.0f}"
        print(f"{name:<12} {lw:>14} {tt:>15}  {note}")
    print()
    print(f"Sync latency, driver's keydown -> viewer shows it ({args.changes} changes: "
          f"{sum(1 for e in expected if e[0] == 'slice')} slice, "
          f"{sum(1 for e in expected if e[0] == 'window')} window)")
    print(f"{'viewer':<20} {'kind':<7} {'n':>3} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    for n in [HOST[0]] + followers:
        for kind in ("slice", "window", "all"):
            v = lat[(n, kind)]
            label = f"{n} (driver, local)" if n == HOST[0] else f"{n} (follower)"
            print(f"{label:<20} {kind:<7} {len(v):>3} {pct(v, .5):>7.0f} {pct(v, .95):>7.0f} "
                  f"{max(v):>7.0f}")
    follow_all = [x for n in followers for x in lat[(n, "all")]]
    print(f"{'followers together':<20} {'all':<7} {len(follow_all):>3} "
          f"{pct(follow_all, .5):>7.0f} {pct(follow_all, .95):>7.0f} {max(follow_all):>7.0f}")
    print(f"(mean follower {statistics.mean(follow_all):.0f} ms; load average now "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()) + ")")


def shots(pages: dict[str, Page], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    host, doctor = pages[HOST[0]], pages[DOCTORS[0][0]]
    for p in pages.values():
        p.mouse.move(5, 5)
    for p in pages.values():
        p.wait_for_function(
            "() => document.querySelectorAll('[data-testid=tile][data-has-video=true]')"
            ".length >= 3", timeout=20_000)
    host.get_by_test_id("viewport").click()
    host.keyboard.press("1")  # lung window
    time.sleep(1.0)
    host.screenshot(path=str(out / "room.png"))
    # The host measures; the following doctor's viewer, at 1920x1080, shows it.
    doctor.set_viewport_size({"width": 1920, "height": 1080})
    host.keyboard.press("2")
    host.keyboard.press("l")
    box = host.get_by_test_id("viewport").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    host.mouse.move(cx - 90, cy - 10)
    host.mouse.down()
    host.mouse.move(cx + 50, cy + 30, steps=8)
    host.mouse.up()
    host.keyboard.press("o")
    host.mouse.move(cx + 20, cy - 80)
    host.mouse.down()
    host.mouse.move(cx + 80, cy - 40, steps=6)
    host.mouse.up()
    doctor.get_by_test_id("measurement-label").nth(1).wait_for(timeout=10_000)
    doctor.wait_for_function(
        "() => document.querySelectorAll('[data-testid=tile][data-has-video=true]')"
        ".length >= 3", timeout=10_000)
    time.sleep(2.5)  # the tiles redrawn at the new size
    doctor.screenshot(path=str(out / "viewer.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--budget", type=float, default=170.0, help="seconds, all included")
    parser.add_argument("--screenshots", metavar="DIR")
    parser.add_argument("--one-browser", action="store_true",
                        help="one Chromium, a context per participant (cheaper)")
    args = parser.parse_args()
    if not (DIST / "index.html").is_file():
        raise SystemExit("frontend/dist is not built: run `make frontend`")
    args.deadline = time.monotonic() + args.budget - 20  # room for the teardown

    def over(_sig: int, _frame: Any) -> None:
        raise Budget()

    signal.signal(signal.SIGALRM, over)
    signal.alarm(int(args.budget) - 10)
    try:
        run(args)
    except Budget:
        raise SystemExit(f"over the {args.budget:.0f} s budget: torn down") from None
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    main()
