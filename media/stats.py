"""Per-stream counters and rates, turned into plain dicts for the room UI and /metrics."""

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class RateMeter:
    """Frames and bytes per second over the last ``window`` whole seconds.

    One-second buckets keep the per-frame cost to a clock read and an addition,
    and make the rate independent of how often stats are read.
    """

    def __init__(self, window: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._buckets: deque[list[int]] = deque()  # [second, frames, bytes]

    def add(self, nbytes: int) -> None:
        second = int(self._clock())
        buckets = self._buckets
        if buckets and buckets[-1][0] == second:
            bucket = buckets[-1]
            bucket[1] += 1
            bucket[2] += nbytes
            return
        buckets.append([second, 1, nbytes])
        while buckets[0][0] < second - self._window:
            buckets.popleft()

    def rates(self) -> tuple[float, float]:
        """(frames per second, bits per second) over the last complete seconds."""
        now = int(self._clock())
        frames = nbytes = 0
        for second, f, b in self._buckets:
            if now - self._window <= second < now:
                frames += f
                nbytes += b
        return frames / self._window, nbytes * 8 / self._window


@dataclass
class InboundCounters:
    """What the SFU saw of one published track (frame level)."""

    meter: RateMeter
    frames: int = 0
    bytes: int = 0
    keyframes: int = 0
    #: Frames in a codec other than the one subscribers were offered.
    frames_wrong_codec: int = 0

    def add(self, nbytes: int, keyframe: bool) -> None:
        self.frames += 1
        self.bytes += nbytes
        self.keyframes += keyframe
        self.meter.add(nbytes)


@dataclass
class OutboundCounters:
    """What the SFU forwarded of one published track to one subscriber (frame level)."""

    meter: RateMeter
    frames_sent: int = 0
    bytes_sent: int = 0
    keyframes_sent: int = 0
    #: Delta frames held back because this subscriber waits for a keyframe.
    frames_held: int = 0
    #: Frames thrown away because the subscriber's queue was full.
    frames_dropped: int = 0
    queue_overflows: int = 0
    #: Times the forwarding policy paused this video for this subscriber.
    pauses: int = 0
    #: PLI/FIR received from the subscriber.
    keyframe_requests_received: int = 0
    first_frame_keyframe: bool | None = None

    def sent(self, nbytes: int, keyframe: bool) -> None:
        if self.first_frame_keyframe is None:
            self.first_frame_keyframe = keyframe
        self.frames_sent += 1
        self.bytes_sent += nbytes
        self.keyframes_sent += keyframe
        self.meter.add(nbytes)
