"""The patient's consent in the room, in headless Chromium against the real server: the host
records the representative's verbal consent to recording; an observer's panel follows at once
with the state alone (no name, no form); the REST API holds the record."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.web.helpers import DemoServer, PageLog, api, enter_demo_room, token

HOST = "doctor.bm@demo.hoichan.vn"
# An observer from outside the 1-4-4-2 network that no other browser test uses.
OBSERVER = "doctor.tha@demo.hoichan.vn"
IN_ROOM = "[data-testid=consent]"
REPRESENTATIVE = "Nguyễn Văn Y"


def test_host_records_consent_and_the_observer_sees_the_state(
        demo_server: DemoServer, open_page: Callable[[PageLog | None], Page]) -> None:
    host_log, observer_log = PageLog(), PageLog()
    host, observer = open_page(host_log), open_page(observer_log)
    room = enter_demo_room(host, demo_server, HOST, ready=IN_ROOM, seconds=30)
    match = re.search(r"/consultations/(\d+)/room", room)
    assert match, room
    cid = int(match.group(1))
    enter_demo_room(observer, demo_server, OBSERVER, room=room, host=host, ready=IN_ROOM,
                    seconds=30)
    expect(observer.get_by_test_id("consent-recording")).to_have_attribute("data-status", "none")
    expect(observer.get_by_test_id("consent-save")).to_have_count(0)

    host.get_by_test_id("consent-open").click()
    host.get_by_test_id("consent-scope").select_option("recording")
    host.get_by_test_id("consent-given_by").select_option("representative")
    host.get_by_test_id("consent-giver-name").fill(REPRESENTATIVE)
    host.get_by_test_id("consent-relation").fill("con trai")
    host.get_by_test_id("consent-method").select_option("verbal")
    host.get_by_test_id("consent-save").click()
    expect(host.get_by_test_id("consent-recording")).to_have_attribute(
        "data-status", "granted", timeout=20_000)
    expect(host.get_by_test_id("consent-recording")).to_contain_text(REPRESENTATIVE)

    # The observer's panel follows consent:updated, with the state and nobody's name.
    expect(observer.get_by_test_id("consent-recording")).to_have_attribute(
        "data-status", "granted")
    expect(observer.get_by_test_id("consent-recording")).not_to_contain_text(REPRESENTATIVE)

    case_id = api(demo_server, "GET", f"/api/consultations/{cid}",
                  token(demo_server, HOST))[1]["cases"][0]["id"]
    status, body = api(demo_server, "GET", f"/api/consultations/{cid}/cases/{case_id}/consents",
                       token(demo_server, HOST))
    assert status == 200, body
    latest = body["recording"]["latest"]
    assert (latest["giver_name"], latest["relation"], latest["method"]) == (
        REPRESENTATIVE, "con trai", "verbal"), latest
    for pg in (observer, host):
        pg.get_by_test_id("leave").click()
        expect(pg).not_to_have_url(re.compile(r"/room$"))
    for log in (host_log, observer_log):
        assert not log.problems(), log.problems()
