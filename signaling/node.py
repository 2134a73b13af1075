"""What every process carrying rooms runs, an app node or one of its SFU workers: the hub,
this process's SFU rooms, the stats loop, the sweeper and, with Redis, its place among the
nodes. ``start``/``drain``/``stop`` are its whole life."""

from __future__ import annotations

import asyncio
import contextlib

import socketio
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from media import configure_host_addresses
from media.relay_home import RelayServer

from .hub import Hub
from .media_bridge import MediaBridge
from .media_router import MediaRouter
from .nodes import NodeRegistry, relay_address
from .redis_state import RedisRoomState
from .room_state import InProcessRoomState, RoomLimits, RoomState
from .stats import StatsCollector
from .sweeper import Sweeper, drain_node


class RoomNode:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], *,
                 carries_media: bool, serves_clients: bool) -> None:
        """An SFU worker (``serves_clients`` off) holds no sockets: it only emits to them
        through the Redis manager."""
        self.settings = settings
        limits = RoomLimits(settings.room_max_publishers, settings.room_max_observers)
        self.redis: Redis | None = None
        manager: socketio.AsyncManager | None = None
        state: RoomState
        if settings.redis_url:
            self.redis = Redis.from_url(settings.redis_url, decode_responses=True)
            manager = socketio.AsyncRedisManager(
                settings.redis_url, channel=f"{settings.redis_prefix}:socketio",
                write_only=not serves_clients)
            state = RedisRoomState(self.redis, settings.redis_prefix, limits)
        else:
            state = InProcessRoomState(limits)
        sio = socketio.AsyncServer(
            async_mode="aiohttp", client_manager=manager,
            # Up to this size an oversized event still reaches the gate and gets a clear
            # error; past it Engine.IO drops the connection without reading it.
            max_http_buffer_size=settings.signaling_max_event_bytes * 4)
        self.hub = hub = Hub(sio=sio, settings=settings, state=state, sessions=sessions)
        # An SFU worker shares its rooms with the machine's other workers (media_router.py).
        self.relay: RelayServer | None = None
        if self.redis is not None and carries_media and not serves_clients:
            self.relay = RelayServer(relay_address(settings.redis_prefix, settings.node_id))
            hub.bridge = MediaBridge(
                hub, relay=self.relay,
                relay_address=lambda node: relay_address(settings.redis_prefix, node))
        else:
            hub.bridge = MediaBridge(hub)
        self.router: MediaRouter | None = None
        if self.redis is not None:
            nodes = NodeRegistry(self.redis, settings.redis_prefix, settings.node_id,
                                 settings.node_ttl_seconds, media=carries_media)
            self.router = MediaRouter(hub, hub.bridge, nodes, self.redis,
                                      settings.redis_prefix)
        hub.media = self.router or hub.bridge
        hub.stats = StatsCollector(hub, settings.room_stats_interval_seconds)
        self._sweeper = Sweeper(hub, self.router)

    async def start(self) -> None:
        if self.settings.ice_host_addresses:
            configure_host_addresses(list(self.settings.ice_host_addresses))
        if self.relay is not None:
            await self.relay.start()
        if self.router is not None:
            await self.router.start()
            await self._sweeper.beat()
            await self._sweeper.recover()
        assert self.hub.stats is not None
        self.hub.spawn(self.hub.stats.run())
        self.hub.spawn(self._sweeper.run())

    async def drain(self) -> None:
        """Take no new rooms, hand ours to other nodes while we still answer, then close
        our sockets: their clients reconnect to another node at once, and the server's
        shutdown need not wait for connections that would never end by themselves."""
        if self.router is not None:
            await drain_node(self.hub, self.router)
        for sid in list(self.hub.connections):
            await self.hub.disconnect(sid)

    async def stop(self) -> None:
        hub = self.hub
        for task in list(hub.tasks):
            task.cancel()
        for task in list(hub.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        assert hub.bridge is not None
        await hub.bridge.close()
        if self.relay is not None:
            await self.relay.stop()
        if self.settings.ice_host_addresses:
            configure_host_addresses(None)
        if self.router is not None:
            await self.router.nodes.forget(self.settings.node_id)
            await self.router.stop()
        if self.redis is not None:
            await self.redis.aclose()
