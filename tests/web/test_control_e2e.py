"""Viewer control as the roles say, in headless Chromium: the presenter drives until the host
takes control with one click; the doctor's viewer follows the host's scrolling; the doctor
asks, the host grants and follows (and finds the way back after looking around); the host
takes control back, then lets it go. Everyone reads who drives, in words and on the viewer's
frame."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.web.helpers import DemoServer, PageLog, enter_demo_room
from tests.web.viewer_page import go_to, shown, wait_shown

HOST_NAME = "GS. Nguyễn Văn An"
PRESENTER = "doctor.ndi@demo.hoichan.vn"  # the demo case's presenter
PRESENTER_NAME = "BS. Trần Thị Bình"


def frame(page: Page, mode: str, label: str) -> None:
    """The viewer's frame: its colour (mode) and the driver's name on it."""
    expect(page.get_by_test_id("viewer-frame")).to_have_attribute("data-control", mode)
    expect(page.get_by_test_id("frame-label")).to_have_text(label)


def test_the_host_takes_grants_and_takes_back_control(
        demo_server: DemoServer, open_page: Callable[[PageLog | None], Page]) -> None:
    host_log, doctor_log = PageLog(), PageLog()
    host, doctor = open_page(host_log), open_page(doctor_log)
    room = enter_demo_room(host, demo_server)
    # Another test on this server may have left the host holding control: start from the
    # room's default.
    release = host.get_by_test_id("release-control")
    if release.count():
        release.click()
        expect(release).to_have_count(0)

    enter_demo_room(doctor, demo_server, PRESENTER, room, host)

    # Nobody took control: the presenter drives, and everyone reads so.
    expect(doctor.get_by_test_id("sync-text")).to_have_text("You are driving the shared view.")
    frame(doctor, "driving", "You are driving")
    expect(host.get_by_test_id("sync-text")).to_have_text(
        f"Following: {PRESENTER_NAME} is driving the viewer.")
    frame(host, "following", f"{PRESENTER_NAME} is driving")

    # One click: the host drives, and the doctor's viewer follows his scrolling.
    take = host.get_by_test_id("take-control")
    expect(take).to_have_text("Take control")
    take.click()
    expect(host.get_by_test_id("sync-text")).to_have_text("You are driving the shared view.")
    frame(host, "driving", "You are driving")
    expect(doctor.get_by_test_id("sync-text")).to_have_text(
        f"Following: {HOST_NAME} is driving the viewer.")
    frame(doctor, "following", f"{HOST_NAME} is driving")
    expect(doctor.get_by_test_id("control-notice")).to_have_text(f"{HOST_NAME} took control.")
    go_to(host, 60)
    wait_shown(doctor, 60)
    for _ in range(3):
        host.keyboard.press("ArrowDown")
    wait_shown(doctor, 63)

    # The doctor asks (everyone sees it); the host grants; now the host follows the doctor.
    doctor.get_by_test_id("request-control").click()
    expect(host.get_by_test_id("control-requests")).to_contain_text(
        f"{PRESENTER_NAME} asks for control of the viewer.")
    expect(doctor.get_by_test_id("control-requests")).to_contain_text(
        "You asked the host for control of the viewer.")
    expect(doctor.get_by_test_id("cancel-request")).to_be_visible()
    host.get_by_test_id("give-control").click()
    expect(doctor.get_by_test_id("sync-text")).to_have_text("You are driving the shared view.")
    expect(doctor.get_by_test_id("control-notice")).to_have_text(
        f"{HOST_NAME} gave control to you.")
    frame(host, "following", f"{PRESENTER_NAME} is driving")
    expect(host.get_by_test_id("control-requests")).not_to_contain_text("asks for control")
    doctor.get_by_test_id("viewport").click()
    for _ in range(5):
        doctor.keyboard.press("ArrowUp")
    wait_shown(host, 58)

    # The host looks around on his own, then one click takes him back to the doctor's view.
    host.get_by_test_id("viewport").click()
    host.keyboard.press("Home")
    wait_shown(host, 0)
    frame(host, "looking", f"Looking around · {PRESENTER_NAME} is driving")
    back = host.get_by_test_id("follow")
    expect(back).to_have_text(f"Back to {PRESENTER_NAME}'s view")
    doctor.keyboard.press("ArrowUp")
    wait_shown(doctor, 57)
    assert shown(host) == 0  # not pulled along while looking around
    back.click()
    wait_shown(host, 57)
    frame(host, "following", f"{PRESENTER_NAME} is driving")

    # Taking back gives control to the host (not to the presenter's default), and his
    # scrolling is followed again.
    take = host.get_by_test_id("take-control")
    expect(take).to_have_text("Take back control")
    take.click()
    expect(host.get_by_test_id("sync-text")).to_have_text("You are driving the shared view.")
    frame(doctor, "following", f"{HOST_NAME} is driving")
    expect(doctor.get_by_test_id("request-control")).to_be_visible()
    go_to(host, 120)
    wait_shown(doctor, 120)

    # Released: the presenter drives again, as before anyone took control.
    host.get_by_test_id("release-control").click()
    expect(doctor.get_by_test_id("sync-text")).to_have_text("You are driving the shared view.")
    expect(host.get_by_test_id("control-notice")).to_have_text("You released control.")

    # The driver leaves (for good: the next test on this server meets the presenter anew in
    # the lobby): the host drives.
    doctor.get_by_test_id("leave").click()
    expect(doctor).to_have_url(demo_server.url + "/")
    expect(host.get_by_test_id("sync-text")).to_have_text("You are driving the shared view.")
    expect(host.get_by_test_id("control-notice")).to_have_text("The driver left the room.")
    host.get_by_test_id("leave").click()
    expect(host).to_have_url(demo_server.url + "/")

    assert host_log.problems() == [] and doctor_log.problems() == []
