"""Attaches the Socket.IO server (namespace ``/room``) and the SFU bridge to the aiohttp app."""

from __future__ import annotations

import asyncio
import contextlib

import socketio
from aiohttp import web

from app.appkeys import ROOM_NOTIFY, SESSIONS, SETTINGS
from media import configure_host_addresses

from .hub import Hub
from .media_bridge import MediaBridge
from .namespace import RoomNamespace
from .room_state import InProcessRoomState, RoomLimits
from .stats import StatsCollector

HUB = web.AppKey("signaling_hub", Hub)
SOCKETIO_PATH = "/socket.io"


def setup_signaling(app: web.Application) -> Hub:
    settings = app[SETTINGS]
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        # Up to this size an oversized event still reaches the gate and gets a clear
        # error; past it Engine.IO drops the connection without reading it.
        max_http_buffer_size=settings.signaling_max_event_bytes * 4,
    )
    state = InProcessRoomState(RoomLimits(settings.room_max_publishers,
                                          settings.room_max_observers))
    hub = Hub(sio=sio, settings=settings, state=state, sessions=app[SESSIONS])
    hub.bridge = MediaBridge(hub)
    hub.stats = StatsCollector(hub, settings.room_stats_interval_seconds)
    sio.register_namespace(RoomNamespace(hub))
    sio.attach(app, socketio_path=SOCKETIO_PATH)
    app[HUB] = hub
    app[ROOM_NOTIFY] = hub.broadcast

    async def start(_: web.Application) -> None:
        if settings.ice_host_addresses:
            configure_host_addresses(list(settings.ice_host_addresses))
        assert hub.stats is not None
        hub.spawn(hub.stats.run())

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

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return hub
