"""One test per aiortc/aioice internal used by media.aiortc_hooks.

These run without a network: they drive the real aiortc objects through a fake
DTLS transport, so an aiortc upgrade that renames or reshapes an internal fails
here with a pointed message.
"""

import asyncio
import datetime
import fractions

import aioice.ice
import aiortc
import aiortc.rtcrtpsender
import av
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.codecs import h264_depayload, vp8_depayload
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    HeaderExtensionsMap,
    RtcpPacket,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from hypothesis import given
from hypothesis import strategies as st

from media import aiortc_hooks
from media.errors import UnsupportedAiortcVersion

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)


class FakeTransport:
    """Just enough of RTCDtlsTransport for a sender/receiver to run."""

    state = "connected"
    _stats_id = "transport"

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.registered = False

    def _register_rtp_receiver(self, receiver, parameters) -> None:
        self.registered = True

    def _unregister_rtp_receiver(self, receiver) -> None:
        self.registered = False

    def _register_rtp_sender(self, sender, parameters) -> None:
        self.registered = True

    def _unregister_rtp_sender(self, sender) -> None:
        self.registered = False

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)

    def _get_stats(self):
        return {}


def test_version_is_pinned():
    aiortc_hooks.check_versions(aiortc.__version__, aioice.__version__)
    assert aiortc.__version__ == aiortc_hooks.AIORTC_VERSION
    with pytest.raises(UnsupportedAiortcVersion, match="aiortc==1.17.0"):
        aiortc_hooks.check_versions("1.17.0", aioice.__version__)
    with pytest.raises(UnsupportedAiortcVersion):
        aiortc_hooks.check_versions(aiortc.__version__, "0.14.0")


async def test_frame_sink_replaces_the_decoder_and_sees_the_end():
    transport = FakeTransport()
    receiver = RTCRtpReceiver("video", transport)
    receiver._track = aiortc.rtcrtpreceiver.RemoteStreamTrack(kind="video")
    frames, ended = [], []
    aiortc_hooks.attach_frame_sink(
        receiver, lambda c, d, t: frames.append((c.name, d, t)), lambda: ended.append(1)
    )
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
    assert transport.registered

    # Two VP8 frames: the jitter buffer releases the first when the second starts.
    for seq, (ts, payload) in enumerate([(1000, b"\x10\x00key"), (4000, b"\x10\x01delta")]):
        packet = RtpPacket(payload_type=97, sequence_number=seq, timestamp=ts, ssrc=1234)
        packet.marker = 1
        packet.payload = payload
        await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
    assert frames == [("VP8", b"\x00key", 0)]  # descriptor stripped, timestamp rebased

    counters = aiortc_hooks.receiver_stream_counters(receiver)
    assert counters[1234].packets_received == 2 and counters[1234].packets_lost == 0
    assert isinstance(counters[1234].jitter, int)

    # The stock decoder thread exited without ever creating a decoder.
    thread = receiver._RTCRtpReceiver__decoder_thread
    thread.join(timeout=5)
    assert not thread.is_alive()

    with pytest.raises(RuntimeError, match="already started"):
        aiortc_hooks.attach_frame_sink(receiver, lambda *a: None, lambda: None)

    await receiver.stop()
    assert ended == [1]


async def test_pli_goes_out_for_the_media_ssrc():
    transport = FakeTransport()
    receiver = RTCRtpReceiver("video", transport)
    receiver._set_rtcp_ssrc(42)
    await aiortc_hooks.request_keyframe(receiver, 1234)
    (packet,) = RtcpPacket.parse(transport.sent[-1])
    assert isinstance(packet, RtcpPsfbPacket)
    assert (packet.fmt, packet.ssrc, packet.media_ssrc) == (RTCP_PSFB_PLI, 42, 1234)


class PacketTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, packet: av.Packet) -> None:
        super().__init__()
        self.packet = packet

    async def recv(self) -> av.Packet:
        return self.packet


