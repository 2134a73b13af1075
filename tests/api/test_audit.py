"""The audit trail: every login, token, consultation and invitation change is written in the
same transaction as the change; reads of studies as windows; admins search it; nothing
rewrites it."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.api import audit_log
from app.audit_windows import AUDIT_WINDOWS, STALL_S
from app.db.engine import create_engine, session_factory
from app.db.models import AuditEvent
from app.demo import DEMO_STUDY_UID
from app.pacs.models import DicomInstance, DicomSeries
from app.pacs.synth import store_series
from tests.api.audit_faults import drop_audit_failure, refuse_audit_inserts_of
from tests.api.dbcheck import audit_events, db_state, error_of
from tests.api.scheduling_helpers import T0, booking, create, iso
from tests.conftest import DEMO_PASSWORD
from tests.pacs.trail import dicomweb_events, total
from tests.waiting import wait_for


async def test_each_kind_of_change_writes_its_event(client, world):
    coordinator = world.user("coordinator").id
    await client.post("/api/auth/login", json={"email": "doctor.bm@demo.hoichan.vn",
                                               "password": DEMO_PASSWORD})
    await client.post("/api/auth/login", json={"email": "doctor.bm@demo.hoichan.vn",
                                               "password": "not-it"})
    c = await create(client, world, start=T0)
    url = f"/api/consultations/{c['id']}"
    await client.patch(url, json={"title": "Đổi"}, headers=world.auth("coordinator"))
    inv = await (await client.post(url + "/invitations", json={
        "user_id": world.user("NBI").id, "role": "observer"},
        headers=world.auth("coordinator"))).json()
    await client.patch(f"{url}/invitations/{inv['id']}", json={"role": "participant"},
                       headers=world.auth("coordinator"))
    await client.delete(f"{url}/invitations/{inv['id']}", headers=world.auth("coordinator"))
    case = await (await client.post(url + "/cases", json={
        "patient_id": "P-1", "patient_name": "A^B"}, headers=world.auth("coordinator"))).json()
    await client.delete(f"{url}/cases/{case['id']}", headers=world.auth("coordinator"))
    await client.put(url + "/record", json={"conclusion": "c", "treatment_plan": "t"},
                     headers=world.auth("BM"))
    await client.post(f"/api/consultations/{world.consultation_id}/join-token",
                      headers=world.auth("BM"))
    await client.post(url + "/cancel", headers=world.auth("coordinator"))

    seen = [(e.action, e.outcome, e.actor_id, e.consultation_id, e.object_type)
            for e in await audit_events(world.settings) if e.action != "demo.seed"]
    bm = world.user("BM").id
    assert seen == [
        ("auth.login", "success", bm, None, "user"),
        ("auth.token_issued", "success", bm, None, "user"),
        ("auth.login", "failure", bm, None, "user"),
        ("consultation.create", "success", coordinator, c["id"], "consultation"),
        ("consultation.update", "success", coordinator, c["id"], "consultation"),
        ("invitation.create", "success", coordinator, c["id"], "invitation"),
        ("invitation.update", "success", coordinator, c["id"], "invitation"),
        ("invitation.delete", "success", coordinator, c["id"], "invitation"),
        ("case.create", "success", coordinator, c["id"], "case"),
        ("case.delete", "success", coordinator, c["id"], "case"),
        ("record.write", "success", bm, c["id"], "record"),
        ("room.join_token", "success", bm, world.consultation_id, "consultation"),
        ("consultation.cancel", "success", coordinator, c["id"], "consultation"),
    ]
    for event in await audit_events(world.settings):
        if event.action != "demo.seed":
            assert event.client_addr == "127.0.0.1", event.action
            assert event.at <= datetime.now(UTC)
    # What an admin reads names who, what and where, and what a change was.
    page = await _search(client, world, consultation_id=c["id"], action="invitation.update")
    [changed] = page["items"]
    assert changed["detail"] == {"role": "participant", "was": "observer"}
    assert (changed["object_type"], changed["object_id"]) == ("invitation", str(inv["id"]))
    assert (changed["actor_id"], changed["actor_email"], changed["client_addr"],
            changed["outcome"]) == (coordinator, "coordinator@demo.hoichan.vn", "127.0.0.1",
                                    "success")


async def test_a_refused_change_leaves_neither_change_nor_event(client, world):
    await create(client, world, start=T0, title="BM sáng")
    later = await create(client, world, start=T0 + timedelta(hours=3))
    other = await create(client, world, start=T0, host="TBI", invitations=[
        {"user_id": world.user("BM").id, "role": "participant"}])
    [bm] = [i for i in other["invitations"] if i["user"]["id"] == world.user("BM").id]
    before = await db_state(world.settings)
    # Each is refused only after the change was built (and flushed) in the transaction.
    r = await client.post("/api/consultations", json=booking(world, T0, invitations=[
        {"user_id": world.user("NDI").id, "role": "presenter"}],
        cases=[{"patient_id": "P-2", "patient_name": "C^D"}]),
        headers=world.auth("coordinator"))
    await error_of(r, 409, code="booking_clash")
    r = await client.patch(f"/api/consultations/{later['id']}", json={
        "title": "Không được lưu", "start": iso(T0), "end": iso(T0 + timedelta(hours=1))},
        headers=world.auth("coordinator"))
    await error_of(r, 409, code="booking_clash")
    r = await client.patch(f"/api/consultations/{other['id']}/invitations/{bm['id']}",
                           json={"role": "host"}, headers=world.auth("coordinator"))
    await error_of(r, 409, code="booking_clash")
    assert await db_state(world.settings) == before


async def test_when_the_audit_event_cannot_be_written_the_change_is_not_kept(client, world):
    c = await create(client, world, start=T0)
    url = f"/api/consultations/{c['id']}"
    for action, method, path, body, who in [
        ("consultation.update", "PATCH", url, {"title": "Không lưu"}, "coordinator"),
        ("invitation.create", "POST", url + "/invitations",
         {"user_id": world.user("NBI").id, "role": "observer"}, "coordinator"),
        ("record.write", "PUT", url + "/record", {"conclusion": "c", "treatment_plan": "t"},
         "BM"),
        ("consultation.cancel", "POST", url + "/cancel", None, "coordinator"),  # last
    ]:
        before = await db_state(world.settings)
        await refuse_audit_inserts_of(world, action)
        try:
            r = await client.request(method, path, json=body, headers=world.auth(who))
            # A failing database is a server error, answered in the API's JSON shape.
            await error_of(r, 500, code="internal_error")
        finally:
            await drop_audit_failure(world)
        assert await db_state(world.settings) == before, action
        # Once the audit trail can be written again, the same change goes through.
        r = await client.request(method, path, json=body, headers=world.auth(who))
        assert r.status in (200, 201), (action, await r.text())


async def _search(client, world, **params: Any) -> dict[str, Any]:
    r = await client.get("/api/audit", params=params, headers=world.auth("admin"))
    assert r.status == 200, await r.text()
    return await r.json()


async def test_admins_search_the_trail_by_user_consultation_action_and_time(client, world):
    c = await create(client, world, start=T0)
    await client.post(f"/api/consultations/{world.consultation_id}/join-token",
                      headers=world.auth("NDI"))
    await client.post(f"/api/consultations/{world.consultation_id}/join-token",
                      headers=world.auth("GTH"))
    await client.post("/api/auth/login", json={"email": "doctor.gth@demo.hoichan.vn",
                                               "password": "wrong-password"})
    everything = await audit_events(world.settings)
    assert len(everything) == 5

    page = await _search(client, world)
    assert page["total"] == 5
    # Newest first.
    assert [e["id"] for e in page["items"]] == [e.id for e in reversed(everything)]
    assert page["items"][0]["action"] == "auth.login"
    assert page["items"][0]["outcome"] == "failure"

    by_user = await _search(client, world, user_id=world.user("GTH").id)
    assert [e["action"] for e in by_user["items"]] == ["auth.login", "room.join_token"]
    assert by_user["total"] == 2
    by_consultation = await _search(client, world, consultation_id=world.consultation_id)
    assert [e["action"] for e in by_consultation["items"]] == [
        "room.join_token", "room.join_token", "demo.seed"]
    assert (await _search(client, world, consultation_id=c["id"]))["total"] == 1
    exact = await _search(client, world, action="room.join_token")
    assert exact["total"] == 2
    prefix = await _search(client, world, action="room.")
    assert prefix["total"] == 2
    # Without the dot it is an exact match: "room" is no action.
    assert (await _search(client, world, action="room"))["total"] == 0
    assert (await _search(client, world, action="consultation."))["total"] == 1
    # A LIKE wildcard in the action is a literal character, not "anything".
    assert (await _search(client, world, action="%."))["total"] == 0
    assert (await _search(client, world, action="_oom."))["total"] == 0

    # since inclusive, until exclusive, with any offset.
    middle = everything[2].at
    since = await _search(client, world, since=iso(middle))
    assert [e["id"] for e in since["items"]] == [e.id for e in reversed(everything[2:])]
    until = await _search(client, world, until=iso(middle))
    assert [e["id"] for e in until["items"]] == [e.id for e in reversed(everything[:2])]
    assert (await _search(client, world, since=iso(middle), until=iso(middle)))["total"] == 0
    assert (await _search(client, world, since=iso(T0)))["total"] == 0

    paged = await _search(client, world, limit=2, offset=1)
    assert paged["total"] == 5
    assert [e["id"] for e in paged["items"]] == [e.id for e in reversed(everything)][1:3]
    combined = await _search(client, world, user_id=world.user("NDI").id,
                             action="room.join_token", consultation_id=world.consultation_id)
    assert combined["total"] == 1 and combined["items"][0]["actor_email"] == (
        "doctor.ndi@demo.hoichan.vn")


async def test_no_route_changes_or_deletes_audit_events(client, world):
    doc = await (await client.get("/api/openapi.json")).json()
    audit_paths = {p: ops for p, ops in doc["paths"].items() if p.startswith("/api/audit")}
    assert audit_paths and all(set(ops) == {"get"} for ops in audit_paths.values())
    [event] = await audit_events(world.settings)
    before = await db_state(world.settings)
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        r = await client.request(method, "/api/audit", json={"outcome": "success"},
                                 headers=world.auth("admin"))
        await error_of(r, 405, code="method_not_allowed")
        r = await client.request(method, f"/api/audit/{event.id}", json={"outcome": "success"},
                                 headers=world.auth("admin"))
        assert r.status in (404, 405), (method, r.status)
        await error_of(r, r.status)
    assert await db_state(world.settings) == before


async def test_the_database_itself_refuses_to_rewrite_history(client, world):
    # Even a direct connection that bypasses the API cannot change or remove an event.
    await error_of(await client.post("/api/auth/login", json={
        "email": "admin@demo.hoichan.vn", "password": "guess-1"}), 401)
    before = (await db_state(world.settings))["audit_events"]
    assert len(before) == 2  # the demo seed and the failed login
    engine = create_engine(world.settings.database_url)
    try:
        for statement in ["UPDATE audit_events SET outcome = 'success'",
                          "UPDATE audit_events SET actor_email = 'someone@else.vn' "
                          "WHERE id = 1",
                          "DELETE FROM audit_events",
                          "DELETE FROM audit_events WHERE id = 1"]:
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()
    assert (await db_state(world.settings))["audit_events"] == before


async def _stored_study(world) -> tuple[Any, list[str]]:
    """The demo case's study (3 slices) in the store; its sessions and frame URLs."""
    engine = create_engine(world.settings.database_url)
    sessions = session_factory(engine)
    await store_series(sessions, world.settings.data_dir, DEMO_STUDY_UID, 3)
    async with sessions() as session:
        rows = (await session.execute(
            select(DicomInstance.sop_instance_uid, DicomSeries.series_instance_uid)
            .join(DicomSeries, DicomSeries.id == DicomInstance.series_id))).all()
    await engine.dispose()
    return sessions, [f"/dicomweb/studies/{DEMO_STUDY_UID}/series/{series}/instances/{sop}/"
                      "frames/1" for sop, series in rows]


