"""Bitrate caps sent to a publisher as RTCP REMB.

A REMB's bitrate is the total the sender may use for all the SSRCs it lists
(draft-alvestrand-rmcat-remb), and a browser applies it to the whole
connection. So each publisher gets one REMB for all its videos: the sum of
their caps, lowered to aiortc's own uplink estimate when that is lower, so
a congested uplink is still honoured.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

RembSend = Callable[[int, list[int]], Awaitable[None]]


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class PublisherBitrate:
    """The REMB stream to one publisher, repeated on ``clock`` (the event loop's by default)."""

    def __init__(self, interval: float, clock: Callable[[], float] = _loop_time) -> None:
        self._interval = interval
        self._clock = clock
        self._send: RembSend | None = None
        self._caps: dict[int, int] = {}  # media SSRC -> cap (bps)
        self._estimates: dict[object, int] = {}  # per receiver: aiortc's estimate (bps)
        self._last_value: int | None = None
        self._last_sent_at = float("-inf")
        self._task: asyncio.Task[None] | None = None
        #: REMBs sent and the last value, for stats.
        self.rembs_sent = 0

    @property
    def value(self) -> int | None:
        """The bitrate the publisher is told (None while it has no capped video)."""
        if not self._caps:
            return None
        cap = sum(self._caps.values())
        if self._estimates and len(self._estimates) >= len(self._caps):
            return min(cap, sum(self._estimates.values()))
        return cap

    def set_sender(self, send: RembSend) -> None:
        """Where REMBs go: any of the publisher's receivers (they share one transport)."""
        if self._send is None:
            self._send = send

    def estimate(self, receiver: object, bitrate: int) -> None:
        """aiortc's receiver-side estimate for one of the publisher's videos."""
        self._estimates[receiver] = bitrate
        value = self.value
        # A falling estimate means congestion now: do not wait for the next tick.
        if value is not None and self._last_value is not None and value < self._last_value:
            self._send_now(value)

    def forget(self, receiver: object) -> None:
        self._estimates.pop(receiver, None)

    def set_caps(self, caps: dict[int, int]) -> None:
        """Caps per media SSRC of the publisher's published videos; sends at once if changed."""
        changed = caps != self._caps
        self._caps = dict(caps)
        if changed:
            self.tick(force=True)

    def tick(self, now: float | None = None, force: bool = False) -> None:
        """Repeat the REMB every ``interval`` (a lost one must not leave the cap off)."""
        value = self.value
        if value is None or self._send is None:
            return
        now = self._clock() if now is None else now
        if force or value != self._last_value or now - self._last_sent_at >= self._interval:
            self._send_now(value, now)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _send_now(self, value: int, now: float | None = None) -> None:
        if self._send is None or (self._task is not None and not self._task.done()):
            return
        self._last_value = value
        self._last_sent_at = self._clock() if now is None else now
        self.rembs_sent += 1
        self._task = asyncio.ensure_future(self._send(value, sorted(self._caps)))
        self._task.add_done_callback(self._sent)

    def _sent(self, task: "asyncio.Task[None]") -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.warning("REMB send failed: %r", task.exception())