@pytest.mark.parametrize(
    "mime,clock,data,depayload",
    [
        ("video/VP8", 90000, b"\x00" + bytes(3000), vp8_depayload),
        (
            "video/H264",
            90000,
            b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x00\x01\x65" + bytes(2500),
            h264_depayload,
        ),
        ("audio/opus", 48000, b"\xfc\x01\x02", lambda p: p),
    ],
)
async def test_packer_sends_av_packets_without_an_encoder(
    monkeypatch, mime, clock, data, depayload
):
    def no_encoder(codec):
        raise AssertionError("get_encoder called")

    monkeypatch.setattr(aiortc.rtcrtpsender, "get_encoder", no_encoder)
    packet = av.Packet(data)
    packet.pts, packet.time_base = 3000, fractions.Fraction(1, clock)
    sender = RTCRtpSender(PacketTrack(packet), FakeTransport())
    aiortc_hooks.install_packer(sender, mime.split("/")[1])
    codec = RTCRtpCodecParameters(mimeType=mime, clockRate=clock, payloadType=97)
    encoded = await sender._next_encoded_frame(codec)
    assert encoded.timestamp == 3000
    assert b"".join(depayload(p) for p in encoded.payloads) == data


async def test_keyframe_request_hook_catches_pli_and_fir():
    sender = RTCRtpSender("video", FakeTransport())
    calls = []
    aiortc_hooks.on_keyframe_request(sender, lambda: calls.append(1))
    for fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
        await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc))
    assert calls == [1, 1]


async def test_stream_id_is_used_in_msid():
    pc = aiortc.RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="sendonly")
    aiortc_hooks.set_stream_id(transceiver.sender, "doctor-1")
    await pc.setLocalDescription(await pc.createOffer())
    assert "a=msid:doctor-1 " in pc.localDescription.sdp
    await pc.close()


def test_host_addresses_replace_aioice_discovery():
    aiortc_hooks.set_host_addresses(["127.0.0.1", "::1"])
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1"]
    aiortc_hooks.set_host_addresses(None)
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


def test_sdp_and_candidate_parsers():
    parsed = aiortc_hooks.parse_sdp(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "a=ice-ufrag:u\r\na=ice-pwd:p\r\na=fingerprint:sha-256 AA\r\na=setup:actpass\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 97 98\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\n"
        "a=rtpmap:97 VP8/90000\r\na=rtpmap:98 rtx/90000\r\na=fmtp:98 apt=97\r\n"
        "a=ssrc-group:FID 11 22\r\na=ssrc:11 cname:x\r\na=ssrc:22 cname:x\r\n"
    )
    (media,) = parsed.media
    assert (media.kind, media.rtp.muxId, media.direction, media.rtcp_mux) == (
        "video",
        "0",
        "sendonly",
        True,
    )
    assert [c.name for c in media.rtp.codecs] == ["VP8", "rtx"]
    assert (media.ice.usernameFragment, media.ice.password) == ("u", "p")
    assert media.dtls.fingerprints and media.dtls.role == "auto"
    assert media.ssrc_group[0].semantic == "FID" and media.ssrc_group[0].items == [11, 22]
    assert [s.ssrc for s in media.ssrc] == [11, 22]

    candidate = aiortc_hooks.parse_candidate("1 1 udp 2130706431 127.0.0.1 5000 typ host")
    assert (candidate.ip, candidate.port, candidate.type) == ("127.0.0.1", 5000, "host")


async def test_audio_level_is_read_before_the_jitter_buffer_drops_it():
    transport = FakeTransport()
    receiver = RTCRtpReceiver("audio", transport)
    levels = []
    aiortc_hooks.on_audio_level(receiver, levels.append)
    for seq, level in enumerate([(False, 30), None]):
        packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 960, ssrc=5)
        packet.extensions.audio_level = level
        await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
    assert levels == [30]