async def _read_events(world, until, within: float = 5.0) -> list[AuditEvent]:
    engine = create_engine(world.settings.database_url)
    try:
        return await dicomweb_events(session_factory(engine), until, within)
    finally:
        await engine.dispose()


async def test_read_windows_show_in_the_admin_search_with_their_counts(client, world):
    _, urls = await _stored_study(world)
    base = f"/dicomweb/studies/{DEMO_STUDY_UID}"
    assert (await client.get(base + "/metadata", headers=world.auth("BM"))).status == 200
    for url in urls * 4:
        assert (await client.get(url, headers=world.auth("BM"))).status == 200
    assert (await client.get(urls[0], headers=world.auth("NDI"))).status == 200
    assert (await client.get(base + "/metadata")).status == 401
    await _read_events(world, lambda es: total(es, "requests") == 15)

    frames = await _search(client, world, action="dicomweb.frames")
    assert sum(e["detail"]["requests"] for e in frames["items"]) == 13
    assert sum(e["detail"]["frames"] for e in frames["items"]) == 13
    assert frames["total"] == len(frames["items"]) < 13
    for item in frames["items"]:
        # Each window is one event: who, which study, from where, first read as its time.
        assert (item["object_type"], item["object_id"], item["client_addr"],
                item["outcome"]) == ("study", DEMO_STUDY_UID, "127.0.0.1", "success")
        assert datetime.fromisoformat(item["at"]) == datetime.fromisoformat(
            item["detail"]["window"]["first"])
        assert item["detail"]["instances"] == len(item["detail"]["instance_uids"])
    by_ndi = await _search(client, world, user_id=world.user("NDI").id, action="dicomweb.")
    assert [(e["action"], e["detail"]["requests"]) for e in by_ndi["items"]] == [
        ("dicomweb.frames", 1)]
    refused = [e for e in (await _search(client, world, action="dicomweb."))["items"]
               if e["outcome"] != "success"]
    assert [(e["action"], e["actor_id"], e["outcome"], e["detail"]["status"])
            for e in refused] == [("dicomweb.metadata", None, "denied", 401)]
    # The windows are found by the time of their first read.
    first = min(datetime.fromisoformat(e["at"]) for e in frames["items"])
    assert (await _search(client, world, action="dicomweb.frames",
                          since=first.isoformat()))["total"] == frames["total"]
    assert (await _search(client, world, action="dicomweb.frames",
                          until=first.isoformat()))["total"] == 0

    # Later reads are later events: what is in the trail is never rewritten.
    before = (await db_state(world.settings))["audit_events"]
    for url in urls:
        assert (await client.get(url, headers=world.auth("BM"))).status == 200
    after = await _read_events(world, lambda es: total(es, "requests") == 18)
    assert total(after, "requests") == 18
    assert set(before) < set((await db_state(world.settings))["audit_events"])


