"""SFU worker processes (HOICHAN_MEDIA_WORKERS): each a media node of the deployment beside
the app node that starts it, so that rooms' media spreads over the machine's cores and the
app node's own loop (REST, DICOMweb, signaling) never waits behind packet forwarding.

A worker holds no client socket: members reach it through the room's node placement like
any media node (router.py), and it talks to them through a write-only Socket.IO Redis
manager. It runs only its media (media_node.py): no Socket.IO server, no database.
A worker also listens on its relay socket, so that a big room received here can spread its
subscribers over the node's other workers (media/relay_home.py).
One that dies is started again under the same name; meanwhile its rooms move to another
media node and their members rebuild their media there (``media:reset``).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys

import socketio
from redis.asyncio import Redis

from app.config import Settings

from ..outbox import SocketOutbox
from ..redis_state import RedisRoomState
from ..room_state import RoomLimits
from .media_node import MediaNode
from .nodes import worker_id

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # A worker outliving a killed app node would keep its name when the node restarts and
    # starts a new one: two processes under one name. Linux ends it with its parent.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class WorkerPool:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._keepers: list[asyncio.Task[None]] = []
        self._stopping = False

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values() if p.returncode is None]

    async def start(self) -> None:
        for index in range(self._settings.media_workers):
            self._keepers.append(asyncio.create_task(self._keep(index)))

    async def _keep(self, index: int) -> None:
        env = {**os.environ, "HOICHAN_NODE_ID": worker_id(self._settings.node_id, index)}
        while not self._stopping:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hoichan.cli", "media-worker", env=env,
                preexec_fn=_die_with_parent)
            self._procs[index] = proc
            code = await proc.wait()
            if self._stopping:
                return
            log.warning("media worker %s exited (%s): starting it again",
                        worker_id(self._settings.node_id, index), code)
            await asyncio.sleep(RESTART_DELAY_S)

    async def stop(self) -> None:
        """SIGTERM to every worker: each hands its rooms to other media nodes and exits."""
        self._stopping = True
        procs = [p for p in self._procs.values() if p.returncode is None]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for keeper in self._keepers:
            keeper.cancel()


async def run_worker(settings: Settings) -> None:
    """The worker process's life: serve rooms' media until SIGTERM, then drain."""
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    state = RedisRoomState(redis, settings.redis_prefix, RoomLimits(
        settings.room_max_publishers, settings.room_max_observers))
    manager = socketio.AsyncRedisManager(
        settings.redis_url, channel=f"{settings.redis_prefix}:socketio", write_only=True)
    node = MediaNode(settings, state, SocketOutbox(manager, state), redis,
                     carries_media=True, relays=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await node.start()
    await node.recover()
    node.run()
    log.info("media worker %s serving", settings.node_id)
    try:
        await stop.wait()
        await node.drain()
    finally:
        await node.stop()
        await redis.aclose()
