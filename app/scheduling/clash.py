"""Refusing overlapping bookings of the same host expert."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Consultation, ConsultationStatus, Invitation, User
from app.roles import RoomRole

ACTIVE = (ConsultationStatus.scheduled, ConsultationStatus.live)


async def lock_users(session: AsyncSession, user_ids: Collection[int]) -> None:
    """Serialize bookings per host: on PostgreSQL a row lock on each host user, so two
    concurrent bookings of one expert cannot both pass the clash check. (SQLite already
    holds the database write lock from BEGIN IMMEDIATE.)

    FOR NO KEY UPDATE, not FOR UPDATE: inserting a row that references a user (an invitation,
    an audit event) takes a key-share lock on that user, which FOR UPDATE blocks. Two
    bookings that each host one expert and invite the other would then deadlock."""
    if user_ids:
        await session.execute(
            select(User.id).where(User.id.in_(sorted(user_ids))).with_for_update(key_share=True)
        )


async def find_clash(
    session: AsyncSession,
    host_user_ids: Collection[int],
    start: datetime,
    end: datetime,
    exclude_consultation_id: int | None = None,
) -> Consultation | None:
    """The first active consultation hosted by one of these users that overlaps [start, end)."""
    if not host_user_ids:
        return None
    stmt = (
        select(Consultation)
        .join(Invitation, Invitation.consultation_id == Consultation.id)
        .where(
            Invitation.role == RoomRole.host,
            Invitation.user_id.in_(list(host_user_ids)),
            Consultation.status.in_(ACTIVE),
            Consultation.scheduled_start < end,
            Consultation.scheduled_end > start,
        )
        .order_by(Consultation.scheduled_start)
        .limit(1)
    )
    if exclude_consultation_id is not None:
        stmt = stmt.where(Consultation.id != exclude_consultation_id)
    return await session.scalar(stmt)
