"""Reading the DICOMweb audit trail from a test: windows are appended within a second of
their reads, so a test waits for what it expects instead of reading at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import AuditEvent


async def dicomweb_events(sessions: async_sessionmaker[AsyncSession],
                          until: Callable[[list[AuditEvent]], bool],
                          within: float = 5.0) -> list[AuditEvent]:
    """The ``dicomweb.*`` events in the order written, once ``until`` holds of them (or
    ``within`` seconds have passed: the caller's assertions then say what is missing)."""
    deadline = time.monotonic() + within
    while True:
        async with sessions() as session:
            events = list(await session.scalars(
                select(AuditEvent).where(AuditEvent.action.like("dicomweb.%"))
                .order_by(AuditEvent.id)))
        if until(events) or time.monotonic() > deadline:
            return events
        await asyncio.sleep(0.05)


def total(events: list[AuditEvent], name: str) -> int:
    return sum(int(e.detail.get(name, 0)) for e in events)
