"""Media end to end through signaling: aiortc peers, the SFU behind the room events."""

from __future__ import annotations

import asyncio

from tests.waiting import wait_for

from .conftest import Room
from .media_clients import MediaClient, camera_offer

MEDIA_WAIT = 20.0


async def test_publisher_reaches_two_subscribers_observer_cannot_publish(room: Room) -> None:
    host = await room.joined("BM")
    doctor = await room.admitted(host, "TBI")
    observer = await room.admitted(host, "GTI", role="observer")
    publisher = MediaClient(host, trickle=True)
    # Candidates trickled through media:ice on the host's publish and the doctor's
    # subscribe connection; carried in the SDP for the observer.
    viewers = [MediaClient(doctor, trickle=True), MediaClient(observer)]
    try:
        for viewer in viewers:
            await viewer.subscribe()
        ack = await publisher.publish()
        assert "sdp" in ack
        pid = host.participant_id
        assert pid is not None
        await wait_for(lambda: all(v.frames(pid, "video") >= 15 and v.frames(pid, "audio") >= 25
                                   for v in viewers), MEDIA_WAIT,
                       "host's video and audio decoded at both subscribers")
        for viewer in viewers:
            assert viewer.offers >= 1
        await host.wait("media:connection_state", lambda d: d == {"pc": "publish",
                                                                  "state": "connected"})
        await doctor.wait("media:connection_state", lambda d: d == {"pc": "subscribe",
                                                                    "state": "connected"})

        # The observer's publish is refused by signaling; its receiving goes on.
        refused = await observer.call("media:publish", {"sdp": await camera_offer()})
        assert refused["error"]["code"] == "forbidden"
        before = viewers[1].frames(pid, "video")
        await wait_for(lambda: viewers[1].frames(pid, "video") > before + 5, MEDIA_WAIT,
                       "observer still receiving after its refused publish")

        # Stats: everyone gets the room's figures as the SFU sees them.
        stats = await doctor.wait("stats", lambda s: any(
            t["kind"] == "video" and t["bitrate_bps"] > 0
            for t in s["participants"].get(pid, {}).get("publish", [])), timeout=MEDIA_WAIT)
        assert stats["participants"][doctor.participant_id]["receive"]["bitrate_bps"] > 0
        await observer.wait("stats")
        kept = room.media.stats.latest[room.consultation_id]
        assert kept["participants"][pid]["publish"] and kept["raw"]["inbound"]

        # The socket drops and comes back: media is untouched meanwhile.
        await doctor.sio.disconnect()
        await host.wait("presence:update", lambda d: d["member"]["status"] == "reconnecting")
        before = viewers[0].frames(pid, "video")
        await wait_for(lambda: viewers[0].frames(pid, "video") > before + 10, MEDIA_WAIT,
                       "media flows while the socket is down")
        back = await room.connect("TBI")
        assert (await back.join())["resumed"] is True

        # The publisher leaves: every subscriber is renegotiated without its tracks.
        offers = [v.offers for v in viewers]
        await host.call("room:leave")
        await wait_for(lambda: viewers[1].offers > offers[1], MEDIA_WAIT,
                       "observer renegotiated after the publisher left")
        assert room.media.bridge.room(room.consultation_id).published_tracks() == []
    finally:
        await publisher.close()
        for viewer in viewers:
            await viewer.close()


async def test_room_of_four_publishers_and_two_observers(room: Room) -> None:
    host = await room.joined("BM")
    await host.call("lobby:auto_admit", {"on": True})
    peers = [host] + [await room.joined(k) for k in ("NDI", "TBI", "HNA")]
    observers = [await room.joined(k, role="observer") for k in ("GTI", "HLY")]
    clients = {p.participant_id: MediaClient(p) for p in peers + observers}
    try:
        await asyncio.gather(*(c.subscribe() for c in clients.values()))
        for p in peers:
            assert "sdp" in await clients[p.participant_id].publish()
        publishers = [p.participant_id for p in peers]

        def everyone_decodes() -> bool:
            return all(c.frames(pub, "video") >= 10 and c.frames(pub, "audio") >= 20
                       for me, c in clients.items() for pub in publishers if pub != me)

        await wait_for(everyone_decodes, 40.0, "every client decodes every other publisher")
        # The presenter role reaches the SFU's forwarding policy.
        sfu = room.media.bridge.room(room.consultation_id)
        assert sfu.presenter == peers[1].participant_id
        await host.call("host:set_role", {"participant_id": peers[2].participant_id,
                                          "role": "presenter"})
        assert sfu.presenter == peers[2].participant_id
    finally:
        for c in clients.values():
            await c.close()


