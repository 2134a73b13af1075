"""Who attended a consultation, read from the room's own audit events (``room.join`` when a
member is admitted, ``room.leave`` when they go), so the minutes list people as the room saw
them rather than as someone typed them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.db.models import AuditEvent, User


@dataclass(frozen=True)
class Attendee:
    user_id: int
    name: str
    hospital: str
    tier: str
    role: str
    attended_from: datetime
    #: None while they are still in the room.
    attended_to: datetime | None

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["attended_from"] = self.attended_from.isoformat()
        row["attended_to"] = self.attended_to.isoformat() if self.attended_to else None
        return row


async def attendance(session: AsyncSession, consultation_id: int) -> list[Attendee]:
    """Each user admitted to the room at least once: the first admission, the last leave
    (none if their last event is an admission), the role they were first admitted in; in
    order of arrival."""
    events = (await session.scalars(
        select(AuditEvent)
        .where(AuditEvent.consultation_id == consultation_id,
               AuditEvent.action.in_(("room.join", "room.leave")),
               AuditEvent.outcome == audit.SUCCESS)
        .order_by(AuditEvent.at, AuditEvent.id))).all()
    first: dict[int, tuple[datetime, str]] = {}
    last_leave: dict[int, datetime | None] = {}
    for event in events:
        user_id = event.detail.get("user_id")
        if not isinstance(user_id, int):
            continue
        if event.action == "room.join":
            first.setdefault(user_id, (event.at, str(event.detail.get("role", ""))))
            last_leave[user_id] = None
        elif user_id in first:
            last_leave[user_id] = event.at
    if not first:
        return []
    users = {u.id: u for u in (await session.scalars(
        select(User).where(User.id.in_(first)))).all()}
    return [Attendee(user_id=uid, name=users[uid].name, hospital=users[uid].hospital.name,
                     tier=users[uid].hospital.tier.value, role=role, attended_from=at,
                     attended_to=last_leave.get(uid))
            for uid, (at, role) in first.items() if uid in users]
