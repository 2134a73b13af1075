"""The data model: hospital network, users, consultations, invitations, cases, records, audit."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from app.db.types import UTCDateTime, search_key, utcnow
from app.roles import PlatformRole, RoomRole
from app.text_search import fold

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Tier(str, enum.Enum):
    central = "central"
    provincial = "provincial"
    district = "district"
    commune = "commune"


class ConsultationStatus(str, enum.Enum):
    scheduled = "scheduled"
    live = "live"
    ended = "ended"
    cancelled = "cancelled"


def string_enum(cls: type[enum.Enum], name: str) -> Enum:
    """The enum's values stored as VARCHAR + CHECK rather than a native PostgreSQL ENUM:
    adding a value later is then a plain migration on both databases."""
    return Enum(cls, name=name, native_enum=False, length=16, validate_strings=True,
                values_callable=lambda members: [m.value for m in members])


class Hospital(Base):
    __tablename__ = "hospitals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Lists are searched on this key, without case or diacritics; kept by _fold_name.
    name_search: Mapped[str] = mapped_column(search_key(200), default="", server_default="",
                                             index=True)
    tier: Mapped[Tier] = mapped_column(string_enum(Tier, "tier"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("hospitals.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Hospital | None] = relationship(remote_side=[id])

    @validates("name")
    def _fold_name(self, _key: str, name: str) -> str:
        self.name_search = fold(name)
        return name


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_search: Mapped[str] = mapped_column(search_key(200), default="", server_default="",
                                             index=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospitals.id"), index=True)
    roles: Mapped[list[str]] = mapped_column(JSON)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The language the user chose for the app ("vi", "en"); None until they choose, when
    # the browser's own language decides.
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    hospital: Mapped[Hospital] = relationship(lazy="joined")

    @validates("name")
    def _fold_name(self, _key: str, name: str) -> str:
        self.name_search = fold(name)
        return name

    def has_role(self, *roles: PlatformRole) -> bool:
        return any(r.value in self.roles for r in roles)


class RefreshToken(Base):
    """One refresh token; only its SHA-256 is kept. A family shares the first token's id,
    so reuse of a rotated token revokes every token descended from the same login."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Consultation(Base):
    __tablename__ = "consultations"
    __table_args__ = (
        CheckConstraint("scheduled_end > scheduled_start", name="end_after_start"),
        Index("ix_consultations_window", "scheduled_start", "scheduled_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    scheduled_start: Mapped[datetime] = mapped_column(UTCDateTime)
    scheduled_end: Mapped[datetime] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[ConsultationStatus] = mapped_column(
        string_enum(ConsultationStatus, "consultation_status"),
        default=ConsultationStatus.scheduled,
    )
    host_hospital_id: Mapped[int] = mapped_column(ForeignKey("hospitals.id"), index=True)
    #: Whether the host shows observers who the patient is (else name and IDs are masked).
    observers_identified: Mapped[bool] = mapped_column(Boolean, default=False,
                                                       server_default=false())
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    host_hospital: Mapped[Hospital] = relationship(lazy="joined")
    invitations: Mapped[list[Invitation]] = relationship(
        back_populates="consultation", cascade="all, delete-orphan", order_by="Invitation.id"
    )
    cases: Mapped[list[Case]] = relationship(
        back_populates="consultation", cascade="all, delete-orphan", order_by="Case.id"
    )
    record: Mapped[ConsultationRecord | None] = relationship(
        back_populates="consultation", cascade="all, delete-orphan"
    )


class Invitation(Base):
    """A user or a whole hospital invited to a consultation with a room role."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(
            "(user_id IS NULL) <> (hospital_id IS NULL)", name="user_xor_hospital"
        ),
        UniqueConstraint("consultation_id", "user_id", name="uq_invitations_user"),
        UniqueConstraint("consultation_id", "hospital_id", name="uq_invitations_hospital"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    hospital_id: Mapped[int | None] = mapped_column(ForeignKey("hospitals.id"), index=True)
    role: Mapped[RoomRole] = mapped_column(string_enum(RoomRole, "room_role"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    consultation: Mapped[Consultation] = relationship(back_populates="invitations")
    user: Mapped[User | None] = relationship(lazy="joined")
    hospital: Mapped[Hospital | None] = relationship(lazy="joined")


class Case(Base):
    """A patient presented in a consultation, identified as DICOM identifies them."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[str] = mapped_column(String(64))
    patient_name: Mapped[str] = mapped_column(String(324))
    patient_birth_date: Mapped[date | None] = mapped_column(Date)
    patient_sex: Mapped[str] = mapped_column(String(1), default="")
    #: The citizen's identity number (CCCD), carried into the FHIR export; "" when unknown.
    national_id: Mapped[str] = mapped_column(String(12), default="", server_default="")
    clinical_question: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    consultation: Mapped[Consultation] = relationship(back_populates="cases")
    studies: Mapped[list[CaseStudy]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseStudy.id",
        lazy="selectin",
    )


class CaseStudy(Base):
    __tablename__ = "case_studies"
    __table_args__ = (UniqueConstraint("case_id", "study_instance_uid", name="uq_case_studies"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), index=True)

    case: Mapped[Case] = relationship(back_populates="studies")


class ConsultationRecord(Base):
    """The expert's conclusion and treatment plan; one per consultation."""

    __tablename__ = "consultation_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE"), unique=True
    )
    conclusion: Mapped[str] = mapped_column(Text, default="")
    treatment_plan: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    consultation: Mapped[Consultation] = relationship(back_populates="record")
    author: Mapped[User] = relationship(lazy="joined")


