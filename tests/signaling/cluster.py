"""`hoichan serve` processes sharing the real PostgreSQL and Redis, as the multi-node and
media-worker tests start them, and the media checks both make of a room across them."""

from __future__ import annotations

import contextlib
import json
import secrets
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from tests.app_process import AppProcess
from tests.conftest import JWT_SECRET
from tests.waiting import wait_for

from .conftest import Peer, Room
from .media_clients import MediaClient

REDIS_URL = "redis://127.0.0.1:6379/0"
GRACE_S = 20.0
NODE_TTL_S = 2.0
RECOVERY_S = 10.0  # the bound: participants back within 10 s
# New peer connections negotiate, gather and start at a keyframe: seconds on a loaded machine
# (media_clients.NEGOTIATION_S); what the bound is about is the reset that starts them.
MEDIA_S = 30.0


class Nodes:
    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.prefix = f"test-{secrets.token_hex(4)}"
        self.nodes = {
            name: AppProcess(
                tmp_path / name,
                HOICHAN_DATABASE_URL=database_url,
                HOICHAN_JWT_SECRET=JWT_SECRET,
                HOICHAN_REDIS_URL=REDIS_URL,
                HOICHAN_MEDIA_WORKERS="0",
                HOICHAN_REDIS_PREFIX=self.prefix,
                HOICHAN_NODE_ID=name,
                HOICHAN_NODE_TTL_SECONDS=str(NODE_TTL_S),
                HOICHAN_ICE_HOST_ADDRESSES="127.0.0.1",
                HOICHAN_RECONNECT_GRACE_SECONDS=str(GRACE_S),
                HOICHAN_ROOM_STATS_INTERVAL_SECONDS="1",
            )
            for name in ("a", "b")
        }

    def __getitem__(self, name: str) -> AppProcess:
        return self.nodes[name]

    @contextlib.asynccontextmanager
    async def redis(self) -> AsyncIterator[Redis]:
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            yield client
        finally:
            await client.aclose()

    async def owner(self, room_id: int) -> str | None:
        async with self.redis() as redis:
            owner = await redis.hget(f"{self.prefix}:room-nodes", str(room_id))
        return str(owner) if owner is not None else None

    async def clean(self) -> None:
        async with self.redis() as redis:
            keys = [k async for k in redis.scan_iter(f"{self.prefix}:*")]
            if keys:
                await redis.delete(*keys)

    async def heartbeats(self) -> dict[str, dict[str, Any]]:
        """Each live node's (and worker's) last heartbeat, by node id."""
        beats = {}
        async with self.redis() as redis:
            for node in await redis.smembers(f"{self.prefix}:nodes"):
                raw = await redis.get(f"{self.prefix}:node:{node}")
                if raw is not None:
                    beats[str(node)] = json.loads(raw)
        return beats


def media(room: Room, peer: Peer) -> MediaClient:
    client = MediaClient(peer)
    room.media_clients.append(client)  # type: ignore[attr-defined]
    return client


async def on_air(room: Room, peer: Peer) -> MediaClient:
    client = media(room, peer)
    ack = await client.publish()
    assert "error" not in ack, ack
    await client.subscribe()
    return client


async def receiving(
    client: MediaClient, publisher: Peer, frames: int = 15, timeout: float = 30.0
) -> None:
    assert publisher.participant_id is not None
    start = client.frames(publisher.participant_id, "video")
    await wait_for(
        lambda: client.frames(publisher.participant_id or "", "video") >= start + frames,
        timeout,
        f"{client.peer.label} receives {publisher.label}'s video",
    )


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode())
