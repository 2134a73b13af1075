"""The consultation record in the room, in headless Chromium against the real server: the
host writes the conclusion and the treatment plan and saves; a doctor in the room sees the
text appear without a reload and has nothing to edit; the REST API reads the same text back.
Camera and microphone stay off (this test is about the record)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.web.helpers import DemoServer, PageLog, api, enter_demo_room, enter_room, token

HOST = "doctor.bm@demo.hoichan.vn"
HOST_NAME = "GS. Nguyễn Văn An"
# A participant that no other browser test uses (a district hospital under Nam Định).
DOCTOR = "doctor.gth@demo.hoichan.vn"
IN_ROOM = "[data-testid=record]"
SAVE_MS = 20_000


def test_host_saves_the_record_and_the_room_sees_it(
        demo_server: DemoServer, open_page: Callable[[PageLog | None], Page]) -> None:
    host_log, doctor_log = PageLog(), PageLog()
    host, doctor = open_page(host_log), open_page(doctor_log)
    room = enter_demo_room(host, demo_server, HOST, ready=IN_ROOM, seconds=30)
    match = re.search(r"/consultations/(\d+)/room", room)
    assert match, room
    cid = int(match.group(1))
    enter_demo_room(doctor, demo_server, DOCTOR, room=room, host=host, ready=IN_ROOM,
                    seconds=30)

    # The host has the fields; the doctor has none, only the saved text (none yet or an
    # earlier one).
    expect(host.get_by_test_id("record-conclusion")).to_be_editable()
    expect(host.get_by_test_id("record-plan")).to_be_editable()
    expect(doctor.get_by_test_id("record")).to_be_visible()
    expect(doctor.locator("[data-testid=record] textarea")).to_have_count(0)
    expect(doctor.get_by_test_id("record-save")).to_have_count(0)

    stamp = str(time.time_ns())
    conclusion = f"U phổi thùy trên phải, nghi ác tính ({stamp})."
    plan = f"Sinh thiết xuyên thành ngực; PET-CT ({stamp})."
    host.get_by_test_id("record-conclusion").fill(conclusion)
    host.get_by_test_id("record-plan").fill(plan)
    host.get_by_test_id("record-save").click()
    # (The viewers are still fetching the CT's frames over the browser's few connections: the
    # PUT may wait its turn.)
    expect(host.get_by_test_id("record-status")).to_have_attribute("data-state", "saved",
                                                                   timeout=SAVE_MS)
    expect(host.get_by_test_id("record-status")).to_contain_text("Saved at")

    # The doctor's panel follows `record:saved`, without a reload.
    expect(doctor.get_by_test_id("record-view-conclusion")).to_have_text(conclusion)
    expect(doctor.get_by_test_id("record-view-plan")).to_have_text(plan)
    expect(doctor.get_by_test_id("record-meta")).to_contain_text(HOST_NAME)
    assert doctor.url == room

    # The host's unsaved typing survives a save from elsewhere (here: the API, as the host
    # in another window): a notice instead of an overwrite.
    draft = conclusion + " Bổ sung."
    host.get_by_test_id("record-conclusion").fill(draft)
    host_token = token(demo_server, HOST)
    status, body = api(demo_server, "PUT", f"/api/consultations/{cid}/record", host_token,
                       {"conclusion": conclusion + " v2", "treatment_plan": plan})
    assert status == 200, body
    expect(doctor.get_by_test_id("record-view-conclusion")).to_have_text(conclusion + " v2")
    expect(host.get_by_test_id("record-updated")).to_contain_text(f"Updated by {HOST_NAME}")
    expect(host.get_by_test_id("record-conclusion")).to_have_value(draft)
    host.get_by_test_id("record-save").click()
    expect(doctor.get_by_test_id("record-view-conclusion")).to_have_text(draft, timeout=SAVE_MS)
    expect(host.get_by_test_id("record-updated")).to_have_count(0)

    # The REST API reads back what was saved; a non-host cannot write.
    status, body = api(demo_server, "GET", f"/api/consultations/{cid}/record", host_token)
    assert status == 200, body
    assert body["conclusion"] == draft and body["treatment_plan"] == plan, body
    doctor_token = token(demo_server, DOCTOR)
    status, body = api(demo_server, "GET", f"/api/consultations/{cid}/record", doctor_token)
    assert status == 200 and body["conclusion"] == draft, body
    status, _ = api(demo_server, "PUT", f"/api/consultations/{cid}/record", doctor_token,
                    {"conclusion": "x", "treatment_plan": "y"})
    assert status == 403

    # A reload shows the saved text again (GET on entering).
    doctor.reload()
    enter_room(doctor, IN_ROOM, host, seconds=30)
    expect(doctor.get_by_test_id("record-view-conclusion")).to_have_text(draft)
    # Both leave, so that the room's later tests find only their own members.
    for pg in (doctor, host):
        pg.get_by_test_id("leave").click()
        expect(pg).not_to_have_url(re.compile(r"/room$"))

    for log in (host_log, doctor_log):
        assert not log.problems(), log.problems()
