"""Ships the audit trail to a syslog collector over TLS (RFC 5424 messages, RFC 5425
octet-counted framing), each event a DICOM audit message (dicom_message.py).

A cursor in the database (table audit_shipping) holds the last event sent; the events after
it go in batches, each on a connection of its own (a collector restarted since the last
batch would otherwise silently swallow the next one on a dead socket), and the cursor moves
only once the batch is written and the connection closed cleanly, so an outage or a restart
resends rather than loses (at least once: a crash between sending and moving the cursor
repeats that batch; RFC 5425 has no acknowledgement, so what the collector does with
delivered bytes is its own). The cursor row is locked while a batch goes on PostgreSQL, so
several nodes never send the same events; on SQLite (one node alone) nothing is held while
sending, as its write lock is the whole database's. Events are sent once they are SETTLE_S
old: a transaction still open holds an id below ones already committed, and
waiting lets it commit before the cursor passes it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.appkeys import READ_SESSIONS, SESSIONS, SETTINGS
from app.audit_export.dicom_message import audit_message
from app.db.models import AuditEvent, AuditShipping
from app.db.types import utcnow

log = logging.getLogger(__name__)

SETTLE_S = 2.0
BATCH = 500
RETRY_S = 5.0
# authpriv (10), as DICOM and IHE ATNA ask; notice for successes, warning for the others.
FACILITY = 10
APP_NAME = "hoichan"
MSG_ID = "DICOM+RFC3881"
BOM = "\ufeff".encode()


@dataclass(frozen=True)
class Collector:
    host: str
    port: int
    #: CA certificates that signed the collector's (PEM); empty: the system's.
    ca_file: str = ""

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


def frame(event: AuditEvent, hostname: str, source_id: str) -> bytes:
    """One event as an octet-counted RFC 5424 message."""
    severity = 5 if event.outcome == "success" else 4
    header = (f"<{FACILITY * 8 + severity}>1 {event.at.isoformat()} {hostname} {APP_NAME} - "
              f"{MSG_ID} - ").encode()
    message = header + BOM + audit_message(event, source_id)
    return str(len(message)).encode() + b" " + message


class SyslogShipper:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 read_sessions: async_sessionmaker[AsyncSession], collector: Collector,
                 source_id: str, interval_s: float = 1.0) -> None:
        self.sessions, self.read_sessions = sessions, read_sessions
        self.collector, self.source_id = collector, source_id
        self._sqlite = sessions.kw["bind"].dialect.name == "sqlite"
        self.interval_s = interval_s
        self.hostname = socket.gethostname() or "-"
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.ship_once()
                if self._failing:
                    log.warning("audit syslog to %s works again", self.collector.target)
                    self._failing = False
            except (OSError, ssl.SSLError, TimeoutError) as exc:
                if not self._failing:
                    log.warning("audit syslog to %s failed, retrying every %.0f s: %s",
                                self.collector.target, RETRY_S, exc)
                    self._failing = True
                await asyncio.sleep(RETRY_S)
                continue
            if sent < BATCH:
                await asyncio.sleep(self.interval_s)

    async def ship_once(self) -> int:
        """Sends the next batch of settled events; how many were sent."""
        if self._sqlite:
            # One node alone. A write transaction on SQLite holds the database's only write
            # lock, which must not wait on the network: read, send, then move the cursor.
            async with self.read_sessions() as session:
                events = await self._next(session, lock=False)
            if events:
                await self._send(self._frames(events))
                async with self.sessions.begin() as session:
                    await self._advance(session, events[-1].id)
            return len(events)
        # PostgreSQL: the cursor's row lock, held while the batch goes, keeps nodes apart.
        async with self.sessions.begin() as session:
            events = await self._next(session, lock=True)
            if events:
                await self._send(self._frames(events))
                await self._advance(session, events[-1].id)
            return len(events)

    async def _cursor(self, session: AsyncSession, lock: bool) -> AuditShipping | None:
        return await session.get(AuditShipping, self.collector.target, with_for_update=lock)

    async def _next(self, session: AsyncSession, lock: bool) -> list[AuditEvent]:
        cursor = await self._cursor(session, lock)
        if cursor is None and lock:
            # Created (and so locked) now, for the next node to wait on.
            cursor = AuditShipping(target=self.collector.target, last_id=0)
            session.add(cursor)
            await session.flush()
        settled = utcnow() - timedelta(seconds=SETTLE_S)
        return list(await session.scalars(
            select(AuditEvent).where(AuditEvent.id > (cursor.last_id if cursor else 0),
                                     AuditEvent.at < settled)
            .order_by(AuditEvent.id).limit(BATCH)))

    async def _advance(self, session: AsyncSession, last_id: int) -> None:
        cursor = await self._cursor(session, lock=False)
        if cursor is None:
            session.add(AuditShipping(target=self.collector.target, last_id=last_id))
        else:
            cursor.last_id = last_id

    def _frames(self, events: list[AuditEvent]) -> bytes:
        return b"".join(frame(e, self.hostname, self.source_id) for e in events)

    async def _send(self, data: bytes) -> None:
        context = ssl.create_default_context(cafile=self.collector.ca_file or None)
        _, writer = await asyncio.wait_for(asyncio.open_connection(
            self.collector.host, self.collector.port, ssl=context), 10)
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), 30)
        finally:
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 10)


def setup_audit_syslog(app: web.Application, collector: Collector) -> None:
    """Ships the trail while the app runs."""
    shipper = SyslogShipper(app[SESSIONS], app[READ_SESSIONS], collector,
                            source_id=app[SETTINGS].node_id)

    async def lifetime(_: web.Application) -> AsyncIterator[None]:
        shipper.start()
        yield
        await shipper.close()

    app.cleanup_ctx.append(lifetime)
