"""Who may read which study through DICOMweb, and the audit of every read."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.api.routing import active_account, bearer_claims
from app.appkeys import READ_CACHE, READ_SESSIONS
from app.audit_windows import AUDIT_WINDOWS, AuditUnavailable, WindowKey
from app.db.models import Case, CaseStudy, Consultation, User
from app.errors import ApiError, not_found
from app.pacs.models import DicomStudy
from app.scheduling.access import (
    can_read_study,
    deidentified_studies,
    needs_break_glass,
    patient_data_clause,
    store_grant_clause,
)

# Any select, whatever its columns: what the access rule narrows it keeps.
AnySelect = TypeVar("AnySelect", bound="Select[*tuple[Any, ...]]")

# The authenticated caller of a DICOMweb request, for the audit of its refusal.
CALLER = web.RequestKey("dicomweb_caller", User)


class StudyNotPermitted(ApiError):
    """Answered exactly as an unknown study (404), so other patients' studies are not
    revealed; only the audit trail tells them apart."""

    def __init__(self) -> None:
        super().__init__(404, "study not found")


def readable_studies(user: User, stmt: AnySelect) -> AnySelect:
    """Restrict a query over DicomStudy to what the user may read: the studies of cases in
    consultations whose patient data they may read (app/scheduling/access.py)."""
    allowed = (
        select(CaseStudy.study_instance_uid)
        .join(Case, Case.id == CaseStudy.case_id)
        .join(Consultation, Consultation.id == Case.consultation_id)
    )
    clause = patient_data_clause(user)
    if clause is not None:
        allowed = allowed.where(clause)
    readable: ColumnElement[bool] = DicomStudy.study_instance_uid.in_(allowed)
    if needs_break_glass(user):
        readable = or_(readable, store_grant_clause(user))
    return stmt.where(readable)


async def require_study(request: web.Request, session: AsyncSession, user: User,
                        study_uid: str) -> DicomStudy:
    """The stored study, if the user may read it; 404 alike for unknown and not allowed.
    Kept a few seconds per reader and study (app/read_cache.py)."""

    async def load() -> tuple[DicomStudy | None, bool]:
        study = await session.scalar(
            select(DicomStudy).where(DicomStudy.study_instance_uid == study_uid))
        return study, study is not None and await can_read_study(session, user, study_uid)

    study, allowed = await request.app[READ_CACHE].get(("study", user.id, study_uid), load)
    if study is None:
        raise not_found("study")
    if not allowed:
        raise StudyNotPermitted()
    return study


async def masked_studies(request: web.Request, user: User) -> frozenset[str]:
    """The studies this caller reads de-identified (app/dicomweb/deidentify.py), kept a few
    seconds like the other access facts."""

    async def load() -> frozenset[str]:
        async with request.app[READ_SESSIONS]() as session:
            return await deidentified_studies(session, user)

    return await request.app[READ_CACHE].get(("deidentified", user.id), load)


async def caller(request: web.Request) -> User:
    """The bearer's account: the token checked on every request, the account (active, not
    removed) kept a few seconds, so a frame costs no database round trip for it."""
    claims = bearer_claims(request)

    async def load() -> User | None:
        async with request.app[READ_SESSIONS]() as session:
            return await session.scalar(select(User).where(User.id == claims.user_id))

    user = active_account(await request.app[READ_CACHE].get(("user", claims.user_id), load))
    request[CALLER] = user
    return user


async def record_read(request: web.Request, user: User, action: str, study_uid: str,
                      detail: dict[str, Any] | None = None) -> None:
    """Adds a read about to be answered to its audit window (app/audit_windows.py), in the
    trail within a second. When the trail cannot be written, 503 instead of the answer."""
    key = WindowKey(action=action, actor_id=user.id, actor_email=user.email,
                    client_addr=request.remote or "", object_type="study",
                    object_id=study_uid, outcome=audit.SUCCESS)
    try:
        await request.app[AUDIT_WINDOWS].record(key, detail or {})
    except AuditUnavailable as exc:
        raise ApiError(503, f"reads are refused while the audit trail cannot be written "
                       f"({exc})") from None
