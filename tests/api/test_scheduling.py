"""The coordinator's scheduling API: consultations, invitations, cases, the expert's record,
and each doctor's own upcoming list."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import update

from app.db.engine import create_engine
from app.db.models import Consultation
from tests.api.dbcheck import audit_events, db_state, error_of
from tests.api.scheduling_helpers import T0, booking, create, iso, utc_z


def who(invitation: dict[str, Any]) -> str:
    return invitation["user"]["email"] if invitation["user"] else invitation["hospital"]["code"]


async def test_create_with_invitations_and_cases_then_read_it(client, world):
    body = booking(world, T0, hours=1.5, description="Nốt phổi phải 2 cm", invitations=[
        {"user_id": world.user("NDI").id, "role": "presenter"},
        {"hospital_id": world.user("GTH").hospital_id, "role": "participant"},
        {"hospital_id": world.user("HLY").hospital_id, "role": "observer"},
    ], cases=[{"patient_id": "HC-0077", "patient_name": "TRAN^THI^B", "patient_sex": "F",
               "patient_birth_date": "1970-05-02", "clinical_question": "Nốt phổi?",
               "study_instance_uids": ["1.2.840.113619.2.55.3.1", "1.2.3.4.5"]},
              {"patient_id": "HC-0078", "patient_name": "LE^VAN^C"}])
    r = await client.post("/api/consultations", json=body, headers=world.auth("coordinator"))
    assert r.status == 201, await r.text()
    c = await r.json()
    # Sent as 09:00+07:00, stored and returned as UTC with its offset.
    assert body["start"].endswith("+07:00")
    assert (c["start"], c["end"]) == (utc_z(T0), utc_z(T0 + timedelta(hours=1.5)))
    assert (c["status"], c["timezone"], c["title"]) == ("scheduled", "Asia/Ho_Chi_Minh",
                                                        "Hội chẩn CT ngực")
    assert c["description"] == "Nốt phổi phải 2 cm"
    assert c["host_hospital"]["code"] == "BM"
    assert c["created_by_id"] == world.user("coordinator").id
    assert {who(i): i["role"] for i in c["invitations"]} == {
        "doctor.bm@demo.hoichan.vn": "host", "doctor.ndi@demo.hoichan.vn": "presenter",
        "GTH": "participant", "HLY": "observer"}
    assert [(k["patient_id"], k["study_instance_uids"]) for k in c["cases"]] == [
        ("HC-0077", ["1.2.840.113619.2.55.3.1", "1.2.3.4.5"]), ("HC-0078", [])]
    assert c["cases"][0]["patient_birth_date"] == "1970-05-02"
    assert c["record"] is None and c["my_room_role"] is None  # the coordinator is not invited

    # Everyone invited reads the same consultation, each with their own room role; the
    # observer sees the patients de-identified (tests/api/test_break_glass.py).
    for key, role in [("BM", "host"), ("NDI", "presenter"), ("GTH", "participant"),
                      ("HLY", "observer"), ("coordinator", None), ("admin", None)]:
        r = await client.get(f"/api/consultations/{c['id']}", headers=world.auth(key))
        assert r.status == 200, key
        read = await r.json()
        assert read["my_room_role"] == role, key
        assert [k["identified"] for k in read["cases"]] == [role != "observer"] * 2, key
        same = ("my_room_role", "cases") if role == "observer" else ("my_room_role",)
        assert {k: v for k, v in read.items() if k not in same} == {
            k: v for k, v in c.items() if k not in same}
    # A doctor who is not invited does not learn it exists.
    await error_of(await client.get(f"/api/consultations/{c['id']}",
                                    headers=world.auth("KXU")), 404, code="not_found")
    [event] = await audit_events(world.settings, "consultation.create")
    assert event.consultation_id == c["id"] and event.actor_id == world.user("coordinator").id


async def test_times_are_taken_with_any_offset_and_returned_in_utc(client, world):
    start = datetime(2031, 3, 10, 9, 0, tzinfo=timezone(timedelta(hours=7)))
    body = booking(world) | {"start": "2031-03-10T09:00:00+07:00",
                             "end": "2031-03-10T01:30:00-01:00"}
    r = await client.post("/api/consultations", json=body, headers=world.auth("coordinator"))
    assert r.status == 201, await r.text()
    c = await r.json()
    assert c["start"] == "2031-03-10T02:00:00Z" and c["end"] == "2031-03-10T02:30:00Z"
    assert datetime.fromisoformat(c["start"]) == start
    for field in ("start", "end", "created_at", "updated_at"):
        assert datetime.fromisoformat(c[field]).utcoffset() == timedelta(0), field


async def test_naive_times_are_refused(client, world):
    before = await db_state(world.settings)
    for field in ("start", "end"):
        body = booking(world) | {field: "2031-03-10T09:00:00"}
        r = await client.post("/api/consultations", json=body,
                              headers=world.auth("coordinator"))
        await error_of(r, 422, field=field)
    r = await client.patch(f"/api/consultations/{world.consultation_id}",
                           json={"start": "2031-03-10T09:00:00"},
                           headers=world.auth("coordinator"))
    await error_of(r, 422, field="start")
    r = await client.get("/api/consultations", params={"from": "2031-03-10T09:00:00"},
                         headers=world.auth("coordinator"))
    await error_of(r, 422, field="from")
    assert await db_state(world.settings) == before


async def test_update_reschedules_and_edits(client, world):
    c = await create(client, world, start=T0)
    url = f"/api/consultations/{c['id']}"
    new_start = T0 + timedelta(days=1, hours=3)
    r = await client.patch(url, json={
        "title": "Hội chẩn lại", "description": "thêm phim", "timezone": "Asia/Bangkok",
        "start": iso(new_start), "end": iso(new_start + timedelta(minutes=45)),
        "host_hospital_id": world.user("NDI").hospital_id}, headers=world.auth("coordinator"))
    assert r.status == 200, await r.text()
    changed = await r.json()
    assert (changed["title"], changed["description"], changed["timezone"]) == (
        "Hội chẩn lại", "thêm phim", "Asia/Bangkok")
    assert (changed["start"], changed["end"]) == (
        utc_z(new_start), utc_z(new_start + timedelta(minutes=45)))
    assert changed["host_hospital"]["code"] == "NDI"
    assert changed["updated_at"] >= c["updated_at"]
    assert await (await client.get(url, headers=world.auth("coordinator"))).json() == changed
    # Moving only the end keeps the start; an end before the start is refused.
    r = await client.patch(url, json={"end": iso(new_start + timedelta(hours=2))},
                           headers=world.auth("coordinator"))
    assert (await r.json())["start"] == utc_z(new_start)
    before = await db_state(world.settings)
    r = await client.patch(url, json={"end": iso(new_start - timedelta(minutes=1))},
                           headers=world.auth("coordinator"))
    await error_of(r, 422, field="end")
    r = await client.patch(url, json={"start": iso(new_start + timedelta(hours=3))},
                           headers=world.auth("coordinator"))
    await error_of(r, 422, field="end")
    assert await db_state(world.settings) == before
    assert [e.detail.get("title") for e in await audit_events(
        world.settings, "consultation.update")] == ["Hội chẩn lại", None]


async def test_cancel_stops_further_changes(client, world):
    c = await create(client, world)
    url = f"/api/consultations/{c['id']}"
    r = await client.post(url + "/cancel", headers=world.auth("coordinator"))
    assert r.status == 200 and (await r.json())["status"] == "cancelled"
    before = await db_state(world.settings)
    for method, path, body in [
        ("PATCH", url, {"title": "x"}), ("POST", url + "/cancel", None),
        ("POST", url + "/invitations", {"user_id": world.user("TBI").id, "role": "observer"}),
        ("PATCH", url + f"/invitations/{c['invitations'][0]['id']}", {"role": "observer"}),
        ("DELETE", url + f"/invitations/{c['invitations'][0]['id']}", None),
        ("POST", url + "/cases", {"patient_id": "P", "patient_name": "A^B"}),
    ]:
        r = await client.request(method, path, json=body, headers=world.auth("coordinator"))
        await error_of(r, 409, code="wrong_status")
    assert await db_state(world.settings) == before
    [event] = await audit_events(world.settings, "consultation.cancel")
    assert event.consultation_id == c["id"]


async def test_invite_change_role_and_uninvite(client, world):
    c = await create(client, world)
    url = f"/api/consultations/{c['id']}/invitations"
    r = await client.post(url, json={"user_id": world.user("TBI").id, "role": "participant"},
                          headers=world.auth("coordinator"))
    assert r.status == 201, await r.text()
    by_user = await r.json()
    assert by_user["user"]["id"] == world.user("TBI").id and by_user["hospital"] is None
    assert by_user["role"] == "participant"
    r = await client.post(url, json={"hospital_id": world.user("KBA").hospital_id,
                                     "role": "observer"}, headers=world.auth("coordinator"))
    assert r.status == 201
    by_hospital = await r.json()
    assert by_hospital["hospital"]["code"] == "KBA" and by_hospital["user"] is None
    # The invitee now sees it; the invitation is not made twice.
    assert (await client.get(f"/api/consultations/{c['id']}",
                             headers=world.auth("TBI"))).status == 200
    for again in ({"user_id": world.user("TBI").id, "role": "observer"},
                  {"hospital_id": world.user("KBA").hospital_id, "role": "participant"}):
        await error_of(await client.post(url, json=again, headers=world.auth("coordinator")),
                       409, code="already_invited")

    r = await client.patch(f"{url}/{by_user['id']}", json={"role": "presenter"},
                           headers=world.auth("coordinator"))
    assert r.status == 200 and (await r.json())["role"] == "presenter"
    r = await client.get(f"/api/consultations/{c['id']}", headers=world.auth("TBI"))
    assert (await r.json())["my_room_role"] == "presenter"
    # A hospital is not a person: it cannot host.
    await error_of(await client.patch(f"{url}/{by_hospital['id']}", json={"role": "host"},
                                      headers=world.auth("coordinator")), 422, field="role")
    await error_of(await client.post(url, json={"hospital_id": world.user("HNA").hospital_id,
                                                "role": "host"},
                                     headers=world.auth("coordinator")), 422)

    r = await client.delete(f"{url}/{by_user['id']}", headers=world.auth("coordinator"))
    assert r.status == 204
    assert (await client.get(f"/api/consultations/{c['id']}",
                             headers=world.auth("TBI"))).status == 404
    await error_of(await client.delete(f"{url}/{by_user['id']}",
                                       headers=world.auth("coordinator")), 404)
    actions = [(e.action, e.consultation_id) for e in await audit_events(world.settings)
               if e.action.startswith("invitation.")]
    assert actions == [("invitation.create", c["id"]), ("invitation.create", c["id"]),
                       ("invitation.update", c["id"]), ("invitation.delete", c["id"])]


async def test_the_last_host_cannot_be_removed_or_demoted(client, world):
    c = await create(client, world)
    url = f"/api/consultations/{c['id']}/invitations"
    [host] = [i for i in c["invitations"] if i["role"] == "host"]
    before = await db_state(world.settings)
    await error_of(await client.delete(f"{url}/{host['id']}",
                                       headers=world.auth("coordinator")), 409, code="last_host")
    await error_of(await client.patch(f"{url}/{host['id']}", json={"role": "participant"},
                                      headers=world.auth("coordinator")), 409, code="last_host")
    assert await db_state(world.settings) == before
    # With a second host invited first, the first can go.
    r = await client.post(url, json={"user_id": world.user("NDI").id, "role": "host"},
                          headers=world.auth("coordinator"))
    assert r.status == 201
    assert (await client.delete(f"{url}/{host['id']}",
                                headers=world.auth("coordinator"))).status == 204


async def test_attach_and_detach_cases(client, world):
    c = await create(client, world)
    url = f"/api/consultations/{c['id']}/cases"
    r = await client.post(url, json={
        "patient_id": "HC-0099", "patient_name": "PHAM^THI^D", "patient_sex": "F",
        "patient_birth_date": "1985-11-30", "clinical_question": "Tràn dịch màng phổi?",
        "study_instance_uids": ["1.2.826.0.1.3680043.8.498.1"]},
        headers=world.auth("coordinator"))
    assert r.status == 201, await r.text()
    case = await r.json()
    assert case["study_instance_uids"] == ["1.2.826.0.1.3680043.8.498.1"]
    read = await (await client.get(f"/api/consultations/{c['id']}",
                                   headers=world.auth("BM"))).json()
    assert [k["id"] for k in read["cases"]] == [case["id"]]
    assert (await client.delete(f"{url}/{case['id']}",
                                headers=world.auth("coordinator"))).status == 204
    read = await (await client.get(f"/api/consultations/{c['id']}",
                                   headers=world.auth("BM"))).json()
    assert read["cases"] == []
    await error_of(await client.delete(f"{url}/{case['id']}",
                                       headers=world.auth("coordinator")), 404)
    assert [e.action for e in await audit_events(world.settings)
            if e.action.startswith("case.")] == ["case.create", "case.delete"]


async def test_list_filters_by_dates_hospital_status_and_pages(client, world):
    a = await create(client, world, start=T0, host="BM")
    b = await create(client, world, start=T0 + timedelta(days=1), host="NDI", invitations=[
        {"hospital_id": world.user("GTI").hospital_id, "role": "observer"}])
    c = await create(client, world, start=T0 + timedelta(days=2), host="TBI", invitations=[
        {"user_id": world.user("KXU").id, "role": "participant"}])
    await client.post(f"/api/consultations/{c['id']}/cancel", headers=world.auth("coordinator"))
    demo = world.consultation_id

    async def ids(who: str = "coordinator", **params: Any) -> list[int]:
        r = await client.get("/api/consultations", params=params, headers=world.auth(who))
        assert r.status == 200, await r.text()
        page = await r.json()
        return [i["id"] for i in page["items"]]

    assert await ids() == [demo, a["id"], b["id"], c["id"]]  # by start time
    # from is inclusive, to exclusive, both on the start, with any offset.
    assert await ids(**{"from": iso(T0)}) == [a["id"], b["id"], c["id"]]
    assert await ids(**{"from": iso(T0), "to": iso(T0 + timedelta(days=1))}) == [a["id"]]
    assert await ids(to=iso(T0)) == [demo]
    assert await ids(**{"from": iso(T0 + timedelta(seconds=1))}) == [b["id"], c["id"]]
    assert await ids(status="cancelled") == [c["id"]]
    assert await ids(status="scheduled") == [demo, a["id"], b["id"]]
    assert await ids(status="live") == []
    # A hospital: as host hospital, as an invited hospital, or through an invited doctor.
    assert await ids(hospital_id=world.user("NDI").hospital_id) == [demo, b["id"]]
    assert await ids(hospital_id=world.user("GTI").hospital_id) == [demo, b["id"]]
    assert await ids(hospital_id=world.user("KXU").hospital_id) == [demo, c["id"]]
    assert await ids(hospital_id=world.user("KXU").hospital_id, status="scheduled") == [demo]
    # Paging: the total counts every match, the page is a window of it.
    r = await client.get("/api/consultations", params={"limit": "2", "offset": "1"},
                         headers=world.auth("coordinator"))
    page = await r.json()
    assert page["total"] == 4 and [i["id"] for i in page["items"]] == [a["id"], b["id"]]
    assert await ids(limit="2", offset="4") == []
    # A doctor lists only what they are invited to (the demo invites GTI and HNA directly).
    assert await ids("GTI") == [demo, b["id"]]
    assert await ids("HNA") == [demo]


async def test_my_consultations_are_the_upcoming_ones_i_am_invited_to(client, world):
    direct = await create(client, world, start=T0, invitations=[
        {"user_id": world.user("KXU").id, "role": "participant"}])
    via_hospital = await create(client, world, start=T0 - timedelta(days=1), host="NDI",
                                invitations=[{"hospital_id": world.user("KXU").hospital_id,
                                              "role": "observer"}])
    cancelled = await create(client, world, start=T0 + timedelta(days=1), invitations=[
        {"user_id": world.user("KXU").id, "role": "participant"}])
    await client.post(f"/api/consultations/{cancelled['id']}/cancel",
                      headers=world.auth("coordinator"))
    past = await create(client, world, start=T0 + timedelta(days=2), invitations=[
        {"user_id": world.user("KXU").id, "role": "participant"}])
    not_mine = await create(client, world, start=T0 + timedelta(days=3))
    # The API cannot schedule in the past; move one there as time would.
    engine = create_engine(world.settings.database_url)
    async with engine.begin() as conn:
        yesterday = datetime.now(UTC) - timedelta(days=1)
        await conn.execute(update(Consultation).where(Consultation.id == past["id"]).values(
            scheduled_start=yesterday, scheduled_end=yesterday + timedelta(hours=1)))
    await engine.dispose()

    r = await client.get("/api/me/consultations", headers=world.auth("KXU"))
    assert r.status == 200
    mine = await r.json()
    # Soonest first: the demo (now), then the hospital invitation, then the direct one.
    assert [c["id"] for c in mine] == [world.consultation_id, via_hospital["id"], direct["id"]]
    assert [c["my_room_role"] for c in mine] == ["participant", "observer", "participant"]
    assert not_mine["id"] not in [c["id"] for c in mine]
    # The host sees what they host.
    r = await client.get("/api/me/consultations", headers=world.auth("BM"))
    assert [c["id"] for c in await r.json()] == [world.consultation_id, direct["id"],
                                                 not_mine["id"]]


async def test_only_the_host_writes_the_record_and_invitees_read_it(client, world):
    c = await create(client, world, invitations=[
        {"user_id": world.user("NDI").id, "role": "presenter"},
        {"hospital_id": world.user("GTH").hospital_id, "role": "observer"}])
    url = f"/api/consultations/{c['id']}/record"
    await error_of(await client.get(url, headers=world.auth("NDI")), 404)
    text = {"conclusion": "U phổi phải T2N0M0", "treatment_plan": "Phẫu thuật cắt thùy"}
    before = await db_state(world.settings)
    for key in ("NDI", "GTH", "coordinator", "admin"):
        await error_of(await client.put(url, json=text, headers=world.auth(key)), 403)
    assert await db_state(world.settings) == before
    r = await client.put(url, json=text, headers=world.auth("BM"))
    assert r.status == 200, await r.text()
    written = await r.json()
    assert (written["conclusion"], written["treatment_plan"]) == tuple(text.values())
    assert written["author"]["id"] == world.user("BM").id
    assert datetime.fromisoformat(written["updated_at"]).utcoffset() == timedelta(0)
    for key in ("NDI", "GTH", "coordinator"):
        r = await client.get(url, headers=world.auth(key))
        assert r.status == 200 and await r.json() == written, key
    read = await (await client.get(f"/api/consultations/{c['id']}",
                                   headers=world.auth("GTH"))).json()
    assert read["record"] == written
    # Writing again replaces it; every save is audited with its text.
    r = await client.put(url, json=text | {"treatment_plan": "Hóa trị"},
                         headers=world.auth("BM"))
    assert (await r.json())["treatment_plan"] == "Hóa trị"
    assert [e.detail["treatment_plan"] for e in await audit_events(
        world.settings, "record.write")] == ["Phẫu thuật cắt thùy", "Hóa trị"]
    await client.post(f"/api/consultations/{c['id']}/cancel",
                      headers=world.auth("coordinator"))
    await error_of(await client.put(url, json=text, headers=world.auth("BM")), 409,
                   code="wrong_status")


async def test_the_same_invitation_sent_twice_at_once_is_made_once(client, world):
    c = await create(client, world)
    url = f"/api/consultations/{c['id']}/invitations"
    answers = await asyncio.gather(*[client.post(
        url, json={"user_id": world.user("HNA").id, "role": "participant"},
        headers=world.auth("coordinator")) for _ in range(2)])
    assert sorted(r.status for r in answers) == [201, 409], [await r.text() for r in answers]
    read = await (await client.get(f"/api/consultations/{c['id']}",
                                   headers=world.auth("coordinator"))).json()
    assert [who(i) for i in read["invitations"]].count("doctor.hna@demo.hoichan.vn") == 1
