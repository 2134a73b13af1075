"""Who may read a consultation, with which room role, and which studies they may read."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Case, CaseStudy, Consultation, Invitation, User
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


async def can_read_study(session: AsyncSession, user: User, study_instance_uid: str) -> bool:
    """Admins read every study; coordinators and doctors those of consultations they may see."""
    if user.has_role(PlatformRole.admin):
        return True
    stmt = (
        select(CaseStudy.id)
        .join(Case, Case.id == CaseStudy.case_id)
        .join(Consultation, Consultation.id == Case.consultation_id)
        .where(CaseStudy.study_instance_uid == study_instance_uid)
        .limit(1)
    )
    clause = visible_clause(user)
    if clause is not None:
        stmt = stmt.where(clause)
    return await session.scalar(stmt) is not None