class AuditEvent(Base):
    """Append-only: the migration installs triggers that refuse UPDATE and DELETE."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_email: Mapped[str] = mapped_column(String(254), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(128), default="")
    consultation_id: Mapped[int | None] = mapped_column(Integer, index=True)
    client_addr: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ChatMessage(Base):
    """A room's chat line, kept with the consultation record."""

    __tablename__ = "chat_messages"
    __table_args__ = (Index("ix_chat_messages_consultation_sent", "consultation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE")
    )
    # Kept if the user account goes: the record must still say who wrote what.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    participant_id: Mapped[str] = mapped_column(String(32))
    author_name: Mapped[str] = mapped_column(String(200))
    hospital_code: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MinutesStatus(str, enum.Enum):
    draft = "draft"
    signed = "signed"


class Minutes(Base):
    """One version of a consultation's minutes (biên bản hội chẩn). A draft is written by the
    chair (the host) and the secretary the chair names; once both have signed it is
    ``signed`` and never changes again (the migration's triggers refuse it). An amendment is
    the next version, with its reason; the versions before stay as they were."""

    __tablename__ = "minutes"
    __table_args__ = (UniqueConstraint("consultation_id", "version", name="uq_minutes_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[MinutesStatus] = mapped_column(string_enum(MinutesStatus, "minutes_status"),
                                                  default=MinutesStatus.draft)
    #: The written part (app/minutes/content.py), as one JSON document.
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Bumped by every change of the draft: an edit or a signature names the revision it
    #: was made on, so nobody signs or overwrites what they have not seen.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    secretary_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: Who attended, from the room's presence, fixed when the minutes are signed.
    attendees: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    amendment_reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    secretary: Mapped[User | None] = relationship(foreign_keys=[secretary_id], lazy="joined")
    signoffs: Mapped[list[MinutesSignoff]] = relationship(
        back_populates="minutes", order_by="MinutesSignoff.id", lazy="selectin")


class MinutesSignoff(Base):
    """A signature of one version by its chair or its secretary, over the SHA-256 of what
    they signed. Append-only, like the audit trail."""

    __tablename__ = "minutes_signoffs"
    __table_args__ = (UniqueConstraint("minutes_id", "role", name="uq_minutes_signoffs_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    minutes_id: Mapped[int] = mapped_column(ForeignKey("minutes.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    content_sha256: Mapped[str] = mapped_column(String(64))

    minutes: Mapped[Minutes] = relationship(back_populates="signoffs")
    user: Mapped[User] = relationship(lazy="joined")


class AuditShipping(Base):
    """How far the audit trail has been sent to one collector (app/audit_export/syslog.py)."""

    __tablename__ = "audit_shipping"

    target: Mapped[str] = mapped_column(String(300), primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer, default=0)


class ConsentScope(str, enum.Enum):
    teleconsultation = "teleconsultation"
    recording = "recording"


class ConsentDecision(str, enum.Enum):
    granted = "granted"
    refused = "refused"
    withdrawn = "withdrawn"


class ConsentGiver(str, enum.Enum):
    patient = "patient"
    representative = "representative"


class ConsentMethod(str, enum.Enum):
    #: The printed consent form, signed by the patient or their representative.
    signed_form = "signed_form"
    #: Said to the doctor who records it (the doctor is ``recorded_by``).
    verbal = "verbal"


class Consent(Base):
    """One statement of the patient (or their representative) on a case: consent to the
    tele-consultation or to its recording given, refused or withdrawn. Append-only (the
    migration's triggers refuse UPDATE and DELETE); a scope's state is its latest record."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    scope: Mapped[ConsentScope] = mapped_column(string_enum(ConsentScope, "consent_scope"))
    decision: Mapped[ConsentDecision] = mapped_column(
        string_enum(ConsentDecision, "consent_decision"))
    given_by: Mapped[ConsentGiver] = mapped_column(string_enum(ConsentGiver, "consent_giver"))
    giver_name: Mapped[str] = mapped_column(String(200))
    #: The representative's relation to the patient; "" when the patient gave it.
    relation: Mapped[str] = mapped_column(String(100), default="")
    method: Mapped[ConsentMethod] = mapped_column(string_enum(ConsentMethod, "consent_method"))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    recorded_by: Mapped[User] = relationship(lazy="joined")


class BreakGlassGrant(Base):
    """An admin's time-limited access to one consultation's images and minutes, asked with
    a reason ("break the glass"); audited for review when granted."""

    __tablename__ = "break_glass_grants"
    __table_args__ = (Index("ix_break_glass_grants_user_consultation", "user_id",
                            "consultation_id", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: None: every study of the store (one no case holds, an incident across patients).
    consultation_id: Mapped[int | None] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
