"""The audit of reads, per participant, object and short window (DICOM PS3.15 A.5.3
"Instances Accessed" style): instead of committing one row per frame served, reads are
added up in memory by who, from where, what and how it ended, and a batching writer
appends one audit event per such window at most FLUSH_INTERVAL_S after its first read, and
on shutdown. A process killed outright loses at most the reads of that last interval.

While the trail cannot be written (the database refuses, or a flush is stuck behind a
long transaction) nothing is dropped: the windows wait and are retried, and once writing
them has been tried for STALL_S without success new reads are refused (AuditUnavailable)
rather than answered without a trail. The time counts from the first attempt, not from the
oldest read: a process too busy to run the writer for a while (a long decode, a loaded
machine) has not lost its trail, and its reads go on being answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import audit
from app.appkeys import SESSIONS
from app.db.types import utcnow

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5
STALL_S = 5.0
# Detail keys whose list values are counted rather than kept (the frame numbers asked).
COUNTED_LISTS = frozenset({"frames"})


class AuditUnavailable(Exception):
    """The trail has not been writable for STALL_S: a read must not be answered."""


@dataclass(frozen=True)
class WindowKey:
    """What makes two reads the same window's: who, from where, what, how it ended."""

    action: str
    actor_id: int | None
    actor_email: str
    client_addr: str
    object_type: str
    object_id: str
    outcome: str = audit.SUCCESS
    # For refused and failed reads: the status answered and why.
    status: int | None = None
    reason: str = ""


@dataclass
class Window:
    """The reads of one key since the last flush. Of each read's detail, ``instance``
    values are kept as distinct instance UIDs, integers are summed (``instances``,
    ``stored``), lists named in COUNTED_LISTS are counted (``frames``), and other values
    and lists are kept as their distinct values (a transfer syntax, a query, UIDs)."""

    first: datetime
    last: datetime
    requests: int = 0
    instance_uids: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    values: dict[str, set[str]] = field(default_factory=dict)

    def add(self, detail: dict[str, Any], at: datetime) -> None:
        self.first, self.last = min(self.first, at), max(self.last, at)
        self.requests += 1
        for name, value in detail.items():
            if name == "instance" and isinstance(value, str):
                self.instance_uids.add(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                self.counts[name] += value
            elif isinstance(value, list) and name in COUNTED_LISTS:
                self.counts[name] += len(value)
            elif isinstance(value, list):
                self.values.setdefault(name, set()).update(str(v) for v in value)
            else:
                self.values.setdefault(name, set()).add(str(value))

    def merge(self, other: Window) -> None:
        self.first, self.last = min(self.first, other.first), max(self.last, other.last)
        self.requests += other.requests
        self.instance_uids |= other.instance_uids
        self.counts.update(other.counts)
        for name, values in other.values.items():
            self.values.setdefault(name, set()).update(values)

    def detail(self, key: WindowKey) -> dict[str, Any]:
        body: dict[str, Any] = {
            "window": {"first": self.first.isoformat(), "last": self.last.isoformat()},
            "requests": self.requests,
            **{name: sorted(values) for name, values in sorted(self.values.items())},
            **dict(sorted(self.counts.items())),
        }
        if self.instance_uids:
            body["instances"] = len(self.instance_uids) + self.counts["instances"]
            body["instance_uids"] = sorted(self.instance_uids)
        if key.status is not None:
            body["status"], body["reason"] = key.status, key.reason
        return body


class AuditWindows:
    """Adds reads to their windows and appends the windows to the audit trail."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 interval: float = FLUSH_INTERVAL_S, stall: float = STALL_S) -> None:
        self._sessions = sessions
        self._interval = interval
        self._stall = stall
        self._pending: dict[WindowKey, Window] = {}
        # Monotonic time of the oldest read pending (when the next flush is due), and of the
        # first flush attempt not yet followed by a successful one (the stall clock).
        self._oldest: float | None = None
        self._trying: float | None = None
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def stalled(self) -> bool:
        return self._trying is not None and time.monotonic() - self._trying > self._stall

    async def record(self, key: WindowKey, detail: dict[str, Any], *,
                     refuse_if_stalled: bool = True) -> None:
        """Add one read. Raises AuditUnavailable instead when the trail is stalled (unless
        told not to: a refusal is recorded whatever happens). Once the writer is closed
        (shutdown), the read is written before this returns."""
        if refuse_if_stalled and self.stalled:
            raise AuditUnavailable(f"no audit event could be written for {self._stall:.0f} s")
        now = utcnow()
        window = self._pending.get(key)
        if window is None:
            window = self._pending[key] = Window(first=now, last=now)
        window.add(detail, now)
        if self._oldest is None:
            self._oldest = time.monotonic()
            self._wake.set()
        if self._closed:
            await self.flush()

    async def flush(self) -> None:
        """Append every pending window in one transaction. On failure they stay pending
        (merged with what came meanwhile) and the error is raised."""
        async with self._flushing:
            if not self._pending:
                return
            batch, oldest = self._pending, self._oldest
            self._pending, self._oldest = {}, None
            if self._trying is None:
                self._trying = time.monotonic()
            self._wake.clear()
            try:
                async with self._sessions.begin() as session:
                    session.add_all([audit.event(
                        key.action, actor_id=key.actor_id, actor_email=key.actor_email,
                        outcome=key.outcome, object_type=key.object_type,
                        object_id=key.object_id, client_addr=key.client_addr,
                        detail=window.detail(key), at=window.first)
                        for key, window in batch.items()])
            except BaseException:
                self._restore(batch, oldest)
                raise
            self._trying = None

    def _restore(self, batch: dict[WindowKey, Window], oldest: float | None) -> None:
        for key, window in batch.items():
            newer = self._pending.get(key)
            if newer is not None:
                window.merge(newer)
            self._pending[key] = window
        if oldest is not None:
            self._oldest = min(oldest, self._oldest or oldest)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self._oldest is None:  # another flush (shutdown's) took the batch meanwhile
                continue
            await asyncio.sleep(max(0.0, self._oldest + self._interval - time.monotonic()))
            try:
                # Shielded: a shutdown that cancels this loop mid-commit must not leave the
                # batch both committed and pending (it would be written twice).
                await asyncio.shield(self.flush())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("audit windows not written; retrying")
                await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-windows")

    async def close(self) -> None:
        """Stop the loop and write what is pending; from now on each read is written as it
        is recorded. What cannot be written even now is logged in full, the record of last
        resort."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        except Exception:
            log.exception("audit windows lost at shutdown: %s", json.dumps(
                [{"action": k.action, "actor_id": k.actor_id, "object_id": k.object_id,
                  "client_addr": k.client_addr, "outcome": k.outcome, **w.detail(k)}
                 for k, w in self._pending.items()]))


AUDIT_WINDOWS = web.AppKey("audit_windows", AuditWindows)


def setup_audit_windows(app: web.Application) -> None:
    """The writer of the app's database, started with the app and closed (flushed) when it
    stops, after the last request has been answered and before the engine goes."""
    app[AUDIT_WINDOWS] = writer = AuditWindows(app[SESSIONS])

    async def lifetime(_: web.Application) -> AsyncIterator[None]:
        writer.start()
        yield
        await writer.close()

    app.cleanup_ctx.append(lifetime)
