"""Forwarding policy with real aiortc peers on 127.0.0.1: REMB caps, last-N, downlink states."""

import asyncio
import itertools
import time

from media_peers import Harness, bounded, decode_all, frames_since, is_keyframe

from media import SfuConfig
from tests.waiting import wait_for


def _encoder_target(publisher) -> int | None:
    """The aiortc publisher's VP8 encoder target bitrate (client-side peek)."""
    encoder = publisher.camera.sender._RTCRtpSender__encoder
    return None if encoder is None else encoder.target_bitrate


def _forwarded(room, subscriber_id: str) -> list[str]:
    return [v.publisher_id for v in room.forwarding(subscriber_id).videos]


@bounded(40)
async def test_remb_cap_reaches_the_publisher_encoder():
    config = SfuConfig(tile_bitrate_bps=300_000, presenter_bitrate_bps=1_200_000)
    h = Harness(config)
    viewer = h.subscriber("viewer", decode=False)
    # Noise: the encoder sends what its target allows, so the SFU's own uplink
    # estimate stays above the caps and the caps are what the publisher obeys.
    publisher = await h.publisher("doctor", noisy=True)
    try:
        # aiortc starts VP8 at 500 kbps; a grid tile is told 300 kbps.
        await asyncio.wait_for(
            wait_for(lambda: _encoder_target(publisher) == 300_000, what="tile cap"), 10
        )
        inbound = next(s for s in (await h.room.stats())["inbound"] if s["kind"] == "video")
        assert inbound["remb_bps"] == 300_000 and inbound["screen_share"] is False

        # It keeps its cap although aiortc's receiver-side estimator, whose own
        # REMB would overwrite it every 500 ms, estimates far more.
        await asyncio.sleep(2.5)  # a window of five of those REMBs: the cap must hold
        assert _encoder_target(publisher) == 300_000
        assert h.room.participant("doctor").bitrate.rembs_sent >= 3  # repeated

        h.room.set_presenter("doctor")
        await asyncio.wait_for(
            wait_for(lambda: _encoder_target(publisher) == 1_200_000, what="presenter cap"), 5
        )
        h.room.set_presenter(None)
        await asyncio.wait_for(
            wait_for(lambda: _encoder_target(publisher) == 300_000, what="tile again"), 5
        )
        assert viewer.arrivals  # media flowed all along
    finally:
        await h.close(publisher, viewer)


def _frames_after(arrivals: list[tuple[float, bytes, int]], t: float) -> list[bytes]:
    return [data for at, data, _ in arrivals if at > t]


@bounded(60)
async def test_last_n_follows_the_speaker_and_resumes_on_a_keyframe():
    h = Harness(SfuConfig(last_n=1))
    viewer = h.subscriber("viewer", decode=False)
    a = await h.publisher("a")
    b = await h.publisher("b")
    cam_a, cam_b = a.camera.sender.track.id, b.camera.sender.track.id
    try:
        # Nobody has spoken: publish order decides, so "a" is the one video.
        await asyncio.wait_for(wait_for(lambda: len(viewer.arrivals.get(cam_a, [])) >= 20), 15)
        assert _forwarded(h.room, "viewer") == ["a"]
        assert [v.publisher_id for v in h.room.forwarding("viewer").paused] == ["b"]
        assert viewer.arrivals[cam_b] == []  # not one frame sent
        # Audio always flows, from both.
        await asyncio.wait_for(
            wait_for(lambda: sum(1 for f in viewer.encoded if f[0] == "opus") >= 50), 5
        )

        # "b" speaks: its video starts on a keyframe, "a"'s stops.
        b.audio.loud = True
        await asyncio.wait_for(
            wait_for(lambda: h.room.active_speakers()[0] == "b", what="b speaking"), 5
        )
        switched = time.monotonic()
        assert _forwarded(h.room, "viewer") == ["b"]
        await asyncio.wait_for(wait_for(lambda: len(viewer.arrivals.get(cam_b, [])) >= 20), 10)
        assert is_keyframe("VP8", viewer.arrivals[cam_b][0][1])
        await asyncio.sleep(0.5)  # a window in which frames of "a" would still arrive
        # Anything of "a" after the switch was already in flight (queue + jitter buffer).
        assert len(_frames_after(viewer.arrivals[cam_a], switched + 0.3)) == 0
        b.audio.loud = False

        # "a" speaks again: back to "a", again starting on a keyframe.
        before = len(viewer.arrivals[cam_a])
        a.audio.loud = True
        await asyncio.wait_for(
            wait_for(lambda: h.room.active_speakers()[0] == "a", what="a speaking"), 5
        )
        await asyncio.wait_for(
            wait_for(lambda: len(frames_since(viewer.arrivals[cam_a], before)) >= 20), 10
        )
        assert is_keyframe("VP8", frames_since(viewer.arrivals[cam_a], before)[0])

        # Both videos decode without errors across the pauses.
        for cam in (cam_a, cam_b):
            frames = [("VP8", data, 0) for _, data, _ in viewer.arrivals[cam]]
            assert decode_all(frames) == len(frames)
        stats = await h.room.stats()
        video_out = {
            o["publisher_id"]: o
            for o in stats["outbound"]
            if o["kind"] == "video" and o["subscriber_id"] == "viewer"
        }
        assert video_out["a"]["pauses"] == 1 and video_out["a"]["forwarding"] is True
        assert video_out["b"]["forwarding"] is False
    finally:
        await h.close(a, b, viewer)


@bounded(60)
async def test_lossy_subscriber_steps_down_to_audio_only_and_back():
    config = SfuConfig(link_check_interval=0.5, degrade_after_s=1.0, recover_after_s=1.5)
    h = Harness(config)
    lossy = h.subscriber("lossy", decode=False)
    healthy = h.subscriber("healthy", decode=False)
    a = await h.publisher("a")
    b = await h.publisher("b")
    try:
        await asyncio.wait_for(
            wait_for(
                lambda: all(
                    len(c.arrivals) == 4 and all(c.arrivals.values()) for c in (lossy, healthy)
                ),
                what="all tracks",
            ),
            15,
        )
        assert len(h.room.forwarding("lossy").videos) == 2

        lossy.drop_fraction = 0.3
        await asyncio.wait_for(
            wait_for(
                lambda: h.room.forwarding("lossy").link_state == "audio-only", what="audio-only"
            ),
            15,
        )
        assert [s for p, s in h.link_states if p == "lossy"] == ["reduced", "audio-only"]
        assert h.room.forwarding("lossy").videos == ()
        video_tracks = {a.camera.sender.track.id, b.camera.sender.track.id}
        await asyncio.sleep(0.5)  # time for the packets in flight to land before counting
        before = lossy.rtp_packets()
        await asyncio.sleep(1.0)  # the window counted: no video in it, audio all along
        after = lossy.rtp_packets()
        # Subscriber side: no video RTP at all, audio keeps coming.
        assert all(after[t] == before[t] for t in video_tracks)
        assert all(after[t] > before[t] + 20 for t in set(after) - video_tracks)

        lossy.drop_fraction = 0.0
        await asyncio.wait_for(
            wait_for(lambda: h.room.forwarding("lossy").link_state == "full", what="full again"), 15
        )
        states = [s for p, s in h.link_states if p == "lossy"]
        # Down and back up one step at a time. Receiver reports of the loss before the link
        # cleared may still arrive after the first step up, so the way back may bounce
        # between audio-only and reduced before it settles; it never jumps a step.
        assert states[:3] == ["reduced", "audio-only", "reduced"] and states[-2:] == [
            "reduced", "full"], states
        steps = {"audio-only": 0, "reduced": 1, "full": 2}
        assert all(abs(steps[a] - steps[b]) == 1
                   for a, b in itertools.pairwise(states)), states
        back = lossy.rtp_packets()
        await asyncio.wait_for(
            wait_for(
                lambda: all(lossy.rtp_packets()[t] >= back[t] + 20 for t in video_tracks),
                what="video back",
            ),
            10,
        )
        # Resumed at a keyframe (SFU side: the client's aiortc jitter buffer may
        # still wait for a packet lost during the lossy phase, see docs/media.md). The
        # video kept in "reduced" pauses once per audio-only spell, the other once in all.
        stats = await h.room.stats()
        spells = states.count("audio-only")
        for out in stats["outbound"]:
            if out["subscriber_id"] == "lossy" and out["kind"] == "video":
                assert out["forwarding"] and not out["waiting_for_keyframe"]
                assert 1 <= out["pauses"] <= spells, (out["pauses"], states)
        # The other subscriber never noticed.
        assert not [s for p, s in h.link_states if p == "healthy"]
        assert len(h.room.forwarding("healthy").videos) == 2
    finally:
        await h.close(a, b, lossy, healthy)
