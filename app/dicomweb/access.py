"""Who may read which study through DICOMweb, and the audit of every read."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.api.routing import authenticate
from app.appkeys import SESSIONS
from app.db.models import Case, CaseStudy, Consultation, PlatformRole, User
from app.errors import not_found
from app.pacs.models import DicomStudy
from app.scheduling.access import can_read_study, visible_clause


def readable_studies(user: User, stmt: Select[Any]) -> Select[Any]:
    """Restrict a query over DicomStudy to what the user may read: admins everything, others
    the studies of cases in consultations they may see."""
    if user.has_role(PlatformRole.admin):
        return stmt
    allowed = (
        select(CaseStudy.study_instance_uid)
        .join(Case, Case.id == CaseStudy.case_id)
        .join(Consultation, Consultation.id == Case.consultation_id)
    )
    clause = visible_clause(user)
    if clause is not None:
        allowed = allowed.where(clause)
    return stmt.where(DicomStudy.study_instance_uid.in_(allowed))


async def require_study(session: AsyncSession, user: User, study_uid: str) -> DicomStudy:
    """The stored study, if the user may read it; 404 alike for unknown and not allowed, so
    the existence of other patients' studies is not revealed."""
    study = await session.scalar(
        select(DicomStudy).where(DicomStudy.study_instance_uid == study_uid))
    if study is None or not await can_read_study(session, user, study_uid):
        raise not_found("study")
    return study


async def caller(request: web.Request) -> User:
    return await authenticate(request)


async def record_read(request: web.Request, user: User, action: str, study_uid: str,
                      detail: dict[str, Any] | None = None) -> None:
    async with request.app[SESSIONS].begin() as session:
        audit.record(session, action, actor=user, object_type="study", object_id=study_uid,
                     client_addr=request.remote or "",
                     detail={"path": request.path_qs[:500], **(detail or {})})
