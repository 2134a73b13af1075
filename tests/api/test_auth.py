"""Login, refresh rotation with reuse detection, logout, and every kind of bad token."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import update

from app.auth.tokens import JoinClaims, issue_access, issue_join, verify_access
from app.db.engine import create_engine
from app.db.models import RefreshToken
from tests.api.dbcheck import audit_events, db_state, error_of, row_counts
from tests.conftest import DEMO_PASSWORD, JWT_SECRET

ADMIN_EMAIL = "admin@demo.hoichan.vn"
DOCTOR_EMAIL = "doctor.ndi@demo.hoichan.vn"


async def login(client, email: str = DOCTOR_EMAIL, password: str = DEMO_PASSWORD):
    return await client.post("/api/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_gives_an_access_token_that_opens_the_api_and_a_refresh_token(client,
                                                                                  world):
    r = await login(client, "Doctor.NDI@Demo.Hoichan.VN")  # e-mail case does not matter
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60 and body["refresh_expires_in"] == 7 * 86400
    assert body["user"]["email"] == DOCTOR_EMAIL and body["user"]["roles"] == ["doctor"]
    assert body["user"]["hospital"]["code"] == "NDI"
    claims = verify_access(body["access_token"], JWT_SECRET)
    assert claims.user_id == world.user("NDI").id
    assert claims.expires_at - datetime.now(UTC) <= timedelta(minutes=15)
    me = await client.get("/api/me", headers=bearer(body["access_token"]))
    assert me.status == 200 and (await me.json())["email"] == DOCTOR_EMAIL
    # The refresh token is opaque and the database keeps only its hash.
    token_id, secret = body["refresh_token"].split(".")
    stored = json.dumps(await db_state(client))
    assert secret not in stored and token_id in stored
    assert hashlib.sha256(secret.encode()).hexdigest() in stored
    [ok] = await audit_events(world.settings, "auth.login")
    assert (ok.outcome, ok.actor_id, ok.client_addr) == ("success", world.user("NDI").id,
                                                         "127.0.0.1")
    [issued] = await audit_events(world.settings, "auth.token_issued")
    assert issued.actor_id == world.user("NDI").id and issued.outcome == "success"


async def _disable(client, world, key: str) -> None:
    r = await client.patch(f"/api/users/{world.user(key).id}", json={"active": False},
                           headers=world.auth("admin"))
    assert r.status == 200, await r.text()


async def test_failed_logins_are_401_alike_and_each_is_audited(client, world):
    await _disable(client, world, "GTH")
    attempts = [("nobody@demo.hoichan.vn", DEMO_PASSWORD, "unknown account"),
                (DOCTOR_EMAIL, "wrong-password", "wrong password"),
                ("doctor.gth@demo.hoichan.vn", DEMO_PASSWORD, "account disabled")]
    before = await row_counts(world.settings)
    bodies = []
    for email, password, _ in attempts:
        r = await login(client, email, password)
        bodies.append(await error_of(r, 401, code="unauthorized"))
        assert r.headers.get("WWW-Authenticate") == "Bearer"
    # Nothing in the answer tells an unknown account from a wrong password or a disabled one.
    assert bodies[0] == bodies[1] == bodies[2]
    after = await row_counts(world.settings)
    assert after["refresh_tokens"] == before["refresh_tokens"]
    assert after["audit_events"] == before["audit_events"] + 3
    failures = await audit_events(world.settings, "auth.login")
    assert [(e.actor_email, e.outcome, e.detail["reason"]) for e in failures] == [
        (email, "failure", reason) for email, _, reason in attempts]
    assert failures[0].actor_id is None
    assert failures[2].actor_id == world.user("GTH").id
    assert await audit_events(world.settings, "auth.token_issued") == []


async def refresh(client, token: str):
    return await client.post("/api/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_a_reused_token_revokes_the_whole_login(client, world):
    first = await (await login(client)).json()
    r = await refresh(client, first["refresh_token"])
    assert r.status == 200
    second = await r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await client.get("/api/me", headers=bearer(second["access_token"]))).status == 200
    # The spent token again: taken as theft, refused, and the live one dies with it.
    err = await error_of(await refresh(client, first["refresh_token"]), 401)
    assert "already used" in err["message"]
    await error_of(await refresh(client, second["refresh_token"]), 401)
    # Both presentations of a revoked token are recorded as suspected theft.
    reuse = await audit_events(world.settings, "auth.refresh_reuse")
    assert [(e.outcome, e.actor_id) for e in reuse] == [("denied", world.user("NDI").id)] * 2
    assert reuse[0].object_id == first["refresh_token"].split(".")[0]
    # A separate login (another device) is another family and is untouched.
    other = await (await login(client)).json()
    assert (await refresh(client, other["refresh_token"])).status == 200
    issued = await audit_events(world.settings, "auth.token_issued")
    assert len(issued) == 4  # login, refresh, login, refresh


async def test_an_expired_refresh_token_is_refused(client, world):
    tokens = await (await login(client)).json()
    engine = create_engine(world.settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(update(RefreshToken).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    await engine.dispose()
    err = await error_of(await refresh(client, tokens["refresh_token"]), 401)
    assert "expired" in err["message"]


async def test_refresh_with_a_malformed_or_unknown_token_is_401(client, world):
    before = await db_state(client)
    for garbage in ["", "x", "no-dot-here", "a" * 32 + ".", "a" * 31 + ".s",
                    "0" * 32 + ".secret", "ü" * 32 + ".secret", "x" * 5000]:
        await error_of(await refresh(client, garbage), 401, code="unauthorized")
    assert await db_state(client) == before


async def test_refresh_of_a_deactivated_user_is_refused(client, world):
    tokens = await (await login(client, "doctor.gth@demo.hoichan.vn")).json()
    await _disable(client, world, "GTH")
    await error_of(await refresh(client, tokens["refresh_token"]), 401)


async def test_logout_revokes_the_login(client, world):
    tokens = await (await login(client)).json()
    rotated = await (await refresh(client, tokens["refresh_token"])).json()
    r = await client.post("/api/auth/logout", json={"refresh_token": rotated["refresh_token"]},
                          headers=bearer(rotated["access_token"]))
    assert r.status == 204
    await error_of(await refresh(client, rotated["refresh_token"]), 401)
    [out] = await audit_events(world.settings, "auth.logout")
    assert out.actor_id == world.user("NDI").id


async def test_logout_cannot_revoke_someone_elses_login(client, world):
    theirs = await (await login(client, ADMIN_EMAIL)).json()
    r = await client.post("/api/auth/logout", json={"refresh_token": theirs["refresh_token"]},
                          headers=world.auth("NDI"))
    await error_of(r, 422, field="refresh_token")
    assert (await refresh(client, theirs["refresh_token"])).status == 200


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _flip(segment: str) -> str:
    i = len(segment) // 2
    return segment[:i] + ("A" if segment[i] != "A" else "B") + segment[i + 1:]


def bad_tokens(world) -> dict[str, str]:
    ndi, admin = world.user("NDI"), world.user("admin")
    good = world.token("NDI")
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    now = datetime.now(UTC)
    join = issue_join(JoinClaims(ndi.id, world.consultation_id, "presenter", ndi.name, "NDI",
                                 "x", "provincial", now + timedelta(minutes=5)),
                      JWT_SECRET, now)
    return {
        "expired": issue_access(ndi.id, ["doctor"], JWT_SECRET, timedelta(minutes=15),
                                now=now - timedelta(hours=1)),
        "signature flipped": ".".join([header, payload, _flip(signature)]),
        # Someone else's id in the payload, the original signature kept.
        "payload changed": ".".join([header, _b64({**claims, "sub": str(admin.id),
                                                   "roles": ["admin"]}), signature]),
        "payload char flipped": ".".join([header, _flip(payload), signature]),
        "another key": issue_access(admin.id, ["admin"], "another-secret-" + "y" * 40,
                                    timedelta(minutes=15)),
        "alg none": ".".join([_b64({"alg": "none", "typ": "JWT"}),
                              _b64({**claims, "sub": str(admin.id)}), ""]),
        "alg none upper": ".".join([_b64({"alg": "None", "typ": "JWT"}),
                                    _b64({**claims, "sub": str(admin.id)}), ""]),
        "join token as access": join,
        "no typ": jwt.encode({k: v for k, v in claims.items() if k != "typ"}, JWT_SECRET,
                             algorithm="HS256"),
        "other issuer": jwt.encode({**claims, "iss": "evil"}, JWT_SECRET, algorithm="HS256"),
        "HS512": jwt.encode(claims, JWT_SECRET, algorithm="HS512"),
        "non-numeric subject": jwt.encode({**claims, "sub": "admin"}, JWT_SECRET,
                                          algorithm="HS256"),
        "garbage": "not.a.jwt",
        "empty segments": "..",
    }


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_every_kind_of_bad_access_token_is_401_json(client, world):
    for name, token in bad_tokens(world).items():
        r = await client.get("/api/me", headers=bearer(token))
        err = await error_of(r, 401, code="unauthorized")
        assert r.headers.get("WWW-Authenticate") == "Bearer", name
        assert err["message"], name
    # And a header that carries no bearer token at all.
    good = world.token("NDI")
    for header in ["", "Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer    ", good, f"Token {good}"]:
        await error_of(await client.get("/api/me", headers={"Authorization": header}), 401)
    # The good one works, so the refusals above are about the tokens.
    assert (await client.get("/api/me", headers=world.auth("NDI"))).status == 200


async def test_a_deactivated_users_access_token_stops_working_at_once(client, world):
    token = world.token("GTH")
    assert (await client.get("/api/me", headers=bearer(token))).status == 200
    await _disable(client, world, "GTH")
    err = await error_of(await client.get("/api/me", headers=bearer(token)), 401)
    assert "disabled" in err["message"]
    assert (await client.get("/api/consultations", headers=bearer(token))).status == 401
