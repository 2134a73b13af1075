"""Writing audit events. Callers add the event to the session of the change it records, so
the change and its audit event commit or roll back together."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AuditEvent, User

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"


def record(
    session: AsyncSession,
    action: str,
    *,
    actor: User | None,
    outcome: str = SUCCESS,
    object_type: str = "",
    object_id: str | int = "",
    consultation_id: int | None = None,
    client_addr: str = "",
    actor_email: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else actor_email[:254],
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        consultation_id=consultation_id,
        client_addr=client_addr[:64],
        outcome=outcome,
        detail=detail or {},
    )
    session.add(event)
    return event
