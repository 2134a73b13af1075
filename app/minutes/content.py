"""What the minutes say, as the chair and the secretary write it (Circular 49/2017/TT-BYT,
Appendix I): the reason and the questions asked, the patient summary and the diagnosis
before, then the diagnosis after, a conclusion per question, the treatment plan and method,
the follow-up and, later, the requesting hospital's feedback on the outcome."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(max_length=10_000)]
Line = Annotated[str, StringConstraints(max_length=2_000)]

#: Fields that must be written before anyone signs, by name as the API reports them.
REQUIRED = ("reason", "diagnosis_before", "diagnosis_after", "treatment_plan")


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: Line
    conclusion: Text = ""


#: A DICOM UID (PS3.5 §9.1): digit groups joined by dots, at most 64 characters.
Uid = Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$",
                                       max_length=64)]
Coordinate = Annotated[float, Field(ge=0, le=65_535, allow_inf_nan=False)]
# Lists, not tuples: the content comes back from the database as JSON, which strict
# validation takes only as lists.
Point = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]


class Length(BaseModel):
    """A length the viewer measured (Cornerstone's length tool), its two ends in image
    pixel coordinates (column, row, from the top left corner's centre)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Literal["length"] = "length"
    points: Annotated[list[Point], Field(min_length=2, max_length=2)]
    length_mm: Annotated[float, Field(ge=0, le=10_000, allow_inf_nan=False)]
    label: Annotated[str, StringConstraints(max_length=64)] = ""


class KeyImageMark(BaseModel):
    """A frame the doctors marked as key image, with what they measured on it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    study_instance_uid: Uid
    series_instance_uid: Uid
    sop_instance_uid: Uid
    frame: Annotated[int, Field(ge=1, le=100_000)] = 1
    caption: Annotated[str, StringConstraints(max_length=500)] = ""
    measurements: list[Length] = Field(default_factory=list, max_length=20)


class MinutesContent(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: Text = ""
    questions: list[Answer] = Field(default_factory=list, max_length=30)
    history: Text = ""
    course_of_treatment: Text = ""
    findings: Text = ""
    tests: Text = ""
    diagnosis_before: Text = ""
    diagnosis_after: Text = ""
    treatment_plan: Text = ""
    treatment_method: Text = ""
    follow_up: Text = ""
    outcome_feedback: Text = Field(default="", description=(
        "the requesting hospital's feedback on the outcome, written later (an amendment "
        "once the minutes are signed)"))
    key_images: list[KeyImageMark] = Field(default_factory=list, max_length=30, description=(
        "the frames marked in the viewer, with their measurements; once signed, written to "
        "the study as a Key Object Selection document and a TID 1500 SR"))


def missing_for_signing(content: MinutesContent, secretary_id: int | None) -> list[str]:
    """What is still empty that a signed version must hold."""
    missing = [name for name in REQUIRED if not getattr(content, name).strip()]
    if not content.questions:
        missing.append("questions")
    missing += [f"questions[{i}].conclusion" for i, answer in enumerate(content.questions)
                if not answer.conclusion.strip()]
    if secretary_id is None:
        missing.append("secretary")
    return missing


def digest(content: dict[str, Any], *, version: int, secretary_id: int | None) -> str:
    """SHA-256 of what a signature covers, over a canonical JSON form."""
    body = {"version": version, "secretary_id": secretary_id, "content": content}
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
