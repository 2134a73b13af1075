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
"""

import random
from collections.abc import Callable, Coroutine
from typing import Any, Optional, Protocol

import aioice
import aioice.ice
import aiortc
import av
from aiortc import RTCIceCandidate, RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpSender
from aiortc import sdp as aiortc_sdp
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

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

    def put(self, item: Optional[tuple[RTCRtpCodecParameters, object]]) -> None:
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

    def pack(self, packet: av.Packet) -> tuple[list[bytes], int]:
        data = bytes(packet)
        if self._codec_name == "VP8":
            payloads = Vp8Encoder._packetize(data, self._picture_id)
            self._picture_id = (self._picture_id + 1) % _PICTURE_ID_MODULO
        elif self._codec_name == "H264":
            payloads = H264Encoder._packetize(H264Encoder._split_bitstream(data))
        else:
            payloads = [data]
        # The packet's pts is already in RTP clock units (time_base 1/clockRate).
        return payloads, int(packet.pts)


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


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """Set the MediaStream id announced in ``a=msid`` (applies to the next offer)."""
    sender._stream_id = stream_id


# --------------------------------------------------------------------------
# ICE host addresses.

_stock_get_host_addresses = aioice.ice.get_host_addresses


def set_host_addresses(addresses: Optional[list[str]]) -> None:
    """Make aioice gather host candidates on exactly ``addresses`` (None: its own discovery)."""
    if addresses is None:
        aioice.ice.get_host_addresses = _stock_get_host_addresses
        return
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses
