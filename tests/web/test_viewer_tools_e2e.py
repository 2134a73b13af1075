"""The viewer's tools over the room in headless Chromium: the host draws length, ROI and
angle measurements, rotates, flips and inverts, plays cine, opens a second viewport; a
following doctor's viewer shows the same measurements (same labels), the same camera, plays
too and shows the compare view; deletions and a late joiner (reload) follow."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.web.helpers import DemoServer, PageLog, enter_demo_room, enter_room
from tests.web.viewer_page import RENDERED, go_to, viewer_data, wait_data, wait_shown

DOCTOR = "doctor.hna@demo.hoichan.vn"  # a participant (neither host nor presenter)
SYNC_MS = 1_000  # "on every screen within a second"


def measurement_labels(page: Page) -> list[str]:
    return page.get_by_test_id("measurement-label").all_inner_texts()


def test_measurements_camera_and_cine_reach_the_follower(
        demo_server: DemoServer, open_page: Callable[[PageLog | None], Page]) -> None:
    host_log, doctor_log = PageLog(), PageLog()
    host, doctor = open_page(host_log), open_page(doctor_log)
    room = enter_demo_room(host, demo_server)
    expect(host.get_by_test_id("sync-text")).to_have_text("You are driving the shared view.")
    enter_demo_room(doctor, demo_server, DOCTOR, room, host)
    expect(doctor.get_by_test_id("sync-text")).to_contain_text("Following")

    host.get_by_test_id("viewport").click()
    host.keyboard.press("r")  # a fitted camera and the file's window to start from
    go_to(host, 90)
    wait_shown(doctor, 90)

    # The host draws a length measurement across the image.
    host.keyboard.press("l")
    expect(host.locator("button[data-tool=length]")).to_have_attribute("aria-pressed", "true")
    box = host.get_by_test_id("viewport").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    host.mouse.move(cx - 100, cy)
    host.mouse.down()
    host.mouse.move(cx + 60, cy + 40, steps=8)
    host.mouse.up()
    label = host.get_by_test_id("measurement-label")
    expect(label).to_have_count(1)
    expect(label).to_have_text(re.compile(r"^\d+\.\d mm$"))
    text = label.inner_text()
    # The same label on the doctor's screen, and the line drawn by Cornerstone there too.
    expect(doctor.get_by_test_id("measurement-label")).to_have_text(text, timeout=SYNC_MS)
    expect(doctor.locator("[data-testid=viewport] svg line, [data-testid=viewport] svg path")
           ).not_to_have_count(0, timeout=SYNC_MS)

    # An elliptical ROI (area and mean from the pixel spacing and values) and an angle.
    host.keyboard.press("o")
    host.mouse.move(cx + 20, cy - 80)
    host.mouse.down()
    host.mouse.move(cx + 80, cy - 40, steps=6)
    host.mouse.up()
    host.keyboard.press("a")
    host.mouse.move(cx - 120, cy + 100)
    host.mouse.down()
    host.mouse.move(cx - 60, cy + 60, steps=5)
    host.mouse.up()
    host.mouse.move(cx, cy + 110, steps=5)
    host.mouse.click(cx, cy + 110)
    labels = host.get_by_test_id("measurement-label")
    expect(labels).to_have_count(3)
    expect(labels.nth(1)).to_have_text(re.compile(r"^\d+\.\d mm² · mean -?\d+\.\d"))
    expect(labels.nth(2)).to_have_text(re.compile(r"^\d+\.\d°$"))
    expect(doctor.get_by_test_id("measurement-label")).to_have_text(measurement_labels(host),
                                                                    timeout=SYNC_MS)
    if os.environ.get("HOICHAN_E2E_SHOTS"):
        doctor.screenshot(path=f"{os.environ['HOICHAN_E2E_SHOTS']}/measures-doctor.png")
    # Deleted on the host (the last one, by key): gone on the doctor's screen.
    host.keyboard.press("Delete")
    host.keyboard.press("Delete")
    expect(doctor.get_by_test_id("measurement-label")).to_have_text([text], timeout=SYNC_MS)

    # Rotate 90° and flip horizontally: the doctor's camera is the host's.
    host.keyboard.press("w")
    host.keyboard.press("]")
    host.get_by_test_id("flip-h").click()
    wait_data(host, "rotation", "90")
    wait_data(host, "flipH", "true")
    camera = viewer_data(host)["camera"]
    assert camera.endswith(",90,1,0"), camera
    wait_data(doctor, "camera", camera, timeout=SYNC_MS)
    assert viewer_data(doctor)["flipH"] == "true"

    shots = os.environ.get("HOICHAN_E2E_SHOTS")  # look at what the test saw
    if shots:
        host.screenshot(path=f"{shots}/tools-host.png")
        doctor.screenshot(path=f"{shots}/tools-doctor.png")

    # Invert follows as well.
    host.get_by_test_id("viewport").focus()
    host.keyboard.press("i")
    wait_data(doctor, "invert", "true", timeout=SYNC_MS)

    # Cine at 20 fps: both play, the doctor's image moves by itself.
    host.get_by_test_id("cine-fps").fill("20")
    host.get_by_test_id("cine-fps").press("Enter")
    wait_data(host, "cineFps", "20")
    host.get_by_test_id("viewport").focus()
    host.keyboard.press(" ")
    wait_data(host, "cine", "playing")
    wait_data(doctor, "cine", "playing", timeout=SYNC_MS)
    assert viewer_data(doctor)["cineFps"] == "20"
    seen: set[str] = set()
    seen_host: set[str] = set()
    for _ in range(8):
        seen.add(viewer_data(doctor)["shownIndex"])
        seen_host.add(viewer_data(host)["shownIndex"])
        doctor.wait_for_timeout(120)
    assert len(seen) >= 4 and len(seen_host) >= 4, (seen, seen_host)
    host.keyboard.press(" ")
    wait_data(doctor, "cine", "paused", timeout=SYNC_MS)
    index = viewer_data(host)["imageIndex"]
    wait_shown(doctor, int(index))

    # Back to the measured slice; a late joiner (the doctor's reload) opens with it.
    go_to(host, 90)
    doctor.reload()
    enter_room(doctor, RENDERED)
    wait_shown(doctor, 90)
    expect(doctor.get_by_test_id("measurement-label")).to_have_text(text)
    wait_data(doctor, "camera", camera)

    # Deleting it on the host removes it everywhere.
    host.get_by_test_id("delete-measurement").click()
    expect(host.get_by_test_id("measurement")).to_have_count(0)
    expect(doctor.get_by_test_id("measurement")).to_have_count(0, timeout=SYNC_MS)
    wait_data(doctor, "measurements", "0")

    # Reset: a fitted camera, no invert, on both.
    host.get_by_test_id("viewport").focus()
    host.keyboard.press("r")
    wait_data(doctor, "invert", "false", timeout=SYNC_MS)
    wait_data(doctor, "rotation", "0", timeout=SYNC_MS)

    # A second viewport beside the first (the demo case has one series: compared with
    # itself), shown on the doctor's screen; its own scrolling follows too.
    options = host.get_by_test_id("compare-series").locator("option")
    expect(options).to_have_count(2)
    host.get_by_test_id("compare-series").select_option(index=1)
    host.wait_for_selector("[data-testid=compare][data-rendered='1']", timeout=30_000)
    doctor.wait_for_selector("[data-testid=compare][data-rendered='1']", timeout=30_000)
    host.get_by_test_id("viewport-compare").click()
    wait_data(host, "active", "1")
    host.keyboard.press("Home")
    for _ in range(3):
        host.keyboard.press("ArrowDown")
    wait_data(host, "compareShown", "3")
    wait_data(doctor, "compareShown", "3", timeout=SYNC_MS)
    assert viewer_data(doctor)["shownIndex"] == "90"  # the first viewport stays
    if shots:
        host.screenshot(path=f"{shots}/compare-host.png")
        doctor.screenshot(path=f"{shots}/compare-doctor.png")
    host.get_by_test_id("compare-series").select_option(index=0)
    expect(doctor.get_by_test_id("compare")).to_be_hidden(timeout=SYNC_MS)

    # The shortcuts overlay.
    host.keyboard.press("?")
    expect(host.get_by_test_id("help")).to_be_visible()
    expect(host.get_by_test_id("help")).to_contain_text("Flip")
    host.keyboard.press("Escape")
    expect(host.get_by_test_id("help")).to_be_hidden()

    assert host_log.problems() == [] and doctor_log.problems() == []
