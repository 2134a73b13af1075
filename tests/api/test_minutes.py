"""The consultation minutes through the REST API, as the chair and the secretary write and
sign them: drafts, sign-off, the guards on signed versions (in the API and in the database),
amendments, attendance from the room's presence, and the audit of every step."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import text

from app.db.engine import create_engine
from app.minutes.content import MinutesContent
from tests.api.dbcheck import audit_events, error_of, row_counts
from tests.api.minutes_helpers import FILLED, ok, put, room_presence, signed_by_both, url


async def test_drafted_signed_by_chair_and_secretary_then_amended(client, world):
    r = await client.get(url(world), headers=world.auth("BM"))
    await error_of(r, 404)
    # Only the chair starts them; a participant may not.
    await error_of(await put(client, world, "GTH", {"reason": "x"}), 403)
    m = await ok(await put(client, world, "BM", {"reason": "Khối mờ phổi phải",
                                                 "questions": [{"question": "Bản chất?"}]}))
    assert (m["version"], m["status"], m["revision"]) == (1, "draft", 1)
    assert m["content"]["questions"] == [{"question": "Bản chất?", "conclusion": ""}]
    assert set(m["missing"]) == {"diagnosis_before", "diagnosis_after", "treatment_plan",
                                 "questions[0].conclusion", "secretary"}

    # Signing with fields empty: refused, naming them.
    err = await error_of(await client.post(url(world, "/sign"), json={"revision": 1},
                                           headers=world.auth("BM")), 422, "incomplete")
    assert "secretary" in err["missing"] and "diagnosis_after" in err["missing"]

    # The chair names the presenter as secretary; not an observer, not the chair.
    for key, code in [("HYE", "observer_as_secretary"), ("BM", "chair_as_secretary"),
                      ("admin", "not_invited")]:
        r = await client.put(url(world, "/secretary"), json={
            "user_id": world.user(key).id, "revision": 1}, headers=world.auth("BM"))
        await error_of(r, 422, code)
    r = await client.put(url(world, "/secretary"), json={"user_id": world.user("NDI").id,
                                                         "revision": 1},
                         headers=world.auth("NDI"))
    await error_of(r, 403)
    m = await ok(await client.put(url(world, "/secretary"), json={
        "user_id": world.user("NDI").id, "revision": 1}, headers=world.auth("BM")))
    assert m["secretary"]["id"] == world.user("NDI").id and m["revision"] == 2

    # The secretary writes; an edit on an old revision is refused.
    await error_of(await put(client, world, "NDI", FILLED, revision=1), 409, "stale_revision")
    m = await ok(await put(client, world, "NDI", FILLED, revision=2))
    assert m["missing"] == [] and m["revision"] == 3
    # Everyone invited reads the same draft; observers cannot write it.
    seen = await ok(await client.get(url(world), headers=world.auth("HYE")))
    assert seen["content"] == {**FILLED, "outcome_feedback": "", "key_images": []}
    await error_of(await put(client, world, "HYE", FILLED, revision=3), 403)

    await room_presence(world, [("room.join", "BM", "host", -30),
                                ("room.join", "NDI", "presenter", -29),
                                ("room.join", "GTH", "participant", -20),
                                ("room.leave", "GTH", "participant", -5),
                                ("room.join", "HYE", "observer", -10)])
    # Signing: each once, on the revision they read.
    await error_of(await client.post(url(world, "/sign"), json={"revision": 2},
                                     headers=world.auth("BM")), 409, "stale_revision")
    await error_of(await client.post(url(world, "/sign"), json={"revision": 3},
                                     headers=world.auth("GTH")), 403)
    m = await ok(await client.post(url(world, "/sign"), json={"revision": 3},
                                   headers=world.auth("BM")))
    assert (m["status"], [s["role"] for s in m["signoffs"]]) == ("draft", ["chair"])
    await error_of(await client.post(url(world, "/sign"), json={"revision": 4},
                                     headers=world.auth("BM")), 409, "already_signed")
    # Once signing has begun the text is fixed.
    await error_of(await put(client, world, "NDI", {**FILLED, "follow_up": "1 tuần"},
                             revision=4), 409, "signing_started")
    m = await ok(await client.post(url(world, "/sign"), json={"revision": 4},
                                   headers=world.auth("NDI")))
    assert m["status"] == "signed" and m["signed_at"] is not None
    assert [s["role"] for s in m["signoffs"]] == ["chair", "secretary"]
    assert m["signoffs"][0]["content_sha256"] == m["signoffs"][1]["content_sha256"]
    # Attendees from the room's presence, in order of arrival, with their times.
    rows = {a["name"]: a for a in m["attendees"]}
    assert [a["user_id"] for a in m["attendees"]] == [
        world.user(k).id for k in ("BM", "NDI", "GTH", "HYE")]
    assert rows[world.user("GTH").name]["attended_to"] is not None
    assert rows[world.user("BM").name]["attended_to"] is None
    assert rows[world.user("GTH").name]["hospital"] == "Trung tâm Y tế huyện Giao Thủy"
    assert rows[world.user("GTH").name]["tier"] == "district"
    assert rows[world.user("HYE").name]["role"] == "observer"

    # A signed version never changes, by any route.
    await error_of(await put(client, world, "BM", FILLED, revision=5), 409, "minutes_signed")
    await error_of(await client.post(url(world, "/sign"), json={"revision": 5},
                                     headers=world.auth("NDI")), 409, "minutes_signed")
    # Attendance later does not rewrite who attended the signed version.
    await room_presence(world, [("room.join", "KBA", "participant", 1)])
    again = await ok(await client.get(url(world), headers=world.auth("BM")))
    assert [a["user_id"] for a in again["attendees"]] == [a["user_id"] for a in m["attendees"]]

    # Amending: the chair only, with a reason; the signed version stays and is listed.
    await error_of(await client.post(url(world, "/amend"), json={"reason": "Có GPB"},
                                     headers=world.auth("NDI")), 403)
    await error_of(await client.post(url(world, "/amend"), json={"reason": "  "},
                                     headers=world.auth("BM")), 422)
    v2 = await ok(await client.post(url(world, "/amend"), json={
        "reason": "Bổ sung kết quả giải phẫu bệnh"}, headers=world.auth("BM")), 201)
    assert (v2["version"], v2["status"], v2["versions"]) == (2, "draft", [1, 2])
    assert v2["amendment_reason"] == "Bổ sung kết quả giải phẫu bệnh"
    assert v2["content"] == m["content"] and v2["signoffs"] == []
    assert v2["secretary"]["id"] == world.user("NDI").id
    await error_of(await client.post(url(world, "/amend"), json={"reason": "lại"},
                                     headers=world.auth("BM")), 409, "not_signed")
    v2 = await ok(await put(client, world, "NDI", {**FILLED, "outcome_feedback":
                                                   "GPB: ung thư biểu mô tuyến"}, revision=1))
    v1 = await ok(await client.get(url(world, "/versions/1"), headers=world.auth("GTH")))
    assert v1["status"] == "signed" and v1["content"]["outcome_feedback"] == ""
    await error_of(await client.get(url(world, "/versions/9"), headers=world.auth("BM")), 404)

    # Every step is in the audit trail, refusals with their reason.
    done = [(e.action, e.outcome) for e in await audit_events(world.settings)
            if e.action.startswith("minutes.")]
    assert [a for a, o in done if o == "success"] == [
        "minutes.create", "minutes.secretary", "minutes.write", "minutes.sign", "minutes.sign",
        "minutes.signed", "minutes.amend", "minutes.write"]
    denied = [e for e in await audit_events(world.settings)
              if e.action.startswith("minutes.") and e.outcome == "denied"]
    assert {e.detail["code"] for e in denied} >= {
        "incomplete", "stale_revision", "already_signed", "signing_started", "minutes_signed",
        "not_signed", "forbidden"}


async def test_the_database_refuses_to_change_signed_minutes_and_signoffs(client, world):
    await signed_by_both(client, world)
    engine = create_engine(world.settings.database_url)
    try:
        for statement in ("UPDATE minutes SET content = '{}'", "DELETE FROM minutes",
                          "UPDATE minutes_signoffs SET role = 'x'",
                          "DELETE FROM minutes_signoffs"):
            with pytest.raises(Exception, match="never change|append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()


_texts = st.text(max_size=60)
_contents = st.fixed_dictionaries({}, optional={
    "reason": st.one_of(_texts, st.integers(), st.none(), st.text(min_size=10_001,
                                                                   max_size=10_002)),
    "questions": st.one_of(st.lists(st.fixed_dictionaries({"question": _texts}), max_size=3),
                           st.lists(st.fixed_dictionaries({"q": _texts}), min_size=1,
                                    max_size=1), st.text(max_size=3)),
    "nonsense": _texts,
})


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=_contents)
async def test_bad_drafts_get_a_clear_error_and_leave_nothing(client, world, content):
    try:
        MinutesContent.model_validate(content)
        valid = True
    except ValidationError:
        valid = False
    before = await row_counts(world.settings)
    r = await put(client, world, "BM", content)
    after = await row_counts(world.settings)
    if valid:
        # The first valid draft starts the minutes; the next ones name no revision.
        assert r.status in (200, 409), await r.text()
        return
    await error_of(r, 422)
    assert {k: v for k, v in after.items() if k != "audit_events"} == \
        {k: v for k, v in before.items() if k != "audit_events"}
