"""Every route checks the caller on the server: 401 without a valid token, 403 for a role
that may not use it, whatever the body."""

from __future__ import annotations

import re

from app.api.routes import endpoints
from app.api.routing import ANY_USER, PUBLIC
from app.db.models import PlatformRole


def _url(path: str, world) -> str:
    return re.sub(r"{\w+}", str(world.consultation_id), path)


async def test_every_protected_route_needs_a_token(client, world):
    protected = [ep for ep in endpoints() if ep.roles is not PUBLIC]
    assert len(protected) > 15
    for ep in protected:
        r = await client.request(ep.method, _url(ep.path, world), json={})
        assert r.status == 401, (ep.method, ep.path, r.status)
        assert (await r.json())["error"]["code"] == "unauthorized"


async def test_role_restricted_routes_refuse_other_roles(client, world):
    callers = {PlatformRole.admin: "admin", PlatformRole.coordinator: "coordinator",
               PlatformRole.doctor: "NDI"}
    checked = 0
    for ep in endpoints():
        if ep.roles is PUBLIC or ep.roles == ANY_USER:
            continue
        for role, who in callers.items():
            if role in ep.roles:
                continue
            r = await client.request(ep.method, _url(ep.path, world), json={},
                                     headers=world.auth(who))
            assert r.status == 403, (ep.method, ep.path, who, r.status)
            checked += 1
    assert checked >= 15


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
