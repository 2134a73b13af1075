"""The coordinator's scheduling API: consultations, invitations, cases, record, join tokens."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update

from app.auth.tokens import verify_join
from app.db.engine import create_engine, session_factory
from app.db.models import Consultation
from tests.conftest import JWT_SECRET

T0 = datetime(2031, 3, 10, 2, 0, tzinfo=timezone.utc)  # 09:00 in Hanoi


def iso(dt: datetime, tz_hours: int = 7) -> str:
    return dt.astimezone(timezone(timedelta(hours=tz_hours))).isoformat()


def booking(world, start: datetime = T0, hours: float = 1, host: str = "BM",
            **extra: Any) -> dict[str, Any]:
    return {"title": "Hội chẩn CT ngực", "start": iso(start),
            "end": iso(start + timedelta(hours=hours)), "timezone": "Asia/Ho_Chi_Minh",
            "host_hospital_id": world.user(host).hospital_id,
            "host_user_id": world.user(host).id, **extra}


async def create(client, world, **kw) -> dict[str, Any]:
    r = await client.post("/api/consultations", json=booking(world, **kw),
                          headers=world.auth("coordinator"))
    assert r.status == 201, await r.text()
    return await r.json()


async def test_create_read_with_invitations_and_cases(client, world):
    body = booking(world, invitations=[
        {"user_id": world.user("NDI").id, "role": "presenter"},
        {"hospital_id": world.user("GTH").hospital_id, "role": "participant"},
        {"hospital_id": world.user("HLY").hospital_id, "role": "observer"},
    ], cases=[{"patient_id": "P-77", "patient_name": "TRAN^THI^B", "patient_sex": "F",
               "patient_birth_date": "1970-05-02", "clinical_question": "Nốt phổi?",
               "study_instance_uids": ["1.2.840.113619.2.55.3.1", "1.2.3.4.5"]}])
    r = await client.post("/api/consultations", json=body, headers=world.auth("coordinator"))
    assert r.status == 201
    c = await r.json()
    assert c["start"] == "2031-03-10T02:00:00Z" and c["end"] == "2031-03-10T03:00:00Z"
    assert c["status"] == "scheduled" and c["timezone"] == "Asia/Ho_Chi_Minh"
    roles = {(i["user"] or {}).get("email") or i["hospital"]["code"]: i["role"]
             for i in c["invitations"]}
    assert roles == {"doctor.bm@demo.hoichan.vn": "host", "doctor.ndi@demo.hoichan.vn":
                     "presenter", "GTH": "participant", "HLY": "observer"}
    assert c["cases"][0]["study_instance_uids"] == ["1.2.840.113619.2.55.3.1", "1.2.3.4.5"]
    assert c["cases"][0]["patient_birth_date"] == "1970-05-02"
    # A doctor of an invited hospital sees it with the hospital's role; others get 404.
    r = await client.get(f"/api/consultations/{c['id']}", headers=world.auth("GTH"))
    assert r.status == 200 and (await r.json())["my_room_role"] == "participant"
    r = await client.get(f"/api/consultations/{c['id']}", headers=world.auth("KXU"))
    assert r.status == 404


async def test_update_cancel_and_state_rules(client, world):
    c = await create(client, world)
    url = f"/api/consultations/{c['id']}"
    r = await client.patch(url, json={"title": "Đổi tên", "start": iso(T0 + timedelta(hours=1)),
                                      "end": iso(T0 + timedelta(hours=2))},
                           headers=world.auth("coordinator"))
    assert r.status == 200
    assert (await r.json())["title"] == "Đổi tên"
    assert (await r.json())["start"] == "2031-03-10T03:00:00Z"
    r = await client.patch(url, json={"end": iso(T0)}, headers=world.auth("coordinator"))
    assert r.status == 422 and (await r.json())["error"]["field"] == "end"
    r = await client.post(url + "/cancel", headers=world.auth("coordinator"))
    assert r.status == 200 and (await r.json())["status"] == "cancelled"
    for method, path, body in [("PATCH", url, {"title": "x"}), ("POST", url + "/cancel", None)]:
        r = await client.request(method, path, json=body, headers=world.auth("coordinator"))
        assert r.status == 409 and (await r.json())["error"]["code"] == "wrong_status"


async def test_invite_change_role_uninvite(client, world):
    c = await create(client, world)
    base = f"/api/consultations/{c['id']}/invitations"
    r = await client.post(base, json={"user_id": world.user("TBI").id, "role": "participant"},
                          headers=world.auth("coordinator"))
    assert r.status == 201
    inv = await r.json()
    r = await client.post(base, json={"user_id": world.user("TBI").id, "role": "observer"},
                          headers=world.auth("coordinator"))
    assert r.status == 409 and (await r.json())["error"]["code"] == "already_invited"
    r = await client.patch(f"{base}/{inv['id']}", json={"role": "presenter"},
                           headers=world.auth("coordinator"))
    assert r.status == 200 and (await r.json())["role"] == "presenter"
    r = await client.delete(f"{base}/{inv['id']}", headers=world.auth("coordinator"))
    assert r.status == 204
    r = await client.get(f"/api/consultations/{c['id']}", headers=world.auth("TBI"))
    assert r.status == 404
    host_inv = c["invitations"][0]
    r = await client.delete(f"{base}/{host_inv['id']}", headers=world.auth("coordinator"))
    assert r.status == 409 and (await r.json())["error"]["code"] == "last_host"
    r = await client.patch(f"{base}/{host_inv['id']}", json={"role": "participant"},
                           headers=world.auth("coordinator"))
    assert r.status == 409
    r = await client.post(base, json={"hospital_id": 1, "role": "host"},
                          headers=world.auth("coordinator"))
    assert r.status == 422


async def test_attach_and_detach_case(client, world):
    c = await create(client, world)
    base = f"/api/consultations/{c['id']}/cases"
    r = await client.post(base, json={"patient_id": "P1", "patient_name": "LE^VAN^C",
                                      "study_instance_uids": ["1.2.3"]},
                          headers=world.auth("coordinator"))
    assert r.status == 201
    case = await r.json()
    assert case["study_instance_uids"] == ["1.2.3"]
    r = await client.delete(f"{base}/{case['id']}", headers=world.auth("coordinator"))
    assert r.status == 204
    r = await client.delete(f"{base}/{case['id']}", headers=world.auth("coordinator"))
    assert r.status == 404


async def test_host_clash_is_refused_and_named(client, world):
    first = await create(client, world)
    r = await client.post("/api/consultations",
                          json=booking(world, start=T0 + timedelta(minutes=30)),
                          headers=world.auth("coordinator"))
    assert r.status == 409
    err = (await r.json())["error"]
    assert err["code"] == "booking_clash" and err["clash"]["id"] == first["id"]
    assert str(first["id"]) in err["message"] and first["title"] in err["message"]
    # Back to back is fine; another host in the same window is fine.
    await create(client, world, start=T0 + timedelta(hours=1))
    await create(client, world, start=T0, host="NDI")


async def test_reschedule_or_second_host_into_a_clash(client, world):
    a = await create(client, world)
    b = await create(client, world, start=T0 + timedelta(hours=3))
    r = await client.patch(f"/api/consultations/{b['id']}",
                           json={"start": iso(T0 + timedelta(minutes=45))},
                           headers=world.auth("coordinator"))
    assert r.status == 409 and (await r.json())["error"]["clash"]["id"] == a["id"]
    # NDI hosts c in a's window; inviting NDI as a second host of a clashes with c.
    c = await create(client, world, host="NDI")
    r = await client.post(f"/api/consultations/{a['id']}/invitations",
                          json={"user_id": world.user("NDI").id, "role": "host"},
                          headers=world.auth("coordinator"))
    assert r.status == 409 and (await r.json())["error"]["clash"]["id"] == c["id"]
    r = await client.get(f"/api/consultations/{a['id']}", headers=world.auth("coordinator"))
    assert len((await r.json())["invitations"]) == 1  # nothing half-done


async def test_cancelled_consultation_does_not_clash(client, world):
    a = await create(client, world)
    await client.post(f"/api/consultations/{a['id']}/cancel", headers=world.auth("coordinator"))
    await create(client, world)


async def test_concurrent_bookings_of_one_host_let_exactly_one_through(client, world):
    async def attempt(offset: int):
        return await client.post("/api/consultations",
                                 json=booking(world, start=T0 + timedelta(minutes=offset)),
                                 headers=world.auth("coordinator"))
    results = await asyncio.gather(*(attempt(m) for m in (0, 10, 20)))
    assert sorted(r.status for r in results) == [201, 409, 409]


async def test_listing_filters(client, world):
    a = await create(client, world, invitations=[
        {"hospital_id": world.user("KXU").hospital_id, "role": "participant"}])
    b = await create(client, world, start=T0 + timedelta(days=1), host="NDI")
    await client.post(f"/api/consultations/{b['id']}/cancel", headers=world.auth("coordinator"))

    async def ids(query: dict[str, str], who: str = "coordinator") -> list[int]:
        r = await client.get("/api/consultations", params=query, headers=world.auth(who))
        assert r.status == 200, await r.text()
        return [c["id"] for c in (await r.json())["items"]]

    day = {"from": iso(T0 - timedelta(hours=1)), "to": iso(T0 + timedelta(hours=1))}
    assert await ids(day) == [a["id"]]
    assert await ids({"status": "cancelled"}) == [b["id"]]
    kxu = world.user("KXU").hospital_id
    # The demo consultation invites KXU's doctor in person; a invites the whole hospital.
    assert await ids({"hospital_id": str(kxu)}) == [world.consultation_id, a["id"]]
    ndi = world.user("NDI").hospital_id  # host hospital of b is BM; NDI is b's host user
    assert b["id"] in await ids({"hospital_id": str(ndi)})
    assert await ids({}) == [world.consultation_id, a["id"], b["id"]]  # by start time
    r = await client.get("/api/consultations", params={"limit": "1", "offset": "1"},
                         headers=world.auth("coordinator"))
    page = await r.json()
    assert page["total"] == 3 and len(page["items"]) == 1
    # A doctor lists only what they are invited to.
    assert await ids({}, who="KXU") == [world.consultation_id, a["id"]]
    assert await ids({}, who="HNA") == [world.consultation_id]


async def test_my_upcoming_consultations(client, world):
    a = await create(client, world, invitations=[
        {"hospital_id": world.user("GTI").hospital_id, "role": "observer"}])
    b = await create(client, world, start=T0 + timedelta(days=2), invitations=[
        {"user_id": world.user("GTI").id, "role": "participant"}])
    c = await create(client, world, start=T0 + timedelta(days=3), invitations=[
        {"user_id": world.user("GTI").id, "role": "participant"}])
    await client.post(f"/api/consultations/{c['id']}/cancel", headers=world.auth("coordinator"))
    r = await client.get("/api/me/consultations", headers=world.auth("GTI"))
    got = [(x["id"], x["my_room_role"]) for x in await r.json()]
    # The demo consultation (running now) invites GTI directly as a participant.
    assert got == [(world.consultation_id, "participant"), (a["id"], "observer"),
                   (b["id"], "participant")]


async def test_record_is_written_by_the_host_and_read_by_invitees(client, world):
    url = f"/api/consultations/{world.consultation_id}/record"
    body = {"conclusion": "U phổi phải, nghi ác tính.", "treatment_plan": "Sinh thiết."}
    for who in ("NDI", "coordinator", "admin"):
        r = await client.put(url, json=body, headers=world.auth(who))
        assert r.status == 403, who
    assert (await client.get(url, headers=world.auth("NDI"))).status == 404
    r = await client.put(url, json=body, headers=world.auth("BM"))
    assert r.status == 200
    rec = await r.json()
    assert rec["author"]["id"] == world.user("BM").id and rec["conclusion"] == body["conclusion"]
    r = await client.get(url, headers=world.auth("HLY"))
    assert r.status == 200 and (await r.json())["treatment_plan"] == "Sinh thiết."
    r = await client.get(f"/api/consultations/{world.consultation_id}",
                         headers=world.auth("GTI"))
    assert (await r.json())["record"]["conclusion"] == body["conclusion"]


async def _set_window(world, start: datetime, end: datetime, status: str | None = None) -> None:
    engine = create_engine(world.settings.database_url)
    try:
        async with session_factory(engine).begin() as s:
            values: dict[str, Any] = {"scheduled_start": start, "scheduled_end": end}
            if status:
                values["status"] = status
            await s.execute(update(Consultation).where(
                Consultation.id == world.consultation_id).values(**values))
    finally:
        await engine.dispose()


async def test_join_token_for_invitees_within_the_window(client, world):
    url = f"/api/consultations/{world.consultation_id}/join-token"
    r = await client.post(url, headers=world.auth("NDI"))
    assert r.status == 200
    out = await r.json()
    claims = verify_join(out["token"], JWT_SECRET)
    assert (claims.user_id, claims.consultation_id, claims.room_role) == (
        world.user("NDI").id, world.consultation_id, "presenter")
    assert (claims.hospital_code, claims.tier) == ("NDI", "provincial")
    assert claims.expires_at <= datetime.now(timezone.utc) + timedelta(minutes=10, seconds=1)
    assert out["room_role"] == "presenter"
    r = await client.post(url, headers=world.auth("coordinator"))
    assert r.status == 403  # staff see every consultation but are not invitees
    now = datetime.now(timezone.utc)
    await _set_window(world, now + timedelta(minutes=16), now + timedelta(hours=1))
    r = await client.post(url, headers=world.auth("NDI"))
    assert r.status == 409 and (await r.json())["error"]["code"] == "too_early"
    await _set_window(world, now + timedelta(minutes=14), now + timedelta(hours=1))
    r = await client.post(url, headers=world.auth("NDI"))
    assert r.status == 200
    await _set_window(world, now + timedelta(minutes=14), now + timedelta(minutes=15))
    claims = verify_join((await (await client.post(url, headers=world.auth("NDI"))).json())
                         ["token"], JWT_SECRET)
    assert claims.expires_at <= now + timedelta(minutes=15, seconds=1)
    await _set_window(world, now - timedelta(hours=2), now - timedelta(minutes=1))
    r = await client.post(url, headers=world.auth("NDI"))
    assert r.status == 409 and (await r.json())["error"]["code"] == "too_late"
    await _set_window(world, now - timedelta(minutes=5), now + timedelta(hours=1), "cancelled")
    r = await client.post(url, headers=world.auth("NDI"))
    assert r.status == 409 and (await r.json())["error"]["code"] == "wrong_status"


async def test_hospital_invitation_gives_join_tokens_to_its_doctors(client, world):
    now = datetime.now(timezone.utc)
    r = await client.post("/api/consultations", json=booking(
        world, start=now + timedelta(minutes=5), host="NDI",
        invitations=[{"hospital_id": world.user("KBA").hospital_id, "role": "observer"}]),
        headers=world.auth("coordinator"))
    assert r.status == 201
    cid = (await r.json())["id"]
    r = await client.post(f"/api/consultations/{cid}/join-token", headers=world.auth("KBA"))
    assert r.status == 200
    assert verify_join((await r.json())["token"], JWT_SECRET).room_role == "observer"
    r = await client.post(f"/api/consultations/{cid}/join-token", headers=world.auth("KXU"))
    assert r.status == 404


async def test_times_need_an_offset_and_come_back_in_utc(client, world):
    body = booking(world)
    body["start"] = "2031-03-10T09:00:00"
    r = await client.post("/api/consultations", json=body, headers=world.auth("coordinator"))
    assert r.status == 422 and (await r.json())["error"]["field"] == "start"
    body = booking(world)
    body["start"], body["end"] = "2031-03-10T09:00:00+07:00", "2031-03-10T02:30:00Z"
    r = await client.post("/api/consultations", json=body, headers=world.auth("coordinator"))
    assert r.status == 201
    c = await r.json()
    assert (c["start"], c["end"]) == ("2031-03-10T02:00:00Z", "2031-03-10T02:30:00Z")
