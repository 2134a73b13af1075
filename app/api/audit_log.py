"""Reading the audit trail (admins only). There is deliberately no route that changes it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from sqlalchemy import func, select

from app.api.routing import ADMIN, Api, Ctx, Out, Query
from app.api.schemas import Id, Limit, Offset, UtcDatetime
from app.db.models import AuditEvent

api = Api()


class AuditQuery(Query):
    user_id: Id | None = None
    consultation_id: Id | None = None
    action: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    limit: Limit = 100
    offset: Offset = 0


class AuditEventOut(Out):
    id: int
    at: datetime
    actor_id: int | None
    actor_email: str
    action: str
    object_type: str
    object_id: str
    consultation_id: int | None
    client_addr: str
    outcome: str
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditPage(Out):
    items: list[AuditEventOut]
    total: int


@api.route("GET", "/api/audit", summary="Search the audit trail", tag="audit", roles=ADMIN,
           query=AuditQuery, response=AuditPage)
async def list_audit(ctx: Ctx, query: AuditQuery) -> AuditPage:
    """Newest first. `action` matches exactly, or a prefix when it ends in `.` (`auth.`)."""
    stmt = select(AuditEvent)
    if query.user_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == query.user_id)
    if query.consultation_id is not None:
        stmt = stmt.where(AuditEvent.consultation_id == query.consultation_id)
    if query.action is not None:
        stmt = stmt.where(AuditEvent.action.startswith(query.action, autoescape=True)
                          if query.action.endswith(".") else AuditEvent.action == query.action)
    if query.since is not None:
        stmt = stmt.where(AuditEvent.at >= query.since)
    if query.until is not None:
        stmt = stmt.where(AuditEvent.at < query.until)
    async with ctx.sessions() as session:
        # maintain_column_froms keeps FROM audit_events when no filter names the table;
        # without it the count has no FROM and is always 1.
        total = await session.scalar(
            stmt.with_only_columns(func.count(), maintain_column_froms=True).order_by(None))
        rows = await session.scalars(
            stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(query.limit).offset(query.offset))
        return AuditPage(items=[AuditEventOut.model_validate(r) for r in rows], total=total or 0)
