"""Field types shared by several route modules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

from app.api.routing import MAX_ID

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=3, max_length=254,
                      pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
NewPassword = Annotated[str, StringConstraints(min_length=10, max_length=256)]
HospitalCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32,
                           pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
Limit = Annotated[int, Field(ge=1, le=500)]
Offset = Annotated[int, Field(ge=0, le=MAX_ID)]


def _in_utc(value: datetime) -> datetime:
    # Times are stored and compared in UTC; one valid with its offset may not be (year 9999
    # at -05:00), and failing here is a 422 rather than an OverflowError at the database.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is out of range once converted to UTC") from None


# ISO 8601 with an offset (naive times are refused), held in UTC from validation on.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