async def test_reads_are_refused_while_their_audit_cannot_be_written(client, world):
    _, urls = await _stored_study(world)
    await refuse_audit_inserts_of(world, "dicomweb.frames")
    try:
        # Accepted: its window waits in memory while the trail refuses it.
        assert (await client.get(urls[0], headers=world.auth("BM"))).status == 200
        await wait_for(lambda: client.app[AUDIT_WINDOWS].stalled, STALL_S + 5,
                       "the trail is taken for unwritable")
        r = await client.get(urls[1], headers=world.auth("BM"))
        await error_of(r, 503, code="unavailable")
        # Other reads neither: the trail as a whole is not being written.
        r = await client.get(f"/dicomweb/studies/{DEMO_STUDY_UID}/metadata",
                             headers=world.auth("NDI"))
        await error_of(r, 503, code="unavailable")
    finally:
        await drop_audit_failure(world)
    events = await _read_events(world, lambda es: total(es, "requests") == 3)
    assert sorted((e.action, e.outcome, e.detail["requests"], e.detail.get("status"))
                  for e in events) == [
        ("dicomweb.frames", "failure", 1, 503),
        ("dicomweb.frames", "success", 1, None),  # the accepted read, not lost
        ("dicomweb.metadata", "failure", 1, 503)]
    assert (await client.get(urls[1], headers=world.auth("BM"))).status == 200


