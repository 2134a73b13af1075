"""The patient's consents on a case (Decree 13/2023/ND-CP: explicit, informed, withdrawable):
to the tele-consultation and to its recording, each given, refused or withdrawn by the
patient or their representative, on the signed form or verbally to the doctor who records
it. Records are never changed (the migration's triggers refuse it); a scope's state is its
latest record. Each change is audited and told to the room (``consent:updated``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Literal, Self

from aiohttp import web
from pydantic import StringConstraints, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.api.break_glass import require_patient_data
from app.api.consultations import UserBrief, load_consultation
from app.api.routing import ANY_USER, Api, Body, Ctx, File, Out, Query
from app.api.schemas import Name, UtcDatetime
from app.appkeys import ROOM_NOTIFY
from app.db.models import (
    Case,
    Consent,
    ConsentDecision,
    ConsentGiver,
    ConsentMethod,
    ConsentScope,
    Consultation,
    ConsultationStatus,
    User,
)
from app.db.types import utcnow
from app.errors import ApiError, forbidden, not_found
from app.minutes.assemble import requesting_hospital
from app.minutes.consent_form import ConsentForm, render_consent_form
from app.roles import PlatformRole, RoomRole
from app.scheduling import access

api = Api()

#: A consent given "now" on a device a little ahead of the server is still now.
CLOCK_SKEW = timedelta(minutes=5)
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Relation = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]


class ConsentIn(Body):
    scope: ConsentScope
    decision: ConsentDecision
    given_by: ConsentGiver
    #: The patient's or the representative's name, as they signed or said it.
    giver_name: Name
    #: Required for a representative: their relation to the patient (con trai, vợ, ...).
    relation: Relation = ""
    method: ConsentMethod
    #: When it was given; now when omitted. Not in the future.
    given_at: UtcDatetime | None = None
    note: Note = ""

    @model_validator(mode="after")
    def _representative_named(self) -> Self:
        if self.given_by is ConsentGiver.representative and not self.relation:
            raise ValueError("a representative's relation to the patient is required")
        if self.given_by is ConsentGiver.patient and self.relation:
            raise ValueError("relation is only for a representative")
        return self


class ConsentOut(Out):
    id: int
    scope: ConsentScope
    decision: ConsentDecision
    given_by: ConsentGiver
    giver_name: str
    relation: str
    method: ConsentMethod
    given_at: datetime
    note: str
    recorded_by: UserBrief
    recorded_at: datetime


class ConsentState(Out):
    #: "none" until anything is recorded for the scope.
    status: Literal["none", "granted", "refused", "withdrawn"]
    latest: ConsentOut | None


class CaseConsentsOut(Out):
    consultation_id: int
    case_id: int
    teleconsultation: ConsentState
    recording: ConsentState
    #: Every record, oldest first; empty for those who see the states alone.
    history: list[ConsentOut]
    #: Whether the caller may record a consent on this case.
    can_record: bool


class FormQuery(Query):
    language: Literal["vi", "en"] = "vi"


def _case(c: Consultation, ctx: Ctx) -> Case:
    case_id = ctx.path_id("case_id")
    case = next((k for k in c.cases if k.id == case_id), None)
    if case is None:
        raise not_found("case")
    return case


def may_record(c: Consultation, user: User) -> bool:
    """Doctors of the consultation who see the patient (not observers) and coordinators."""
    if user.has_role(PlatformRole.coordinator):
        return True
    role = access.room_role(c, user)
    return role is not None and role is not RoomRole.observer


async def case_consents(session: AsyncSession, case_id: int) -> list[Consent]:
    return list((await session.scalars(
        select(Consent).where(Consent.case_id == case_id).order_by(Consent.id))).all())


def _state(records: list[Consent], scope: ConsentScope) -> ConsentState:
    latest = next((r for r in reversed(records) if r.scope is scope), None)
    if latest is None:
        return ConsentState(status="none", latest=None)
    return ConsentState(status=latest.decision.value, latest=ConsentOut.model_validate(latest))


def _out(c: Consultation, case: Case, records: list[Consent],
         user: User | None) -> CaseConsentsOut:
    """Who consented and how is shown to those who may record it; the others (observers,
    admins outside the consultation, the room as a whole when ``user`` is None) see the
    states alone."""
    full = user is not None and may_record(c, user)
    states = {scope: _state(records, scope) for scope in ConsentScope}
    if not full:
        states = {scope: ConsentState(status=s.status, latest=None)
                  for scope, s in states.items()}
    return CaseConsentsOut(
        consultation_id=c.id, case_id=case.id,
        teleconsultation=states[ConsentScope.teleconsultation],
        recording=states[ConsentScope.recording],
        history=[ConsentOut.model_validate(r) for r in records] if full else [],
        can_record=full)


def _refusal(c: Consultation, records: list[Consent], body: ConsentIn,
             user: User) -> ApiError | None:
    if not may_record(c, user):
        return forbidden("only the consultation's doctors (not observers) and coordinators "
                         "record consent")
    if c.status is ConsultationStatus.cancelled:
        return ApiError(409, "consultation is cancelled", code="wrong_status")
    if body.decision is ConsentDecision.withdrawn:
        current = _state(records, body.scope)
        if current.status != "granted":
            return ApiError(409, f"there is no {body.scope.value} consent to withdraw (it is "
                            f"{current.status})", code="not_granted")
    return None


@api.route("GET", "/api/consultations/{consultation_id}/cases/{case_id}/consents",
           summary="The patient's consents on a case", tag="consent", roles=ANY_USER,
           response=CaseConsentsOut, errors=(404,))
async def read_consents(ctx: Ctx) -> CaseConsentsOut:
    """The state of each scope (tele-consultation, recording) and every record behind it."""
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session)
        case = _case(c, ctx)
        return _out(c, case, await case_consents(session, case.id), ctx.me)


@api.route("POST", "/api/consultations/{consultation_id}/cases/{case_id}/consents",
           summary="Record a consent given, refused or withdrawn", tag="consent",
           roles=ANY_USER, body=ConsentIn, response=CaseConsentsOut, status=201,
           errors=(403, 404, 409, 422))
async def record_consent(ctx: Ctx, body: ConsentIn) -> CaseConsentsOut:
    """A doctor of the consultation (not an observer) or a coordinator records what the
    patient or their representative decided, and how: on the signed form or verbally to
    this doctor. A withdrawal ends a granted consent; the records before it stay."""
    now = utcnow()
    given_at = body.given_at or now
    if given_at > now + CLOCK_SKEW:
        raise ApiError(422, "given_at is in the future", field="given_at")
    error: ApiError | None = None
    out: CaseConsentsOut | None = None
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        case = _case(c, ctx)
        records = await case_consents(session, case.id)
        error = _refusal(c, records, body, ctx.me)
        if error is not None:
            audit.record(session, "consent.record", actor=ctx.me, outcome=audit.DENIED,
                         object_type="case", object_id=case.id, consultation_id=c.id,
                         client_addr=ctx.client_addr,
                         detail={"reason": error.message, "code": error.code,
                                 "scope": body.scope.value})
        else:
            consent = Consent(
                case_id=case.id, scope=body.scope, decision=body.decision,
                given_by=body.given_by, giver_name=body.giver_name, relation=body.relation,
                method=body.method, given_at=given_at, note=body.note,
                recorded_by_id=ctx.me.id, recorded_at=now)
            session.add(consent)
            await session.flush()
            await session.refresh(consent, ["recorded_by"])
            records.append(consent)
            audit.record(session, "consent.record", actor=ctx.me, object_type="case",
                         object_id=case.id, consultation_id=c.id,
                         client_addr=ctx.client_addr,
                         detail={"consent_id": consent.id, "scope": body.scope.value,
                                 "decision": body.decision.value,
                                 "method": body.method.value,
                                 "given_by": body.given_by.value})
            out = _out(c, case, records, ctx.me)
    if error is not None:
        raise error
    assert out is not None
    notify = ctx.request.app.get(ROOM_NOTIFY)
    if notify is not None:
        # Observers are in the room too: it hears the states only, and those who may see
        # who consented read the records themselves.
        await notify(c.id, "consent:updated", _out(c, case, records, None).model_dump(
            mode="json", exclude={"can_record"}))
    return out


@api.route("GET", "/api/consultations/{consultation_id}/cases/{case_id}/consent-form",
           summary="The printable consent form of a case", tag="consent", roles=ANY_USER,
           query=FormQuery, response=File("application/pdf"), errors=(403, 404))
async def consent_form(ctx: Ctx, query: FormQuery) -> web.Response:
    """An A4 form in Vietnamese (or English) with the patient's details filled in, for the
    patient or their representative to tick and sign; each download is audited."""
    await require_patient_data(ctx, "consent.form", "the patient's details",
                               identifying=True)
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session)
        case = _case(c, ctx)
        form = ConsentForm(
            consultation_id=c.id, title=c.title,
            requesting_hospital=requesting_hospital(c),
            consulting_hospital=c.host_hospital.name, scheduled_start=c.scheduled_start,
            patient_name=case.patient_name, patient_birth_date=case.patient_birth_date,
            patient_sex=case.patient_sex, patient_id=case.patient_id,
            national_id=case.national_id, language=query.language)
        audit.record(session, "consent.form", actor=ctx.me, object_type="case",
                     object_id=case.id, consultation_id=c.id, client_addr=ctx.client_addr,
                     detail={"language": query.language})
    body = await asyncio.to_thread(render_consent_form, form)
    return web.Response(body=body, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="giay-dong-y-{c.id}-{case.id}.pdf"',
        "Cache-Control": "no-store"})
