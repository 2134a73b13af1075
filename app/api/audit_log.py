"""Reading the audit trail (admins only): a page of JSON, or the whole selection as CSV for
a hospital's review. There is deliberately no route that changes it."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field, StringConstraints
from sqlalchemy import Select, String, cast, func, or_, select

from app import audit
from app.api.routing import ADMIN, Api, Ctx, File, Out, Query
from app.api.schemas import Id, Limit, Offset, UtcDatetime
from app.db.models import AuditEvent, Case, CaseStudy
from app.errors import ApiError
from app.pacs.models import DicomStudy

api = Api()

# A CSV export is read whole into memory: more than this is to be narrowed by its filters.
MAX_EXPORT_ROWS = 100_000
CSV_COLUMNS = ("id", "at", "actor_id", "actor_email", "action", "outcome", "object_type",
               "object_id", "consultation_id", "client_addr", "detail")

Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class AuditFilter(Query):
    user_id: Id | None = None
    #: Who acted, by e-mail: also finds failed logins, which have no user.
    actor_email: Annotated[str, StringConstraints(min_length=1, max_length=254)] | None = None
    consultation_id: Id | None = None
    action: Text64 | None = None
    outcome: Literal["success", "failure", "denied"] | None = None
    #: A StudyInstanceUID: the reads and refusals of that study.
    study: Text64 | None = None
    #: A patient ID (as the PACS and the cases hold it): what was done to that patient's
    #: studies and cases.
    patient_id: Text64 | None = None
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None


class AuditQuery(AuditFilter):
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


def _selection(query: AuditFilter) -> Select[AuditEvent]:
    stmt = select(AuditEvent)
    if query.user_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == query.user_id)
    if query.actor_email is not None:
        stmt = stmt.where(func.lower(AuditEvent.actor_email) == query.actor_email.strip().lower())
    if query.consultation_id is not None:
        stmt = stmt.where(AuditEvent.consultation_id == query.consultation_id)
    if query.action is not None:
        stmt = stmt.where(AuditEvent.action.startswith(query.action, autoescape=True)
                          if query.action.endswith(".") else AuditEvent.action == query.action)
    if query.outcome is not None:
        stmt = stmt.where(AuditEvent.outcome == query.outcome)
    if query.study is not None:
        stmt = stmt.where(AuditEvent.object_type == "study", AuditEvent.object_id == query.study)
    if query.patient_id is not None:
        # The patient's studies as our store indexes them and as cases name them.
        studies = select(DicomStudy.study_instance_uid).where(
            DicomStudy.patient_id == query.patient_id).union(
            select(CaseStudy.study_instance_uid).join(Case).where(
                Case.patient_id == query.patient_id))
        cases = select(cast(Case.id, String)).where(Case.patient_id == query.patient_id)
        stmt = stmt.where(or_(
            (AuditEvent.object_type == "study") & AuditEvent.object_id.in_(studies),
            (AuditEvent.object_type == "case") & AuditEvent.object_id.in_(cases)))
    if query.since is not None:
        stmt = stmt.where(AuditEvent.at >= query.since)
    if query.until is not None:
        stmt = stmt.where(AuditEvent.at < query.until)
    return stmt


def _newest_first(stmt: Select[AuditEvent]) -> Select[AuditEvent]:
    return stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def _count(stmt: Select[AuditEvent]) -> Select[int]:
    # maintain_column_froms keeps FROM audit_events when no filter names the table;
    # without it the count has no FROM and is always 1.
    return stmt.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)


@api.route("GET", "/api/audit", summary="Search the audit trail", tag="audit", roles=ADMIN,
           query=AuditQuery, response=AuditPage)
async def list_audit(ctx: Ctx, query: AuditQuery) -> AuditPage:
    """Newest first. `action` matches exactly, or a prefix when it ends in `.` (`auth.`);
    `study` finds the events of one study, `patient_id` those of the patient's studies and
    cases."""
    stmt = _selection(query)
    async with ctx.sessions() as session:
        total = await session.scalar(_count(stmt))
        rows = await session.scalars(_newest_first(stmt).limit(query.limit).offset(query.offset))
        return AuditPage(items=[AuditEventOut.model_validate(r) for r in rows], total=total or 0)


@api.route("GET", "/api/audit.csv", summary="Export the audit trail as CSV", tag="audit",
           roles=ADMIN, query=AuditFilter, response=File("text/csv"), errors=(413,))
async def export_audit(ctx: Ctx, query: AuditFilter) -> web.Response:
    """Every event the filters select, newest first, one row each with its `detail` as JSON;
    at most 100 000 (413 beyond: narrow the filters). The export is itself audited."""
    stmt = _selection(query)
    async with ctx.sessions.begin() as session:
        total = await session.scalar(_count(stmt)) or 0
        if total > MAX_EXPORT_ROWS:
            raise ApiError(413, f"{total} events selected, at most {MAX_EXPORT_ROWS} are "
                           "exported at once: narrow the filters (since, until, action)")
        rows = list(await session.scalars(_newest_first(stmt)))
        audit.record(session, "audit.export", actor=ctx.me, client_addr=ctx.client_addr,
                     detail={"rows": len(rows),
                             "filters": query.model_dump(mode="json", exclude_none=True)})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([r.id, r.at.isoformat(), r.actor_id or "", r.actor_email, r.action,
                         r.outcome, r.object_type, r.object_id, r.consultation_id or "",
                         r.client_addr, json.dumps(r.detail or {}, ensure_ascii=False)])
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    # UTF-8 with a byte-order mark: Excel, which most hospital staff open it in, then reads
    # Vietnamese names right.
    return web.Response(body=("\ufeff" + out.getvalue()).encode(), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="hoichan-audit-{stamp}.csv"'})
