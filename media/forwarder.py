"""Encoded fan-out: one published track to many subscriber tracks.

A :class:`Source` receives whole encoded frames from a publisher's receiver
(see :func:`media.aiortc_hooks.attach_frame_sink`), wraps each in an
``av.Packet`` once, and offers it to every :class:`OutboundTrack`. Each
outbound track is what a subscriber's ``RTCRtpSender`` reads: its ``recv()``
returns the ``av.Packet`` and the sender packetizes it without an encoder.
Frames are never decoded or re-encoded.
"""

import asyncio
import datetime
import fractions
from collections import deque
from collections.abc import Callable
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpCodecParameters, clock
from aiortc.mediastreams import MediaStreamError

from .keyframes import KeyframeRequester, is_keyframe
from .stats import InboundCounters, OutboundCounters, RateMeter

_Item = tuple["av.Packet[Any]", bool]
#: ``tap(data, timestamp, keyframe)``: sees every frame a source fans out (the relay to
#: other SFU workers, media/relay_home.py).
FrameTap = Callable[[bytes, int, bool], None]


class _FrameQueue:
    """Bounded FIFO with one waiting reader; ``put`` never blocks the fan-out loop."""

    def __init__(self, maxsize: int) -> None:
        self._items: deque[_Item] = deque()
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: _Item) -> bool:
        if len(self._items) >= self._maxsize:
            return False
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        return True

    def drop_oldest(self) -> None:
        self._items.popleft()

    def clear(self) -> int:
        count = len(self._items)
        self._items.clear()
        return count

    async def get(self) -> _Item:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class Source:
    """One published track as the SFU sees it."""

    def __init__(
        self,
        *,
        publisher_id: str,
        track_id: str,
        kind: str,
        mid: str,
        codec: RTCRtpCodecParameters,
        keyframes: KeyframeRequester,
        rate_window: int,
        screen_share: bool = False,
    ) -> None:
        self.publisher_id = publisher_id
        self.track_id = track_id
        self.kind = kind
        self.mid = mid
        self.codec = codec
        self.screen_share = screen_share
        self.keyframes = keyframes
        self.counters = InboundCounters(meter=RateMeter(rate_window))
        self.ended = False
        self._payload_type = codec.payloadType
        self._codec_name = codec.name
        self._time_base = fractions.Fraction(1, codec.clockRate)
        self._outbounds: list[OutboundTrack] = []
        self._taps: list[FrameTap] = []

    @property
    def outbounds(self) -> tuple["OutboundTrack", ...]:
        return tuple(self._outbounds)

    def on_frame(self, codec: RTCRtpCodecParameters, data: bytes, timestamp: int) -> None:
        """Fan one encoded frame out to every subscriber (called on the event loop)."""
        if codec.payloadType != self._payload_type:
            # Subscribers were offered one codec; another cannot be sent to them.
            self.counters.frames_wrong_codec += 1
            return
        keyframe = is_keyframe(self._codec_name, data)
        if keyframe:
            self.keyframes.keyframe_received()
        self.counters.add(len(data), keyframe)
        for tap in self._taps:
            tap(data, timestamp, keyframe)
        packet = av.Packet(data)
        packet.pts = timestamp
        packet.time_base = self._time_base
        item = (packet, keyframe)
        for outbound in self._outbounds:
            outbound.push(item)

    def add(self, outbound: "OutboundTrack") -> None:
        # Copy-on-write: on_frame iterates the list while callbacks may change it.
        self._outbounds = [*self._outbounds, outbound]

    def remove(self, outbound: "OutboundTrack") -> None:
        self._outbounds = [o for o in self._outbounds if o is not outbound]

    def add_tap(self, tap: FrameTap) -> None:
        self._taps = [*self._taps, tap]

    def remove_tap(self, tap: FrameTap) -> None:
        self._taps = [t for t in self._taps if t is not tap]

    def end(self) -> None:
        """The publisher stopped this track: stop fan-out and keyframe requests."""
        self.ended = True
        self.keyframes.close()
        self._taps = []
        for outbound in self._outbounds:
            outbound.detach()


