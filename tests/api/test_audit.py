"""The audit trail: written with each change, readable by admins, never changed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db.engine import create_engine
from tests.api.dbcheck import row_counts
from tests.api.test_scheduling import T0, booking, create, iso
from tests.conftest import DEMO_PASSWORD


async def audit(client, world, **params: str) -> dict:
    r = await client.get("/api/audit", params=params, headers=world.auth("admin"))
    assert r.status == 200, await r.text()
    return await r.json()


async def test_changes_are_audited_with_who_what_where(client, world):
    c = await create(client, world)
    cid = c["id"]
    await client.patch(f"/api/consultations/{cid}", json={"title": "Mới"},
                       headers=world.auth("coordinator"))
    r = await client.post(f"/api/consultations/{cid}/invitations",
                          json={"user_id": world.user("TBI").id, "role": "observer"},
                          headers=world.auth("coordinator"))
    inv = await r.json()
    await client.patch(f"/api/consultations/{cid}/invitations/{inv['id']}",
                       json={"role": "participant"}, headers=world.auth("coordinator"))
    await client.delete(f"/api/consultations/{cid}/invitations/{inv['id']}",
                        headers=world.auth("coordinator"))
    await client.post(f"/api/consultations/{cid}/cancel", headers=world.auth("coordinator"))
    page = await audit(client, world, consultation_id=str(cid))
    actions = [e["action"] for e in reversed(page["items"])]
    assert actions == ["consultation.create", "consultation.update", "invitation.create",
                       "invitation.update", "invitation.delete", "consultation.cancel"]
    coordinator = world.user("coordinator")
    assert {(e["actor_id"], e["actor_email"], e["client_addr"], e["outcome"])
            for e in page["items"]} == {(coordinator.id, coordinator.email, "127.0.0.1",
                                         "success")}
    update = next(e for e in page["items"] if e["action"] == "invitation.update")
    assert update["detail"] == {"role": "participant", "was": "observer"}
    assert update["object_type"] == "invitation" and update["object_id"] == str(inv["id"])


async def test_a_refused_change_leaves_neither_change_nor_event(client, world):
    await create(client, world)
    before = await row_counts(world.settings)
    r = await client.post("/api/consultations", json=booking(world, start=T0 + timedelta(
        minutes=10)), headers=world.auth("coordinator"))
    assert r.status == 409
    assert await row_counts(world.settings) == before


async def test_filters_and_paging(client, world):
    await client.post("/api/auth/login", json={"email": "doctor.bm@demo.hoichan.vn",
                                               "password": DEMO_PASSWORD})
    await client.post("/api/auth/login", json={"email": "doctor.bm@demo.hoichan.vn",
                                               "password": "wrong-password"})
    await create(client, world)
    bm = world.user("BM").id
    by_user = await audit(client, world, user_id=str(bm))
    assert {e["action"] for e in by_user["items"]} == {"auth.login", "auth.token_issued"}
    logins = await audit(client, world, action="auth.login")
    assert [e["outcome"] for e in logins["items"]] == ["failure", "success"]  # newest first
    auth_prefix = await audit(client, world, action="auth.")
    assert {e["action"] for e in auth_prefix["items"]} == {"auth.login", "auth.token_issued"}
    assert (await audit(client, world, action="auth"))["total"] == 0  # exact unless "."
    everything = await audit(client, world)
    newest = everything["items"][0]["at"]
    since = (datetime.fromisoformat(newest) - timedelta(microseconds=1)).isoformat()
    assert [e["action"] for e in (await audit(client, world, since=since))["items"]] == [
        everything["items"][0]["action"]]
    until = (await audit(client, world, until=iso(datetime.now(timezone.utc)
                                                  - timedelta(hours=1))))
    assert until["total"] == 0
    page = await audit(client, world, limit="2", offset="1")
    assert page["total"] == everything["total"] and len(page["items"]) == 2
    assert page["items"][0]["id"] == everything["items"][1]["id"]


async def test_only_admins_read_it(client, world):
    for who in ("coordinator", "BM"):
        r = await client.get("/api/audit", headers=world.auth(who))
        assert r.status == 403, who


async def test_no_route_changes_audit_events(client, world):
    doc = await (await client.get("/api/openapi.json")).json()
    assert set(doc["paths"]["/api/audit"]) == {"get"}
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        r = await client.request(method, "/api/audit", headers=world.auth("admin"))
        assert r.status == 405, method
        r = await client.request(method, "/api/audit/1", headers=world.auth("admin"))
        assert r.status in (404, 405), method


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET outcome = 'success'",
    "DELETE FROM audit_events",
])
async def test_the_database_itself_refuses_to_rewrite_history(world, statement):
    engine = create_engine(world.settings.database_url)
    try:
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM audit_events"))).scalar() > 0
    finally:
        await engine.dispose()
