"""Which publisher a track is, always (issue 16.6): while publishers join, leave, come back
and rebuild their media, every video frame a subscriber decodes arrives on a mid its
applied mapping names for the publisher who sent it."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.waiting import wait_for

from .conftest import Peer, Room
from .origin_clients import PALETTE, OriginClient

MEDIA_WAIT = 30.0
#: Frames each publisher must show each checking client after each change.
FRAMES = 8


@pytest.mark.room_settings(reconnect_grace_seconds=30)
async def test_every_frame_arrives_under_its_publishers_mid(room: Room) -> None:
    started = time.monotonic()
    host = await room.joined("BM")
    await host.call("lobby:auto_admit", {"on": True})
    keys = ("BM", "NDI", "TBI", "HNA")
    peers: dict[str, Peer] = {"BM": host}
    observer = await room.joined("GTI", role="observer")
    for key in keys[1:]:
        peers[key] = await room.joined(key)
    pids = {key: str(peer.participant_id) for key, peer in peers.items()}
    colours = {pids[key]: PALETTE[i] for i, key in enumerate(keys)}
    clients = {key: OriginClient(peers[key], colours, colours[pids[key]]) for key in keys}
    watcher = OriginClient(observer, colours)
    # Every client ever made: those that left were checked until they left.
    checkers = [watcher, *clients.values()]
    try:
        async def sees(publishers: list[str], viewers: list[OriginClient], what: str) -> None:
            before = {(id(v), p): v.frames(pids[p]) for v in viewers for p in publishers}
            await wait_for(lambda: all(
                v.frames(pids[p]) >= before[(id(v), p)] + FRAMES
                for v in viewers for p in publishers if v is not clients.get(p)),
                MEDIA_WAIT, what)

        # The observer subscribes to an empty room; the host publishes first.
        await watcher.subscribe()
        await clients["BM"].subscribe()
        await clients["BM"].publish()
        await sees(["BM"], [watcher], "the host's video at the observer")

        # Late joiners one after another, then a leave and a join at once.
        for key in ("NDI", "TBI"):
            await clients[key].subscribe()
            await clients[key].publish()
        await sees(["BM", "NDI", "TBI"], checkers[:4], "three publishers everywhere")

        async def leave(key: str) -> None:
            await peers[key].call("room:leave")
            await clients[key].close()

        async def arrive(key: str) -> None:
            await clients[key].subscribe()
            await clients[key].publish()

        await asyncio.gather(leave("NDI"), arrive("HNA"))
        await sees(["BM", "TBI", "HNA"], [watcher, clients["BM"], clients["TBI"],
                                          clients["HNA"]], "after NDI left and HNA came")

        # TBI's socket drops; meanwhile NDI comes back and publishes (TBI's offer falls
        # due while it is away), and TBI resumes on a new socket.
        await peers["TBI"].sio.disconnect()
        peers["NDI"] = await room.joined("NDI")
        pids_before = dict(pids)
        assert peers["NDI"].participant_id is not None
        pids["NDI"] = peers["NDI"].participant_id
        colours[pids["NDI"]] = PALETTE[1]
        clients["NDI"] = OriginClient(peers["NDI"], colours, PALETTE[1])
        checkers.append(clients["NDI"])
        await arrive("NDI")
        peers["TBI"] = await room.connect("TBI")
        # Before the join: an offer that fell due while away comes with the resume.
        clients["TBI"].attach(peers["TBI"])
        assert (await peers["TBI"].join())["resumed"] is True
        assert pids["TBI"] == pids_before["TBI"]
        await sees(["BM", "NDI", "TBI", "HNA"], [watcher, clients["TBI"], clients["BM"]],
                   "NDI back, seen by the resumed TBI")

        # Rebuilt media under the same ids: HNA and the observer start over (new
        # connections, mids counted from 0 again) while the host renegotiates its publish.
        await asyncio.gather(clients["HNA"].restart(), watcher.restart())
        await sees(["BM", "NDI", "TBI", "HNA"], [watcher, clients["HNA"], clients["NDI"]],
                   "everyone again after the restarts")

        # All at once: TBI leaves, NDI rebuilds its media, the observer's socket drops
        # and comes back, and TBI returns as a new participant.
        async def drop_and_resume(key: str, client: OriginClient) -> None:
            await client.peer.sio.disconnect()
            peer = await room.connect(key, "observer")
            client.attach(peer)
            assert (await peer.join())["resumed"] is True

        await asyncio.gather(leave("TBI"), clients["NDI"].restart(),
                             drop_and_resume("GTI", watcher))
        peers["TBI"] = await room.joined("TBI")
        assert peers["TBI"].participant_id is not None
        pids["TBI"] = peers["TBI"].participant_id
        colours[pids["TBI"]] = PALETTE[2]
        clients["TBI"] = OriginClient(peers["TBI"], colours, PALETTE[2])
        checkers.append(clients["TBI"])
        await arrive("TBI")
        await sees(["BM", "NDI", "TBI", "HNA"], [watcher, *clients.values()],
                   "everyone sees everyone again")

        # The host republishes (same id, new tracks) while HNA leaves and comes back at once.
        await asyncio.gather(clients["BM"].restart(), leave("HNA"))
        peers["HNA"] = await room.joined("HNA")
        assert peers["HNA"].participant_id is not None
        pids["HNA"] = peers["HNA"].participant_id
        colours[pids["HNA"]] = PALETTE[3]
        clients["HNA"] = OriginClient(peers["HNA"], colours, PALETTE[3])
        checkers.append(clients["HNA"])
        await arrive("HNA")
        await sees(["BM", "NDI", "TBI", "HNA"], [watcher, *clients.values()],
                   "everyone sees everyone at the end")
    finally:
        for client in checkers:
            await client.close()
    elapsed = time.monotonic() - started
    for client in checkers:
        tally = client.tally
        assert tally.wrong == [], (client.peer.label, tally.wrong[:10], len(tally.wrong))
        assert tally.unannounced == 0, (client.peer.label, tally.unannounced)
        assert tally.reassigned == [], (client.peer.label, tally.reassigned)
        assert tally.out_of_order == [], (client.peer.label, tally.out_of_order)
        assert tally.inconsistent == [], (client.peer.label, tally.inconsistent)
    total = sum(sum(c.tally.right.values()) for c in checkers)
    print(f"{total} video frames checked in {elapsed:.1f}s over "
          f"{sum(c.offers for c in checkers)} subscribe offers, unclear "
          f"{sum(c.tally.unclear for c in checkers)}")
    assert total > 200


@pytest.mark.room_settings(reconnect_grace_seconds=30)
async def test_an_offer_lost_with_the_socket_is_sent_again_on_resume(room: Room) -> None:
    """The doctor's socket drops right after an offer was sent to it, unanswered: on resume
    the same offer (same version, same mapping) comes again, and media flows."""
    host = await room.joined("BM")
    doctor = await room.admitted(host, "TBI")
    colours = {str(host.participant_id): PALETTE[0]}
    publisher = OriginClient(host, colours, PALETTE[0])
    viewer: OriginClient | None = None
    try:
        assert (await doctor.call("media:subscribe"))["sdp"] is None
        await publisher.publish()
        lost = await doctor.wait("media:subscribe_offer", timeout=MEDIA_WAIT)
        assert lost["version"] == 1
        assert [t["publisher_id"] for t in lost["tracks"]] == [host.participant_id]
        await doctor.sio.disconnect()
        back = await room.connect("TBI")
        viewer = OriginClient(back, colours)
        assert (await back.join())["resumed"] is True
        await wait_for(lambda: viewer is not None and viewer.frames(str(host.participant_id))
                       >= FRAMES, MEDIA_WAIT, "the host's video after the resume")
        assert viewer.pushed == [lost]
        assert viewer.tally.wrong == [] and viewer.tally.unannounced == 0
    finally:
        await publisher.close()
        if viewer is not None:
            await viewer.close()


async def test_sdp_is_the_sdp_text_not_a_session_description(room: Room) -> None:
    host = await room.joined("BM")
    for event in ("media:publish", "media:subscribe_answer"):
        ack = await host.call(event, {"sdp": {"type": "offer", "sdp": "v=0\r\n"}})
        assert ack["error"]["code"] == "invalid_payload", ack
        assert ack["error"]["message"] == ("sdp: must be the SDP text as a string "
                                           "(RTCSessionDescription.sdp), not a {type, sdp} "
                                           "object")
