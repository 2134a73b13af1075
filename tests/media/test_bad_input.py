"""Bad input gets a clear error type and leaves the room as it was."""

import asyncio

import pytest
from aiortc import RTCSessionDescription
from media_peers import ClientPublisher, Harness, bounded

from media import (
    IceCandidate,
    IceCandidateError,
    NegotiationStateError,
    PublishNotAllowed,
    SdpError,
    UnknownParticipant,
    UnknownPeerConnection,
)
from media.participant import Publisher
from tests.waiting import wait_for

GARBAGE = [
    "",
    "hello",
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",  # no media
    "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 300\r\n",  # payload type out of range
    "v=0\r\nm=video nine RTP\r\n",
]


async def _real_offer() -> str:
    """A valid publish offer from a throwaway client peer."""
    h = Harness()
    client = ClientPublisher(h.room, "x")
    await client.pc.setLocalDescription(await client.pc.createOffer())
    sdp = client.pc.localDescription.sdp
    await client.pc.close()
    return sdp


def _state(room):
    return (
        room.participant_ids,
        room.published_tracks(),
        [room.subscriptions(p) for p in room.participant_ids],
    )


@bounded(30)
async def test_malformed_publish_offer_raises_sdp_error_and_changes_nothing():
    h = Harness()
    publisher = h.room.add_publisher("doctor")
    before = _state(h.room)
    offer = await _real_offer()
    variants = GARBAGE + [
        offer.replace("a=rtcp-mux\r\n", ""),  # aiortc needs rtcp-mux
        offer.replace("a=ice-pwd:", "a=x-ice-pwd:"),  # no ICE password
        offer.replace("VP8/90000", "AV1/90000").replace("opus/48000/2", "ISAC/16000"),
        offer + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:9\r\n",
        offer.replace("a=sendonly", "a=recvonly"),  # sends nothing
    ]
    for bad in variants:
        with pytest.raises(SdpError):
            await h.room.publish("doctor", bad)
        assert _state(h.room) == before
        assert isinstance(publisher, Publisher) and publisher._pub_pc is None
    await h.room.close()


@bounded(30)
async def test_too_many_published_tracks_are_refused():
    h = Harness()
    h.room.add_publisher("doctor")
    client = ClientPublisher(h.room, "doctor")
    client._add_video()
    client._add_video()  # camera + 2 more: over the limit of 2 video tracks
    await client.pc.setLocalDescription(await client.pc.createOffer())
    with pytest.raises(SdpError, match="at most 2 video"):
        await h.room.publish("doctor", client.pc.localDescription.sdp)
    assert h.room.published_tracks() == []
    await client.pc.close()
    await h.room.close()


@bounded(40)
async def test_bad_subscribe_answer_keeps_the_offer_open():
    h = Harness()
    viewer = h.subscriber("viewer")
    h.clients.pop("viewer")  # negotiate by hand below
    publisher = await h.publisher("doctor")
    try:
        offer = await h.room.create_subscribe_offer("viewer")
        with pytest.raises(NegotiationStateError):
            await h.room.create_subscribe_offer("viewer")
        await viewer.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await viewer.pc.setLocalDescription(await viewer.pc.createAnswer())
        answer = viewer.pc.localDescription.sdp
        for bad in GARBAGE + [
            answer.replace("a=recvonly", "a=sendrecv"),  # would let an observer publish
            answer.replace("a=mid:0", "a=mid:7"),
            answer.replace("VP8/90000", "H264/90000"),
        ]:
            with pytest.raises(SdpError):
                await h.room.accept_subscribe_answer("viewer", bad)
        await h.room.accept_subscribe_answer("viewer", answer)
        await asyncio.wait_for(wait_for(lambda: viewer.video_frames() >= 5), 15)
        with pytest.raises(NegotiationStateError):
            await h.room.accept_subscribe_answer("viewer", answer)
    finally:
        await h.close(publisher, viewer)


@bounded(30)
async def test_wrong_participant_or_connection_is_refused():
    h = Harness()
    observer = h.room.add_observer("observer")
    h.room.add_publisher("doctor")
    offer = await _real_offer()
    assert not hasattr(observer, "publish")
    with pytest.raises(PublishNotAllowed):
        await h.room.publish("observer", offer)
    with pytest.raises(UnknownParticipant):
        await h.room.publish("nobody", offer)
    with pytest.raises(UnknownParticipant):
        await h.room.create_subscribe_offer("nobody")
    candidate = IceCandidate("candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", "0", 0)
    with pytest.raises(UnknownPeerConnection):
        await h.room.add_ice_candidate("observer", "publish", candidate)
    with pytest.raises(UnknownPeerConnection):
        await h.room.add_ice_candidate("observer", "subscribe", candidate)  # no offer yet
    with pytest.raises(UnknownPeerConnection):
        await h.room.add_ice_candidate("doctor", "publish", candidate)  # has not offered
    with pytest.raises(UnknownPeerConnection):
        await h.room.accept_subscribe_answer("observer", offer)
    await h.room.close()


@bounded(30)
async def test_trickled_candidates_are_parsed_and_applied():
    """A browser-like publisher: offer without candidates, then trickle them."""
    h = Harness()
    viewer = h.subscriber("viewer")
    h.room.add_publisher("doctor")
    client = ClientPublisher(h.room, "doctor")
    try:
        await client.pc.setLocalDescription(await client.pc.createOffer())
        lines = client.pc.localDescription.sdp.splitlines()
        candidates = sorted({line[2:] for line in lines if line.startswith("a=candidate:")})
        offer = "\r\n".join(
            line for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates"))
        ) + "\r\n"
        answer = await h.room.publish("doctor", offer)
        await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

        for bad in ("candidate:garbage", "candidate:1 1 udp x 127.0.0.1 1 typ host"):
            with pytest.raises(IceCandidateError):
                await h.room.add_ice_candidate("doctor", "publish", IceCandidate(bad, "0", 0))
        assert candidates
        for candidate in candidates:
            await h.room.add_ice_candidate("doctor", "publish", IceCandidate(candidate, "0", 0))
        await h.room.add_ice_candidate("doctor", "publish", IceCandidate("", "0", 0))  # end
        await asyncio.wait_for(wait_for(lambda: viewer.video_frames() >= 5), 15)
    finally:
        await h.close(client, viewer)
