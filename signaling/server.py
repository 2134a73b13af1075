"""Attaches the Socket.IO server (namespace ``/room``) and the SFU bridge to the aiohttp app."""

from __future__ import annotations

import asyncio
import contextlib

import socketio
from aiohttp import web
from redis.asyncio import Redis

from app.appkeys import ROOM_NOTIFY, SESSIONS, SETTINGS
from media import configure_host_addresses

from .hub import Hub
from .media_bridge import MediaBridge
from .media_router import MediaRouter
from .namespace import RoomNamespace
from .nodes import NodeRegistry
from .redis_state import RedisRoomState
from .room_state import InProcessRoomState, RoomLimits, RoomState
from .stats import StatsCollector
from .sweeper import Sweeper, drain_node

HUB = web.AppKey("signaling_hub", Hub)
SOCKETIO_PATH = "/socket.io"


def setup_signaling(app: web.Application) -> Hub:
    """One node alone (no Redis URL: rooms in memory), or one of several sharing Redis."""
    settings = app[SETTINGS]
    limits = RoomLimits(settings.room_max_publishers, settings.room_max_observers)
    redis: Redis | None = None
    manager: socketio.AsyncManager | None = None
    state: RoomState
    if settings.redis_url:
        redis = Redis.from_url(settings.redis_url, decode_responses=True)
        manager = socketio.AsyncRedisManager(settings.redis_url,
                                             channel=f"{settings.redis_prefix}:socketio")
        state = RedisRoomState(redis, settings.redis_prefix, limits)
    else:
        state = InProcessRoomState(limits)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        # Up to this size an oversized event still reaches the gate and gets a clear
        # error; past it Engine.IO drops the connection without reading it.
        max_http_buffer_size=settings.signaling_max_event_bytes * 4,
    )
    hub = Hub(sio=sio, settings=settings, state=state, sessions=app[SESSIONS])
    hub.bridge = MediaBridge(hub)
    router: MediaRouter | None = None
    if redis is not None:
        nodes = NodeRegistry(redis, settings.redis_prefix, settings.node_id,
                             settings.node_ttl_seconds)
        router = MediaRouter(hub, hub.bridge, nodes, redis, settings.redis_prefix)
    hub.media = router or hub.bridge
    hub.stats = StatsCollector(hub, settings.room_stats_interval_seconds)
    sweeper = Sweeper(hub, router)
    sio.register_namespace(RoomNamespace(hub))
    sio.attach(app, socketio_path=SOCKETIO_PATH)
    app[HUB] = hub
    app[ROOM_NOTIFY] = hub.broadcast

    async def start(_: web.Application) -> None:
        if settings.ice_host_addresses:
            configure_host_addresses(list(settings.ice_host_addresses))
        if router is not None:
            await router.start()
            await sweeper.beat()
            await sweeper.recover()
        assert hub.stats is not None
        hub.spawn(hub.stats.run())
        hub.spawn(sweeper.run())

    async def drain(_: web.Application) -> None:
        # SIGTERM: take no new rooms, and hand ours to other nodes while we still answer.
        if router is not None:
            await drain_node(hub, router)

    async def stop(_: web.Application) -> None:
        for task in list(hub.tasks):
            task.cancel()
        for task in list(hub.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        assert hub.bridge is not None
        await hub.bridge.close()
        if settings.ice_host_addresses:
            configure_host_addresses(None)
        if router is not None:
            await router.nodes.forget(settings.node_id)
            await router.stop()
        if redis is not None:
            await redis.aclose()

    app.on_startup.append(start)
    app.on_shutdown.append(drain)
    app.on_cleanup.append(stop)
    return hub
