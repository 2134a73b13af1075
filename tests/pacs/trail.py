"""Reading the DICOMweb audit trail from a test: windows are appended within a second of
their reads, so a test waits for what it expects instead of reading at once."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import AuditEvent
from tests.waiting import poll


async def dicomweb_events(sessions: async_sessionmaker[AsyncSession],
                          until: Callable[[list[AuditEvent]], bool],
                          within: float = 5.0) -> list[AuditEvent]:
    """The ``dicomweb.*`` events in the order written, once ``until`` holds of them (or
    ``within`` seconds have passed: the caller's assertions then say what is missing)."""
    events: list[AuditEvent] = []

    async def read() -> bool:
        async with sessions() as session:
            events[:] = await session.scalars(
                select(AuditEvent).where(AuditEvent.action.like("dicomweb.%"))
                .order_by(AuditEvent.id))
        return until(events)

    await poll(read, within)
    return events


def total(events: list[AuditEvent], name: str) -> int:
    return sum(int(e.detail.get(name, 0)) for e in events)
