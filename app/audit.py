"""Writing audit events. Callers add the event to the session of the change it records, so
the change and its audit event commit or roll back together. Reads, which change nothing,
go through app/audit_windows.py instead: batched, one event per reader, object and window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AuditEvent, User

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"


def event(action: str, *, actor_id: int | None, actor_email: str, outcome: str = SUCCESS,
          object_type: str = "", object_id: str | int = "", consultation_id: int | None = None,
          client_addr: str = "", detail: dict[str, Any] | None = None,
          at: datetime | None = None) -> AuditEvent:
    """One audit row, its values cut to the columns' sizes; ``at`` defaults to now."""
    row = AuditEvent(
        actor_id=actor_id,
        actor_email=actor_email[:254],
        action=action[:64],
        object_type=object_type[:32],
        object_id=str(object_id)[:128],
        consultation_id=consultation_id,
        client_addr=client_addr[:64],
        outcome=outcome,
        detail=detail or {},
    )
    if at is not None:
        row.at = at
    return row


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
    row = event(action, actor_id=actor.id if actor else None,
                actor_email=actor.email if actor else actor_email, outcome=outcome,
                object_type=object_type, object_id=object_id,
                consultation_id=consultation_id, client_addr=client_addr, detail=detail)
    session.add(row)
    return row
