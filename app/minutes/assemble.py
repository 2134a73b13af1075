"""One version of the minutes, with its consultation, as the PDF renderer takes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.db.models import Consultation, Minutes
from app.minutes.content import MinutesContent
from app.minutes.document import Answer, Attendee, KeyImage, MinutesDocument, Signoff
from app.roles import RoomRole

#: Sign-off roles as the form names its two signature places.
FORM_ROLE = {"chair": "host", "secretary": "secretary"}


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def requesting_hospital(c: Consultation) -> str:
    """The hospital that asked for the consultation: the presenter's."""
    presenter = next((i for i in c.invitations if i.role is RoomRole.presenter), None)
    if presenter is None:
        return ""
    hospital = presenter.user.hospital if presenter.user else presenter.hospital
    return hospital.name if hospital is not None else ""


def minutes_document(c: Consultation, m: Minutes, attendees: list[dict[str, Any]], *,
                     key_images: tuple[KeyImage, ...] = (), language: str = "vi"
                     ) -> MinutesDocument:
    """``key_images``: the marked frames, rendered, in the order the minutes list them."""
    content = MinutesContent.model_validate(m.content)
    case = c.cases[0] if c.cases else None
    chair = next((s.user.name for s in m.signoffs if s.role == "chair"), "")
    if not chair:
        chair = next((a["name"] for a in attendees if a["role"] == RoomRole.host.value), "")
    starts = [t for t in (_when(a["attended_from"]) for a in attendees) if t]
    ends = [t for t in (_when(a["attended_to"]) for a in attendees) if t]
    return MinutesDocument(
        consultation_id=c.id, title=c.title, requesting_hospital=requesting_hospital(c),
        consulting_hospital=c.host_hospital.name,
        started_at=min(starts, default=c.scheduled_start),
        ended_at=max(ends, default=None) if ends else None,
        patient_name=case.patient_name.replace("^", " ").strip() if case else "",
        patient_sex=case.patient_sex if case else "",
        patient_birth_date=case.patient_birth_date if case else None,
        patient_id=case.patient_id if case else "",
        national_id=case.national_id if case else "",
        reason=content.reason,
        answers=tuple(Answer(a.question, a.conclusion) for a in content.questions),
        history=content.history, course_of_treatment=content.course_of_treatment,
        findings=content.findings, tests=content.tests,
        diagnosis_before=content.diagnosis_before, diagnosis_after=content.diagnosis_after,
        treatment_plan=content.treatment_plan, treatment_method=content.treatment_method,
        follow_up=content.follow_up,
        attendees=tuple(Attendee(name=a["name"], title="", hospital=a["hospital"],
                                 tier=a["tier"], role=a["role"],
                                 attended_from=_when(a["attended_from"]),
                                 attended_to=_when(a["attended_to"])) for a in attendees),
        chair=chair, secretary=m.secretary.name if m.secretary else "",
        signoffs=tuple(Signoff(name=s.user.name, title="", role=FORM_ROLE[s.role],
                               signed_at=s.signed_at) for s in m.signoffs),
        version=m.version, amendment_reason=m.amendment_reason, key_images=key_images,
        language=language)
