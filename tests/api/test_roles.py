"""Every route checks the caller on the server: 401 without a valid token, 403 for a role
that may not use it, whatever the body, and 404 for a consultation the caller is not invited
to."""

from __future__ import annotations

import re

import pytest

from app.api.routes import endpoints
from app.api.routing import ANY_USER, PUBLIC
from app.roles import PlatformRole
from tests.api.dbcheck import db_state, error_of
from tests.api.scheduling_helpers import create

# Roles are checked before any query; SQLite keeps this module quick.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _url(path: str, world) -> str:
    return re.sub(r"{\w+}", str(world.consultation_id), path)


def test_only_login_refresh_health_and_the_document_are_public(database_url):
    public = {(ep.method, ep.path) for ep in endpoints() if ep.roles is PUBLIC}
    assert public == {("GET", "/healthz"), ("GET", "/api/openapi.json"),
                      ("POST", "/api/auth/login"), ("POST", "/api/auth/refresh")}


async def test_every_protected_route_needs_a_token(client, world):
    protected = [ep for ep in endpoints() if ep.roles is not PUBLIC]
    assert len(protected) > 15
    before = await db_state(world.settings)
    for ep in protected:
        r = await client.request(ep.method, _url(ep.path, world), json={})
        await error_of(r, 401, code="unauthorized")
        assert r.headers.get("WWW-Authenticate") == "Bearer", (ep.method, ep.path)
    assert await db_state(world.settings) == before


async def test_role_restricted_routes_refuse_other_roles(client, world):
    # BM is the host expert of the demo consultation: a doctor still, who does not schedule.
    callers = {PlatformRole.admin: ["admin"], PlatformRole.coordinator: ["coordinator"],
               PlatformRole.doctor: ["NDI", "BM"]}
    before = await db_state(world.settings)
    checked = 0
    for ep in endpoints():
        if ep.roles is PUBLIC or ep.roles == ANY_USER:
            continue
        for role, keys in callers.items():
            if role in ep.roles:
                continue
            for who in keys:
                r = await client.request(ep.method, _url(ep.path, world), json={},
                                         headers=world.auth(who))
                await error_of(r, 403, code="forbidden")
                checked += 1
    assert checked >= 20
    assert await db_state(world.settings) == before


async def test_doctors_cannot_schedule_but_read_what_they_are_invited_to(client, world):
    cid = world.consultation_id
    r = await client.get(f"/api/consultations/{cid}", headers=world.auth("HHA"))
    assert r.status == 200
    for method, path in [("PATCH", f"/api/consultations/{cid}"),
                         ("POST", f"/api/consultations/{cid}/cancel"),
                         ("POST", f"/api/consultations/{cid}/invitations"),
                         ("POST", "/api/consultations"), ("GET", "/api/users")]:
        r = await client.request(method, path, json={}, headers=world.auth("HHA"))
        assert r.status == 403, (method, path)


async def test_a_consultation_a_doctor_is_not_invited_to_is_404_everywhere(client, world):
    c = await create(client, world, invitations=[
        {"user_id": world.user("NDI").id, "role": "presenter"}])
    url = f"/api/consultations/{c['id']}"
    # The invited presenter sees it; a doctor of another hospital does not learn it exists.
    assert (await client.get(url, headers=world.auth("NDI"))).status == 200
    before = await db_state(world.settings)
    for method, path, body in [
        ("GET", url, None), ("GET", url + "/record", None),
        ("PUT", url + "/record", {"conclusion": "x", "treatment_plan": "y"}),
        ("POST", url + "/join-token", None),
    ]:
        r = await client.request(method, path, json=body, headers=world.auth("GTH"))
        await error_of(r, 404, code="not_found")
    assert await db_state(world.settings) == before
    listed = await (await client.get("/api/consultations", headers=world.auth("GTH"))).json()
    assert c["id"] not in [item["id"] for item in listed["items"]]
    assert c["id"] in [item["id"] for item in (await (await client.get(
        "/api/consultations", headers=world.auth("NDI"))).json())["items"]]
