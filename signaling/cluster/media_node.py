"""What every process with an SFU runs, an app node or one of its SFU workers: its SFU rooms
(the bridge), with Redis the router to the other nodes' rooms and the relay between workers,
the stats loop and the media sweep. An SFU worker runs this alone: no Socket.IO server, no
database."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis.asyncio import Redis

from app.config import Settings
from media import configure_host_addresses
from media.relay_home import RelayServer

from ..ports import MediaPort, Outbox
from ..room_state import RoomState
from .bridge import MediaBridge
from .nodes import NodeRegistry, relay_address
from .router import MediaRouter
from .stats import StatsCollector, media_figures
from .sweeper import MediaSweeper


class MediaNode:
    def __init__(self, settings: Settings, state: RoomState, outbox: Outbox,
                 redis: Redis | None, *, carries_media: bool, relays: bool) -> None:
        """``carries_media``: rooms may be placed here (off on a node whose SFU workers
        carry them). ``relays``: an SFU worker sharing its rooms with the machine's other
        workers (router.py)."""
        self.settings = settings
        self._state = state
        self.relay: RelayServer | None = None
        if redis is not None and relays:
            self.relay = RelayServer(relay_address(settings.redis_prefix, settings.node_id))
            self.bridge = MediaBridge(
                state, outbox, relay=self.relay,
                relay_address=lambda node: relay_address(settings.redis_prefix, node))
        else:
            self.bridge = MediaBridge(state, outbox)
        self.stats = StatsCollector(self.bridge, outbox, settings.room_stats_interval_seconds)
        self.router: MediaRouter | None = None
        self.sweeper: MediaSweeper | None = None
        if redis is not None:
            nodes = NodeRegistry(redis, settings.redis_prefix, settings.node_id,
                                 settings.node_ttl_seconds, media=carries_media)
            self.router = MediaRouter(
                self.bridge, state, nodes, redis, settings.redis_prefix,
                home_subscribers=settings.room_home_subscribers,
                figures=self.figures)
            self.sweeper = MediaSweeper(self.bridge, self.router)
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def port(self) -> MediaPort:
        """Where the room's media requests go: the router that finds the room's media node,
        or on a single node the bridge itself."""
        return self.router or self.bridge

    async def figures(self) -> dict[str, Any]:
        """This process's media for /metrics (stats.media_figures)."""
        return await media_figures(self.bridge, self._state, self.stats.latest)

    async def start(self) -> None:
        if self.settings.ice_host_addresses:
            configure_host_addresses(list(self.settings.ice_host_addresses))
        if self.relay is not None:
            await self.relay.start()
        if self.router is not None:
            await self.router.start()
        if self.sweeper is not None:
            await self.sweeper.beat()

    async def recover(self) -> None:
        if self.sweeper is not None:
            await self.sweeper.recover()

    def run(self) -> None:
        self._tasks.append(asyncio.ensure_future(self.stats.run()))
        if self.sweeper is not None:
            self._tasks.append(asyncio.ensure_future(self.sweeper.run()))

    async def drain(self) -> None:
        if self.sweeper is not None:
            await self.sweeper.drain()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.bridge.close()
        if self.relay is not None:
            await self.relay.stop()
        if self.settings.ice_host_addresses:
            configure_host_addresses(None)
        if self.router is not None:
            await self.router.nodes.forget(self.settings.node_id)
            await self.router.stop()
