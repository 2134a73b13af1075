"""A subscriber written from docs/signaling.md alone, checking the origin of every video frame.

Each publisher's camera paints one solid colour (its participant's), which survives VP8
at any bitrate, so every decoded frame says who sent it. The client keeps the mid → track
mapping of its subscribe connection exactly as the protocol states it: the ``tracks`` of
an offer are applied together with that offer's SDP, and a mid means one publisher for the
connection's life. Every decoded frame is then checked against the mapping in force: a frame
on a mid announced for another publisher, or on a mid not announced yet, is counted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from .conftest import NS, Peer
from .media_clients import HEIGHT, NEGOTIATION_S, WIDTH, MediaConnections, _configuration

#: Far apart in RGB and still after YUV 4:2:0 and VP8; one per publisher.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (220, 40, 40), (40, 200, 40), (40, 40, 220), (220, 220, 40), (220, 40, 220),
)
#: A decoded frame's centre within this RGB distance of a colour is that colour.
MATCH_DISTANCE = 60.0


class ColourVideo(VideoStreamTrack):
    """A camera showing one solid colour: its publisher's identity, in every frame."""

    def __init__(self, colour: tuple[int, int, int]) -> None:
        super().__init__()
        self._image = np.full((HEIGHT, WIDTH, 3), colour, np.uint8)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


