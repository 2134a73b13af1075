"""The consultation minutes in the room, in headless Chromium against the real server: the
host (the chair, his browser in Vietnamese) writes the reason, a question, the diagnoses and
the treatment plan and names the presenter secretary; the presenter sees each saved change
without a reload, then writes the question's conclusion; both sign, both read "signed"; the
host downloads the PDF, the Appendix I form in Vietnamese. Camera and microphone stay off."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from tests.web.helpers import DemoServer, PageLog, enter_room
from tests.web.test_viewer_e2e import sign_in

HOST = "doctor.bm@demo.hoichan.vn"
PRESENTER = "doctor.ndi@demo.hoichan.vn"  # the demo case's presenter
PRESENTER_NAME = "BS. Trần Thị Bình"
IN_ROOM = "[data-testid=minutes]"
# The viewers are still fetching the CT's frames over the browser's few connections: a
# request of the minutes may wait its turn.
SLOW_MS = 30_000


@pytest.fixture
def vietnamese_page(browser: Browser) -> Iterator[tuple[Page, PageLog]]:
    """A browser of its own whose language is Vietnamese (the PDF follows the UI)."""
    log = PageLog()
    context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("console", log.on_console)
    page.on("pageerror", lambda exc: log.errors.append(f"pageerror: {exc}"))
    try:
        yield page, log
    finally:
        context.close()


def problems(log: PageLog) -> list[str]:
    # Opening the minutes before anyone wrote them is a 404 the panel expects.
    return [p for p in log.problems() if "status of 404" not in p]


def test_chair_and_secretary_write_sign_and_download_the_minutes(
        demo_server: DemoServer, vietnamese_page: tuple[Page, PageLog],
        open_page: Callable[[PageLog | None], Page]) -> None:
    host, host_log = vietnamese_page
    doctor_log = PageLog()
    doctor = open_page(doctor_log)
    host.goto(demo_server.url + "/login")
    sign_in(host, HOST)
    host.get_by_test_id("join").first.click()
    enter_room(host, IN_ROOM, seconds=30)
    room = host.url
    assert re.search(r"/consultations/\d+/room", room), room

    doctor.goto(demo_server.url + "/login")
    sign_in(doctor, PRESENTER)
    doctor.wait_for_selector("[data-testid=consultation]")
    doctor.goto(room)
    enter_room(doctor, IN_ROOM, host, seconds=30)

    # The chair opens the minutes: none yet, the form is his.
    host.get_by_test_id("minutes-toggle").click()
    expect(host.get_by_test_id("minutes-form")).to_be_visible(timeout=SLOW_MS)
    # The presenter, not (yet) secretary, has nothing to edit.
    expect(doctor.get_by_test_id("minutes-form")).to_have_count(0)

    stamp = str(time.time_ns())
    reason = f"Khối u thùy trên phổi phải, cần thống nhất chẩn đoán ({stamp})"
    question = "Có chỉ định sinh thiết xuyên thành ngực không?"
    host.get_by_test_id("minutes-reason").fill(reason)
    host.get_by_test_id("minutes-add-question").click()
    host.get_by_test_id("minutes-question-0").fill(question)
    host.get_by_test_id("minutes-diagnosis_before").fill("Theo dõi u phổi phải")
    host.get_by_test_id("minutes-diagnosis_after").fill("U phổi phải nghi ác tính, T2N0M0")
    host.get_by_test_id("minutes-treatment_plan").fill("Sinh thiết xuyên thành ngực; PET-CT")
    host.get_by_test_id("minutes-save").click()
    expect(host.get_by_test_id("minutes-status")).to_have_attribute("data-state", "done",
                                                                    timeout=SLOW_MS)
    # The signing waits for what is missing, and says what.
    expect(host.get_by_test_id("minutes-sign")).to_be_disabled()
    expect(host.get_by_test_id("minutes-missing")).to_be_visible()

    # The presenter's panel opens by itself with the text.
    expect(doctor.get_by_test_id("minutes-view-reason")).to_have_text(reason, timeout=SLOW_MS)
    expect(doctor.get_by_test_id("minutes-view-question-0")).to_have_text(question)

    # The chair names the presenter secretary, from the room's participants.
    options = host.locator("[data-testid=minutes-secretary-select] option",
                           has_text=PRESENTER_NAME)
    expect(options).to_have_count(1)
    host.get_by_test_id("minutes-secretary-select").select_option(label=PRESENTER_NAME)
    host.get_by_test_id("minutes-secretary-save").click()
    expect(host.get_by_test_id("minutes-secretary")).to_contain_text(PRESENTER_NAME,
                                                                     timeout=SLOW_MS)

    # Now the secretary edits: the question's conclusion.
    conclusion = f"Có chỉ định sinh thiết; làm PET-CT trước ({stamp})"
    field = doctor.get_by_test_id("minutes-conclusion-0")
    expect(field).to_be_editable(timeout=SLOW_MS)
    expect(doctor.get_by_test_id("minutes-reason")).to_have_value(reason)
    field.fill(conclusion)
    doctor.get_by_test_id("minutes-save").click()
    expect(doctor.get_by_test_id("minutes-status")).to_have_attribute("data-state", "done",
                                                                      timeout=SLOW_MS)
    expect(host.get_by_test_id("minutes-conclusion-0")).to_have_value(conclusion,
                                                                      timeout=SLOW_MS)

    # Both sign: the chair, then the secretary.
    sign = host.get_by_test_id("minutes-sign")
    expect(sign).to_be_enabled(timeout=SLOW_MS)
    expect(host.get_by_test_id("minutes-missing")).to_have_count(0)
    sign.click()
    expect(host.get_by_test_id("minutes-signoff-chair")).to_have_attribute(
        "data-signed", "yes", timeout=SLOW_MS)
    expect(doctor.get_by_test_id("minutes-signoff-chair")).to_have_attribute(
        "data-signed", "yes", timeout=SLOW_MS)
    expect(doctor.get_by_test_id("minutes-form")).to_have_count(0)
    doctor_sign = doctor.get_by_test_id("minutes-sign")
    expect(doctor_sign).to_be_enabled()
    doctor_sign.click()
    for page in (host, doctor):
        expect(page.get_by_test_id("minutes-state")).to_have_attribute(
            "data-status", "signed", timeout=SLOW_MS)
        expect(page.get_by_test_id("minutes-signoff-secretary")).to_have_attribute(
            "data-signed", "yes")
        expect(page.get_by_test_id("minutes-view-conclusion-0")).to_have_text(conclusion)
    expect(doctor.get_by_test_id("minutes-state")).to_have_text("Signed")
    expect(host.get_by_test_id("minutes-state")).to_have_text("Đã ký")
    # Signed: the chair may amend; nobody edits.
    expect(host.get_by_test_id("minutes-amend")).to_be_visible()
    expect(host.get_by_test_id("minutes-form")).to_have_count(0)

    # The PDF, in the chair's language.
    with host.expect_download(timeout=SLOW_MS) as download:
        host.get_by_test_id("minutes-pdf").click()
    path = download.value.path()
    pdf = path.read_bytes()
    assert pdf.startswith(b"%PDF"), pdf[:20]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "BIÊN BẢN HỘI CHẨN" in text, text[:500]

    assert problems(host_log) == [], problems(host_log)
    assert problems(doctor_log) == [], problems(doctor_log)
