"""What a DICOMweb read needs to know before it answers, kept for a few seconds per node: the
caller's account and which studies they may read. A viewer asks hundreds of frames a minute,
and each would otherwise cost two database round trips before any pixel moves.

Bounds: a disabled account or a withdrawn invitation stops reads on this node at once (any
change flushed to users, invitations, cases, consultations, studies or break-the-glass
grants clears the cache here), and on other nodes within ``TTL_SECONDS``; an expired grant
too within ``TTL_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.db.models import BreakGlassGrant, Case, CaseStudy, Consultation, Invitation, User
from app.pacs.models import DicomStudy

TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000  # a node's readers times their studies; past it, start again
# A new study too: "not found" is kept as well, and must not outlive the study's arrival.
CHANGES_ACCESS = (User, Invitation, Case, CaseStudy, Consultation, DicomStudy, BreakGlassGrant)
T = TypeVar("T")


class ReadCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._generation = 0
        event.listen(Session, "after_flush", self._after_flush)

    def close(self) -> None:
        event.remove(Session, "after_flush", self._after_flush)

    def clear(self) -> None:
        self._entries.clear()
        self._generation += 1

    def _after_flush(self, session: Session, _: Any) -> None:
        # At flush, not commit: a rolled-back change only costs a refill.
        if any(isinstance(o, CHANGES_ACCESS)
               for o in (*session.new, *session.dirty, *session.deleted)):
            self.clear()

    async def get(self, key: tuple[Any, ...], load: Callable[[], Awaitable[T]],
                  keep: Callable[[T], bool] = lambda _: True) -> T:
        """The value for ``key``, loaded when missing or older than TTL_SECONDS; kept only
        where ``keep`` says (e.g. found rows, when their absence may soon change)."""
        now = self._clock()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            value: T = hit[1]
            return value
        generation = self._generation
        value = await load()
        # A change committed while this loaded makes what it loaded stale: not kept.
        if generation == self._generation and keep(value):
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now + TTL_SECONDS, value)
        return value
