"""Consultations as the coordinator books them, for the tests of scheduling and of what
hangs off a consultation (audit, join tokens, roles, search, QIDO)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

T0 = datetime(2031, 3, 10, 2, 0, tzinfo=UTC)  # 09:00 in Hanoi


def iso(dt: datetime, tz_hours: int = 7) -> str:
    """ISO 8601 with an offset, as a client in Hanoi would send it."""
    return dt.astimezone(timezone(timedelta(hours=tz_hours))).isoformat()


def utc_z(dt: datetime) -> str:
    """How the API writes a time: UTC, with its offset."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def booking(world, start: datetime = T0, hours: float = 1, host: str = "BM",
            **extra: Any) -> dict[str, Any]:
    return {"title": "Hội chẩn CT ngực", "start": iso(start),
            "end": iso(start + timedelta(hours=hours)), "timezone": "Asia/Ho_Chi_Minh",
            "host_hospital_id": world.user(host).hospital_id,
            "host_user_id": world.user(host).id, **extra}


async def create(client, world, **kw) -> dict[str, Any]:
    r = await client.post("/api/consultations", json=booking(world, **kw),
                          headers=world.auth("coordinator"))
    assert r.status == 201, await r.text()
    return await r.json()
