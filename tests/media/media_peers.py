"""Real aiortc client peers for the SFU tests (test helpers, not part of media/)."""

import asyncio
import functools
import random
import time
from fractions import Fraction

import av
import numpy as np
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError

from media import Room, SfuConfig, aiortc_hooks
from media.ice import rtc_configuration
from media.keyframes import is_keyframe

WIDTH, HEIGHT = 320, 240


def bounded(seconds: float):
    """Fail an async test that runs longer than ``seconds`` (pytest-timeout is not installed)."""

    def decorate(test):
        @functools.wraps(test)
        async def run(*args, **kwargs):
            await asyncio.wait_for(test(*args, **kwargs), seconds)

        return run

    return decorate


class SyntheticAudio(AudioStreamTrack):
    """aiortc's 8 kHz silence, or a 440 Hz tone at -6 dBov while ``loud``: the
    sender derives the ssrc-audio-level header extension from it."""

    _TONE = (np.sin(2 * np.pi * 440 * np.arange(160) / 8000) * 16000).astype("<i2").tobytes()

    def __init__(self) -> None:
        super().__init__()
        self.loud = False

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        if self.loud:
            frame.planes[0].update(self._TONE)
        return frame


class SyntheticVideo(VideoStreamTrack):
    """30 fps moving bars at 320x240, pre-rendered so the test spends CPU on WebRTC only.

    ``noisy``: random pixels instead, which the encoder cannot squeeze below its
    target bitrate (the bars need ~40 kbps whatever the target).
    """

    def __init__(self, noisy: bool = False) -> None:
        super().__init__()
        self._frames = []
        rng = np.random.default_rng(1)
        for i in range(30):
            img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            img[:, (i * 10) % WIDTH : (i * 10) % WIDTH + 40] = (255, 200, 40)
            img[(i * 7) % HEIGHT :, :20] = (20, 90, 250)
            if noisy:
                img = rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
            self._frames.append(
                av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            )
        self._i = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        src = self._frames[self._i % len(self._frames)]
        self._i += 1
        frame = av.VideoFrame.from_ndarray(src.to_ndarray(), format="yuv420p")
        frame.pts, frame.time_base = pts, time_base
        return frame


def _codec_preferences(kind: str, mime: str) -> list:
    caps = RTCRtpSender.getCapabilities(kind).codecs
    return [c for c in caps if c.mimeType.lower() in (mime.lower(), f"{kind}/rtx")]


