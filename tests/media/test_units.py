"""Keyframe detection, keyframe request rate limiting, fan-out queues, SDP checks."""

import asyncio
import fractions
import itertools

import pytest
from aiortc import RTCRtpCodecParameters

from media import SdpError, SfuConfig
from media.forwarder import OutboundTrack, Source
from media.keyframes import KeyframeRequester, is_keyframe
from media.sdp import codec_matches, send_preferences, validate_publish_offer
from media.stats import RateMeter
from tests.clock import ManualClock
from tests.waiting import wait_for


def test_keyframe_detection():
    assert is_keyframe("VP8", b"\x10\x02\x00\x9d\x01\x2a")  # bit 0 clear: key frame
    assert not is_keyframe("VP8", b"\x31\x02\x00")
    assert not is_keyframe("VP8", b"")
    assert is_keyframe(
        "H264", b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce\x00\x00\x01\x65\x88"
    )
    assert is_keyframe("H264", b"\x00\x00\x00\x01\x65\x88")
    assert not is_keyframe("H264", b"\x00\x00\x00\x01\x41\x9a")
    assert is_keyframe("opus", b"\xfc")


async def test_keyframe_requests_are_rate_limited_and_merged():
    clock = ManualClock()
    sent = []

    async def nothing():
        pass

    def send():
        sent.append(round(clock.now, 6))
        return nothing()

    requester = KeyframeRequester(send, min_interval=0.2, call_later=clock.call_later)
    for _ in range(5):
        requester.request()
    clock.advance(0.05)
    assert sent == [0.0]

    # Still unanswered after the interval: one trailing request.
    clock.advance(0.2)
    assert sent == [0.0, 0.2]
    requester.keyframe_received()
    clock.advance(0.3)
    assert sent == [0.0, 0.2] and requester.idle  # answered: no more

    # A request after the window, then a keyframe: sent at once, nothing trails it.
    requester.request()
    requester.keyframe_received()
    assert not requester.idle
    clock.advance(0.3)
    assert sent == [0.0, 0.2, 0.55] and requester.idle
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(sent))
    assert requester.requests_received == 6 and requester.requests_sent == 3

    # Requests inside the window wait for it and go out as one.
    requester.request()
    clock.advance(0.1)
    requester.request()
    requester.request()
    assert sent[-1] == 0.85
    clock.advance(0.15)
    assert sent[3:] == [0.85, 1.05]
    requester.close()


def _source(kind="video"):
    async def send():
        pass

    codec = (
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
        if kind == "video"
        else RTCRtpCodecParameters(
            mimeType="audio/opus", clockRate=48000, channels=2, payloadType=96
        )
    )
    source = Source(
        publisher_id="p",
        track_id="t",
        kind=kind,
        mid="0",
        codec=codec,
        keyframes=KeyframeRequester(send, 10.0),
        rate_window=2,
    )
    return source, codec


KEY, DELTA = b"\x10key", b"\x11delta"


async def test_slow_subscriber_is_flushed_to_the_next_keyframe_without_blocking_others():
    source, codec = _source()
    fast = OutboundTrack(source, "fast", queue_frames=4, rate_window=2)
    slow = OutboundTrack(source, "slow", queue_frames=4, rate_window=2)
    first = asyncio.ensure_future(fast.recv())
    second = asyncio.ensure_future(slow.recv())  # both senders started: both wait for a keyframe
    await wait_for(lambda: source.keyframes.requests_received == 2, what="both ask")
    assert fast.waiting_for_keyframe and source.keyframes.requests_sent == 1  # one PLI for both

    source.on_frame(codec, DELTA, 0)  # held back
    source.on_frame(codec, KEY, 3000)
    assert bytes(await first) == KEY and bytes(await second) == KEY
    assert (await first).time_base == fractions.Fraction(1, 90000)

    received = []
    for i in range(10):  # the fast reader keeps up, the slow one never reads
        source.on_frame(codec, DELTA, 6000 + i * 3000)
        received.append(bytes(await fast.recv()))
    assert len(received) == 10
    assert slow.counters.queue_overflows >= 1 and slow.waiting_for_keyframe
    held = slow.counters.frames_held
    source.on_frame(codec, DELTA, 99000)
    assert slow.counters.frames_held == held + 1
    source.on_frame(codec, KEY, 102000)
    assert not slow.waiting_for_keyframe
    assert bytes(await slow.recv()) == KEY
    assert source.counters.keyframes == 2 and fast.counters.first_frame_keyframe

    source.end()
    assert source.outbounds == ()


async def test_audio_overflow_drops_the_oldest_frame():
    source, codec = _source("audio")
    out = OutboundTrack(source, "s", queue_frames=3, rate_window=2)
    first = asyncio.ensure_future(out.recv())
    await asyncio.sleep(0)  # one loop turn: the sender starts reading (no frames before)
    for i in range(5):
        source.on_frame(codec, bytes([i]), i * 960)
    # The reader had no turn in between: the two oldest frames were dropped.
    assert [bytes(await first)] + [bytes(await out.recv()) for _ in range(2)] == [
        b"\x02",
        b"\x03",
        b"\x04",
    ]
    assert out.counters.frames_dropped == 2


def test_frames_in_another_codec_are_not_forwarded():
    source, codec = _source()
    other = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=99)
    source.on_frame(other, KEY, 0)
    assert source.counters.frames_wrong_codec == 1 and source.counters.frames == 0


def test_subscriber_codec_preferences_pin_the_publisher_codec():
    h264 = RTCRtpCodecParameters(
        mimeType="video/H264",
        clockRate=90000,
        payloadType=102,
        parameters={
            "packetization-mode": "1",
            "profile-level-id": "42e01f",
            "level-asymmetry-allowed": "1",
        },
    )
    prefs = send_preferences(h264, "video")
    assert [c.mimeType for c in prefs] == ["video/H264", "video/rtx"]
    assert codec_matches(h264, prefs[0]) and prefs[0].parameters["profile-level-id"] == "42e01f"


def test_publish_offer_without_ssrcs_for_two_videos_is_refused():
    section = (
        "m=video 9 UDP/TLS/RTP/SAVPF 97\r\na=mid:{mid}\r\na=sendonly\r\na=rtcp-mux\r\n"
        "a=rtpmap:97 VP8/90000\r\n"
    )
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n"
        "a=fingerprint:sha-256 AA\r\na=setup:actpass\r\n"
        + section.format(mid=0)
        + section.format(mid=1)
    )
    with pytest.raises(SdpError, match="a=ssrc"):
        validate_publish_offer(sdp, SfuConfig())
    assert validate_publish_offer(
        sdp.split("m=video")[0] + "m=video" + sdp.split("m=video")[1], SfuConfig()
    )


def test_rate_meter_counts_whole_seconds_of_its_window():
    now = [100.0]
    meter = RateMeter(2, clock=lambda: now[0])
    for second in (100, 101, 102):
        for i in range(30 if second != 101 else 20):
            now[0] = second + i / 40
            meter.add(1000)
    now[0] = 102.9
    # Seconds 100 and 101 are complete: 30 + 20 frames; the running second 102 is not read.
    assert meter.rates() == (25.0, 50 * 1000 * 8 / 2)
    now[0] = 104.5  # nothing since 102: one complete second with 30 frames left in the window
    assert meter.rates() == (15.0, 30 * 1000 * 8 / 2)
    now[0] = 110.0
    assert meter.rates() == (0.0, 0.0)
