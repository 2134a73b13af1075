"""Tracks coming and going: screen share, unpublish, publisher leaving, late publisher."""

import asyncio

from media_peers import ClientSubscriber, Harness, bounded

from tests.waiting import wait_for


def _directions(sdp: str) -> list[str]:
    return [
        line[2:]
        for line in sdp.splitlines()
        if line in ("a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv")
    ]


@bounded(60)
async def test_tracks_follow_the_publisher():
    h = Harness()
    viewer = h.subscriber("viewer")
    publisher = await h.publisher("doctor")
    try:
        await asyncio.wait_for(wait_for(lambda: viewer.video_frames() >= 10), 15)
        assert _directions(viewer.offers[-1]) == ["sendonly", "sendonly"]

        # Screen share: a second video track on the same publish connection.
        await publisher.add_screen()
        screen_id = publisher.screen.sender.track.id
        await asyncio.wait_for(
            wait_for(lambda: len(viewer.video_sizes.get(screen_id, [])) >= 10), 15
        )
        assert len(h.room.published_tracks()) == 3
        assert _directions(viewer.offers[-1]) == ["sendonly", "sendonly", "sendonly"]

        # Stopping the screen share unpublishes it and renegotiates the viewer.
        await publisher.stop_screen()
        await asyncio.wait_for(
            wait_for(
                lambda: _directions(viewer.offers[-1]) == ["sendonly", "sendonly", "inactive"]
            ),
            10,
        )
        assert screen_id not in {s.track_id for s in h.room.subscriptions("viewer")}
        assert len(h.room.published_tracks()) == 2
        camera_frames = viewer.video_frames()
        await asyncio.wait_for(wait_for(lambda: viewer.video_frames() >= camera_frames + 10), 10)

        # A second participant who publishes later reaches the first viewer too, and
        # the first publisher (who subscribes as well) gets their tracks.
        publisher_sub = h.clients["doctor"] = ClientSubscriber(h.room, "doctor")
        late = await h.publisher("nurse")
        await asyncio.wait_for(
            wait_for(
                lambda: (
                    len(viewer.video_sizes.get(late.camera.sender.track.id, [])) >= 5
                    and publisher_sub.video_frames() >= 5
                )
            ),
            15,
        )
        assert {s.publisher_id for s in h.room.subscriptions("doctor")} == {"nurse"}

        # The publisher leaves: every subscriber is told to renegotiate and loses the tracks.
        requests = len(h.negotiation_requests)
        offers = len(viewer.offers)
        await h.room.remove_participant("nurse")
        await publisher_sub.close()  # doctor's client keeps publishing
        await asyncio.wait_for(wait_for(lambda: len(viewer.offers) > offers), 10)
        assert "viewer" in h.negotiation_requests[requests:]
        assert _directions(viewer.offers[-1])[-2:] == ["inactive", "inactive"]
        assert {s.publisher_id for s in h.room.subscriptions("viewer")} == {"doctor"}
        assert {t.publisher_id for t in h.room.published_tracks()} == {"doctor"}
        await late.pc.close()

        offers = len(viewer.offers)
        await h.room.remove_participant("doctor")
        await asyncio.wait_for(wait_for(lambda: len(viewer.offers) > offers), 10)
        assert set(_directions(viewer.offers[-1])) == {"inactive"}
        assert h.room.subscriptions("viewer") == []
        assert h.room.published_tracks() == []
        stats = await h.room.stats()
        assert stats["inbound"] == [] and stats["outbound"] == []
    finally:
        await h.close(publisher, viewer)


@bounded(30)
async def test_publisher_connection_closing_unpublishes():
    """A publisher whose connection dies without a leave message is unpublished too."""
    h = Harness()
    viewer = h.subscriber("viewer")
    publisher = await h.publisher("doctor")
    try:
        await asyncio.wait_for(wait_for(lambda: viewer.video_frames() >= 5), 15)
        offers = len(viewer.offers)
        await publisher.pc.close()  # sends RTCP BYE / closes DTLS
        await asyncio.wait_for(wait_for(lambda: len(viewer.offers) > offers), 10)
        assert h.room.published_tracks() == []
        assert set(_directions(viewer.offers[-1])) == {"inactive"}
    finally:
        await h.close(viewer)
