"""aiortc peers that talk to the SFU only through the room's Socket.IO events, as a
browser would: publish offer → answer, server-pushed subscribe offers, trickled ICE."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import av
import numpy as np
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError

from .conftest import NS, Peer

WIDTH, HEIGHT = 160, 120
CANDIDATE_LINE = re.compile(r"^a=(candidate:[^\r\n]*)\r?\n|^a=end-of-candidates\r?\n", re.M)

# The SFU answers after gathering its candidates: seconds when the machine is loaded.
NEGOTIATION_S = 20.0


def _configuration() -> RTCConfiguration:
    # MAX_BUNDLE as browsers do with the SFU (aiortc's BALANCED loses a second video).
    return RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE, iceServers=[])


class SmallVideo(VideoStreamTrack):
    """Small moving frames: cheap to encode so several publishers fit on 2 cores."""

    def __init__(self) -> None:
        super().__init__()
        self._n = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        x = (self._n * 4) % WIDTH
        img[:, x:x + 20] = (240, 200, 30)
        self._n += 1
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


def strip_candidates(sdp: str) -> tuple[str, list[str]]:
    """The SDP without its candidates, and the candidates, to trickle them instead."""
    candidates = [m.group(1) for m in CANDIDATE_LINE.finditer(sdp) if m.group(1)]
    return CANDIDATE_LINE.sub("", sdp), candidates


async def camera_offer() -> str:
    """A genuine camera + mic offer SDP from a throwaway peer connection."""
    pc = RTCPeerConnection(_configuration())
    try:
        pc.addTransceiver(SmallVideo(), direction="sendonly")
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


class MediaConnections:
    """What each test client of the media protocol sets up: an optional publish connection,
    a subscribe connection whose offers are answered one at a time (``_answer``), and the
    tasks reading its tracks."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.offers = 0
        self.pub: RTCPeerConnection | None = None
        self.sub = RTCPeerConnection(_configuration())
        self._lock = asyncio.Lock()
        self._readers: list[asyncio.Task[None]] = []

    async def subscribe(self) -> None:
        async with self._lock:
            ack = await self.peer.call("media:subscribe", timeout=NEGOTIATION_S)
            assert "error" not in ack, ack
            if ack["sdp"] is not None:
                await self._answer(ack)

    async def _answer(self, offer: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _publish_offer(self, *tracks: MediaStreamTrack) -> str:
        """A new publish connection sending ``tracks``: its offer's SDP."""
        self.pub = RTCPeerConnection(_configuration())
        for track in tracks:
            self.pub.addTransceiver(track, direction="sendonly")
        await self.pub.setLocalDescription(await self.pub.createOffer())
        return str(self.pub.localDescription.sdp)

    async def _close_connections(self) -> None:
        for pc in (self.pub, self.sub):
            if pc is not None:
                await pc.close()
        self.pub = None

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await self._close_connections()


class MediaClient(MediaConnections):
    """A member's media: optional publish PC (camera + mic), and a subscribe PC that
    answers every offer the server pushes and decodes what arrives."""

    def __init__(self, peer: Peer, trickle: bool = False) -> None:
        super().__init__(peer)
        self.trickle = trickle
        self.mid_owner: dict[str, str] = {}
        #: publisher participant id → kind → frames decoded
        self.decoded: dict[str, dict[str, int]] = {}
        self.sub.on("track", self._on_track)
        peer.sio.on("media:subscribe_offer", self._on_offer, namespace=NS)

    async def publish(self) -> dict[str, Any]:
        sdp = await self._publish_offer(SmallVideo(), AudioStreamTrack())
        assert self.pub is not None
        candidates: list[str] = []
        if self.trickle:
            sdp, candidates = strip_candidates(sdp)
            assert candidates, "aiortc gathered no candidate"
        ack = await self.peer.call("media:publish", {"sdp": sdp}, timeout=NEGOTIATION_S)
        if "error" in ack:
            return ack
        for candidate in candidates:
            ice = await self.peer.call("media:ice", {"pc": "publish", "candidate": {
                "candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}})
            assert ice == {"ok": True}, ice
        if self.trickle:
            assert await self.peer.call("media:ice", {"pc": "publish", "candidate": None}) \
                == {"ok": True}
        await self.pub.setRemoteDescription(RTCSessionDescription(ack["sdp"], "answer"))
        return ack

    async def _on_offer(self, data: dict[str, Any]) -> None:
        async with self._lock:
            await self._answer(data)

    async def _answer(self, offer: dict[str, Any]) -> None:
        self.offers += 1
        for t in offer["tracks"]:
            self.mid_owner[t["mid"]] = t["publisher_id"]
        await self.sub.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await self.sub.setLocalDescription(await self.sub.createAnswer())
        sdp, candidates = self.sub.localDescription.sdp, []
        if self.trickle:
            sdp, candidates = strip_candidates(sdp)
        ack = await self.peer.call("media:subscribe_answer", {"sdp": sdp},
                                   timeout=NEGOTIATION_S)
        assert ack == {"ok": True}, ack
        for candidate in candidates:
            ice = await self.peer.call("media:ice", {"pc": "subscribe", "candidate": {
                "candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}})
            assert ice == {"ok": True}, ice

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.sub.getTransceivers() if t.receiver.track is track)
        owner = self.mid_owner.get(transceiver.mid or "", "?")
        self._readers.append(asyncio.ensure_future(self._read(owner, track)))

    async def _read(self, owner: str, track: MediaStreamTrack) -> None:
        counts = self.decoded.setdefault(owner, {})
        try:
            while True:
                await track.recv()
                counts[track.kind] = counts.get(track.kind, 0) + 1
        except MediaStreamError:
            pass

    def frames(self, publisher_id: str, kind: str) -> int:
        return self.decoded.get(publisher_id, {}).get(kind, 0)


__all__ = ["MediaClient", "MediaConnections", "camera_offer", "strip_candidates"]