async def test_remb_take_over_swallows_the_estimate_and_sends_the_cap():
    transport = FakeTransport()
    receiver = RTCRtpReceiver("video", transport)
    receiver._set_rtcp_ssrc(42)
    estimates = []
    send = aiortc_hooks.take_over_remb(receiver, estimates.append)
    # What the stock estimator does in _handle_rtp_packet (rtcrtpreceiver.py 499-507).
    await receiver._send_rtcp(
        RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=42, media_ssrc=0, fci=pack_remb_fci(900_000, [1234]))
    )
    assert estimates == [900_000] and transport.sent == []
    await receiver._send_rtcp_pli(1234)  # other RTCP still goes out
    await send(300_000, [1234])
    pli, remb = (RtcpPacket.parse(data)[0] for data in transport.sent)
    assert pli.fmt == RTCP_PSFB_PLI
    assert (remb.fmt, remb.ssrc) == (RTCP_PSFB_APP, 42)
    assert unpack_remb_fci(remb.fci) == (300_000, [1234])


async def test_remb_from_a_subscriber_reaches_the_callback_and_other_rtcp_the_sender():
    sender = RTCRtpSender("video", FakeTransport())
    rembs, keyframes = [], []
    aiortc_hooks.on_keyframe_request(sender, lambda: keyframes.append(1))
    aiortc_hooks.on_remb(sender, lambda bitrate, ssrcs: rembs.append((bitrate, ssrcs)))
    fci = pack_remb_fci(700_000, [sender._ssrc, 99])
    await sender._handle_rtcp_packet(
        RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=fci)
    )
    await sender._handle_rtcp_packet(
        RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc)
    )
    assert rembs == [(700_000, [sender._ssrc, 99])] and keyframes == [1]


UNIX_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@given(st.integers(min_value=0, max_value=4_000_000_000 * 10**9))
def test_fast_clock_gives_the_stock_values(unix_ns):
    # datetime.now() truncates to microseconds; the stock functions then use datetime arithmetic.
    now = UNIX_EPOCH + datetime.timedelta(microseconds=unix_ns // 1000)
    assert aiortc_hooks.ntp_time_from_ns(unix_ns) == aiortc.clock.datetime_to_ntp(now)
    stock_ms = int((now - aiortc.clock.NTP_EPOCH).total_seconds() * 1000)
    assert aiortc_hooks.ntp_ms_from_ns(unix_ns) == stock_ms


def test_fast_clock_is_what_aiortc_calls():
    stock = aiortc.clock.datetime_to_ntp(aiortc.clock.current_datetime())
    assert abs(aiortc.clock.current_ntp_time() - stock) < (1 << 32) // 10  # 100 ms
    assert aiortc.clock.current_ntp_time.__module__ == "media.aiortc_hooks"
    assert aiortc.clock.current_ms.__module__ == "media.aiortc_hooks"


MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


def extensions_map(mid_id, abs_id):
    extensions = []
    if mid_id:
        extensions.append(RTCRtpHeaderExtensionParameters(id=mid_id, uri=MID_URI))
    if abs_id:
        extensions.append(RTCRtpHeaderExtensionParameters(id=abs_id, uri=ABS_SEND_TIME_URI))
    result = HeaderExtensionsMap()
    result.configure(RTCRtpSendParameters(headerExtensions=extensions))
    return result


def stock_bytes(map_, mid, pt, marker, seq, ts, ssrc, abs_send_time, payload):
    packet = RtpPacket(pt, marker, seq, ts, ssrc, payload)
    packet.extensions.mid = mid
    packet.extensions.abs_send_time = abs_send_time
    return packet.serialize(map_)


# Ids above 14 force RFC 5285's two-byte header; None means not negotiated.
extension_ids = st.one_of(st.none(), st.integers(1, 14), st.integers(15, 255))


@given(
    mid_id=extension_ids,
    abs_id=extension_ids,
    mid=st.one_of(st.none(), st.text("0123456789abc", max_size=20)),
    pt=st.integers(0, 127),
    marker=st.integers(0, 1),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    abs_send_time=st.integers(0, 0xFFFFFF),
    payload=st.binary(max_size=40),
)
def test_rtp_writer_matches_stock_serialize(
    mid_id, abs_id, mid, pt, marker, seq, ts, ssrc, abs_send_time, payload
):
    if mid_id is not None and mid_id == abs_id:
        return
    map_ = extensions_map(mid_id, abs_id)
    writer = aiortc_hooks.RtpWriter(map_, mid, ssrc)
    assert writer.serialize(pt, marker, seq, ts, abs_send_time, payload) == stock_bytes(
        map_, mid, pt, marker, seq, ts, ssrc, abs_send_time, payload
    )


def test_rtp_writer_packs_what_it_was_built_for():
    """The extension block is packed once: a writer is only right for its own mid and ids."""
    args = (96, 1, 7, 9000, 0x123456, b"payload")
    cases = [("0", extensions_map(1, 2)), ("1", extensions_map(1, 2)), ("0", extensions_map(3, 4))]
    for mid, map_ in cases:
        expected = stock_bytes(map_, mid, 96, 1, 7, 9000, 5, 0x123456, b"payload")
        assert aiortc_hooks.RtpWriter(map_, mid, 5).serialize(*args) == expected
    first = aiortc_hooks.RtpWriter(extensions_map(1, 2), "0", 5).serialize(*args)
    assert aiortc_hooks.RtpWriter(extensions_map(1, 2), "1", 5).serialize(*args) != first
    assert aiortc_hooks.RtpWriter(extensions_map(3, 4), "0", 5).serialize(*args) != first


class ListTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, frames: list[bytes]) -> None:
        super().__init__()
        self.frames = list(frames)
        self.pts = 0

    async def recv(self) -> av.Packet:
        if not self.frames:
            raise MediaStreamError
        packet = av.Packet(self.frames.pop(0))
        packet.pts, packet.time_base = self.pts, fractions.Fraction(1, 90000)
        self.pts += 3000
        return packet


