"""The app in Vietnamese and in English, in headless Chromium against the real server: a
Vietnamese browser gets Vietnamese from the sign-in page to the room, the schedule reads
dd/MM/yyyy on a 24-hour clock; a doctor's switch to English is kept with the account and
follows them to another browser (another machine) whose own language is Vietnamese."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.web.helpers import DEMO_PASSWORD, DemoServer, api, enter_room, token

HOST = "doctor.bm@demo.hoichan.vn"
COORDINATOR = "coordinator@demo.hoichan.vn"
# Its saved language stays on the shared demo server: an account no other test signs in as.
SWITCHER = "doctor.kba@demo.hoichan.vn"
IN_ROOM = "[data-testid=record]"
# "03/12/2026 14:30 – 15:30": the demo consultation's window, the Vietnamese way.
WINDOW = re.compile(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2} – (\d{2}/\d{2}/\d{4} )?\d{2}:\d{2}")


def machine(browser: Browser, locale: str) -> tuple[BrowserContext, Page]:
    """A browser of its own (own storage) whose language is ``locale``, in Hanoi's zone."""
    context = browser.new_context(locale=locale, timezone_id="Asia/Ho_Chi_Minh",
                                  viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(20_000)
    return context, page


def sign_in(page: Page, server: DemoServer, email: str, button: str) -> None:
    page.goto(server.url + "/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.get_by_role("button", name=button).click()


def test_a_vietnamese_browser_gets_vietnamese_from_sign_in_to_the_room(
        browser: Browser, demo_server: DemoServer) -> None:
    context, page = machine(browser, "vi-VN")
    try:
        page.goto(demo_server.url + "/")
        expect(page.locator("html")).to_have_attribute("lang", "vi")
        expect(page.get_by_role("heading", name="Đăng nhập")).to_be_visible()
        sign_in(page, demo_server, HOST, "Đăng nhập")
        expect(page.get_by_role("heading", name="Các buổi hội chẩn sắp tới")).to_be_visible()
        card = page.get_by_test_id("consultation").first
        expect(card).to_contain_text("Chủ trì")
        expect(card.locator(".when")).to_have_text(WINDOW)
        card.get_by_test_id("join").click()
        enter_room(page, IN_ROOM, seconds=30)
        expect(page.get_by_test_id("leave")).to_have_text("Rời phòng")
        expect(page.get_by_role("heading", name="Kết luận và hướng điều trị")).to_be_visible()
        expect(page.get_by_test_id("sign-out")).to_have_text("Đăng xuất")
    finally:
        context.close()


def test_the_schedule_in_vietnamese(browser: Browser, demo_server: DemoServer) -> None:
    context, page = machine(browser, "vi-VN")
    try:
        sign_in(page, demo_server, COORDINATOR, "Đăng nhập")  # a coordinator's home
        expect(page.get_by_role("heading", name="Lịch hội chẩn")).to_be_visible()
        expect(page.get_by_test_id("period-today")).to_have_text("Hôm nay")
        expect(page.get_by_test_id("new-consultation")).to_have_text("Lên lịch hội chẩn")
        item = page.get_by_test_id("schedule-item").first
        expect(item.locator(".when")).to_have_text(WINDOW)
        # Weekdays by the platform's Intl in Vietnamese: "Thứ Năm, 3 tháng 12, 2026".
        expect(page.get_by_test_id("schedule-day").first).to_contain_text(
            re.compile(r"Thứ|Chủ nhật"))
    finally:
        context.close()


def test_a_switch_to_english_follows_the_doctor_to_another_machine(
        browser: Browser, demo_server: DemoServer) -> None:
    first, page = machine(browser, "vi-VN")
    try:
        sign_in(page, demo_server, SWITCHER, "Đăng nhập")
        expect(page.get_by_role("heading", name="Các buổi hội chẩn sắp tới")).to_be_visible()
        page.get_by_test_id("language").select_option("en")
        expect(page.get_by_role("heading", name="Upcoming consultations")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        status, me = api(demo_server, "GET", "/api/me", token(demo_server, SWITCHER))
        assert status == 200 and me["language"] == "en", me
        expect(page.get_by_test_id("join").first).to_have_text("Join")
    finally:
        first.close()
    second, page = machine(browser, "vi-VN")
    try:
        # Another machine, Vietnamese of its own: the sign-in page speaks Vietnamese until the
        # account says otherwise.
        sign_in(page, demo_server, SWITCHER, "Đăng nhập")
        expect(page.get_by_role("heading", name="Upcoming consultations")).to_be_visible()
        page.get_by_test_id("language").select_option("vi")
        expect(page.get_by_role("heading", name="Các buổi hội chẩn sắp tới")).to_be_visible()
        status, me = api(demo_server, "GET", "/api/me", token(demo_server, SWITCHER))
        assert me["language"] == "vi", me
    finally:
        second.close()
