"""Events to members' sockets. A node serving clients emits through its Socket.IO server; an
SFU worker, which holds no sockets, through a write-only Socket.IO Redis manager that finds
the socket on whichever node holds it."""

from __future__ import annotations

from typing import Any

from .room_state import RoomState

NAMESPACE = "/room"


def channel(room_id: int) -> str:
    """The Socket.IO room of a consultation's admitted members."""
    return f"consultation:{room_id}"


class SocketOutbox:
    def __init__(self, emitter: Any, state: RoomState) -> None:
        """``emitter``: a ``socketio.AsyncServer`` or ``socketio.AsyncManager``; both take
        ``emit(event, data, room=, skip_sid=, namespace=)``."""
        self._emitter = emitter
        self._state = state

    async def emit_to(self, sid: str | None, event: str, data: Any) -> None:
        if sid is not None:
            await self._emitter.emit(event, data, room=sid, namespace=NAMESPACE)

    async def emit_member(self, room_id: int, participant_id: str, event: str,
                          data: Any) -> None:
        member = await self._state.member(room_id, participant_id)
        if member is not None:
            await self.emit_to(member.sid, event, data)

    async def broadcast(self, room_id: int, event: str, data: Any,
                        skip_sid: str | None = None) -> None:
        await self._emitter.emit(event, data, room=channel(room_id), skip_sid=skip_sid,
                                 namespace=NAMESPACE)
