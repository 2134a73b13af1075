"""Login, refresh rotation, logout, and every way a token can be wrong."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import jwt
from sqlalchemy import func, select

from app.auth.tokens import JoinClaims, issue_access, issue_join
from app.db.engine import create_engine, session_factory
from app.db.models import AuditEvent
from tests.conftest import DEMO_PASSWORD, JWT_SECRET


async def audit_rows(settings, action: str) -> list[AuditEvent]:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as s:
            return list(await s.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))
    finally:
        await engine.dispose()


async def login(client, email: str, password: str = DEMO_PASSWORD):
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_login_gives_tokens_that_open_the_api(client, world):
    r = await login(client, "Coordinator@Demo.Hoichan.vn")  # e-mail is case-insensitive
    assert r.status == 200
    body = await r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    assert body["user"]["email"] == "coordinator@demo.hoichan.vn"
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status == 200 and (await me.json())["roles"] == ["coordinator"]
    events = await audit_rows(world.settings, "auth.login")
    assert [(e.outcome, e.actor_id) for e in events] == [("success", world.user("coordinator").id)]
    assert events[0].client_addr == "127.0.0.1"
    assert len(await audit_rows(world.settings, "auth.token_issued")) == 1


async def test_failed_logins_answer_alike_and_are_audited(client, world):
    unknown = await login(client, "nobody@demo.hoichan.vn")
    wrong = await login(client, "doctor.bm@demo.hoichan.vn", "wrong password!")
    r = await client.patch(f"/api/users/{world.user('GTI').id}", json={"active": False},
                           headers=world.auth("admin"))
    assert r.status == 200
    disabled = await login(client, "doctor.gti@demo.hoichan.vn")
    bodies = [await x.json() for x in (unknown, wrong, disabled)]
    assert [x.status for x in (unknown, wrong, disabled)] == [401, 401, 401]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["error"]["code"] == "unauthorized"
    failures = await audit_rows(world.settings, "auth.login")
    assert [(e.outcome, e.actor_email, e.detail["reason"]) for e in failures] == [
        ("failure", "nobody@demo.hoichan.vn", "unknown account"),
        ("failure", "doctor.bm@demo.hoichan.vn", "wrong password"),
        ("failure", "doctor.gti@demo.hoichan.vn", "account disabled"),
    ]
    assert await audit_rows(world.settings, "auth.token_issued") == []


async def test_refresh_rotates_and_reuse_revokes_the_whole_login(client, world):
    first = await (await login(client, "doctor.ndi@demo.hoichan.vn")).json()
    r = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status == 200
    second = await r.json()
    assert second["refresh_token"] != first["refresh_token"]
    # The spent token is refused, and its reuse also kills the token rotated from it.
    reuse = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status == 401
    assert "already used" in (await reuse.json())["error"]["message"]
    after = await client.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert after.status == 401
    reuse_events = await audit_rows(world.settings, "auth.refresh_reuse")
    # Both presentations of a revoked token are recorded as suspected theft.
    assert [e.outcome for e in reuse_events] == ["denied", "denied"]


async def test_logout_revokes_refresh(client, world):
    tokens = await (await login(client, "doctor.hha@demo.hoichan.vn")).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    r = await client.post("/api/auth/logout", json={"refresh_token": tokens["refresh_token"]},
                          headers=headers)
    assert r.status == 204
    r = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status == 401
    assert len(await audit_rows(world.settings, "auth.logout")) == 1


async def test_refresh_with_garbage_or_unknown_token_is_401(client, world):
    for token in ["", "abc", "0" * 32 + ".secret", "x" * 5000]:
        r = await client.post("/api/auth/refresh", json={"refresh_token": token})
        assert r.status == 401, token
        assert (await r.json())["error"]["code"] == "unauthorized"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_bad_access_tokens_are_refused(client, world):
    user = world.user("admin")
    now = datetime.now(timezone.utc)
    good = world.token("admin")
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    expired = issue_access(user.id, user.roles, JWT_SECRET, timedelta(minutes=-1))
    other_key = issue_access(user.id, user.roles, "another-secret-" + "y" * 40,
                             timedelta(minutes=5))
    none_alg = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    tampered_payload = f"{header}.{_b64({**claims, 'sub': str(user.id + 1)})}.{signature}"
    tampered_sig = f"{header}.{payload}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    join = issue_join(JoinClaims(user.id, world.consultation_id, "host", "x", "BM", "Bạch Mai",
                                 "central", now + timedelta(minutes=5)), JWT_SECRET, now)
    cases = {
        "expired": expired, "other key": other_key, "alg none": none_alg,
        "tampered payload": tampered_payload, "tampered signature": tampered_sig,
        "join token as access": join, "garbage": "not.a.jwt",
    }
    for name, token in cases.items():
        r = await client.get("/api/audit", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 401, name
        body = await r.json()
        assert body["error"]["code"] == "unauthorized", name
        assert r.headers["WWW-Authenticate"] == "Bearer"
    for header_value in ["", "Bearer", "Basic abc", f"Token {good}"]:
        r = await client.get("/api/me", headers={"Authorization": header_value})
        assert r.status == 401, header_value
    assert (await client.get("/api/audit", headers={"Authorization": f"Bearer {good}"})).status == 200


async def test_deactivated_user_loses_access_at_once(client, world):
    headers = world.auth("KBA")
    assert (await client.get("/api/me", headers=headers)).status == 200
    r = await client.patch(f"/api/users/{world.user('KBA').id}", json={"active": False},
                           headers=world.auth("admin"))
    assert r.status == 200
    r = await client.get("/api/me", headers=headers)
    assert r.status == 401
    assert "disabled" in (await r.json())["error"]["message"]


async def test_password_change_takes_effect(client, world):
    r = await client.patch(f"/api/users/{world.user('HLY').id}",
                           json={"password": "a-new-password-42"}, headers=world.auth("admin"))
    assert r.status == 200
    assert (await login(client, "doctor.hly@demo.hoichan.vn")).status == 401
    assert (await login(client, "doctor.hly@demo.hoichan.vn", "a-new-password-42")).status == 200
    (event,) = await audit_rows(world.settings, "user.update")
    assert event.detail == {"password": "changed"}
