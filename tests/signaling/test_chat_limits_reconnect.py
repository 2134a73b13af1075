"""Chat kept in the consultation record, raised hands, room limits, reconnection."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from app.db.engine import create_engine, session_factory
from app.db.models import ChatMessage
from tests.waiting import wait_for

from .conftest import BOTH_DATABASES, Room


@pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)
async def test_chat_is_stored_and_replayed_to_late_joiners(room: Room) -> None:
    host = await room.joined("BM")
    doctor = await room.admitted(host, "TBI")
    observer = await room.admitted(host, "GTI", role="observer")
    ack = await doctor.call("chat:send", {"text": "  Xin chào, phim CT đã tải.  ",
                                          "client_id": "c1"})
    message = ack["message"]
    assert message["text"] == "Xin chào, phim CT đã tải." and message["client_id"] == "c1"
    assert message["participant_id"] == doctor.participant_id
    assert message["hospital_code"] == "TBI"
    for peer in (host, observer):
        assert await peer.wait("chat:message") == message
    assert "message" in await observer.call("chat:send", {"text": "observer question"})

    engine = create_engine(room.world.settings.database_url)
    try:
        async with session_factory(engine)() as session:
            rows = list(await session.scalars(select(ChatMessage).order_by(ChatMessage.id)))
    finally:
        await engine.dispose()
    assert [(r.consultation_id, r.user_id, r.text) for r in rows] == [
        (room.consultation_id, room.world.user("TBI").id, "Xin chào, phim CT đã tải."),
        (room.consultation_id, room.world.user("GTI").id, "observer question")]

    late = await room.admitted(host, "HNA")
    history = late.seen("room:admitted")[0]["snapshot"]["chat"]
    assert [m["text"] for m in history] == ["Xin chào, phim CT đã tải.", "observer question"]


async def test_raised_hands_in_order(room: Room) -> None:
    host = await room.joined("BM")
    a = await room.admitted(host, "TBI")
    b = await room.admitted(host, "GTI", role="observer")
    assert await b.call("hand:raise") == {"ok": True}
    assert await a.call("hand:raise") == {"ok": True}
    await host.wait("hands:update", lambda d: d["hands"] == [b.participant_id,
                                                             a.participant_id])
    assert await b.call("hand:lower") == {"ok": True}
    await host.wait("hands:update", lambda d: d["hands"] == [a.participant_id])
    # A member who leaves takes its hand down with it.
    await a.call("room:leave")
    await host.wait("hands:update", lambda d: d["hands"] == [])


@pytest.mark.room_settings(room_max_publishers=3, room_max_observers=1)
async def test_publisher_and_observer_limits(room: Room) -> None:
    host = await room.joined("BM")
    await host.call("lobby:auto_admit", {"on": True})
    a = await room.joined("NDI")
    b = await room.joined("TBI")
    full = await room.connect("HNA")
    ack = await full.call("room:join")
    assert ack["error"]["code"] == "room_full" and "3 publishers" in ack["error"]["message"]
    watcher = await room.joined("GTI", role="observer")
    extra = await room.connect("HLY", role="observer")
    ack = await extra.call("room:join")
    assert ack["error"]["code"] == "room_full" and "1 observers" in ack["error"]["message"]
    # Promoting the observer would pass the publisher limit: refused, nothing changes.
    ack = await host.call("host:set_role", {"participant_id": watcher.participant_id,
                                            "role": "participant"})
    assert ack["error"]["code"] == "room_full"
    # The room goes on; a freed place can be taken.
    await b.call("room:leave")
    await a.wait("presence:leave")
    assert (await full.call("room:join"))["status"] == "admitted"
    assert "message" in await a.call("chat:send", {"text": "room goes on"})


async def test_reconnect_within_grace_keeps_id_role_and_place(room: Room) -> None:
    host = await room.joined("BM")
    doctor = await room.admitted(host, "TBI")
    observer = await room.admitted(host, "GTI", role="observer")
    await host.call("host:set_role", {"participant_id": observer.participant_id,
                                      "role": "participant"})
    await observer.call("hand:raise")
    await host.wait("hands:update", lambda d: d["hands"] == [observer.participant_id])

    joins_before = len(doctor.seen("presence:join"))
    await observer.sio.disconnect()
    update = await doctor.wait("presence:update", lambda d: d["member"]["status"] ==
                               "reconnecting")
    assert update["member"]["participant_id"] == observer.participant_id

    back = await room.connect("GTI", role="observer")  # the token still says observer
    ack = await back.join()
    assert ack["resumed"] is True and ack["participant_id"] == observer.participant_id
    me = next(m for m in ack["snapshot"]["members"]
              if m["participant_id"] == observer.participant_id)
    assert me["role"] == "participant" and me["status"] == "connected"
    assert ack["snapshot"]["hands"] == [observer.participant_id]
    await doctor.wait("presence:update", lambda d: d["member"]["status"] == "connected")
    # Time must pass: the grace would have run out by now, and no leave came of it.
    await asyncio.sleep(room.world.settings.reconnect_grace_seconds + 0.3)
    assert not doctor.seen("presence:leave")
    assert len(doctor.seen("presence:join")) == joins_before
    # The place is the same: its position in the member list did not change.
    order = [m["participant_id"] for m in ack["snapshot"]["members"]]
    assert order == [host.participant_id, doctor.participant_id, observer.participant_id]


async def test_no_return_within_grace_is_a_leave(room: Room) -> None:
    host = await room.joined("BM")
    doctor = await room.admitted(host, "TBI")
    await doctor.sio.disconnect()
    await host.wait("presence:update", lambda d: d["member"]["status"] == "reconnecting")
    left = await host.wait("presence:leave",
                           timeout=room.world.settings.reconnect_grace_seconds + 2)
    assert left == {"participant_id": doctor.participant_id, "reason": "timeout"}
    again = await room.connect("TBI")
    ack = await again.join()
    assert ack["resumed"] is False and ack["status"] == "lobby"
    assert ack["participant_id"] != doctor.participant_id


async def test_a_second_connection_takes_over(room: Room) -> None:
    host = await room.joined("BM")
    first = await room.admitted(host, "TBI")
    second = await room.connect("TBI")
    ack = await second.join()
    assert ack["resumed"] and ack["participant_id"] == first.participant_id
    await first.wait("room:replaced")
    await wait_for(lambda: not first.sio.connected, 2, "the replaced socket closes",
                   interval=0.02)
    assert "message" in await second.call("chat:send", {"text": "moved to my phone"})
    # Time must pass: the old socket's grace would have run out, and no leave came of it.
    await asyncio.sleep(room.world.settings.reconnect_grace_seconds + 0.3)
    assert not host.seen("presence:leave") and not host.seen("presence:update")
