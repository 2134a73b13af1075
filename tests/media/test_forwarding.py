"""One publisher -> SFU -> several subscribers, with real aiortc peers on 127.0.0.1."""

import asyncio
import sys

import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import pytest
from media_peers import Harness, bounded, decode_all, is_keyframe, sfu_peer_connections

from media import SfuConfig
from tests.waiting import wait_for


@pytest.fixture
def codec_factories(monkeypatch):
    """Record who asks aiortc for an encoder or a decoder."""
    calls = {"encoder": [], "decoder": []}
    real_encoder = aiortc.rtcrtpsender.get_encoder
    real_decoder = aiortc.rtcrtpreceiver.get_decoder

    def get_encoder(codec):
        calls["encoder"].append(sys._getframe(1).f_locals.get("self"))
        return real_encoder(codec)

    def get_decoder(codec):
        calls["decoder"].append(sys._getframe(1).f_locals.get("input_q"))
        return real_decoder(codec)

    monkeypatch.setattr(aiortc.rtcrtpsender, "get_encoder", get_encoder)
    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", get_decoder)
    return calls


@bounded(45)
async def test_vp8_and_opus_reach_every_subscriber_without_codecs_in_the_sfu(codec_factories):
    h = Harness()
    subs = [h.subscriber(f"viewer-{i}") for i in range(3)]
    publisher = await h.publisher("doctor")
    try:
        await asyncio.wait_for(
            wait_for(lambda: all(s.video_frames() >= 30 and s.total_audio() >= 25 for s in subs)),
            20,
        )
        for s in subs:
            sizes = {size for v in s.video_sizes.values() for size in v}
            assert sizes == {(320, 240)}
        track_ids = {t.track_id for t in h.room.published_tracks()}
        assert track_ids == {publisher.camera.sender.track.id, publisher.mic.sender.track.id}
        assert {t.codec for t in h.room.published_tracks()} == {"video/VP8", "audio/opus"}
        for s in subs:
            assert {sub.track_id for sub in h.room.subscriptions(s.id)} == track_ids

        # The clients did encode and decode, the SFU did neither.
        sfu_senders = {snd for pc in sfu_peer_connections(h.room) for snd in pc.getSenders()}
        sfu_queues = {
            r._RTCRtpReceiver__decoder_queue
            for pc in sfu_peer_connections(h.room)
            for r in pc.getReceivers()
        }
        assert codec_factories["encoder"] and codec_factories["decoder"]
        assert not sfu_senders.intersection(codec_factories["encoder"])
        assert not sfu_queues.intersection(q for q in codec_factories["decoder"] if q is not None)
        assert len(codec_factories["decoder"]) == 2 * len(subs)  # one per client receiver

        # Stats: inbound and outbound, as plain dicts.
        async def rtt_known():
            stats = await h.room.stats()
            return all(o["rtt_s"] is not None for o in stats["outbound"])

        await wait_for(rtt_known, 6, "RTT from receiver reports", interval=0.2)
        stats = await h.room.stats()
        assert len(stats["inbound"]) == 2 and len(stats["outbound"]) == 6
        video_in = next(s for s in stats["inbound"] if s["kind"] == "video")
        assert video_in["packets"] > 0 and video_in["bytes"] > 0 and video_in["frames"] > 30
        # The meter's arithmetic is unit-tested; here it is fed. (The test publisher encodes
        # in this process and may fall well under 30 fps on a loaded machine.)
        assert video_in["fps"] > 0 and video_in["bitrate_bps"] > 0
        assert video_in["keyframes"] >= 1 and video_in["subscribers"] == 3
        assert video_in["packets_lost"] == 0
        for out in stats["outbound"]:
            assert out["packets"] > 0 and out["frames"] > 0 and out["fps"] > 0
            assert 0 <= out["rtt_s"] < 1 and out["packets_lost"] == 0
            if out["kind"] == "video":
                assert out["first_frame_keyframe"] is True
    finally:
        await h.close(publisher, *subs)


def _keyframes_idle(h: Harness) -> bool:
    """No published video had a keyframe request within its interval: the next goes at once."""
    return all(s.keyframes.idle for s in h.room.policy_sources() if s.kind == "video")


@bounded(45)
async def test_late_subscribers_start_at_a_keyframe_and_share_one_pli():
    h = Harness(SfuConfig(keyframe_request_interval=1.0))
    early = h.subscriber("early")
    publisher = await h.publisher("doctor")
    try:
        await asyncio.wait_for(wait_for(lambda: early.video_frames() >= 20), 15)
        # Past the rate-limit window of the early subscriber's PLI.
        await wait_for(lambda: _keyframes_idle(h), 5, "the keyframe request window passes")
        before = publisher.keyframe_requests

        late = [h.subscriber(f"late-{i}", decode=False) for i in range(2)]
        await asyncio.wait_for(
            wait_for(lambda: all(sum(1 for f in s.encoded if f[0] == "VP8") >= 30 for s in late)),
            15,
        )
        assert publisher.keyframe_requests - before == 1
        for s in late:
            video = [f for f in s.encoded if f[0] == "VP8"]
            assert is_keyframe("VP8", video[0][1]), "first forwarded frame is not a keyframe"
            assert decode_all(video) == len(video)
            assert any(f[0] == "opus" for f in s.encoded)

        # A subscriber's PLI travels up to the publisher (after the rate-limit window).
        await wait_for(lambda: _keyframes_idle(h), 5, "the keyframe request window passes")
        before = publisher.keyframe_requests
        video_receiver = next(
            t.receiver for t in early.pc.getTransceivers() if t.kind == "video"
        )
        media_ssrc = video_receiver.getSynchronizationSources()[0].source
        await video_receiver._send_rtcp_pli(media_ssrc)
        await asyncio.wait_for(wait_for(lambda: publisher.keyframe_requests > before), 5)
        stats = await h.room.stats()
        early_video = next(
            o for o in stats["outbound"] if o["subscriber_id"] == "early" and o["kind"] == "video"
        )
        assert early_video["keyframe_requests_received"] >= 1
        await h.close(*late)
    finally:
        await h.close(publisher, early)


@bounded(45)
async def test_h264_is_forwarded_when_negotiated(codec_factories):
    h = Harness()
    sub = h.subscriber("viewer")
    publisher = await h.publisher("doctor", video_mime="video/H264")
    try:
        await asyncio.wait_for(wait_for(lambda: sub.video_frames() >= 20), 20)
        assert {t.codec for t in h.room.published_tracks()} == {"video/H264", "audio/opus"}
        assert "H264" in sub.offers[-1]
        sizes = {size for v in sub.video_sizes.values() for size in v}
        assert sizes == {(320, 240)}
        sfu_senders = {snd for pc in sfu_peer_connections(h.room) for snd in pc.getSenders()}
        assert not sfu_senders.intersection(codec_factories["encoder"])
    finally:
        await h.close(publisher, sub)
