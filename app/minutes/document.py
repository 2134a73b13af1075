"""What the minutes say, as the renderer takes it: plain values, no database rows.

Datetimes are best timezone-aware; a naive one is taken as UTC (the database stores UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

ROLES = ("host", "secretary", "presenter", "participant", "observer")
TIERS = ("central", "provincial", "district", "commune")


@dataclass(frozen=True)
class Attendee:
    name: str
    title: str
    hospital: str
    tier: str  # one of TIERS
    role: str  # one of ROLES; "host" is the chair (chủ trì)
    attended_from: datetime | None
    attended_to: datetime | None


@dataclass(frozen=True)
class Answer:
    question: str
    conclusion: str


@dataclass(frozen=True)
class KeyImage:
    png: bytes
    caption: str


@dataclass(frozen=True)
class Signoff:
    name: str
    title: str
    role: str  # "host" or "secretary" fill the form's two signature places
    signed_at: datetime


@dataclass(frozen=True)
class MinutesDocument:
    consultation_id: int
    title: str
    requesting_hospital: str
    consulting_hospital: str
    started_at: datetime | None
    ended_at: datetime | None
    patient_name: str
    patient_sex: str  # DICOM's M/F/O, or words
    patient_birth_date: date | None
    patient_id: str
    national_id: str
    reason: str
    answers: tuple[Answer, ...]
    history: str
    course_of_treatment: str
    findings: str
    tests: str
    diagnosis_before: str
    diagnosis_after: str
    treatment_plan: str
    treatment_method: str
    follow_up: str
    attendees: tuple[Attendee, ...]
    chair: str
    secretary: str
    signoffs: tuple[Signoff, ...]
    version: int
    amendment_reason: str
    key_images: tuple[KeyImage, ...]
    language: str = "vi"  # "vi" or "en"
