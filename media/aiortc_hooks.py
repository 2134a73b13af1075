"""Every aiortc / aioice internal the SFU touches, and nothing else.

aiortc has no public API for forwarding encoded media (maintainers' view in
aiortc issues #55, #449, #627), so the SFU reaches into private attributes.
They are all here, each behind a small function with a test in
``tests/media/test_aiortc_hooks.py``, and the versions are checked at import:
an aiortc upgrade must fail loudly here rather than silently decode, re-encode
or drop media somewhere else.

Internals used (aiortc 1.16.0 line numbers):

* ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue`` (rtcrtpreceiver.py 291):
  ``_handle_rtp_packet`` puts ``(codec, JitterFrame)`` on it (567), the
  decoder thread started in ``receive()`` (405-416) reads it, and
  ``__stop_decoder`` puts ``None`` (648).
* ``RTCRtpReceiver._RTCRtpReceiver__decoder_thread`` (292): must still be
  ``None`` when the sink is attached, i.e. ``receive()`` not yet called.
* ``JitterFrame.data`` / ``.timestamp`` (jitterbuffer.py 9-12).
* ``RTCRtpReceiver._send_rtcp_pli(media_ssrc)`` (630).
* ``RTCRtpReceiver._RTCRtpReceiver__remote_streams`` (315): per-SSRC
  ``StreamStatistics`` (``packets_received``, ``packets_lost``, ``jitter``);
  ``getStats()`` cannot be used because it files the RTX SSRC and the media
  SSRC under one stats id, so the last one wins.
* ``RTCRtpSender._RTCRtpSender__encoder`` (104, 308-309, 323): pre-set so that
  ``_next_encoded_frame`` never calls ``get_encoder`` and only ``pack()`` runs.
* ``RTCRtpSender._send_keyframe`` (281, 351): called on PLI/FIR; the stock
  version only sets a flag the pack path never reads.
* ``RTCRtpSender._stream_id`` (102, rtcpeerconnection.py 230, 1211): the
  stream half of ``a=msid``.
* ``Vp8Encoder._packetize`` (codecs/vpx.py 258), ``H264Encoder._split_bitstream``
  and ``H264Encoder._packetize`` (codecs/h264.py 196, 224): RTP payloaders.
* ``aiortc.sdp.SessionDescription.parse`` and ``aiortc.sdp.candidate_from_sdp``
  (not exported by ``aiortc``).
* ``aioice.ice.get_host_addresses`` (aioice 0.13.0 ice.py 91, called at 581).
* ``RTCRtpReceiver._handle_rtp_packet`` (rtcrtpreceiver.py 471), shadowed per
  instance: ``RTCDtlsTransport._handle_rtp_data`` (rtcdtlstransport.py 624)
  looks it up on the receiver, and it is the last place the parsed
  ``packet.extensions.audio_level`` exists (the jitter buffer drops it).
* ``RTCRtpReceiver._send_rtcp`` (rtcrtpreceiver.py 603), shadowed per
  instance, and ``RTCRtpReceiver._RTCRtpReceiver__rtcp_ssrc`` (321): the stock
  remote bitrate estimator sends its REMB through ``_send_rtcp`` (499-507);
  the SFU swallows it and sends its own, capped, REMB with the same SSRC.
* ``RTCRtpSender._handle_rtcp_packet`` (rtcrtpsender.py 232), shadowed per
  instance: the transport routes a subscriber's REMB to every sender its FCI
  lists (rtcdtlstransport.py 299-305); the stock handler only feeds an encoder.
* ``aiortc.rtp.RtcpPsfbPacket``, ``RTCP_PSFB_APP``, ``pack_remb_fci``,
  ``unpack_remb_fci`` (rtp.py 174, 194): REMB packets (not exported by ``aiortc``).
* ``aiortc.clock.current_ntp_time`` and ``current_ms`` (clock.py 11, 15),
  replaced module-wide by equivalents that return the same values without
  building ``datetime`` objects: the sender calls the first twice per RTP
  packet (rtcrtpsender.py 389, 403), the DTLS transport the second once per
  received packet (rtcdtlstransport.py 668).
* ``RTCRtpSender._run_rtp`` (rtcrtpsender.py 357), shadowed per instance by
  :func:`_run_rtp`, which reads and writes the sender's private state the
  stock loop uses: ``__rtp_started``, ``__rtp_exited``, ``__rtp_history``,
  ``__rtp_header_extensions_map``, ``__mid``, ``__track``, ``__encoder``,
  ``__ntp_timestamp``, ``__rtp_timestamp``, ``__octet_count``,
  ``__packet_count`` (104-126), and calls ``_next_encoded_frame`` (294) and
  ``RTCDtlsTransport._send_rtp`` (rtcdtlstransport.py 711).
"""

