"""How a patient is shown to an observer the host has not shown them to: the name as its
initials, the IDs masked, the birth date left out; age and sex kept (issue 20.3)."""

from __future__ import annotations

MASKED_ID = "***"


def initials(person_name: str) -> str:
    """A DICOM person name (Family^Given^Middle) as its initials, in the same form."""
    return "^".join(f"{part[0]}." if part else "" for part in person_name.split("^")[:3])