async def test_admins_find_a_patients_and_a_studys_events_and_export_them(
        client, world, monkeypatch):
    _, urls = await _stored_study(world)
    for url in urls:
        assert (await client.get(url, headers=world.auth("BM"))).status == 200
    assert (await client.get(urls[0])).status == 401
    await _read_events(world, lambda es: total(es, "requests") == 4)
    r = await client.post(f"/api/consultations/{world.consultation_id}/cases", json={
        "patient_id": "HC-0001", "patient_name": "NGUYEN^VAN^X"},
        headers=world.auth("coordinator"))
    assert r.status == 201, await r.text()
    case_id = str((await r.json())["id"])

    study = await _search(client, world, study=DEMO_STUDY_UID)
    assert {(e["object_type"], e["object_id"]) for e in study["items"]} == {
        ("study", DEMO_STUDY_UID)}
    assert {e["outcome"] for e in study["items"]} == {"success", "denied"}
    [refused] = (await _search(client, world, study=DEMO_STUDY_UID, outcome="denied"))["items"]
    assert refused["actor_id"] is None and refused["detail"]["status"] == 401
    patient = await _search(client, world, patient_id="HC-0001")
    assert {(e["object_type"], e["object_id"]) for e in patient["items"]} == {
        ("study", DEMO_STUDY_UID), ("case", case_id)}
    assert (await _search(client, world, patient_id="HC-9999"))["total"] == 0
    # Who, by e-mail: a failed login for no account is found too.
    await client.post("/api/auth/login", json={"email": "ai.do@benhvien.vn", "password": "x" * 8})
    [guess] = (await _search(client, world, actor_email="Ai.Do@benhvien.vn "))["items"]
    assert (guess["action"], guess["outcome"], guess["actor_id"]) == ("auth.login", "failure", None)
    r = await client.get("/api/audit", params={"outcome": "maybe"}, headers=world.auth("admin"))
    await error_of(r, 422)

    # The CSV holds the same events, in a form a spreadsheet opens with its letters whole.
    r = await client.get("/api/audit.csv", params={"patient_id": "HC-0001"},
                         headers=world.auth("admin"))
    assert r.status == 200 and r.content_type == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    body = (await r.read()).decode("utf-8")
    assert body.startswith("\ufeffid,at,actor_id,actor_email,action,outcome,")
    rows = list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"))))
    assert [int(row["id"]) for row in rows] == [e["id"] for e in patient["items"]]
    assert {row["action"] for row in rows} >= {"case.create", "dicomweb.frames"}
    assert all(isinstance(json.loads(row["detail"]), dict) for row in rows)
    [export] = (await _search(client, world, action="audit.export"))["items"]
    assert export["actor_id"] == world.user("admin").id
    assert export["detail"] == {"rows": len(rows), "filters": {"patient_id": "HC-0001"}}
    await error_of(await client.get("/api/audit.csv", headers=world.auth("coordinator")), 403)

    # Too much at once is refused whole, and leaves no export event.
    monkeypatch.setattr(audit_log, "MAX_EXPORT_ROWS", 2)
    error = await error_of(await client.get("/api/audit.csv", headers=world.auth("admin")), 413)
    assert "narrow the filters" in error["message"]
    assert (await _search(client, world, action="audit.export"))["total"] == 1
