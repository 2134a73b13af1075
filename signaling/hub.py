"""What every handler works with: the Socket.IO server, room state, database, the outbox,
the media port, and this process's live connections."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import socketio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.tokens import JoinClaims
from app.config import Settings
from app.roles import RoomRole

from .outbox import NAMESPACE
from .ports import MediaPort, Outbox
from .ratelimit import TokenBucket
from .room_state import Member, RoomState

log = logging.getLogger(__name__)


@dataclass
class Connection:
    """One socket of this process, from connect to disconnect."""

    sid: str
    claims: JoinClaims
    client_addr: str
    bucket: TokenBucket
    participant_id: str | None = None
    #: When the last rate-limit error was sent, so a flood is not answered by a flood.
    last_throttle_notice: float = 0.0
    #: Socket.IO runs each event in its own task; this keeps one client's events in
    #: order (a trickled candidate must not overtake the offer it belongs to).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def room_id(self) -> int:
        return self.claims.consultation_id


@dataclass
class Hub:
    sio: socketio.AsyncServer
    settings: Settings
    state: RoomState
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    #: Where media requests go (none: this server carries no media).
    media: MediaPort | None
    connections: dict[str, Connection] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run in the background; kept referenced, failures logged, cancelled at shutdown."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("signaling background task failed", exc_info=task.exception())

    async def host(self, room_id: int) -> Member | None:
        return next((m for m in await self.state.members(room_id)
                     if m.role is RoomRole.host), None)

    async def disconnect(self, sid: str) -> None:
        await self.sio.disconnect(sid, namespace=NAMESPACE)


@dataclass(frozen=True)
class Ctx:
    """One event being handled: who sent it, as which member."""

    hub: Hub
    conn: Connection
    member: Member

    @property
    def room_id(self) -> int:
        return self.conn.room_id
