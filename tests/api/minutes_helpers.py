"""The minutes as the tests write them: a filled draft, the calls the chair and the
secretary make, and the room's join and leave events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app import audit
from app.db.engine import create_engine, session_factory
from app.db.types import utcnow

FILLED = {
    "reason": "Khối mờ thùy trên phổi phải, xin ý kiến chẩn đoán",
    "questions": [{"question": "Bản chất khối?", "conclusion": "Nghĩ nhiều u phổi nguyên phát"},
                  {"question": "Hướng xử trí?", "conclusion": "Sinh thiết xuyên thành ngực"}],
    "history": "Hút thuốc 30 bao-năm", "course_of_treatment": "Ho khan 2 tháng",
    "findings": "Phổi phải giảm thông khí", "tests": "CT ngực có cản quang",
    "diagnosis_before": "Theo dõi u phổi phải",
    "diagnosis_after": "U phổi phải T2aN0M0, chờ giải phẫu bệnh",
    "treatment_plan": "Sinh thiết, hội chẩn ung bướu", "treatment_method": "Phẫu thuật nếu "
    "giải phẫu bệnh phù hợp", "follow_up": "Hẹn 2 tuần",
}


def url(world, tail: str = "") -> str:
    return f"/api/consultations/{world.consultation_id}/minutes{tail}"


async def put(client, world, who: str, content: dict[str, Any],
              revision: int | None = None) -> Any:
    return await client.put(url(world), json={"content": content, "revision": revision},
                            headers=world.auth(who))


async def ok(r, status: int = 200) -> dict[str, Any]:
    assert r.status == status, await r.text()
    return await r.json()


async def room_presence(world, events: list[tuple[str, str, str, float]]) -> None:
    """Writes the room's own join and leave events (as signaling/presence.py does):
    (action, user key, role, minutes after now)."""
    engine = create_engine(world.settings.database_url)
    now = utcnow()
    try:
        async with session_factory(engine).begin() as session:
            for action, key, role, minutes in events:
                row = audit.event(action, actor_id=world.user(key).id, actor_email="",
                                  object_type="participant", object_id=key,
                                  consultation_id=world.consultation_id,
                                  detail={"user_id": world.user(key).id, "role": role},
                                  at=now + timedelta(minutes=minutes))
                session.add(row)
    finally:
        await engine.dispose()


async def signed_by_both(client, world, *, started: bool = False) -> dict[str, Any]:
    """Version 1 written by the chair (unless ``started`` already), NDI's doctor named
    secretary, signed by both."""
    if not started:
        await ok(await put(client, world, "BM", FILLED))
    await ok(await client.put(url(world, "/secretary"), json={
        "user_id": world.user("NDI").id, "revision": 1}, headers=world.auth("BM")))
    await ok(await client.post(url(world, "/sign"), json={"revision": 2},
                               headers=world.auth("BM")))
    return await ok(await client.post(url(world, "/sign"), json={"revision": 3},
                                      headers=world.auth("NDI")))