def colour_of(frame: av.VideoFrame) -> tuple[int, int, int] | None:
    """The palette colour a decoded frame shows, or None if it shows none clearly."""
    centre = frame.to_ndarray(format="rgb24")[HEIGHT // 3:2 * HEIGHT // 3,
                                               WIDTH // 3:2 * WIDTH // 3]
    mean = centre.reshape(-1, 3).mean(axis=0)
    best = min(PALETTE, key=lambda c: float(np.linalg.norm(mean - np.array(c))))
    return best if float(np.linalg.norm(mean - np.array(best))) <= MATCH_DISTANCE else None


def sending_streams(sdp: str) -> dict[str, str]:
    """mid → ``a=msid`` stream id of each sending m-section of an SFU offer."""
    streams: dict[str, str] = {}
    for section in sdp.split("\r\nm=")[1:]:
        lines = section.split("\r\n")
        if "a=sendonly" in lines:
            mid = next(x[6:] for x in lines if x.startswith("a=mid:"))
            streams[mid] = next(x[7:].split(" ")[0] for x in lines if x.startswith("a=msid:"))
    return streams


@dataclass
class Tally:
    """What one client's subscribe connections received, frame by frame."""

    #: publisher id → frames that arrived on a mid announced for that publisher.
    right: dict[str, int] = field(default_factory=dict)
    #: (mid, announced publisher, publisher whose colour the frame shows) per wrong frame.
    wrong: list[tuple[str, str, str]] = field(default_factory=list)
    #: Frames on a mid the connection's applied mapping did not name (yet).
    unannounced: int = 0
    #: Frames whose colour is none of the palette's (a decoder artefact).
    unclear: int = 0
    #: A mapping that named a mid already announced for another publisher.
    reassigned: list[tuple[str, str, str]] = field(default_factory=list)
    #: Offers whose ``version`` was not the one after the last applied.
    out_of_order: list[tuple[int | None, int | None]] = field(default_factory=list)
    #: Offers whose ``tracks`` are not exactly their SDP's sending m-sections (mid and
    #: ``a=msid`` stream id, which is the publisher's id).
    inconsistent: list[tuple[dict[str, str], dict[str, str]]] = field(default_factory=list)


class OriginClient(MediaConnections):
    """One member's media: an optional colour camera, and a subscribe connection checked
    frame by frame. Rebuilds both on ``media:reset`` and on :meth:`restart`."""

    def __init__(self, peer: Peer, colours: dict[str, tuple[int, int, int]],
                 colour: tuple[int, int, int] | None = None) -> None:
        super().__init__(peer)
        self.colours = colours
        self.colour = colour
        self.tally = Tally()
        #: Every media:subscribe_offer received, as sent.
        self.pushed: list[dict[str, Any]] = []
        self._new_connection()
        self.attach(peer)

    def attach(self, peer: Peer) -> None:
        """Follow ``peer``'s socket from now on (a new socket after a resume)."""
        self.peer = peer
        peer.sio.on("media:subscribe_offer", self._on_offer, namespace=NS)
        peer.sio.on("media:reset", self._on_reset, namespace=NS)

    # -- the protocol ------------------------------------------------------------------

    async def publish(self) -> None:
        assert self.colour is not None
        sdp = await self._publish_offer(ColourVideo(self.colour))
        assert self.pub is not None
        ack = await self.peer.call("media:publish", {"sdp": sdp}, timeout=NEGOTIATION_S)
        assert "sdp" in ack, ack
        await self.pub.setRemoteDescription(RTCSessionDescription(ack["sdp"], "answer"))

    async def restart(self) -> None:
        """``media:restart``: the SFU forgets both connections, new ones are built."""
        ack = await self.peer.call("media:restart")
        assert ack.get("ok") is True, ack
        await self._rebuild(ack["can_publish"])

    async def _on_reset(self, data: dict[str, Any]) -> None:
        await self._rebuild(data["can_publish"])

    async def _rebuild(self, can_publish: bool) -> None:
        async with self._lock:
            await self._close_connections()
            self.sub = RTCPeerConnection(_configuration())
            self._new_connection()
        await self.subscribe()
        if can_publish and self.colour is not None:
            await self.publish()

    async def _on_offer(self, data: dict[str, Any]) -> None:
        self.pushed.append(data)
        async with self._lock:
            if self.sub.signalingState != "closed":  # not closing down
                await self._answer(data)

    async def _answer(self, offer: dict[str, Any]) -> None:
        self.offers += 1
        version = offer.get("version")
        if version is not None and version != (self._version or 0) + 1 \
                and version != self._version:
            self.tally.out_of_order.append((self._version, version))
        self._version = version
        announced = {t["mid"]: t["publisher_id"] for t in offer["tracks"]}
        if announced != sending_streams(offer["sdp"]):
            self.tally.inconsistent.append((announced, sending_streams(offer["sdp"])))
        # The offer's mapping takes effect with its SDP: set before the SDP creates the
        # receivers it names, so no frame of theirs can come first.
        for t in offer["tracks"]:
            before = self._announced.get(t["mid"])
            if before is not None and before != t["publisher_id"]:
                self.tally.reassigned.append((t["mid"], before, t["publisher_id"]))
            self._announced[t["mid"]] = t["publisher_id"]
        pc = self.sub
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer: dict[str, Any] = {"sdp": pc.localDescription.sdp}
        if version is not None:
            answer["version"] = version
        ack = await self.peer.call("media:subscribe_answer", answer, timeout=NEGOTIATION_S)
        assert ack == {"ok": True}, ack

    # -- checking frames ---------------------------------------------------------------

    def _new_connection(self) -> None:
        # A new subscribe connection starts a new mapping: its mids are its own.
        self._announced: dict[str, str] = {}
        self._version: int | None = None
        pc, announced = self.sub, self._announced
        pc.on("track", lambda track: self._on_track(pc, announced, track))

    def _on_track(self, pc: RTCPeerConnection, announced: dict[str, str],
                  track: MediaStreamTrack) -> None:
        if track.kind != "video":
            return
        transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
        mid = str(transceiver.mid)
        self._readers.append(asyncio.ensure_future(self._read(mid, announced, track)))

    async def _read(self, mid: str, announced: dict[str, str],
                    track: MediaStreamTrack) -> None:
        by_colour = {c: pid for pid, c in self.colours.items()}
        tally = self.tally
        try:
            while True:
                frame = await track.recv()
                owner = announced.get(mid)
                shown = colour_of(frame)  # type: ignore[arg-type]
                if owner is None:
                    tally.unannounced += 1
                elif shown is None:
                    tally.unclear += 1
                elif by_colour.get(shown) != owner:
                    tally.wrong.append((mid, owner, by_colour.get(shown, "?")))
                else:
                    tally.right[owner] = tally.right.get(owner, 0) + 1
        except MediaStreamError:
            pass

    def frames(self, publisher_id: str) -> int:
        return self.tally.right.get(publisher_id, 0)


__all__ = ["PALETTE", "ColourVideo", "OriginClient", "Tally", "colour_of", "sending_streams"]
