"""What the minutes say, as the chair and the secretary write it (Circular 49/2017/TT-BYT,
Appendix I): the reason and the questions asked, the patient summary and the diagnosis
before, then the diagnosis after, a conclusion per question, the treatment plan and method,
the follow-up and, later, the requesting hospital's feedback on the outcome."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(max_length=10_000)]
Line = Annotated[str, StringConstraints(max_length=2_000)]

#: Fields that must be written before anyone signs, by name as the API reports them.
REQUIRED = ("reason", "diagnosis_before", "diagnosis_after", "treatment_plan")


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: Line
    conclusion: Text = ""


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