class ClientPublisher:
    """Browser stand-in publishing camera + mic (and optionally a screen share)."""

    def __init__(
        self, room: Room, participant_id: str, video_mime: str | None = None, noisy: bool = False
    ) -> None:
        self.room, self.id = room, participant_id
        self.pc = RTCPeerConnection(rtc_configuration(()))
        self.video_mime = video_mime
        self.noisy = noisy
        self.camera = self._add_video()
        self.audio = SyntheticAudio()
        self.mic = self.pc.addTransceiver(self.audio, direction="sendonly")
        self.screen = None
        self.keyframe_requests = 0

    def _add_video(self):
        transceiver = self.pc.addTransceiver(SyntheticVideo(self.noisy), direction="sendonly")
        if self.video_mime:
            transceiver.setCodecPreferences(_codec_preferences("video", self.video_mime))
        return transceiver

    async def negotiate(self) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await self.room.publish(self.id, self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        for transceiver in (self.camera, self.screen):
            if transceiver is not None and not hasattr(transceiver.sender, "_counted"):
                self._count_keyframe_requests(transceiver.sender)

    def _count_keyframe_requests(self, sender: RTCRtpSender) -> None:
        original = sender._send_keyframe

        def counting() -> None:
            self.keyframe_requests += 1
            original()

        sender._send_keyframe = counting
        sender._counted = True

    async def add_screen(self) -> None:
        self.screen = self._add_video()
        await self.negotiate()

    async def stop_screen(self) -> None:
        self.screen.direction = "inactive"
        await self.negotiate()


class ClientSubscriber:
    """Browser stand-in receiving everything. ``decode=False`` keeps encoded frames instead."""

    def __init__(self, room: Room, participant_id: str, decode: bool = True) -> None:
        self.room, self.id, self.decode = room, participant_id, decode
        self.pc = RTCPeerConnection(rtc_configuration(()))
        self.video_sizes: dict[str, list[tuple[int, int]]] = {}
        self.audio_frames: dict[str, int] = {}
        self.encoded: list[tuple[str, bytes, int]] = []
        #: decode=False: per received track id, (arrival time, frame data, RTP timestamp) in order.
        self.arrivals: dict[str, list[tuple[float, bytes, int]]] = {}
        #: Fraction of incoming RTP (not RTCP) this client drops, as a lossy downlink would.
        self.drop_fraction = 0.0
        self._drop_random = random.Random(7)
        self._drop_installed = False
        self.offers: list[str] = []
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if not self.decode:
            receiver = next(
                t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track
            )
            arrivals = self.arrivals.setdefault(track.id, [])

            def on_frame(codec, data: bytes, ts: int) -> None:
                self.encoded.append((codec.name, data, ts))
                arrivals.append((time.monotonic(), data, ts))

            aiortc_hooks.attach_frame_sink(receiver, on_frame, lambda: None)
            return
        self._tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.video_sizes.setdefault(track.id, []).append((frame.width, frame.height))
                else:
                    self.audio_frames[track.id] = self.audio_frames.get(track.id, 0) + 1
        except MediaStreamError:
            pass

    def video_frames(self) -> int:
        return sum(len(v) for v in self.video_sizes.values())

    def rtp_packets(self) -> dict[str, int]:
        """RTP packets received per track id (all SSRCs of its receiver)."""
        return {
            t.receiver.track.id: sum(
                c.packets_received
                for c in aiortc_hooks.receiver_stream_counters(t.receiver).values()
            )
            for t in self.pc.getTransceivers()
            if t.receiver.track is not None
        }

    def total_audio(self) -> int:
        return sum(self.audio_frames.values())

    async def negotiate(self) -> None:
        async with self._lock:
            offer = await self.room.create_subscribe_offer(self.id)
            self.offers.append(offer)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.room.accept_subscribe_answer(self.id, self.pc.localDescription.sdp)
            if not self._drop_installed:
                self._install_drop()

    def _install_drop(self) -> None:
        # Test transport only: the DTLS transport hands every decrypted RTP
        # datagram to _handle_rtp_data; dropping some here is a lossy downlink.
        transport = self.pc.getTransceivers()[0].receiver.transport
        handle = transport._handle_rtp_data

        async def maybe_drop(data: bytes, arrival_time_ms: int) -> None:
            if self.drop_fraction and self._drop_random.random() < self.drop_fraction:
                return
            await handle(data, arrival_time_ms=arrival_time_ms)

        transport._handle_rtp_data = maybe_drop
        self._drop_installed = True

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


class Harness:
    """A room plus a stand-in for signaling that renegotiates subscribers when asked."""

    def __init__(self, config: SfuConfig | None = None) -> None:
        self.clients: dict[str, ClientSubscriber] = {}
        self.negotiation_requests: list[str] = []
        #: (participant id, state) in the order the room reported them.
        self.link_states: list[tuple[str, str]] = []
        self.room = Room(
            "test-room",
            config,
            on_negotiation_needed=self._negotiation_needed,
            on_link_state=lambda pid, state: self.link_states.append((pid, state)),
        )

    def _negotiation_needed(self, participant_id: str):
        self.negotiation_requests.append(participant_id)
        client = self.clients.get(participant_id)
        return client.negotiate() if client is not None else None

    async def publisher(
        self, participant_id: str, video_mime: str | None = None, noisy: bool = False
    ) -> ClientPublisher:
        self.room.add_publisher(participant_id)
        client = ClientPublisher(self.room, participant_id, video_mime, noisy)
        await client.negotiate()
        return client

    def subscriber(
        self, participant_id: str, decode: bool = True, observer: bool = True
    ) -> ClientSubscriber:
        (self.room.add_observer if observer else self.room.add_publisher)(participant_id)
        client = ClientSubscriber(self.room, participant_id, decode)
        self.clients[participant_id] = client
        return client

    async def close(self, *peers) -> None:
        for peer in peers:
            await peer.pc.close() if not isinstance(peer, ClientSubscriber) else await peer.close()
        await self.room.close()


def sfu_peer_connections(room: Room) -> list[RTCPeerConnection]:
    """The SFU side's own connections (test-only peek at private state)."""
    pcs = []
    for pid in room.participant_ids:
        p = room.participant(pid)
        pcs += [pc for pc in (p._sub_pc, getattr(p, "_pub_pc", None)) if pc is not None]
    return pcs


def frames_since(arrivals: list[tuple[float, bytes, int]], count: int) -> list[bytes]:
    """Frames of one track received after its first ``count`` frames, once it was resumed.

    aiortc's video jitter buffer releases a frame only when the next one
    starts, so the last frame sent before a pause is delivered when the video
    resumes. It continues the old RTP timestamps (one frame interval later),
    and is skipped here: what follows is what the SFU sent after resuming.
    """
    new = arrivals[count:]
    if count and new and new[0][2] - arrivals[count - 1][2] <= 3 * 3000:
        new = new[1:]
    return [data for _, data, _ in new]


def decode_all(frames: list[tuple[str, bytes, int]], codec: str = "libvpx") -> int:
    """Decode captured encoded video frames in order; return how many pictures came out."""
    ctx = av.CodecContext.create(codec, "r")
    pictures = 0
    for _, data, ts in frames:
        packet = av.Packet(data)
        packet.pts, packet.time_base = ts, Fraction(1, 90000)
        pictures += len(ctx.decode(packet))
    return pictures


__all__ = [
    "bounded",
    "SyntheticAudio",
    "ClientPublisher",
    "ClientSubscriber",
    "Harness",
    "decode_all",
    "frames_since",
    "is_keyframe",
    "sfu_peer_connections",
]
