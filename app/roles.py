"""The roles every part speaks of: a user's on the platform, a member's in a room. Kept apart
from the ORM so the room protocol can name them without the data model."""

from __future__ import annotations

import enum


class PlatformRole(str, enum.Enum):
    admin = "admin"
    coordinator = "coordinator"
    doctor = "doctor"


class RoomRole(str, enum.Enum):
    host = "host"
    presenter = "presenter"
    participant = "participant"
    observer = "observer"
