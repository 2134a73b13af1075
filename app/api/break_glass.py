"""Break the glass: an admin who must read a consultation's images or minutes (a complaint,
an incident, a hospital's request) states why and gets a grant for a limited time. The grant
is audited as ``access.break_glass`` with ``review: true`` so it is looked at afterwards;
without one, an admin's reads of patient data are refused (403 ``break_glass_required``)
and audited as such."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.api.consultations import load_consultation
from app.api.routing import ADMIN, Api, Body, Ctx, Out
from app.db.models import BreakGlassGrant
from app.db.types import utcnow
from app.errors import ApiError
from app.scheduling import access

api = Api()

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10,
                                          max_length=2000)]


class BreakGlassIn(Body):
    #: Why the admin must read this consultation's patient data; kept in the audit trail.
    reason: Reason
    minutes: Annotated[int, Field(ge=5, le=240)] = 60


class BreakGlassOut(Out):
    id: int
    #: None for a grant over the whole store's images.
    consultation_id: int | None
    reason: str
    granted_at: datetime
    expires_at: datetime


def break_glass_required(what: str) -> ApiError:
    return ApiError(403, f"an admin reads {what} only under a break-the-glass grant: POST "
                    "/api/consultations/{id}/break-glass with the reason",
                    code="break_glass_required")


async def require_patient_data(ctx: Ctx, action: str, what: str, *,
                               identifying: bool = False) -> None:
    """Refuses the patient data (``what``) of the path's consultation to an admin without a
    grant and, when the data names the patient (``identifying``), to an observer the host
    has not shown the patient to; the refusal audited as ``action``. Called before the read
    opens its own transaction: on SQLite the refusal's write would otherwise wait for the
    read's lock."""
    if not access.needs_break_glass(ctx.me) and not identifying:
        return
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session)
        if access.needs_break_glass(ctx.me) and not await access.may_read_patient_data(
                session, ctx.me, c):
            error = break_glass_required(what)
        elif identifying and access.deidentified(c, ctx.me):
            error = ApiError(403, f"observers are not shown {what} unless the host shows "
                             "them who the patient is", code="patient_deidentified")
        else:
            return
        audit.record(session, action, actor=ctx.me, outcome=audit.DENIED,
                     object_type="consultation", object_id=c.id, consultation_id=c.id,
                     client_addr=ctx.client_addr,
                     detail={"reason": error.message, "code": error.code})
    raise error


def _grant(ctx: Ctx, body: BreakGlassIn, consultation_id: int | None) -> BreakGlassGrant:
    now = utcnow()
    return BreakGlassGrant(user_id=ctx.me.id, consultation_id=consultation_id,
                           reason=body.reason, granted_at=now,
                           expires_at=now + timedelta(minutes=body.minutes))


def _audit(session: AsyncSession, ctx: Ctx, grant: BreakGlassGrant) -> None:
    audit.record(session, "access.break_glass", actor=ctx.me,
                 object_type="consultation" if grant.consultation_id else "store",
                 object_id=grant.consultation_id or "", consultation_id=grant.consultation_id,
                 client_addr=ctx.client_addr,
                 detail={"reason": grant.reason, "grant_id": grant.id,
                         "expires_at": grant.expires_at.isoformat(), "review": True})


@api.route("POST", "/api/consultations/{consultation_id}/break-glass", summary="Break the "
           "glass: read a consultation's patient data for a while, with a reason",
           tag="audit", roles=ADMIN, body=BreakGlassIn, response=BreakGlassOut, status=201,
           errors=(403, 404))
async def break_glass(ctx: Ctx, body: BreakGlassIn) -> BreakGlassOut:
    """An admin's grant to read this consultation's images and minutes for ``minutes``
    (60 by default, at most 240), audited for review with the reason."""
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session)
        grant = _grant(ctx, body, c.id)
        session.add(grant)
        await session.flush()
        _audit(session, ctx, grant)
        return BreakGlassOut.model_validate(grant)


@api.route("POST", "/api/break-glass", summary="Break the glass over the whole store's "
           "images, with a reason", tag="audit", roles=ADMIN, body=BreakGlassIn,
           response=BreakGlassOut, status=201, errors=(403,))
async def break_glass_store(ctx: Ctx, body: BreakGlassIn) -> BreakGlassOut:
    """An admin's grant to read every study of the DICOM store (one no case holds, or an
    incident across patients) for ``minutes``, audited for review with the reason. The
    minutes of consultations still need a grant on each."""
    async with ctx.sessions.begin() as session:
        grant = _grant(ctx, body, None)
        session.add(grant)
        await session.flush()
        _audit(session, ctx, grant)
        return BreakGlassOut.model_validate(grant)
