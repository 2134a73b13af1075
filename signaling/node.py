"""What a node serving clients runs: the Socket.IO server and the hub, this process's media
(cluster/media_node.py), the member sweep and, with Redis, its place among the nodes.
``start``/``drain``/``stop`` are its whole life."""

from __future__ import annotations

import asyncio
import contextlib

import socketio
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings

from .cluster.media_node import MediaNode
from .cluster.sweeper import MemberSweeper
from .hub import Hub
from .outbox import SocketOutbox
from .redis_state import RedisRoomState
from .room_state import InProcessRoomState, RoomLimits, RoomState


class RoomNode:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], *,
                 carries_media: bool) -> None:
        self.settings = settings
        limits = RoomLimits(settings.room_max_publishers, settings.room_max_observers)
        self.redis: Redis | None = None
        manager: socketio.AsyncManager | None = None
        state: RoomState
        if settings.redis_url:
            self.redis = Redis.from_url(settings.redis_url, decode_responses=True)
            manager = socketio.AsyncRedisManager(
                settings.redis_url, channel=f"{settings.redis_prefix}:socketio")
            state = RedisRoomState(self.redis, settings.redis_prefix, limits)
        else:
            state = InProcessRoomState(limits)
        sio = socketio.AsyncServer(
            async_mode="aiohttp", client_manager=manager,
            # Up to this size an oversized event still reaches the gate and gets a clear
            # error; past it Engine.IO drops the connection without reading it.
            max_http_buffer_size=settings.signaling_max_event_bytes * 4)
        outbox = SocketOutbox(sio, state)
        self.media = MediaNode(settings, state, outbox, self.redis,
                               carries_media=carries_media, relays=False)
        self.hub = Hub(sio=sio, settings=settings, state=state, sessions=sessions,
                       outbox=outbox, media=self.media.port)
        self._sweeper = MemberSweeper(self.hub, self.media.router)

    async def start(self) -> None:
        await self.media.start()
        await self._sweeper.recover()
        await self.media.recover()
        self.media.run()
        self.hub.spawn(self._sweeper.run())

    async def drain(self) -> None:
        """Take no new rooms, hand ours to other nodes while we still answer, then close
        our sockets: their clients reconnect to another node at once, and the server's
        shutdown need not wait for connections that would never end by themselves."""
        await self.media.drain()
        for sid in list(self.hub.connections):
            await self.hub.disconnect(sid)

    async def stop(self) -> None:
        hub = self.hub
        for task in list(hub.tasks):
            task.cancel()
        for task in list(hub.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.media.stop()
        if self.redis is not None:
            await self.redis.aclose()
