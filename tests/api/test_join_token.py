"""The room join token: only for invitees, only from the lobby lead time before the start until
the end, scoped to the room and the caller's room role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import update

from app.auth.tokens import TokenError, verify_join
from app.db.engine import create_engine
from app.db.models import Consultation
from tests.api.dbcheck import audit_events, db_state, error_of
from tests.api.scheduling_helpers import T0, create
from tests.conftest import JWT_SECRET


def now() -> datetime:
    return datetime.now(UTC)


async def join(client, world, cid: int, who: str):
    return await client.post(f"/api/consultations/{cid}/join-token", headers=world.auth(who))


async def test_an_invitee_gets_a_token_naming_room_role_hospital_and_tier(client, world):
    r = await join(client, world, world.consultation_id, "NDI")
    assert r.status == 200, await r.text()
    body = await r.json()
    claims = verify_join(body["token"], JWT_SECRET)
    ndi = world.user("NDI")
    assert (claims.user_id, claims.consultation_id, claims.room_role) == (
        ndi.id, world.consultation_id, "presenter")
    assert (claims.hospital_code, claims.tier, claims.name) == ("NDI", "provincial", ndi.name)
    assert claims.hospital_name == "Bệnh viện Đa khoa tỉnh Nam Định"
    assert (body["consultation_id"], body["room_role"]) == (world.consultation_id, "presenter")
    # No TURN server configured: the browser gets none (tests/deploy proves the TURN case).
    assert body["ice_servers"] == []
    assert datetime.fromisoformat(body["expires_at"]) == claims.expires_at
    assert claims.expires_at <= now() + timedelta(minutes=10, seconds=1)
    demo = await (await client.get(f"/api/consultations/{world.consultation_id}",
                                   headers=world.auth("NDI"))).json()
    assert claims.expires_at <= datetime.fromisoformat(demo["end"])
    # The host's token says host; the central expert's tier is central.
    host = verify_join((await (await join(client, world, world.consultation_id,
                                          "BM")).json())["token"], JWT_SECRET)
    assert (host.room_role, host.tier, host.hospital_code) == ("host", "central", "BM")
    # Signed with the platform's secret only.
    with pytest.raises(TokenError):
        verify_join(body["token"], "another-secret-" + "q" * 40)
    events = await audit_events(world.settings, "room.join_token")
    assert [(e.actor_id, e.outcome, e.detail["room_role"]) for e in events] == [
        (ndi.id, "success", "presenter"), (world.user("BM").id, "success", "host")]


async def _consultation(client, world, start: datetime, minutes: int, host: str = "KXU",
                        **kw) -> dict:
    # Hosted by a district doctor: the demo consultation keeps BM busy now.
    return await create(client, world, start=start, hours=minutes / 60, host=host, **kw)


async def test_the_token_expires_at_the_end_at_the_latest(client, world):
    c = await _consultation(client, world, now() - timedelta(minutes=30), 35,
                            invitations=[{"user_id": world.user("GTI").id,
                                          "role": "participant"}])
    body = await (await join(client, world, c["id"], "GTI")).json()
    claims = verify_join(body["token"], JWT_SECRET)
    end = datetime.fromisoformat(c["end"])
    assert claims.expires_at <= end and claims.expires_at > now()
    # Five minutes left of a ten-minute lifetime: the end bounds it.
    assert end - claims.expires_at < timedelta(seconds=2)


async def test_a_hospital_invitation_gives_its_doctors_a_token(client, world):
    c = await _consultation(client, world, now() + timedelta(minutes=5), 60, invitations=[
        {"hospital_id": world.user("HLY").hospital_id, "role": "observer"}])
    r = await join(client, world, c["id"], "HLY")
    assert r.status == 200, await r.text()
    claims = verify_join((await r.json())["token"], JWT_SECRET)
    assert (claims.room_role, claims.hospital_code, claims.tier) == ("observer", "HLY",
                                                                     "commune")


async def test_not_invited_is_refused(client, world):
    c = await _consultation(client, world, now() + timedelta(minutes=5), 60)
    before = await db_state(world.settings)
    # Staff may read every consultation but join only when invited; doctors not invited do
    # not even learn it exists.
    await error_of(await join(client, world, c["id"], "coordinator"), 403, code="forbidden")
    await error_of(await join(client, world, c["id"], "admin"), 403, code="forbidden")
    await error_of(await join(client, world, c["id"], "GTH"), 404)
    after = await db_state(world.settings)
    # Nothing changed but the two refusals written to the audit trail.
    assert {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"}
    denied = await audit_events(world.settings, "room.join_token")
    assert [(e.actor_id, e.outcome) for e in denied] == [
        (world.user("coordinator").id, "denied"), (world.user("admin").id, "denied")]


async def test_the_lobby_opens_at_the_lead_time_before_the_start(client, world):
    invite = [{"user_id": world.user("GTI").id, "role": "participant"}]
    early = await _consultation(client, world, now() + timedelta(minutes=16), 60,
                                invitations=invite)
    err = await error_of(await join(client, world, early["id"], "GTI"), 409, code="too_early")
    assert "lobby opens" in err["message"]
    open_ = await _consultation(client, world, now() + timedelta(minutes=14), 60,
                                host="KBA", invitations=invite)
    assert (await join(client, world, open_["id"], "GTI")).status == 200


async def _move(world, cid: int, start: datetime, end: datetime) -> None:
    engine = create_engine(world.settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(update(Consultation).where(Consultation.id == cid).values(
            scheduled_start=start, scheduled_end=end))
    await engine.dispose()


async def test_after_the_end_or_when_cancelled_there_is_no_token(client, world):
    invite = [{"user_id": world.user("GTI").id, "role": "participant"}]
    over = await _consultation(client, world, T0, 60, invitations=invite)
    await _move(world, over["id"], now() - timedelta(hours=1), now() - timedelta(seconds=1))
    await error_of(await join(client, world, over["id"], "GTI"), 409, code="too_late")
    cancelled = await _consultation(client, world, now() + timedelta(minutes=5), 60,
                                    host="KBA", invitations=invite)
    await client.post(f"/api/consultations/{cancelled['id']}/cancel",
                      headers=world.auth("coordinator"))
    await error_of(await join(client, world, cancelled["id"], "GTI"), 409, code="wrong_status")
    denied = await audit_events(world.settings, "room.join_token")
    assert [e.outcome for e in denied] == ["denied", "denied"]


async def test_a_join_token_cannot_be_forged_or_stretched(client, world):
    token = (await (await join(client, world, world.consultation_id, "GTI")).json())["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    for forged in [
        jwt.encode({**claims, "room_role": "host"}, "another-secret-" + "q" * 40,
                   algorithm="HS256"),
        jwt.encode({**claims, "exp": claims["exp"] - 3600}, JWT_SECRET, algorithm="HS256"),
        jwt.encode({**claims, "typ": "access"}, JWT_SECRET, algorithm="HS256"),
    ]:
        with pytest.raises(TokenError):
            verify_join(forged, JWT_SECRET)
