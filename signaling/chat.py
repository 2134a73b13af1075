"""Room chat: every message is stored with the consultation before anyone sees it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import ChatMessage

from .hub import Ctx
from .schemas import ChatSend

HISTORY_LIMIT = 100


def message_view(m: ChatMessage, client_id: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": m.id,
        "participant_id": m.participant_id,
        "user_id": m.user_id,
        "name": m.author_name,
        "hospital_code": m.hospital_code,
        "text": m.text,
        "sent_at": m.sent_at.isoformat(),
    }
    if client_id is not None:
        view["client_id"] = client_id
    return view


async def history(sessions: async_sessionmaker[AsyncSession], consultation_id: int,
                  limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The last ``limit`` messages, oldest first."""
    async with sessions() as session:
        rows = (await session.scalars(
            select(ChatMessage)
            .where(ChatMessage.consultation_id == consultation_id)
            .order_by(ChatMessage.id.desc())
            .limit(limit)
        )).all()
    return [message_view(m) for m in reversed(rows)]


async def send(ctx: Ctx, p: ChatSend) -> dict[str, Any]:
    member = ctx.member
    async with ctx.hub.sessions.begin() as session:
        message = ChatMessage(
            consultation_id=ctx.room_id, user_id=member.user_id,
            participant_id=member.participant_id, author_name=member.name,
            hospital_code=member.hospital_code, text=p.text,
        )
        session.add(message)
    view = message_view(message, p.client_id)
    await ctx.hub.outbox.broadcast(ctx.room_id, "chat:message", view)
    return {"message": view}
