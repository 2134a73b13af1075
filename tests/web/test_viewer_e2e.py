"""The browser app in headless Chromium against the real server: a demo doctor signs in, sees
the day's consultation, opens its room and reads the demo CT in the Cornerstone viewer."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.web.helpers import DemoServer, PageLog, sign_in
from tests.web.viewer_page import (
    RENDERED,
    SLICES,
    go_to,
    shown,
    viewer_data,
    wait_canvas,
    wait_data,
    wait_shown,
)

TITLE = "Hội chẩn: khối choán chỗ phổi phải"


def pass_preview(page: Page) -> None:
    """The camera and microphone preview before joining (the fake devices): join."""
    page.get_by_test_id("join-room").click()


def test_doctor_signs_in_joins_and_reads_the_ct(demo_server: DemoServer, page: Page,
                                                page_log: PageLog) -> None:
    page.goto(demo_server.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    sign_in(page)

    # Home: the upcoming consultation, with a join button.
    item = page.locator("[data-testid=consultation]").filter(has_text=TITLE)
    expect(item).to_have_count(1)
    expect(page.get_by_test_id("whoami")).to_contain_text("Bệnh viện Bạch Mai")
    item.get_by_test_id("join").click()
    expect(page).to_have_url(re.compile(r"/consultations/\d+/room$"))
    pass_preview(page)

    # The host is admitted directly: no lobby, the case and its series, then the viewer.
    page.wait_for_selector(RENDERED, timeout=60_000)
    expect(page.get_by_test_id("lobby")).to_have_count(0)
    expect(page.get_by_test_id("members")).to_contain_text("(you)")
    series = page.get_by_test_id("series")
    expect(series).to_have_count(1)
    expect(series).to_contain_text(f"{SLICES} images")
    expect(series.locator("img.thumb")).to_have_attribute("src", re.compile(r"^blob:"))

    # A real CT slice on the canvas: body lit, background black. (A fresh room opens at the
    # middle slice; the room's shared view, if another test left one, wins.)
    page.wait_for_function("() => document.querySelector('[data-testid=viewer]')"
                           ".dataset.shownIndex !== ''")
    page.get_by_test_id("viewport").click()
    start = min(shown(page), SLICES - 10)
    page.keyboard.press("0")  # the file's own window: mediastinum
    wait_data(page, "voi", "40,400")
    data = viewer_data(page)
    assert data["imageCount"] == str(SLICES)
    first = wait_canvas(page)
    assert first["width"] > 300 and first["height"] > 300, first
    assert 0.05 < first["lit"] < 0.9, first  # neither black nor a flat fill

    # Keyboard scroll: three images down, a new slice on screen.
    go_to(page, start)
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    wait_shown(page, start + 3)
    expect(page.get_by_test_id("image-position")).to_have_text(f"Im {start + 4} / {SLICES}")
    scrolled = wait_canvas(page, first["digest"])

    # Wheel scroll over the image.
    box = page.get_by_test_id("viewport").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(2):
        page.mouse.wheel(0, 120)
        page.wait_for_timeout(100)
    wait_shown(page, start + 5)
    scrolled = wait_canvas(page, scrolled["digest"])

    # The lung preset: the window changes, and so does the picture (air turns grey).
    page.click("button[data-preset=lung]")
    wait_data(page, "voi", "-600,1500")
    expect(page.get_by_test_id("window-level")).to_have_text("W 1500 L -600")
    lung = wait_canvas(page, scrolled["digest"])
    assert lung["mean"] > scrolled["mean"] + 5, (lung, scrolled)

    # A reload comes back at the same slice and window.
    page.wait_for_timeout(400)  # the view is saved a moment after a change
    page.reload()
    page.wait_for_selector(RENDERED, timeout=60_000)
    wait_shown(page, start + 5)
    assert viewer_data(page)["voi"] == "-600,1500"

    # Reset goes back to the file's window.
    page.get_by_test_id("viewport").focus()
    page.keyboard.press("r")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=viewer]').dataset.voi === '40,400'")

    assert page_log.problems() == []


def test_expired_session_renews_or_returns_to_the_page(demo_server: DemoServer,
                                                        page: Page) -> None:
    page.goto(demo_server.url + "/login")
    sign_in(page)
    page.locator("[data-testid=join]").first.wait_for()
    href = page.locator("[data-testid=join]").first.get_attribute("href")
    assert href and href.startswith("/consultations/")
    room = demo_server.url + href

    # An access token the server refuses, with a good refresh token: renewed (rotated)
    # behind the scenes, the page works.
    before = page.evaluate("JSON.parse(localStorage.getItem('hoichan.session'))")
    page.evaluate("""() => {
      const s = JSON.parse(localStorage.getItem('hoichan.session'));
      s.access = 'not-a-token';
      localStorage.setItem('hoichan.session', JSON.stringify(s));
    }""")
    page.goto(room)
    pass_preview(page)
    page.wait_for_selector(RENDERED, timeout=60_000)
    after = page.evaluate("JSON.parse(localStorage.getItem('hoichan.session'))")
    assert after["refresh"] != before["refresh"]
    assert after["access"] not in (before["access"], "not-a-token")

    # A refresh token the server refuses too: back to sign-in, then back to this room.
    page.evaluate("""() => {
      const s = JSON.parse(localStorage.getItem('hoichan.session'));
      s.access = 'not-a-token';
      s.refresh = 'nope.nope';
      localStorage.setItem('hoichan.session', JSON.stringify(s));
    }""")
    page.goto(room)
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fconsultations%2F\d+%2Froom&expired=1$"))
    expect(page.locator(".notice")).to_be_visible()
    sign_in(page)
    expect(page).to_have_url(room)
    page.wait_for_selector(RENDERED, timeout=60_000)


def test_client_routes_and_assets_are_served(demo_server: DemoServer, page: Page) -> None:
    response = page.goto(demo_server.url + "/consultations/999/room")
    assert response is not None and response.status == 200
    assert response.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    script = page.locator("script[type=module]").first.get_attribute("src")
    assert script and script.startswith("/assets/")
    asset = page.request.get(demo_server.url + script)
    assert asset.status == 200
    assert "immutable" in asset.headers["cache-control"]
    assert asset.headers["content-type"].startswith("text/javascript")
    api = page.request.get(demo_server.url + "/api/nothing-here")
    assert api.status == 404 and api.json()["error"]["code"] == "not_found"


def test_lobby_until_the_host_admits(demo_server: DemoServer,
                                     open_page: Callable[[PageLog | None], Page]) -> None:
    host, doctor = open_page(None), open_page(None)
    host.goto(demo_server.url + "/login")
    sign_in(host)
    host.get_by_test_id("join").first.click()
    pass_preview(host)
    host.wait_for_selector(RENDERED, timeout=60_000)
    # Admitted once, a doctor whose page went away without leaving is let back in during the
    # reconnect grace (30 s): this test's doctor must first be gone from an earlier one.
    expect(host.get_by_test_id("members")).not_to_contain_text("Trần Thị Bình", timeout=45_000)

    # The presenter's doctor (a provincial hospital) waits in the lobby.
    doctor.goto(demo_server.url + "/login")
    sign_in(doctor, "doctor.ndi@demo.hoichan.vn")
    doctor.get_by_test_id("join").first.click()
    pass_preview(doctor)
    expect(doctor.get_by_test_id("lobby")).to_be_visible()
    expect(doctor.get_by_test_id("viewer")).to_have_count(0)

    # The host sees the doctor waiting and admits.
    waiting = host.get_by_test_id("lobby-list").locator("li").filter(has_text="Trần Thị Bình")
    expect(waiting).to_have_count(1)
    waiting.get_by_test_id("admit").click()

    doctor.wait_for_selector(RENDERED, timeout=60_000)
    expect(doctor.get_by_test_id("members")).to_contain_text("GS. Nguyễn Văn An")
    expect(host.get_by_test_id("members")).to_contain_text("BS. Trần Thị Bình")
    expect(host.get_by_test_id("lobby-list").locator("li")).to_have_count(0)


def test_the_driver_leads_every_viewer(demo_server: DemoServer,
                                       open_page: Callable[[PageLog | None], Page]) -> None:
    host_log, doctor_log = PageLog(), PageLog()
    host, doctor = open_page(host_log), open_page(doctor_log)
    host.goto(demo_server.url + "/login")
    sign_in(host)
    host.get_by_test_id("join").first.click()
    pass_preview(host)
    host.wait_for_selector(RENDERED, timeout=60_000)
    room = host.url
    expect(host.get_by_test_id("sync-text")).to_have_text("You are driving the shared view.")

    # The host moves before the doctor arrives: the late joiner opens at the host's view.
    host.get_by_test_id("viewport").click()
    host.keyboard.press("0")
    go_to(host, 104)
    doctor.goto(demo_server.url + "/login")
    sign_in(doctor, "doctor.tbi@demo.hoichan.vn")
    doctor.wait_for_selector("[data-testid=consultation]")
    doctor.goto(room)
    pass_preview(doctor)
    expect(doctor.get_by_test_id("lobby")).to_be_visible()
    host.get_by_test_id("lobby-list").get_by_test_id("admit").click()
    doctor.wait_for_selector(RENDERED, timeout=60_000)
    wait_shown(doctor, 104)
    expect(doctor.get_by_test_id("sync-text")).to_contain_text("Following")
    expect(doctor.get_by_test_id("request-control")).to_be_visible()

    # Slice and window follow the host on the doctor's screen.
    host.get_by_test_id("viewport").click()
    for _ in range(3):
        host.keyboard.press("ArrowDown")
    wait_shown(doctor, 107)
    host.click("button[data-preset=lung]")
    wait_data(doctor, "voi", "-600,1500")
    expect(doctor.get_by_test_id("window-level")).to_have_text("W 1500 L -600")

    # The doctor looks around alone, then one click brings the room's view back.
    doctor.get_by_test_id("viewport").click()
    doctor.keyboard.press("Home")
    wait_shown(doctor, 0)
    expect(doctor.get_by_test_id("sync-text")).to_contain_text("looking around")
    host.get_by_test_id("viewport").click()
    host.keyboard.press("ArrowDown")
    wait_shown(host, 108)
    doctor.wait_for_timeout(500)
    assert shown(doctor) == 0  # not pulled back while looking around
    doctor.get_by_test_id("follow").click()
    wait_shown(doctor, 108)

    # The doctor asks for control, the host grants it: now the host follows the doctor.
    doctor.get_by_test_id("request-control").click()
    host.get_by_test_id("give-control").click()
    expect(doctor.get_by_test_id("sync-text")).to_have_text("You are driving the shared view.")
    expect(host.get_by_test_id("take-control")).to_be_visible()
    doctor.get_by_test_id("viewport").click()
    for _ in range(2):
        doctor.keyboard.press("ArrowUp")
    wait_shown(host, 106)

    # The driver's laser pointer shows on the host's screen.
    box = doctor.get_by_test_id("viewport").bounding_box()
    assert box is not None
    doctor.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    doctor.mouse.move(box["x"] + box["width"] / 2 + 20, box["y"] + box["height"] / 2 + 10, steps=4)
    expect(host.get_by_test_id("laser")).to_be_visible()

    # A reloaded page comes back at the room's view.
    host.reload()
    host.wait_for_selector(RENDERED, timeout=60_000)
    wait_shown(host, 106)
    assert viewer_data(host)["voi"] == "-600,1500"

    # The host takes control back and drives again.
    host.get_by_test_id("take-control").click()
    expect(host.get_by_test_id("sync-text")).to_have_text("You are driving the shared view.")
    expect(doctor.get_by_test_id("request-control")).to_be_visible()
    go_to(host, 30)
    wait_shown(doctor, 30)

    assert host_log.problems() == [] and doctor_log.problems() == []
