"""The consultation's side of a room in the database: status changes and audit events."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import audit
from app.db.models import Consultation, ConsultationStatus, User
from app.db.types import utcnow

log = logging.getLogger(__name__)

OPEN = (ConsultationStatus.scheduled, ConsultationStatus.live)


async def status(sessions: async_sessionmaker[AsyncSession],
                 consultation_id: int) -> ConsultationStatus | None:
    async with sessions() as session:
        c = await session.get(Consultation, consultation_id)
        return c.status if c is not None else None


async def _move(sessions: async_sessionmaker[AsyncSession], consultation_id: int,
                from_: tuple[ConsultationStatus, ...], to: ConsultationStatus,
                action: str, user_id: int, client_addr: str) -> bool:
    # A conditional UPDATE, so two first joins (or two ends) race harmlessly: one wins.
    async with sessions.begin() as session:
        result = await session.execute(
            update(Consultation)
            .where(Consultation.id == consultation_id, Consultation.status.in_(from_))
            .values(status=to, updated_at=utcnow())
        )
        moved = bool(result.rowcount)  # type: ignore[attr-defined]
        if moved:
            actor = await session.get(User, user_id)
            audit.record(session, action, actor=actor, object_type="consultation",
                         object_id=consultation_id, consultation_id=consultation_id,
                         client_addr=client_addr, detail={"status": to.value})
    return moved


async def mark_live(sessions: async_sessionmaker[AsyncSession], consultation_id: int,
                    user_id: int, client_addr: str) -> bool:
    return await _move(sessions, consultation_id, (ConsultationStatus.scheduled,),
                       ConsultationStatus.live, "room.live", user_id, client_addr)


async def mark_ended(sessions: async_sessionmaker[AsyncSession], consultation_id: int,
                     user_id: int, client_addr: str) -> bool:
    return await _move(sessions, consultation_id, OPEN, ConsultationStatus.ended,
                       "room.end", user_id, client_addr)


async def record(sessions: async_sessionmaker[AsyncSession], action: str, *,
                 user_id: int, consultation_id: int, client_addr: str,
                 object_id: str = "", outcome: str = audit.SUCCESS,
                 detail: dict[str, Any] | None = None) -> None:
    """Write one room audit event in its own transaction.

    The room change it records is already made in room state (which is not
    transactional); a failed write is logged loudly rather than undoing the room.
    """
    try:
        async with sessions.begin() as session:
            actor = await session.get(User, user_id)
            audit.record(session, action, actor=actor, outcome=outcome,
                         object_type="participant" if object_id else "consultation",
                         object_id=object_id or consultation_id,
                         consultation_id=consultation_id, client_addr=client_addr,
                         detail=detail)
    except Exception:
        log.exception("audit event %s for consultation %s was not written", action,
                      consultation_id)
