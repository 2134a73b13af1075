"""Connecting, the lobby, presence and the consultation's status."""

from __future__ import annotations

from datetime import UTC

import pytest
import socketio
from sqlalchemy import select

from app.db.engine import create_engine, session_factory
from app.db.models import AuditEvent, Consultation, ConsultationStatus

from .conftest import BOTH_DATABASES, Room


async def _status(room: Room) -> ConsultationStatus:
    engine = create_engine(room.world.settings.database_url)
    try:
        async with session_factory(engine)() as session:
            c = await session.get(Consultation, room.consultation_id)
            assert c is not None
            return c.status
    finally:
        await engine.dispose()


async def _audit_actions(room: Room) -> list[str]:
    engine = create_engine(room.world.settings.database_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.scalars(select(AuditEvent.action).where(
                AuditEvent.consultation_id == room.consultation_id).order_by(AuditEvent.id))
            return list(rows)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)
async def test_host_goes_live_lobby_admits_and_end_closes(room: Room) -> None:
    assert await _status(room) is ConsultationStatus.scheduled
    host = await room.joined("BM")
    assert host.join_ack is not None and host.join_ack["status"] == "admitted"
    assert await _status(room) is ConsultationStatus.live
    snap = host.join_ack["snapshot"]
    assert [m["hospital"]["code"] for m in snap["members"]] == ["BM"]
    assert snap["members"][0]["role"] == "host" and snap["lobby"] == []

    doctor = await room.joined("TBI")
    assert doctor.join_ack is not None and doctor.join_ack["status"] == "lobby"
    lobby = await host.wait("lobby:update", lambda d: len(d["lobby"]) == 1)
    waiting = lobby["lobby"][0]
    assert waiting["participant_id"] == doctor.participant_id
    assert waiting["hospital"] == {"code": "TBI", "name": room.world.user("TBI").hospital.name,
                                   "tier": "provincial"}
    # A lobby member can do nothing but wait or leave.
    ack = await doctor.call("chat:send", {"text": "hello?"})
    assert ack["error"]["code"] == "in_lobby"

    assert await host.call("lobby:admit", {"participant_id": doctor.participant_id}) == \
        {"ok": True}
    admitted = await doctor.wait("room:admitted")
    names = {m["hospital"]["code"] for m in admitted["snapshot"]["members"]}
    assert names == {"BM", "TBI"}
    joined = await host.wait("presence:join")
    assert joined["member"]["participant_id"] == doctor.participant_id
    assert joined["member"]["media"] == {"mic": False, "camera": False, "screen": False,
                                         "speaking": False}

    assert await host.call("room:end") == {"ok": True}
    assert (await doctor.wait("room:ended"))["by"] == host.participant_id
    assert await _status(room) is ConsultationStatus.ended
    refused = await _refused(room, "HNA")
    assert refused["data"]["code"] == "room_closed"
    actions = await _audit_actions(room)
    for action in ("room.live", "room.join", "room.end"):
        assert action in actions


async def _refused(room: Room, key: str, auth: object = None) -> dict:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await room.connect(key, auth=auth)
    peer = room.peers[-1]
    assert peer.connect_error is not None
    return peer.connect_error


async def test_bad_tokens_are_refused_with_a_clear_error(room: Room) -> None:
    from datetime import datetime, timedelta

    cases = {
        "auth_required": None,
        "invalid_token": {"token": "not-a-jwt"},
        "token_expired": {"token": room.token(
            "TBI", now=datetime.now(UTC) - timedelta(hours=1), minutes=5)},
        "wrong_room": {"token": room.token("TBI"), "consultation_id": room.consultation_id + 1},
    }
    for code, auth in cases.items():
        if auth is None:
            peer = room.connect("TBI", auth={"nothing": 1})
            with pytest.raises(socketio.exceptions.ConnectionError):
                await peer
            error = room.peers[-1].connect_error
        else:
            error = await _refused(room, "TBI", auth)
        assert error["data"]["code"] == code, (code, error)
        assert error["message"] == error["data"]["message"]
        assert not room.peers[-1].sio.connected
    # A token for another consultation: the room must exist and be open.
    other = {"token": room.token("TBI", consultation_id=room.consultation_id + 1000)}
    assert (await _refused(room, "TBI", other))["data"]["code"] == "wrong_room"
    # A token signed with another secret.
    from app.auth.tokens import JoinClaims, issue_join

    user = room.world.user("TBI")
    now = datetime.now(UTC)
    forged = issue_join(JoinClaims(user.id, room.consultation_id, "host", user.name, "TBI",
                                   "x", "central", now + timedelta(minutes=5)),
                        "another-secret-" + "y" * 40, now)
    assert (await _refused(room, "TBI", {"token": forged}))["data"]["code"] == "invalid_token"
    # The server is fine: a good token still works.
    host = await room.joined("BM")
    assert host.join_ack is not None and host.join_ack["status"] == "admitted"


async def test_token_from_the_rest_api_joins(room: Room) -> None:
    r = await room.client.post(f"/api/consultations/{room.consultation_id}/join-token",
                               headers=room.world.auth("BM"))
    assert r.status == 200, await r.text()
    body = await r.json()
    peer = await room.connect("BM", auth={"token": body["token"],
                                          "consultation_id": room.consultation_id})
    ack = await peer.join()
    assert ack["status"] == "admitted" and ack["snapshot"]["members"][0]["role"] == "host"


async def test_admit_all_and_auto_admit(room: Room) -> None:
    a = await room.joined("TBI")
    b = await room.joined("HNA")
    host = await room.joined("BM")
    assert [m["participant_id"] for m in host.join_ack["snapshot"]["lobby"]] == \
        [a.participant_id, b.participant_id]
    ack = await host.call("lobby:admit_all")
    assert ack == {"ok": True, "admitted": [a.participant_id, b.participant_id]}
    await a.wait("room:admitted")
    await b.wait("room:admitted")
    assert await host.call("lobby:auto_admit", {"on": True}) == {"ok": True, "admitted": []}
    c = await room.joined("NBI")
    assert c.join_ack["status"] == "admitted"
    await a.wait("presence:join", lambda d: d["member"]["participant_id"] == c.participant_id)
    # Deny sends the waiter away for good.
    await host.call("lobby:auto_admit", {"on": False})
    d = await room.joined("GTH")
    assert d.join_ack["status"] == "lobby"
    assert await host.call("lobby:deny", {"participant_id": d.participant_id}) == {"ok": True}
    await d.wait("room:denied")
    again = await room.connect("GTH")
    ack = await again.call("room:join")
    assert ack["error"]["code"] == "removed"


async def test_presence_media_state_and_leave(room: Room) -> None:
    host = await room.joined("BM")
    doctor = await room.admitted(host, "TBI")
    observer = await room.admitted(host, "GTI", role="observer")
    ack = await doctor.call("media:state", {"mic": True, "camera": True, "speaking": True})
    assert ack == {"ok": True}
    update = await host.wait("presence:update",
                             lambda d: d["member"]["participant_id"] == doctor.participant_id)
    assert update["member"]["media"] == {"mic": True, "camera": True, "screen": False,
                                         "speaking": True}
    ack = await observer.call("media:state", {"mic": True})
    assert ack["error"]["code"] == "forbidden"
    assert await doctor.call("room:leave") == {"ok": True}
    left = await host.wait("presence:leave")
    assert left == {"participant_id": doctor.participant_id, "reason": "left"}
    ack = await doctor.call("chat:send", {"text": "still here?"})
    assert ack["error"]["code"] == "not_joined"