async def test_promoted_observer_publishes_after_reset(room: Room) -> None:
    host = await room.joined("BM")
    observer = await room.admitted(host, "GTI", role="observer")
    assert (await observer.call("media:publish", {"sdp": await camera_offer()}))["error"][
        "code"] == "forbidden"
    await host.call("host:set_role", {"participant_id": observer.participant_id,
                                      "role": "participant"})
    assert (await observer.wait("media:reset"))["can_publish"] is True
    ack = await observer.call("media:publish", {"sdp": await camera_offer()})
    assert ack["sdp"].startswith("v=0")
    # A client that lost its connections starts media over under the same id.
    assert await observer.call("media:restart") == {"ok": True, "can_publish": True}
    bridge_room = room.media.bridge.room(room.consultation_id)
    assert observer.participant_id in bridge_room.participant_ids
    assert [t.publisher_id for t in bridge_room.published_tracks()] == []


async def test_publisher_losing_socket_and_ice_comes_back_under_the_same_id(room: Room) -> None:
    """A doctor's network drops completely (socket and peer connections) and returns within
    the grace period: same participant id and role, new peer connections, media again."""
    host = await room.joined("BM")
    doctor = await room.admitted(host, "NDI")
    pid = doctor.participant_id
    assert pid is not None
    viewer = MediaClient(host)
    first = MediaClient(doctor)
    second: MediaClient | None = None
    try:
        await viewer.subscribe()
        await first.publish()
        await wait_for(lambda: viewer.frames(pid, "video") >= 10, MEDIA_WAIT,
                       "doctor's video decoded at the host")
        offers = viewer.offers
        await first.close()  # the peer connections die with the network...
        await doctor.sio.disconnect()  # ...and so does the socket
        await host.wait("presence:update", lambda d: d["member"]["participant_id"] == pid
                        and d["member"]["status"] == "reconnecting")
        await wait_for(lambda: viewer.offers > offers, MEDIA_WAIT,
                       "host renegotiated without the dead publisher's tracks")
        back = await room.connect("NDI")
        resumed = await back.join()
        assert resumed["resumed"] is True and back.participant_id == pid
        assert await back.call("media:restart") == {"ok": True, "can_publish": True}
        second = MediaClient(back)
        assert "sdp" in await second.publish()
        before = viewer.frames(pid, "video")
        await wait_for(lambda: viewer.frames(pid, "video") >= before + 10, MEDIA_WAIT,
                       "doctor's video decoded again after the return")
        assert not host.seen("presence:leave", lambda d: d["participant_id"] == pid)
        # Joined once, at admission: the return was not a new arrival.
        assert len(host.seen("presence:join",
                             lambda d: d["member"]["participant_id"] == pid)) == 1
    finally:
        for client in (viewer, first, second):
            if client is not None:
                await client.close()


async def test_members_learn_which_videos_the_sfu_sends_them(room: Room) -> None:
    host = await room.joined("BM")
    doctor = await room.admitted(host, "TBI")
    publisher, viewer = MediaClient(host), MediaClient(doctor)
    try:
        await viewer.subscribe()
        await publisher.publish()
        pid = host.participant_id
        decision = await doctor.wait(
            "media:forwarding", lambda d: any(v["publisher_id"] == pid for v in d["videos"]),
            timeout=MEDIA_WAIT)
        assert decision["link_state"] == "full" and decision["paused"] == []
        assert decision["videos"][0]["screen_share"] is False
    finally:
        await publisher.close()
        await viewer.close()
