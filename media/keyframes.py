"""Keyframe detection and rate-limited keyframe requests to a publisher."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

logger = logging.getLogger(__name__)


class Timer(Protocol):
    def cancel(self) -> None: ...


#: ``call_later(delay, callback)``: runs ``callback`` after ``delay`` seconds.
CallLater = Callable[[float, Callable[[], None]], Timer]


def loop_call_later(delay: float, callback: Callable[[], None]) -> Timer:
    """The running event loop's timers: what the SFU times itself with."""
    return asyncio.get_running_loop().call_later(delay, callback)

_H264_IDR = 5
_H264_SPS = 7


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """Whether a depacketized frame can start decoding on its own.

    VP8: the inverted key-frame bit of the frame tag (RFC 6386 9.1).
    H.264 (Annex-B): an IDR slice or an SPS in the access unit.
    Audio frames are all independent.
    """
    name = codec_name.upper()
    if name == "VP8":
        return bool(data) and data[0] & 1 == 0
    if name == "H264":
        return _h264_has_idr_or_sps(data)
    return True


def _h264_has_idr_or_sps(data: bytes) -> bool:
    pos = data.find(b"\x00\x00\x01")
    while pos != -1 and pos + 3 < len(data):
        if data[pos + 3] & 0x1F in (_H264_IDR, _H264_SPS):
            return True
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return False


class KeyframeRequester:
    """Sends keyframe requests for one published track, at most one per interval.

    A request inside the interval is not lost: it is merged into one trailing
    request at the end of the interval, sent only if no keyframe arrived in
    between. While a request is unanswered it is repeated once per interval,
    since a PLI or the keyframe itself may be lost.

    ``call_later`` is where its intervals are timed: the event loop's timers, or a
    test's clock that it advances itself.
    """

    def __init__(
        self,
        send: Callable[[], Awaitable[None]],
        min_interval: float,
        call_later: CallLater = loop_call_later,
    ) -> None:
        self._send = send
        self._interval = min_interval
        self._call_later = call_later
        self._wanted = False
        self._timer: Timer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests_received = 0
        self.requests_sent = 0

    def request(self) -> None:
        """Ask for a keyframe soon; safe to call on every frame."""
        self.requests_received += 1
        self._wanted = True
        # A timer runs for one interval after every request sent, so no timer
        # means the interval has passed.
        if self._timer is None:
            self._send_now()

    def keyframe_received(self) -> None:
        self._wanted = False

    @property
    def idle(self) -> bool:
        """No request within the last interval: the next one is sent at once."""
        return self._timer is None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._tasks:
            task.cancel()

    def _arm(self, delay: float) -> None:
        self._timer = self._call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._wanted:
            self._send_now()

    def _send_now(self) -> None:
        self.requests_sent += 1
        task = asyncio.ensure_future(self._send())
        self._tasks.add(task)
        task.add_done_callback(self._sent)
        # Re-check after one interval whether the keyframe came.
        self._arm(self._interval)

    def _sent(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("keyframe request failed: %r", task.exception())
