"""The narrow interfaces between the room protocol and the SFU cluster, given at
construction: the room's handlers call the media through a ``MediaPort``; the media side
tells members through an ``Outbox`` (the way python-socketio's server only keeps the client
manager it was given)."""

from __future__ import annotations

from typing import Any, Literal, Protocol

PeerConnection = Literal["publish", "subscribe"]


class Outbox(Protocol):
    async def emit_to(self, sid: str | None, event: str, data: Any) -> None:
        """To one socket; nothing when the member has none (it is reconnecting)."""

    async def emit_member(self, room_id: int, participant_id: str, event: str,
                          data: Any) -> None:
        """To the member's socket of the moment, read from room state."""

    async def broadcast(self, room_id: int, event: str, data: Any,
                        skip_sid: str | None = None) -> None:
        """To every admitted member of the room."""


class MediaPort(Protocol):
    """A member's media, wherever the room's media is carried (this process, an SFU worker,
    another node). Members are named by participant id and read from room state."""

    async def add(self, room_id: int, participant_id: str) -> None: ...

    async def remove(self, room_id: int, participant_id: str) -> None: ...

    async def reset(self, room_id: int, participant_id: str, reason: str) -> None:
        """New SFU participant under the same id; the client is told to reconnect media."""

    async def resumed(self, room_id: int, participant_id: str) -> None:
        """The member's socket is back: what it missed is sent again."""

    async def sync_presenter(self, room_id: int) -> None: ...

    async def close_room(self, room_id: int) -> None: ...

    async def publish(self, room_id: int, participant_id: str, sdp: str) -> dict[str, Any]: ...

    async def subscribe(self, room_id: int, participant_id: str) -> dict[str, Any]: ...

    async def subscribe_answer(self, room_id: int, participant_id: str, sdp: str,
                               version: int | None = None) -> dict[str, Any]: ...

    async def ice(self, room_id: int, participant_id: str, pc: PeerConnection,
                  candidate: dict[str, Any] | None) -> dict[str, Any]: ...

    async def restart(self, room_id: int, participant_id: str) -> dict[str, Any]: ...
