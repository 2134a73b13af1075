"""Attaches the Socket.IO server (namespace ``/room``) and the SFU bridge to the aiohttp app."""

from __future__ import annotations

from aiohttp import web

from app.appkeys import RATE_LIMITER, ROOM_NOTIFY, SESSIONS, SETTINGS

from .cluster.media_node import MediaNode
from .cluster.workers import WorkerPool
from .hub import Hub
from .namespace import RoomNamespace
from .node import RoomNode

HUB = web.AppKey("signaling_hub", Hub)
MEDIA = web.AppKey("signaling_media", MediaNode)
SOCKETIO_PATH = "/socket.io"


def setup_signaling(app: web.Application) -> Hub:
    """One node alone (no Redis URL: rooms in memory), or one of several sharing Redis; with
    HOICHAN_MEDIA_WORKERS its SFU runs in worker processes it starts and restarts."""
    settings = app[SETTINGS]
    node = RoomNode(settings, app[SESSIONS], carries_media=not settings.media_workers)
    hub = node.hub
    hub.sio.register_namespace(RoomNamespace(hub, app[RATE_LIMITER]))
    hub.sio.attach(app, socketio_path=SOCKETIO_PATH)
    app[HUB] = hub
    app[MEDIA] = node.media
    app[ROOM_NOTIFY] = hub.outbox.broadcast
    workers = WorkerPool(settings) if settings.media_workers else None

    async def start(_: web.Application) -> None:
        await node.start()
        if workers is not None:
            await workers.start()

    async def drain(_: web.Application) -> None:
        await node.drain()
        if workers is not None:
            await workers.stop()  # each drains its rooms to other media nodes first

    async def stop(_: web.Application) -> None:
        await node.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(drain)
    app.on_cleanup.append(stop)
    return hub
