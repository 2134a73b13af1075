"""Real aiortc client peers for the SFU tests (test helpers, not part of media/)."""

import asyncio
import functools
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Optional

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


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


class SyntheticVideo(VideoStreamTrack):
    """30 fps moving bars at 320x240, pre-rendered so the test spends CPU on WebRTC only."""

    def __init__(self) -> None:
        super().__init__()
        self._frames = []
        for i in range(30):
            img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            img[:, (i * 10) % WIDTH : (i * 10) % WIDTH + 40] = (255, 200, 40)
            img[(i * 7) % HEIGHT :, :20] = (20, 90, 250)
            self._frames.append(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p"))
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

    def __init__(self, room: Room, participant_id: str, video_mime: Optional[str] = None) -> None:
        self.room, self.id = room, participant_id
        self.pc = RTCPeerConnection(rtc_configuration(()))
        self.video_mime = video_mime
        self.camera = self._add_video()
        self.mic = self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        self.screen = None
        self.keyframe_requests = 0

    def _add_video(self):
        transceiver = self.pc.addTransceiver(SyntheticVideo(), direction="sendonly")
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
        self.offers: list[str] = []
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if not self.decode:
            receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
            aiortc_hooks.attach_frame_sink(
                receiver,
                lambda codec, data, ts: self.encoded.append((codec.name, data, ts)),
                lambda: None,
            )
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

    def total_audio(self) -> int:
        return sum(self.audio_frames.values())

    async def negotiate(self) -> None:
        async with self._lock:
            offer = await self.room.create_subscribe_offer(self.id)
            self.offers.append(offer)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.room.accept_subscribe_answer(self.id, self.pc.localDescription.sdp)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


class Harness:
    """A room plus a stand-in for signaling that renegotiates subscribers when asked."""

    def __init__(self, config: Optional[SfuConfig] = None) -> None:
        self.clients: dict[str, ClientSubscriber] = {}
        self.negotiation_requests: list[str] = []
        self.room = Room("test-room", config, on_negotiation_needed=self._negotiation_needed)

    def _negotiation_needed(self, participant_id: str):
        self.negotiation_requests.append(participant_id)
        client = self.clients.get(participant_id)
        return client.negotiate() if client is not None else None

    async def publisher(self, participant_id: str, video_mime: Optional[str] = None) -> ClientPublisher:
        self.room.add_publisher(participant_id)
        client = ClientPublisher(self.room, participant_id, video_mime)
        await client.negotiate()
        return client

    def subscriber(self, participant_id: str, decode: bool = True, observer: bool = True) -> ClientSubscriber:
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
    "ClientPublisher",
    "ClientSubscriber",
    "Harness",
    "decode_all",
    "is_keyframe",
    "sfu_peer_connections",
    "wait_for",
]
