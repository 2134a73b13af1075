"""Every kind of bad input gets a clear error to its sender; the room and the others go on."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from .conftest import Peer, Room

NOT_SDP = "this is not SDP at all"
HOSTILE_SDP = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n" * 500
)


async def _room_still_works(room: Room, host: Peer, other: Peer) -> None:
    """The others are unaffected: chat still flows both ways."""
    ack = await other.call("chat:send", {"text": "still fine"})
    assert "message" in ack, ack
    await host.wait("chat:message", lambda m: m["text"] == "still fine")
    assert host.sio.connected and other.sio.connected


async def _error(peer: Peer, event: str, data: object = None) -> dict:
    """Send ``event``; its ack and the ``error`` event both carry the same error."""
    ack = await peer.call(event, data)
    assert set(ack) == {"error"}, ack
    pushed = await peer.wait("error", lambda e: e["event"] == event)
    assert {k: pushed[k] for k in ("code", "message")} == ack["error"]
    assert ack["error"]["message"]
    return ack["error"]


async def test_unknown_event_and_event_before_join(room: Room) -> None:
    host = await room.joined("BM")
    other = await room.admitted(host, "TBI")
    stranger = await room.connect("HNA")
    assert (await _error(stranger, "chat:send", {"text": "hi"}))["code"] == "not_joined"
    assert (await _error(stranger, "media:publish", {"sdp": "v=0"}))["code"] == "not_joined"
    assert (await _error(stranger, "no:such:event", {}))["code"] == "unknown_event"
    assert (await _error(other, "admin:shutdown", {"now": True}))["code"] == "unknown_event"
    # An event the client would normally only receive is unknown when sent to the server.
    assert (await _error(other, "presence:join", {}))["code"] == "unknown_event"
    await _room_still_works(room, host, other)


async def test_malformed_payloads(room: Room) -> None:
    host = await room.joined("BM")
    other = await room.admitted(host, "TBI")
    for event, data in [
        ("chat:send", {"text": 42}),
        ("chat:send", {"text": "   "}),
        ("chat:send", {"text": "hi", "extra": 1}),
        ("chat:send", "just a string"),
        ("chat:send", [1, 2, 3]),
        ("media:state", {"mic": "true"}),
        ("host:mute", {"participant_id": "'; DROP TABLE users; --"}),
        ("media:ice", {"pc": "sideways", "candidate": None}),
    ]:
        error = await _error(other if event != "host:mute" else host, event, data)
        assert error["code"] == "invalid_payload", (event, data, error)
    await _room_still_works(room, host, other)


async def test_oversized_payload(room: Room) -> None:
    host = await room.joined("BM")
    other = await room.admitted(host, "TBI")
    limit = room.world.settings.signaling_max_event_bytes
    error = await _error(other, "chat:send", {"text": "x" * (limit + 10)})
    assert error["code"] == "payload_too_large" and str(limit) in error["message"]
    await _room_still_works(room, host, other)


@pytest.mark.room_settings(signaling_event_rate=5.0, signaling_event_burst=10)
async def test_flood_from_one_client_is_refused_not_the_room(room: Room) -> None:
    host = await room.joined("BM")
    flooder = await room.admitted(host, "TBI")
    other = await room.admitted(host, "HNA")
    for _ in range(200):
        await flooder.sio.emit("hand:raise", namespace="/room")
    notice = await flooder.wait("error", lambda e: e["code"] == "rate_limited")
    assert "too many events" in notice["message"]
    await asyncio.sleep(0.3)  # a window in which further notices would arrive
    # The flood was answered by about one notice, not one error per event.
    assert len(flooder.seen("error", lambda e: e["code"] == "rate_limited")) <= 2
    ack = await flooder.call("chat:send", {"text": "now?"})
    assert ack.get("error", {}).get("code") in (None, "rate_limited")
    await _room_still_works(room, host, other)
    await asyncio.sleep(1.0)  # time must pass: the bucket refills at 5 events/s
    ack = await flooder.call("chat:send", {"text": "calm again"})
    assert "message" in ack, ack


async def test_bad_sdp_observer_publish_and_unknown_connections(room: Room) -> None:
    host = await room.joined("BM")
    doctor = await room.admitted(host, "TBI")
    observer = await room.admitted(host, "GTI", role="observer")

    assert (await _error(doctor, "media:publish", {"sdp": NOT_SDP}))["code"] == "invalid_sdp"
    assert (await _error(doctor, "media:publish", {"sdp": HOSTILE_SDP}))["code"] == \
        "invalid_sdp"
    assert (await _error(doctor, "media:subscribe_answer", {"sdp": NOT_SDP}))["code"] in \
        ("unknown_connection", "invalid_sdp")

    error = await _error(observer, "media:publish", {"sdp": NOT_SDP})
    assert error["code"] == "forbidden" and "observer" in error["message"]
    error = await _error(observer, "media:ice", {"pc": "publish", "candidate": {
        "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
        "sdpMid": "0", "sdpMLineIndex": 0}})
    assert error["code"] == "forbidden"

    candidate = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
                 "sdpMid": "0", "sdpMLineIndex": 0}
    for pc in ("publish", "subscribe"):
        error = await _error(doctor, "media:ice", {"pc": pc, "candidate": candidate})
        assert error["code"] == "unknown_connection", (pc, error)
    # Nothing is published yet: no subscribe offer, so still no subscribe connection.
    assert await doctor.call("media:subscribe") == {"sdp": None, "tracks": []}
    error = await _error(doctor, "media:ice", {"pc": "subscribe", "candidate": candidate})
    assert error["code"] == "unknown_connection"
    await _room_still_works(room, host, doctor)


async def test_a_connect_flood_is_refused_for_a_while_and_others_still_enter(room: Room) -> None:
    from app.auth.rate_limit import CONNECT_USER

    for _ in range(CONNECT_USER.per_window):
        peer = await room.connect("TBI")
        await peer.close()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await room.connect("TBI")
    error = room.peers[-1].connect_error
    assert error["data"]["code"] == "rate_limited", error
    assert 1 <= error["data"]["retry_after_s"] <= 60
    assert f"{error['data']['retry_after_s']} s" in error["message"]
    # Another doctor from the same address enters as usual.
    host = await room.joined("BM")
    assert host.join_ack is not None and host.join_ack["status"] == "admitted"