async def run_sender(fast: bool, frames: list[bytes]):
    transport = FakeTransport()
    sender = RTCRtpSender(ListTrack(frames), transport)
    aiortc_hooks.install_packer(sender, "VP8")
    if fast:
        aiortc_hooks.install_rtp_loop(sender)
    map_ = extensions_map(1, 2)
    parameters = RTCRtpSendParameters(
        codecs=[VP8],
        muxId="3",
        rtcp=RTCRtcpParameters(cname="c", ssrc=sender._ssrc),
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
            RTCRtpHeaderExtensionParameters(id=2, uri=ABS_SEND_TIME_URI),
        ],
    )
    await sender.send(parameters)
    await asyncio.wait_for(sender._RTCRtpSender__rtp_exited.wait(), 5)
    stats = next(s for s in (await sender.getStats()).values() if s.type == "outbound-rtp")
    sent = [d for d in transport.sent if not (192 <= d[1] <= 223)]  # RTP only, no SR
    packets = [RtpPacket.parse(d, map_) for d in sent]
    first = packets[0].sequence_number
    await sender._retransmit((first + 2) & 0xFFFF)
    retransmitted = transport.sent[-1]
    await sender.stop()
    return packets, sent, (stats.packetsSent, stats.bytesSent), retransmitted


async def test_rtp_loop_sends_what_the_stock_loop_sends():
    frames = [b"\x10" + bytes(2500), b"\x11" + bytes(30), b"\x11" + bytes(1500)]
    stock, _, stock_stats, _ = await run_sender(False, frames)
    fast, fast_bytes, fast_stats, retransmitted = await run_sender(True, frames)

    def shape(packets):
        seq0, ts0 = packets[0].sequence_number, packets[0].timestamp
        return [
            (
                (p.sequence_number - seq0) & 0xFFFF,
                (p.timestamp - ts0) & 0xFFFFFFFF,
                p.marker,
                p.payload_type,
                p.payload[:2] + p.payload[4:],
                p.extensions.mid,
                p.extensions.abs_send_time is not None,
            )
            for p in packets
        ]

    # Payload descriptors differ only in their random 15-bit PictureID (bytes 2-3).
    assert shape(fast) == shape(stock)
    assert [p.extensions.mid for p in fast] == ["3"] * len(fast)
    assert fast_stats == stock_stats
    # A NACKed packet is resent byte for byte (no RTX negotiated here).
    assert retransmitted == fast_bytes[2]
