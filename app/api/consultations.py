"""Scheduling: consultations, invitations, cases, the expert's record, room join tokens."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, Field, StringConstraints, model_validator
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app import audit
from app.api.people import HospitalOut
from app.api.routing import ANY_USER, STAFF, Api, Body, Ctx, Out, Query
from app.api.schemas import Id, Limit, Offset, UtcDatetime
from app.appkeys import RATE_LIMITER, ROOM_NOTIFY
from app.auth import tokens
from app.auth.rate_limit import JOIN_TOKEN_ADDRESS, JOIN_TOKEN_USER
from app.auth.turn import issue_turn_credential
from app.config import Settings
from app.db.models import (
    Case,
    CaseStudy,
    Consent,
    Consultation,
    ConsultationRecord,
    ConsultationStatus,
    Hospital,
    Invitation,
    User,
)
from app.db.types import utcnow
from app.deidentify import MASKED_ID, initials
from app.errors import ApiError, forbidden, not_found
from app.roles import RoomRole
from app.scheduling import access
from app.scheduling.clash import ACTIVE, find_clash, lock_users

api = Api()

MAX_DURATION = timedelta(hours=24)


@cache
def _zones() -> frozenset[str]:
    # available_timezones() reads the whole tz database (milliseconds) on every call; the
    # set does not change while the process runs.
    return frozenset(available_timezones())


def _known_zone(name: str) -> str:
    if name not in _zones():
        raise ValueError("unknown IANA time zone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown IANA time zone") from None
    return name


TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_zone)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
# DICOM VRs: LO is 64 characters without backslash or control characters; PN up to 324.
PatientId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=64, pattern=r"^[^\\\x00-\x1f]+$")]
PatientName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                               max_length=324, pattern=r"^[^\\\x00-\x1f]+$")]
StudyUid = Annotated[str, StringConstraints(max_length=64,
                                            pattern=r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")]
#: The citizen's identity number (CCCD, 12 digits; the older CMND, 9), when the case has one.
NationalId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^(\d{9}|\d{12})?$")]


# ---- bodies -----------------------------------------------------------------------------

class InvitationIn(Body):
    user_id: Id | None = None
    hospital_id: Id | None = None
    role: RoomRole

    @model_validator(mode="after")
    def _one_invitee(self) -> Self:
        if (self.user_id is None) == (self.hospital_id is None):
            raise ValueError("give exactly one of user_id and hospital_id")
        if self.hospital_id is not None and self.role is RoomRole.host:
            raise ValueError("a host is a person: invite a user as host, not a hospital")
        return self


class InvitationPatch(Body):
    role: RoomRole


class CaseIn(Body):
    patient_id: PatientId
    patient_name: PatientName
    patient_birth_date: date | None = None
    patient_sex: Literal["M", "F", "O", ""] = ""
    national_id: NationalId = ""
    clinical_question: LongText = ""
    study_instance_uids: list[StudyUid] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _distinct_studies(self) -> Self:
        if len(set(self.study_instance_uids)) != len(self.study_instance_uids):
            raise ValueError("study_instance_uids repeats a study")
        if self.patient_birth_date is not None and self.patient_birth_date > date.today():
            raise ValueError("patient_birth_date is in the future")
        return self


def _check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ApiError(422, "end must be after start", field="end")
    if end - start > MAX_DURATION:
        raise ApiError(422, "a consultation lasts at most 24 hours", field="end")


class ConsultationIn(Body):
    title: Title
    description: LongText = ""
    start: UtcDatetime
    end: UtcDatetime
    timezone: TimeZone = "UTC"
    host_hospital_id: Id
    host_user_id: Id
    invitations: list[InvitationIn] = Field(default_factory=list, max_length=200)
    cases: list[CaseIn] = Field(default_factory=list, max_length=20)


class ConsultationPatch(Body):
    title: Title | None = None
    description: LongText | None = None
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    timezone: TimeZone | None = None
    host_hospital_id: Id | None = None


class RecordIn(Body):
    conclusion: LongText
    treatment_plan: LongText


class ConsultationQuery(Query):
    start_from: UtcDatetime | None = Field(default=None, alias="from")
    start_to: UtcDatetime | None = Field(default=None, alias="to")
    hospital_id: Id | None = None
    status: ConsultationStatus | None = None
    limit: Limit = 100
    offset: Offset = 0


# ---- responses --------------------------------------------------------------------------

class UserBrief(Out):
    id: int
    name: str
    email: str
    hospital_id: int


class InvitationOut(Out):
    id: int
    role: RoomRole
    user: UserBrief | None
    hospital: HospitalOut | None


class CaseOut(Out):
    id: int
    patient_id: str
    patient_name: str
    patient_birth_date: date | None
    patient_sex: str
    national_id: str
    #: Whole years on the consultation's first day; kept when the case is de-identified.
    patient_age: int | None
    #: False for an observer the host has not shown the patient to: the name as initials,
    #: the IDs masked, the birth date left out (age and sex kept).
    identified: bool
    clinical_question: str
    study_instance_uids: list[str]


class RecordOut(Out):
    conclusion: str
    treatment_plan: str
    author: UserBrief
    updated_at: datetime


class ConsultationOut(Out):
    id: int
    title: str
    description: str
    start: datetime
    end: datetime
    timezone: str
    status: ConsultationStatus
    host_hospital: HospitalOut
    created_by_id: int
    created_at: datetime
    updated_at: datetime
    invitations: list[InvitationOut]
    cases: list[CaseOut]
    record: RecordOut | None
    #: Whether the host shows observers who the patient is.
    observers_identified: bool
    my_room_role: RoomRole | None


class ConsultationPage(Out):
    items: list[ConsultationOut]
    total: int


class IceServerOut(Out):
    """One entry of RTCPeerConnection's ``iceServers``, as the browser takes it."""

    urls: list[str]
    username: str
    credential: str


class JoinTokenOut(Out):
    token: str
    expires_at: datetime
    consultation_id: int
    room_role: RoomRole
    ice_servers: list[IceServerOut] = Field(description=(
        "TURN servers with time-limited credentials for every peer connection made with "
        "this token; empty when no TURN server is configured"))


def _age(birth: date | None, on: date) -> int | None:
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _case_out(case: Case, on: date, identified: bool = True) -> CaseOut:
    return CaseOut(
        id=case.id, patient_id=case.patient_id if identified else MASKED_ID,
        patient_name=case.patient_name if identified else initials(case.patient_name),
        patient_birth_date=case.patient_birth_date if identified else None,
        patient_sex=case.patient_sex,
        national_id=case.national_id if identified else "",
        patient_age=_age(case.patient_birth_date, on), identified=identified,
        clinical_question=case.clinical_question,
        study_instance_uids=[s.study_instance_uid for s in case.studies],
    )


def _out(c: Consultation, viewer: User) -> ConsultationOut:
    return ConsultationOut(
        id=c.id, title=c.title, description=c.description, start=c.scheduled_start,
        end=c.scheduled_end, timezone=c.timezone, status=c.status,
        host_hospital=HospitalOut.model_validate(c.host_hospital),
        created_by_id=c.created_by_id, created_at=c.created_at, updated_at=c.updated_at,
        invitations=[InvitationOut.model_validate(i) for i in c.invitations],
        cases=[_case_out(case, c.scheduled_start.date(), not access.deidentified(c, viewer))
               for case in c.cases],
        observers_identified=c.observers_identified,
        record=RecordOut.model_validate(c.record) if c.record else None,
        my_room_role=access.room_role(c, viewer),
    )


# ---- loading and checks -----------------------------------------------------------------

_FULL = (
    selectinload(Consultation.invitations),
    selectinload(Consultation.cases).selectinload(Case.studies),
    selectinload(Consultation.record),
)


async def load_consultation(ctx: Ctx, session: AsyncSession, *,
                            lock: bool = False) -> Consultation:
    """The consultation of the path, if the caller may see it (404 otherwise, so ids of
    consultations one is not invited to are not revealed)."""
    stmt = select(Consultation).where(Consultation.id == ctx.path_id("consultation_id"))
    clause = access.visible_clause(ctx.me)
    if clause is not None:
        stmt = stmt.where(clause)
    if lock:
        stmt = stmt.with_for_update(of=Consultation)
    consultation = await session.scalar(stmt.options(*_FULL))
    if consultation is None:
        raise not_found("consultation")
    return consultation


async def _reload(session: AsyncSession, consultation_id: int) -> Consultation:
    """The consultation as the database now has it, relationships included, within the
    open transaction (pending audit events stay in the session and commit with it)."""
    await session.flush()
    c = await session.scalar(
        select(Consultation).where(Consultation.id == consultation_id).options(*_FULL)
        .execution_options(populate_existing=True))
    assert c is not None
    return c


def _require_editable(c: Consultation) -> None:
    if c.status is not ConsultationStatus.scheduled:
        raise ApiError(409, f"consultation is {c.status.value}; only a scheduled one can be "
                       "changed", code="wrong_status")


def _clash_error(clash: Consultation) -> ApiError:
    return ApiError(
        409,
        f"the host expert is already booked for consultation {clash.id} "
        f"\u201c{clash.title}\u201d ({clash.scheduled_start.isoformat()} to "
        f"{clash.scheduled_end.isoformat()})",
        code="booking_clash",
        extra={"clash": {"id": clash.id, "title": clash.title,
                         "start": clash.scheduled_start.isoformat(),
                         "end": clash.scheduled_end.isoformat()}},
    )


async def _check_hosts_free(session: AsyncSession, c: Consultation, host_ids: set[int],
                            exclude: int | None) -> None:
    await lock_users(session, host_ids)
    clash = await find_clash(session, host_ids, c.scheduled_start, c.scheduled_end, exclude)
    if clash is not None:
        raise _clash_error(clash)


def _host_ids(c: Consultation) -> set[int]:
    return {i.user_id for i in c.invitations if i.role is RoomRole.host and i.user_id}


async def _invitee(session: AsyncSession, inv: InvitationIn, field: str) -> Invitation:
    if inv.user_id is not None:
        user = await session.get(User, inv.user_id)
        if user is None or not user.active:
            raise ApiError(422, "no such active user", field=f"{field}.user_id")
        return Invitation(user_id=user.id, role=inv.role)
    hospital = await session.get(Hospital, inv.hospital_id)
    if hospital is None:
        raise ApiError(422, "no such hospital", field=f"{field}.hospital_id")
    return Invitation(hospital_id=hospital.id, role=inv.role)


def _new_case(body: CaseIn) -> Case:
    return Case(
        patient_id=body.patient_id, patient_name=body.patient_name,
        patient_birth_date=body.patient_birth_date, patient_sex=body.patient_sex,
        national_id=body.national_id, clinical_question=body.clinical_question,
        studies=[CaseStudy(study_instance_uid=uid) for uid in body.study_instance_uids],
    )


# ---- routes -----------------------------------------------------------------------------

@api.route("POST", "/api/consultations", summary="Schedule a consultation", tag="scheduling",
           roles=STAFF, body=ConsultationIn, response=ConsultationOut, status=201,
           errors=(409,))
async def create_consultation(ctx: Ctx, body: ConsultationIn) -> ConsultationOut:
    """The host expert (`host_user_id`) is invited with the host role. Refused with 409
    `booking_clash`, naming the clashing consultation, when that expert already hosts an
    overlapping scheduled or live consultation."""
    _check_window(body.start, body.end)
    if body.end <= utcnow():
        raise ApiError(422, "the consultation would be over already", field="end")
    async with ctx.sessions.begin() as session:
        host_hospital = await session.get(Hospital, body.host_hospital_id)
        if host_hospital is None:
            raise ApiError(422, "no such hospital", field="host_hospital_id")
        c = Consultation(
            title=body.title, description=body.description, scheduled_start=body.start,
            scheduled_end=body.end, timezone=body.timezone, host_hospital_id=host_hospital.id,
            created_by_id=ctx.me.id,
        )
        host = await session.get(User, body.host_user_id)
        if host is None or not host.active:
            raise ApiError(422, "no such active user", field="host_user_id")
        invitations = [Invitation(user_id=host.id, role=RoomRole.host)]
        seen_users = {body.host_user_id}
        seen_hospitals: set[int] = set()
        for n, inv in enumerate(body.invitations):
            if inv.user_id in seen_users or inv.hospital_id in seen_hospitals:
                raise ApiError(422, "invited twice", field=f"invitations.{n}")
            seen_users.add(inv.user_id or 0)
            seen_hospitals.add(inv.hospital_id or 0)
            invitations.append(await _invitee(session, inv, f"invitations.{n}"))
        c.invitations = invitations
        c.cases = [_new_case(case) for case in body.cases]
        await _check_hosts_free(session, c, _host_ids(c), None)
        session.add(c)
        await session.flush()
        audit.record(session, "consultation.create", actor=ctx.me, object_type="consultation",
                     object_id=c.id, consultation_id=c.id, client_addr=ctx.client_addr,
                     detail={"title": c.title, "start": body.start.isoformat(),
                             "end": body.end.isoformat(),
                             "invitations": [i.model_dump(mode="json", exclude_none=True)
                                             for i in body.invitations],
                             "host_user_id": body.host_user_id, "cases": len(body.cases)})
        return _out(await _reload(session, c.id), ctx.me)


@api.route("GET", "/api/consultations", summary="List consultations", tag="scheduling",
           roles=ANY_USER, query=ConsultationQuery, response=ConsultationPage)
async def list_consultations(ctx: Ctx, query: ConsultationQuery) -> ConsultationPage:
    """Staff see all; doctors those they are invited to. `from`/`to` bound the start time;
    `hospital_id` matches the host hospital or an invited hospital or user of it."""
    stmt = select(Consultation)
    clause = access.visible_clause(ctx.me)
    if clause is not None:
        stmt = stmt.where(clause)
    if query.start_from is not None:
        stmt = stmt.where(Consultation.scheduled_start >= query.start_from)
    if query.start_to is not None:
        stmt = stmt.where(Consultation.scheduled_start < query.start_to)
    if query.status is not None:
        stmt = stmt.where(Consultation.status == query.status)
    if query.hospital_id is not None:
        invited = select(Invitation.consultation_id).outerjoin(
            User, User.id == Invitation.user_id).where(
            or_(Invitation.hospital_id == query.hospital_id,
                User.hospital_id == query.hospital_id))
        stmt = stmt.where(or_(Consultation.host_hospital_id == query.hospital_id,
                              Consultation.id.in_(invited)))
    async with ctx.sessions() as session:
        ids = list(await session.scalars(
            stmt.with_only_columns(Consultation.id)
            .order_by(Consultation.scheduled_start, Consultation.id)))
        page = ids[query.offset:query.offset + query.limit]
        rows = await session.scalars(
            select(Consultation).where(Consultation.id.in_(page)).options(*_FULL)
            .order_by(Consultation.scheduled_start, Consultation.id))
        return ConsultationPage(items=[_out(c, ctx.me) for c in rows], total=len(ids))


@api.route("GET", "/api/me/consultations", summary="My upcoming consultations",
           tag="scheduling", roles=ANY_USER, response=list[ConsultationOut])
async def my_consultations(ctx: Ctx) -> list[ConsultationOut]:
    """Scheduled or live consultations not yet over that the caller is invited to, directly
    or through their hospital, soonest first."""
    stmt = (
        select(Consultation)
        .where(access.invited_clause(ctx.me), Consultation.status.in_(ACTIVE),
               Consultation.scheduled_end > utcnow())
        .options(*_FULL)
        .order_by(Consultation.scheduled_start, Consultation.id)
        .limit(200)
    )
    async with ctx.sessions() as session:
        return [_out(c, ctx.me) for c in await session.scalars(stmt)]


@api.route("GET", "/api/consultations/{consultation_id}", summary="One consultation",
           tag="scheduling", roles=ANY_USER, response=ConsultationOut)
async def get_consultation(ctx: Ctx) -> ConsultationOut:
    async with ctx.sessions() as session:
        return _out(await load_consultation(ctx, session), ctx.me)


@api.route("PATCH", "/api/consultations/{consultation_id}", summary="Reschedule or edit",
           tag="scheduling", roles=STAFF, body=ConsultationPatch, response=ConsultationOut,
           errors=(409,))
async def patch_consultation(ctx: Ctx, body: ConsultationPatch) -> ConsultationOut:
    """Only a scheduled consultation changes; a new time window is checked for host clashes."""
    changes = body.model_dump(exclude_none=True)
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        _require_editable(c)
        start = body.start or c.scheduled_start
        end = body.end or c.scheduled_end
        _check_window(start, end)
        if (body.start or body.end) and end <= utcnow():
            raise ApiError(422, "the consultation would be over already", field="end")
        if body.host_hospital_id is not None and await session.get(
                Hospital, body.host_hospital_id) is None:
            raise ApiError(422, "no such hospital", field="host_hospital_id")
        c.scheduled_start, c.scheduled_end = start, end
        for name in ("title", "description", "timezone", "host_hospital_id"):
            if name in changes:
                setattr(c, name, changes[name])
        if body.start or body.end:
            await _check_hosts_free(session, c, _host_ids(c), c.id)
        audit.record(session, "consultation.update", actor=ctx.me, object_type="consultation",
                     object_id=c.id, consultation_id=c.id, client_addr=ctx.client_addr,
                     detail=body.model_dump(mode="json", exclude_none=True))
        await session.flush()
        return _out(await _reload(session, c.id), ctx.me)


@api.route("POST", "/api/consultations/{consultation_id}/cancel", summary="Cancel",
           tag="scheduling", roles=STAFF, response=ConsultationOut, errors=(409,))
async def cancel_consultation(ctx: Ctx) -> ConsultationOut:
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        _require_editable(c)
        c.status = ConsultationStatus.cancelled
        audit.record(session, "consultation.cancel", actor=ctx.me, object_type="consultation",
                     object_id=c.id, consultation_id=c.id, client_addr=ctx.client_addr)
        await session.flush()
        return _out(await _reload(session, c.id), ctx.me)


@api.route("POST", "/api/consultations/{consultation_id}/invitations", summary="Invite a user "
           "or a hospital", tag="scheduling", roles=STAFF, body=InvitationIn,
           response=InvitationOut, status=201, errors=(409,))
async def invite(ctx: Ctx, body: InvitationIn) -> Invitation:
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        _require_editable(c)
        if any((body.user_id and i.user_id == body.user_id)
               or (body.hospital_id and i.hospital_id == body.hospital_id)
               for i in c.invitations):
            raise ApiError(409, "already invited; change the role of the invitation instead",
                           code="already_invited")
        inv = await _invitee(session, body, "body")
        c.invitations.append(inv)
        if inv.role is RoomRole.host and inv.user_id:
            await _check_hosts_free(session, c, {inv.user_id}, c.id)
        await session.flush()
        audit.record(session, "invitation.create", actor=ctx.me, object_type="invitation",
                     object_id=inv.id, consultation_id=c.id, client_addr=ctx.client_addr,
                     detail=body.model_dump(mode="json", exclude_none=True))
        await session.refresh(inv, ["user", "hospital"])
        return inv


async def _invitation(ctx: Ctx, c: Consultation) -> Invitation:
    inv_id = ctx.path_id("invitation_id")
    for inv in c.invitations:
        if inv.id == inv_id:
            return inv
    raise not_found("invitation")


def _keeps_a_host(c: Consultation, changed: Invitation, new_role: RoomRole | None) -> None:
    hosts = [i for i in c.invitations if i.role is RoomRole.host]
    if changed in hosts and new_role is not RoomRole.host and len(hosts) == 1:
        raise ApiError(409, "a consultation keeps at least one host; invite the new host "
                       "first", code="last_host")


@api.route("PATCH", "/api/consultations/{consultation_id}/invitations/{invitation_id}",
           summary="Change an invitee's room role", tag="scheduling", roles=STAFF,
           body=InvitationPatch, response=InvitationOut, errors=(409,))
async def patch_invitation(ctx: Ctx, body: InvitationPatch) -> Invitation:
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        _require_editable(c)
        inv = await _invitation(ctx, c)
        if body.role is RoomRole.host and inv.hospital_id is not None:
            raise ApiError(422, "a host is a person: a hospital cannot be host", field="role")
        _keeps_a_host(c, inv, body.role)
        before = inv.role
        inv.role = body.role
        if body.role is RoomRole.host and inv.user_id:
            await _check_hosts_free(session, c, {inv.user_id}, c.id)
        audit.record(session, "invitation.update", actor=ctx.me, object_type="invitation",
                     object_id=inv.id, consultation_id=c.id, client_addr=ctx.client_addr,
                     detail={"role": body.role.value, "was": before.value})
        return inv


@api.route("DELETE", "/api/consultations/{consultation_id}/invitations/{invitation_id}",
           summary="Uninvite", tag="scheduling", roles=STAFF, status=204, errors=(409,))
async def uninvite(ctx: Ctx) -> None:
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        _require_editable(c)
        inv = await _invitation(ctx, c)
        _keeps_a_host(c, inv, None)
        c.invitations.remove(inv)
        audit.record(session, "invitation.delete", actor=ctx.me, object_type="invitation",
                     object_id=inv.id, consultation_id=c.id, client_addr=ctx.client_addr,
                     detail={"user_id": inv.user_id, "hospital_id": inv.hospital_id,
                             "role": inv.role.value})


@api.route("POST", "/api/consultations/{consultation_id}/cases", summary="Attach a case",
           tag="scheduling", roles=STAFF, body=CaseIn, response=CaseOut, status=201,
           errors=(409,))
async def attach_case(ctx: Ctx, body: CaseIn) -> CaseOut:
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        if c.status in (ConsultationStatus.ended, ConsultationStatus.cancelled):
            raise ApiError(409, f"consultation is {c.status.value}", code="wrong_status")
        case = _new_case(body)
        c.cases.append(case)
        await session.flush()
        audit.record(session, "case.create", actor=ctx.me, object_type="case",
                     object_id=case.id, consultation_id=c.id, client_addr=ctx.client_addr,
                     detail={"patient_id": body.patient_id,
                             "studies": body.study_instance_uids})
        return _case_out(case, c.scheduled_start.date())


class ObserverIdentityIn(Body):
    identified: bool


@api.route("PUT", "/api/consultations/{consultation_id}/observer-identity", summary="Show "
           "observers who the patient is, or not", tag="scheduling", roles=ANY_USER,
           body=ObserverIdentityIn, response=ConsultationOut, errors=(403,))
async def observer_identity(ctx: Ctx, body: ObserverIdentityIn) -> ConsultationOut:
    """Observers see each case de-identified (initials, IDs masked, age and sex kept) until
    the host shows them the patient; the host may hide it again. Audited."""
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        if access.room_role(c, ctx.me) is not RoomRole.host:
            raise forbidden("only the host decides what observers see of the patient")
        c.observers_identified = body.identified
        audit.record(session, "consultation.observer_identity", actor=ctx.me,
                     object_type="consultation", object_id=c.id, consultation_id=c.id,
                     client_addr=ctx.client_addr, detail={"identified": body.identified})
        return _out(await _reload(session, c.id), ctx.me)


@api.route("DELETE", "/api/consultations/{consultation_id}/cases/{case_id}",
           summary="Detach a case", tag="scheduling", roles=STAFF, status=204, errors=(409,))
async def detach_case(ctx: Ctx) -> None:
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        _require_editable(c)
        case_id = ctx.path_id("case_id")
        case = next((k for k in c.cases if k.id == case_id), None)
        if case is None:
            raise not_found("case")
        if await session.scalar(select(Consent.id).where(Consent.case_id == case_id)
                                .limit(1)) is not None:
            raise ApiError(409, "the patient's consent is recorded on this case, and that "
                           "record is kept", code="case_has_consents")
        c.cases.remove(case)
        audit.record(session, "case.delete", actor=ctx.me, object_type="case",
                     object_id=case_id, consultation_id=c.id, client_addr=ctx.client_addr,
                     detail={"patient_id": case.patient_id})


@api.route("PUT", "/api/consultations/{consultation_id}/record", summary="Write the "
           "conclusion and treatment plan", tag="record", roles=ANY_USER, body=RecordIn,
           response=RecordOut, errors=(403, 409))
async def write_record(ctx: Ctx, body: RecordIn) -> ConsultationRecord:
    """Only a host of the consultation writes it, while the consultation is scheduled, live
    or ended (not cancelled). Each save is audited with the text it saved."""
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session, lock=True)
        if access.room_role(c, ctx.me) is not RoomRole.host:
            raise forbidden("only the host writes the record")
        if c.status is ConsultationStatus.cancelled:
            raise ApiError(409, "consultation is cancelled", code="wrong_status")
        record = c.record or ConsultationRecord(consultation_id=c.id)
        record.conclusion = body.conclusion
        record.treatment_plan = body.treatment_plan
        record.author_id = ctx.me.id
        record.updated_at = utcnow()
        c.record = record
        await session.flush()
        audit.record(session, "record.write", actor=ctx.me, object_type="record",
                     object_id=record.id, consultation_id=c.id, client_addr=ctx.client_addr,
                     detail=body.model_dump())
        await session.refresh(record, ["author"])
    # After the commit: the room hears of what is saved, not of what might roll back.
    notify = ctx.request.app.get(ROOM_NOTIFY)
    if notify is not None:
        await notify(c.id, "record:saved",
                     RecordOut.model_validate(record).model_dump(mode="json"))
    return record


@api.route("GET", "/api/consultations/{consultation_id}/record", summary="Read the record",
           tag="record", roles=ANY_USER, response=RecordOut)
async def read_record(ctx: Ctx) -> ConsultationRecord:
    async with ctx.sessions() as session:
        c = await load_consultation(ctx, session)
    if c.record is None:
        raise not_found("record")
    return c.record


@api.route("POST", "/api/consultations/{consultation_id}/join-token", summary="A token to "
           "join the room", tag="room", roles=ANY_USER, response=JoinTokenOut,
           errors=(403, 409, 429))
async def join_token(ctx: Ctx) -> JoinTokenOut:
    """Only for invitees (directly or through their hospital), from the lobby lead time
    before the start until the end, while the consultation is scheduled or live. The token
    names the room and the caller's room role and expires at the latest at the end. More
    than 20 a minute for one user (300 for one address) are refused: 429 with Retry-After."""
    settings = ctx.settings
    refusal = await ctx.request.app[RATE_LIMITER].hit(
        (JOIN_TOKEN_USER, ctx.me.id), (JOIN_TOKEN_ADDRESS, ctx.client_addr))
    if refusal is not None:
        if refusal.first:
            async with ctx.sessions.begin() as session:
                audit.record(session, "room.join_token", actor=ctx.me, outcome=audit.DENIED,
                             object_type="consultation", object_id=ctx.path_id("consultation_id"),
                             client_addr=ctx.client_addr,
                             detail={"reason": "rate_limited",
                                     "retry_after_s": refusal.retry_after_s})
        raise ApiError(429, f"too many join requests: try again in {refusal.retry_after_s} s",
                       code="rate_limited", headers={"Retry-After": str(refusal.retry_after_s)})
    now = utcnow()
    async with ctx.sessions.begin() as session:
        c = await load_consultation(ctx, session)
        role = access.room_role(c, ctx.me)
        outcome_detail: dict[str, str] = {}
        error: ApiError | None = None
        if role is None:
            error = forbidden("not invited to this consultation")
        elif c.status not in ACTIVE:
            error = ApiError(409, f"consultation is {c.status.value}", code="wrong_status")
        elif now < c.scheduled_start - timedelta(minutes=settings.lobby_lead_minutes):
            opens = c.scheduled_start - timedelta(minutes=settings.lobby_lead_minutes)
            error = ApiError(409, f"the lobby opens at {opens.isoformat()}", code="too_early")
        elif now >= c.scheduled_end:
            error = ApiError(409, "the consultation time is over", code="too_late")
        if error is not None:
            outcome_detail["reason"] = error.message
            audit.record(session, "room.join_token", actor=ctx.me, outcome=audit.DENIED,
                         object_type="consultation", object_id=c.id, consultation_id=c.id,
                         client_addr=ctx.client_addr, detail=outcome_detail)
        else:
            assert role is not None
            # Whole seconds, as the JWT's exp claim holds it: the expiry we answer is then
            # the token's own, and never after the end.
            expires = min(now + timedelta(minutes=settings.join_token_minutes),
                          c.scheduled_end).replace(microsecond=0)
            hospital = ctx.me.hospital
            token = tokens.issue_join(tokens.JoinClaims(
                user_id=ctx.me.id, consultation_id=c.id, room_role=role.value,
                name=ctx.me.name, hospital_code=hospital.code, hospital_name=hospital.name,
                tier=hospital.tier.value, expires_at=expires), settings.jwt_secret, now)
            audit.record(session, "room.join_token", actor=ctx.me, object_type="consultation",
                         object_id=c.id, consultation_id=c.id, client_addr=ctx.client_addr,
                         detail={"room_role": role.value, "expires_at": expires.isoformat()})
    if error is not None:
        raise error
    assert role is not None  # no error: invited
    return JoinTokenOut(token=token, expires_at=expires, consultation_id=c.id, room_role=role,
                        ice_servers=_ice_servers(settings, ctx.me.id, now))


def _ice_servers(settings: Settings, user_id: int, now: datetime) -> list[IceServerOut]:
    if not settings.turn_urls:
        return []
    turn = issue_turn_credential(settings.turn_secret, user_id,
                                 timedelta(seconds=settings.turn_ttl_seconds), now)
    return [IceServerOut(urls=list(settings.turn_urls), username=turn.username,
                         credential=turn.credential)]
