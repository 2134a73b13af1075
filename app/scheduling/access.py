"""Who may read a consultation, with which room role, and whose patient data they may read.

Least privilege: admins manage users, hospitals and nodes; they see every consultation's
schedule, but its images and minutes only where they are invited themselves or hold an
unexpired break-the-glass grant (app/api/break_glass.py). Coordinators, who attach the
cases, read them all."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db.models import BreakGlassGrant, Case, CaseStudy, Consultation, Invitation, User
from app.db.types import utcnow
from app.roles import PlatformRole, RoomRole

# A direct invitation outranks a hospital-wide one; among equals the strongest role wins.
ROLE_RANK = {RoomRole.host: 3, RoomRole.presenter: 2, RoomRole.participant: 1,
             RoomRole.observer: 0}


def is_staff(user: User) -> bool:
    return user.has_role(PlatformRole.admin, PlatformRole.coordinator)


def invited_clause(user: User) -> ColumnElement[bool]:
    """True for consultations the user is invited to, directly or through their hospital."""
    return exists().where(
        Invitation.consultation_id == Consultation.id,
        or_(Invitation.user_id == user.id, Invitation.hospital_id == user.hospital_id),
    )


def visible_clause(user: User) -> ColumnElement[bool] | None:
    """None when the user sees every consultation (staff)."""
    return None if is_staff(user) else invited_clause(user)


def room_role(consultation: Consultation, user: User) -> RoomRole | None:
    """The user's room role from the loaded invitations, or None if not invited."""
    direct = [i.role for i in consultation.invitations if i.user_id == user.id]
    if direct:
        return max(direct, key=ROLE_RANK.__getitem__)
    via_hospital = [i.role for i in consultation.invitations if i.hospital_id == user.hospital_id]
    return max(via_hospital, key=ROLE_RANK.__getitem__) if via_hospital else None


def deidentified(consultation: Consultation, user: User) -> bool:
    """Whether the user sees this consultation's patients de-identified: an observer (and
    nothing more) until the host shows observers who the patient is."""
    return (room_role(consultation, user) is RoomRole.observer
            and not consultation.observers_identified and not is_staff(user))


def needs_break_glass(user: User) -> bool:
    """An admin who is not also a coordinator reads patient data only under a grant."""
    return user.has_role(PlatformRole.admin) and not user.has_role(PlatformRole.coordinator)


def _granted(user: User, consultation: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(consultation, BreakGlassGrant.user_id == user.id,
                          BreakGlassGrant.expires_at > utcnow())


def store_grant_clause(user: User) -> ColumnElement[bool]:
    """True while the user holds a grant over the whole store's images."""
    return _granted(user, BreakGlassGrant.consultation_id.is_(None))


def patient_data_clause(user: User) -> ColumnElement[bool] | None:
    """True for consultations whose images and minutes the user may read; None: all."""
    if not needs_break_glass(user):
        return visible_clause(user)
    return or_(invited_clause(user), _granted(user, BreakGlassGrant.consultation_id
                                             == Consultation.id))


async def may_read_patient_data(session: AsyncSession, user: User, c: Consultation) -> bool:
    clause = patient_data_clause(user)
    if clause is None:
        return True
    return await session.scalar(select(Consultation.id).where(
        Consultation.id == c.id, clause)) is not None


async def can_read_study(session: AsyncSession, user: User, study_instance_uid: str) -> bool:
    """Coordinators read every case's study; doctors those of consultations they are
    invited to; admins those too, those of consultations they hold a grant for, and every
    study under a grant over the store."""
    if needs_break_glass(user) and await session.scalar(select(store_grant_clause(user))):
        return True
    stmt = (
        select(CaseStudy.id)
        .join(Case, Case.id == CaseStudy.case_id)
        .join(Consultation, Consultation.id == Case.consultation_id)
        .where(CaseStudy.study_instance_uid == study_instance_uid)
        .limit(1)
    )
    clause = patient_data_clause(user)
    if clause is not None:
        stmt = stmt.where(clause)
    return await session.scalar(stmt) is not None


async def deidentified_studies(session: AsyncSession, user: User) -> frozenset[str]:
    """The studies the user reads only as a de-identified observer (in no consultation of
    theirs where they see the patient)."""
    if is_staff(user):
        return frozenset()
    consultations = await session.scalars(
        select(Consultation).where(invited_clause(user)).options(
            selectinload(Consultation.invitations),
            selectinload(Consultation.cases).selectinload(Case.studies)))
    masked: set[str] = set()
    shown: set[str] = set()
    for c in consultations:
        uids = {s.study_instance_uid for case in c.cases for s in case.studies}
        (masked if deidentified(c, user) else shown).update(uids)
    return frozenset(masked - shown)