class OutboundTrack(MediaStreamTrack):
    """One source as one subscriber receives it; read by that subscriber's RTCRtpSender.

    Inactive until the sender first reads from it (the subscriber is
    connected): frames before that would only fill the queue. From then on a
    video subscriber starts at a keyframe, and a full queue is flushed and
    refilled from the next keyframe, so a slow subscriber never holds up the
    others and never decodes a broken reference chain.

    The forwarding policy pauses a video (:meth:`set_forwarding`): its sender
    then gets no frames and sends no RTP; resuming starts again at a keyframe.
    """

    def __init__(
        self, source: Source, subscriber_id: str, queue_frames: int, rate_window: int
    ) -> None:
        super().__init__()
        self.kind = source.kind
        # The publisher's own track id, so clients can match it to presence data.
        self._id = source.track_id
        self.source = source
        self.subscriber_id = subscriber_id
        self.counters = OutboundCounters(meter=RateMeter(rate_window))
        self._queue = _FrameQueue(queue_frames)
        self._video = source.kind == "video"
        self._active = False
        self._forwarding = True
        # Whether push() takes frames: active and forwarding, kept as one flag
        # because push() runs for every frame of every subscriber.
        self._open = False
        self._waiting_keyframe = self._video
        self._attached = True
        #: When the policy last resumed this video (aiortc's clock): receiver reports
        #: from before describe the stream as it was then, not now.
        self.resumed_at: datetime.datetime | None = None
        source.add(self)

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._open and self._waiting_keyframe

    @property
    def forwarding(self) -> bool:
        return self._forwarding

    def set_forwarding(self, forwarding: bool) -> None:
        """Pause (no frames, no RTP) or resume this video for its subscriber.

        Resuming holds delta frames until a keyframe and asks the publisher for
        one (rate-limited per published track), so the subscriber's decoder
        restarts cleanly.
        """
        if forwarding == self._forwarding:
            return
        self._forwarding = forwarding
        self._open = self._active and forwarding
        if not forwarding:
            self.counters.frames_dropped += self._queue.clear()
            self.counters.pauses += 1
            return
        self.resumed_at = clock.current_datetime()
        if self._video:
            self._waiting_keyframe = True
            if self._open and self._attached:
                self.source.keyframes.request()

    def push(self, item: _Item) -> None:
        if not self._open:
            return
        keyframe = item[1]
        if self._waiting_keyframe:
            if not keyframe:
                self.counters.frames_held += 1
                return
            self._waiting_keyframe = False
        if self._queue.put(item):
            return
        self.counters.queue_overflows += 1
        if self._video:
            self.counters.frames_dropped += self._queue.clear()
            if keyframe:
                self._queue.put(item)
            else:
                self.counters.frames_dropped += 1
                self._waiting_keyframe = True
                self.source.keyframes.request()
        else:
            self.counters.frames_dropped += 1
            self._queue.drop_oldest()
            self._queue.put(item)

    def request_keyframe(self) -> None:
        """The subscriber sent a PLI/FIR: pass it upstream (rate-limited)."""
        self.counters.keyframe_requests_received += 1
        if self._attached and self._video:
            self.source.keyframes.request()

    def detach(self) -> None:
        """Stop receiving frames from the source (idempotent)."""
        if self._attached:
            self._attached = False
            self.source.remove(self)
            self._queue.clear()

    async def recv(self) -> "av.Packet[Any]":
        if self.readyState != "live":
            raise MediaStreamError
        if not self._active and self._attached:
            self._active = True
            self._open = self._forwarding
            if self._video and self._forwarding:
                self.source.keyframes.request()
        packet, keyframe = await self._queue.get()
        self.counters.sent(packet.size, keyframe)
        return packet

    def stop(self) -> None:
        super().stop()
        self.detach()