import asyncio
import logging
import random
import struct
import time
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import aioice
import aioice.ice
import aiortc
import aiortc.clock
import av
from aiortc import RTCIceCandidate, RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpSender
from aiortc import sdp as aiortc_sdp
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    HeaderExtensions,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from aiortc.utils import random32

from .errors import UnsupportedAiortcVersion

AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"


def check_versions(aiortc_version: str, aioice_version: str) -> None:
    """Raise :class:`UnsupportedAiortcVersion` unless both versions are the pinned ones."""
    if aiortc_version != AIORTC_VERSION or aioice_version != AIOICE_VERSION:
        raise UnsupportedAiortcVersion(
            f"media.aiortc_hooks was written against aiortc=={AIORTC_VERSION} and "
            f"aioice=={AIOICE_VERSION} internals, found aiortc=={aiortc_version} "
            f"and aioice=={aioice_version}; re-check every hook in "
            "media/aiortc_hooks.py (and run tests/media) before changing the pins"
        )


check_versions(aiortc.__version__, aioice.__version__)

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------
# Clocks: aiortc reads the wall clock through datetime objects on every packet.

#: Seconds from the NTP epoch (1900) to the Unix epoch (1970).
_NTP_UNIX_OFFSET_S = 2_208_988_800


def ntp_time_from_ns(unix_ns: int) -> int:
    """``aiortc.clock.current_ntp_time()``'s value at ``unix_ns`` (``time.time_ns()``).

    Same arithmetic on the same microseconds (``datetime.now`` truncates to
    them): 32.32 fixed point, fraction floored.
    """
    seconds, micros = divmod(unix_ns // 1000 + _NTP_UNIX_OFFSET_S * 1_000_000, 1_000_000)
    return (seconds << 32) | ((micros << 32) // 1_000_000)


def ntp_ms_from_ns(unix_ns: int) -> int:
    """``aiortc.clock.current_ms()``'s value at ``unix_ns``, float rounding included."""
    return int((unix_ns // 1000 + _NTP_UNIX_OFFSET_S * 1_000_000) / 1_000_000 * 1000)


def _current_ntp_time() -> int:
    return ntp_time_from_ns(time.time_ns())


def _current_ms() -> int:
    return ntp_ms_from_ns(time.time_ns())


# Module-wide: every caller looks these up as ``clock.<name>`` at call time, and the
# values are the stock ones, so the rest of aiortc is unaffected.
aiortc.clock.current_ntp_time = _current_ntp_time
aiortc.clock.current_ms = _current_ms

#: Parsed SDP types, re-exported so the rest of the package never imports aiortc.sdp.
ParsedSdp = aiortc_sdp.SessionDescription
ParsedMedia = aiortc_sdp.MediaDescription


def parse_sdp(text: str) -> ParsedSdp:
    """Parse SDP text with aiortc's own parser (what ``setRemoteDescription`` will use).

    Raises whatever the parser raises (``ValueError``, ``AssertionError``,
    ``KeyError``, ...); callers wrap it.
    """
    return aiortc_sdp.SessionDescription.parse(text)


def parse_candidate(candidate_sdp: str) -> RTCIceCandidate:
    """Parse the ``candidate:...`` attribute value (without ``a=``/``candidate:``)."""
    return aiortc_sdp.candidate_from_sdp(candidate_sdp)


# --------------------------------------------------------------------------
# Receive side: encoded frames instead of decoded ones.

FrameCallback = Callable[[RTCRtpCodecParameters, bytes, int], None]


class _FrameSink:
    """Stands in for the receiver's ``queue.Queue`` between jitter buffer and decoder."""

    def __init__(self, on_frame: FrameCallback, on_end: Callable[[], None]) -> None:
        self._on_frame = on_frame
        self._on_end = on_end
        self._ended = False

    def put(self, item: tuple[RTCRtpCodecParameters, object] | None) -> None:
        # Called on the event loop by _handle_rtp_packet, so frames are forwarded
        # in the same loop iteration that completed them: no thread hop.
        if item is None:
            # __stop_decoder: RTCP BYE, transport closed, or receiver stopped.
            if not self._ended:
                self._ended = True
                self._on_end()
            return
        codec, frame = item
        self._on_frame(codec, frame.data, frame.timestamp)  # type: ignore[attr-defined]

    def get(self) -> None:
        # The stock decoder_worker thread reads this once: None makes it exit
        # before it ever calls get_decoder(), so no decoder and no idle thread.
        return None


def attach_frame_sink(
    receiver: RTCRtpReceiver, on_frame: FrameCallback, on_end: Callable[[], None]
) -> None:
    """Deliver the receiver's depacketized frames to ``on_frame`` instead of a decoder.

    ``on_frame(codec, data, timestamp)``: ``data`` is a whole frame (VP8
    bitstream, H.264 Annex-B, one Opus packet); ``timestamp`` is in the codec's
    clock, starting at 0 for the receiver. ``on_end()`` runs once when the
    receiver stops. Must be called before ``receive()`` starts the receiver,
    i.e. from the peer connection's ``track`` event or earlier.
    """
    if receiver._RTCRtpReceiver__decoder_thread is not None:  # type: ignore[attr-defined]
        raise RuntimeError("receiver already started: attach the frame sink earlier")
    receiver._RTCRtpReceiver__decoder_queue = _FrameSink(on_frame, on_end)  # type: ignore[attr-defined]


def request_keyframe(
    receiver: RTCRtpReceiver, media_ssrc: int
) -> Coroutine[Any, Any, None]:
    """Coroutine sending an RTCP PLI for ``media_ssrc`` to the remote sender."""
    return receiver._send_rtcp_pli(media_ssrc)


class RtpStreamCounters(Protocol):
    packets_received: int
    packets_lost: int
    jitter: int


def receiver_stream_counters(receiver: RTCRtpReceiver) -> dict[int, RtpStreamCounters]:
    """Per-SSRC RTP counters of a receiver (media and RTX SSRCs separately)."""
    return dict(receiver._RTCRtpReceiver__remote_streams)  # type: ignore[attr-defined]


def on_audio_level(receiver: RTCRtpReceiver, callback: Callable[[int], None]) -> None:
    """Call ``callback(level)`` for every RTP packet carrying the audio level extension.

    ``level`` is the RFC 6464 value: 0 is the loudest (0 dBov), 127 silence.
    Only packets whose ``urn:ietf:params:rtp-hdrext:ssrc-audio-level`` was
    negotiated carry one (aiortc offers and answers it for audio).
    """
    handle = receiver._handle_rtp_packet

    async def handle_rtp_packet(packet: Any, arrival_time_ms: int) -> None:
        level = packet.extensions.audio_level  # (voice activity flag, level) or None
        if level is not None:
            callback(level[1])
        await handle(packet, arrival_time_ms=arrival_time_ms)

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]


RembSend = Callable[[int, list[int]], Coroutine[Any, Any, None]]


def take_over_remb(receiver: RTCRtpReceiver, on_estimate: Callable[[int], None]) -> RembSend:
    """Stop the receiver's own REMB; report its estimates; return a REMB sender.

    aiortc's video receiver runs a remote bitrate estimator and sends its
    estimate as REMB every ~500 ms. A publisher obeys the last REMB it got, so
    that stream would overwrite the SFU's caps: it is swallowed here and each
    estimate (bps) goes to ``on_estimate`` instead. The returned coroutine
    function ``send(bitrate, media_ssrcs)`` sends one REMB on the receiver's
    transport (nothing before the receiver has its RTCP SSRC).
    """
    send_rtcp = receiver._send_rtcp

    async def filtered_send_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, _ = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            on_estimate(bitrate)
            return
        await send_rtcp(packet)

    async def send_remb(bitrate: int, media_ssrcs: list[int]) -> None:
        ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
        if ssrc is None:
            return
        await send_rtcp(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, media_ssrcs)
            )
        )

    receiver._send_rtcp = filtered_send_rtcp  # type: ignore[method-assign]
    return send_remb


# --------------------------------------------------------------------------
# Send side: pack pre-encoded frames, catch keyframe requests.

#: The VP8 PictureID in aiortc's payload descriptor is 15 bits wide.
_PICTURE_ID_MODULO = 1 << 15


class _Packer:
    """Replaces the sender's encoder: ``pack()`` is all ``_next_encoded_frame`` calls
    when the track yields ``av.Packet`` objects.

    Built from aiortc's own payloaders rather than ``get_encoder()``, because
    ``OpusEncoder()`` opens a libopus encoder just by being constructed.
    """

    def __init__(self, codec_name: str) -> None:
        self._codec_name = codec_name.upper()
        self._picture_id = random.randrange(_PICTURE_ID_MODULO)

    def pack(self, packet: "av.Packet[Any]") -> tuple[list[bytes], int]:
        data = bytes(packet)
        if self._codec_name == "VP8":
            payloads = Vp8Encoder._packetize(data, self._picture_id)
            self._picture_id = (self._picture_id + 1) % _PICTURE_ID_MODULO
        elif self._codec_name == "H264":
            payloads = H264Encoder._packetize(H264Encoder._split_bitstream(data))
        else:
            payloads = [data]
        # The packet's pts is already in RTP clock units (time_base 1/clockRate); the
        # forwarder sets it on every packet it makes.
        assert packet.pts is not None
        return payloads, packet.pts


def install_packer(sender: RTCRtpSender, codec_name: str) -> None:
    """Make ``sender`` packetize ``av.Packet`` frames of ``codec_name`` with no encoder."""
    sender._RTCRtpSender__encoder = _Packer(codec_name)  # type: ignore[attr-defined]


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback()`` whenever the remote receiver sends a PLI or FIR for ``sender``."""
    # Instance attribute: shadows the method for this sender only.
    sender._send_keyframe = callback  # type: ignore[method-assign]


def on_remb(sender: RTCRtpSender, callback: Callable[[int, list[int]], None]) -> None:
    """Call ``callback(bitrate, ssrcs)`` for every REMB the remote receiver sends ``sender``.

    A REMB's bitrate is the receiver's estimate for all the SSRCs it lists
    together (a browser lists every stream it receives, aiortc one per
    receiver). The stock handler would only hand it to an encoder, and the
    SFU's senders have none.
    """
    handle = sender._handle_rtcp_packet

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            callback(bitrate, ssrcs)
            return
        await handle(packet)

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]


_RTP_HEADER = struct.Struct("!BBHLL")
_RTP_VERSION_BITS = 0x80
_RTP_EXTENSION_BIT = 0x10
_ABS_SEND_TIME_MAX = 0xFFFFFF


class RtpWriter:
    """Serializes one sender's RTP packets as ``RtpPacket.serialize`` would.

    The sender's packets differ only in marker, sequence number, timestamp,
    abs-send-time and payload, so the header extension block (mid, ids,
    padding) is packed once by aiortc's own ``HeaderExtensionsMap.set`` and
    only the 3 abs-send-time bytes are spliced in per packet. Build a new
    writer whenever the map's configuration or the mid changes (the sender
    configures both once, in ``send()``, before its RTP loop starts).
    """

    def __init__(self, extensions_map: HeaderExtensionsMap, mid: str | None, ssrc: int) -> None:
        self._ssrc = ssrc
        low = self._block(extensions_map, mid, 0)
        high = self._block(extensions_map, mid, _ABS_SEND_TIME_MAX)
        if low == high:  # abs-send-time not negotiated
            self._prefix, self._suffix, self._abs_send_time = low, b"", False
        else:
            at = next(i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b)
            if low[at:at + 3] != b"\0\0\0" or low[at + 3:] != high[at + 3:]:
                raise RuntimeError("unexpected abs-send-time layout in aiortc's extension block")
            self._prefix, self._suffix, self._abs_send_time = low[:at], low[at + 3:], True
        self._first_byte = _RTP_VERSION_BITS | (_RTP_EXTENSION_BIT if low else 0)

    @staticmethod
    def _block(
        extensions_map: HeaderExtensionsMap, mid: str | None, abs_send_time: int
    ) -> bytes:
        profile, value = extensions_map.set(HeaderExtensions(mid=mid, abs_send_time=abs_send_time))
        if not value:
            return b""
        return struct.pack("!HH", profile, len(value) >> 2) + value

    def serialize(
        self, payload_type: int, marker: int, sequence_number: int, timestamp: int,
        abs_send_time: int, payload: bytes,
    ) -> bytes:
        header = _RTP_HEADER.pack(
            self._first_byte, (marker << 7) | payload_type, sequence_number, timestamp, self._ssrc
        )
        if self._abs_send_time:
            return b"".join(
                (header, self._prefix, abs_send_time.to_bytes(3, "big"), self._suffix, payload)
            )
        return b"".join((header, self._prefix, payload))


# The sender's private attributes the RTP loop reads and writes (name-mangled).
_STARTED = "_RTCRtpSender__rtp_started"
_EXITED = "_RTCRtpSender__rtp_exited"
_HISTORY = "_RTCRtpSender__rtp_history"
_EXTENSIONS_MAP = "_RTCRtpSender__rtp_header_extensions_map"
_MID = "_RTCRtpSender__mid"
_TRACK = "_RTCRtpSender__track"
_ENCODER = "_RTCRtpSender__encoder"
_NTP_TIMESTAMP = "_RTCRtpSender__ntp_timestamp"
_RTP_TIMESTAMP = "_RTCRtpSender__rtp_timestamp"
_OCTETS = "_RTCRtpSender__octet_count"
_PACKETS = "_RTCRtpSender__packet_count"


async def _run_rtp(sender: RTCRtpSender, codec: RTCRtpCodecParameters) -> None:
    """``RTCRtpSender._run_rtp`` for pre-encoded frames, with the per-packet work cut.

    Same packets and the same sender state as the stock loop, except that the
    header extensions are packed once (:class:`RtpWriter`), the clock is read
    once per frame (a frame's packets leave in one go: nothing in
    ``_send_rtp`` suspends), and there is no per-packet debug logging.
    Retransmissions still go through the stock ``_retransmit``, which
    serializes the history's ``RtpPacket`` with the stock map.
    """
    state = sender.__dict__
    state[_STARTED].set()
    history: dict[int, RtpPacket] = state[_HISTORY]
    mid: str | None = state[_MID]
    ssrc = sender._ssrc
    writer = RtpWriter(state[_EXTENSIONS_MAP], mid, ssrc)
    payload_type = codec.payloadType
    assert payload_type is not None  # a negotiated codec always has one
    sequence_number = random_sequence_number()
    timestamp_origin = random32()
    try:
        while True:
            if not state[_TRACK]:
                await asyncio.sleep(0.02)
                continue
            frame = await sender._next_encoded_frame(codec)
            if frame is None:
                continue
            # No audio level: frames here are av.Packet, which the stock loop gives none.
            timestamp = (timestamp_origin + frame.timestamp) & 0xFFFFFFFF
            ntp_time = aiortc.clock.current_ntp_time()
            abs_send_time = (ntp_time >> 14) & _ABS_SEND_TIME_MAX
            send_rtp = sender.transport._send_rtp
            last = len(frame.payloads) - 1
            for i, payload in enumerate(frame.payloads):
                marker = 1 if i == last else 0
                packet = RtpPacket(payload_type, marker, sequence_number, timestamp, ssrc, payload)
                packet.extensions.abs_send_time = abs_send_time
                packet.extensions.mid = mid
                history[sequence_number % RTP_HISTORY_SIZE] = packet
                await send_rtp(
                    writer.serialize(
                        payload_type, marker, sequence_number, timestamp, abs_send_time, payload
                    )
                )
                state[_NTP_TIMESTAMP] = ntp_time
                state[_RTP_TIMESTAMP] = timestamp
                state[_OCTETS] += len(payload)
                state[_PACKETS] += 1
                sequence_number = (sequence_number + 1) & 0xFFFF
    except (asyncio.CancelledError, ConnectionError, MediaStreamError):
        pass
    except Exception:
        # RTCRtpSender.stop() waits for __rtp_exited, so never leave without setting it.
        logger.warning("RTP sender loop failed: %s", traceback.format_exc())
    track = state[_TRACK]
    if track:
        track.stop()
        state[_TRACK] = None
    state[_ENCODER] = None
    state[_EXITED].set()


def install_rtp_loop(sender: RTCRtpSender) -> None:
    """Make ``sender`` send with :func:`_run_rtp`; call before the sender starts.

    Only for senders whose track yields ``av.Packet`` (see :func:`install_packer`).
    """

    async def run_rtp(codec: RTCRtpCodecParameters) -> None:
        await _run_rtp(sender, codec)

    sender._run_rtp = run_rtp  # type: ignore[method-assign]


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """Set the MediaStream id announced in ``a=msid`` (applies to the next offer)."""
    sender._stream_id = stream_id


# --------------------------------------------------------------------------
# ICE host addresses.

_stock_get_host_addresses = aioice.ice.get_host_addresses


def set_host_addresses(addresses: list[str] | None) -> None:
    """Make aioice gather host candidates on exactly ``addresses`` (None: its own discovery)."""
    if addresses is None:
        aioice.ice.get_host_addresses = _stock_get_host_addresses
        return
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses
