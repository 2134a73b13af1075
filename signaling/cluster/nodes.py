"""The app processes of a deployment as Redis sees them, and which one carries each room's
media (multi-node).

Every node refreshes a heartbeat key with a time to live and its load (SFU participants)
and whether it is draining. A room's media lives on one node, recorded in a hash; a room
whose node is gone or draining is placed again, on the live node with the least load, by a
compare-and-set so two nodes placing it at once agree (as LiveKit places rooms).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from redis.asyncio import Redis

# Set the room's node only if it is still what the caller saw ('' = none).
_CLAIM = """
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


def worker_id(node_id: str, index: int) -> str:
    """The name of an app node's SFU worker (workers.py)."""
    return f"{node_id}/w{index}"


def worker_group(node_id: str) -> str | None:
    """The app node whose worker ``node_id`` is (its machine), None for an app node."""
    base, sep, index = node_id.rpartition("/w")
    return base if sep and index.isdigit() else None


def relay_address(prefix: str, node_id: str) -> str:
    """The Unix socket (Linux abstract namespace) where a worker feeds the mirrors of the
    rooms it receives: the relay is between the workers of one machine."""
    return f"\0{prefix}:relay:{node_id}"


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    load: int
    draining: bool
    at: float
    #: Whether rooms' media may be placed on it: an app node whose SFU runs in worker
    #: processes carries none itself.
    media: bool = True
    pid: int = 0


class NodeRegistry:
    def __init__(self, redis: Redis, prefix: str, node_id: str, ttl_seconds: float, *,
                 media: bool = True) -> None:
        self._redis = redis
        self._prefix = prefix
        self.node_id = node_id
        self._ttl_ms = int(ttl_seconds * 1000)
        self._nodes_key = f"{prefix}:nodes"
        self._placement_key = f"{prefix}:room-nodes"
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self.draining = False
        self.media = media

    def _node_key(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}"

    async def heartbeat(self, load: int) -> None:
        info = json.dumps({"load": load, "draining": self.draining, "at": time.time(),
                           "media": self.media, "pid": os.getpid()})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._node_key(self.node_id), info, px=self._ttl_ms)
            pipe.sadd(self._nodes_key, self.node_id)
            await pipe.execute()

    async def forget(self, node_id: str) -> None:
        """The node is gone (it stopped, or nobody listens for it any more) rather than
        after its heartbeat expires; a node still running re-adds itself."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._node_key(node_id))
            pipe.srem(self._nodes_key, node_id)
            await pipe.execute()

    async def alive(self) -> dict[str, NodeInfo]:
        ids = sorted(str(n) for n in await self._redis.smembers(self._nodes_key))
        if not ids:
            return {}
        values = await self._redis.mget([self._node_key(n) for n in ids])
        nodes = {}
        for node_id, raw in zip(ids, values, strict=True):
            if raw is None:
                # Its heartbeat expired: forget it (a node that comes back re-adds itself).
                await self._redis.srem(self._nodes_key, node_id)
                continue
            d = json.loads(raw)
            nodes[node_id] = NodeInfo(node_id, d["load"], d["draining"], d["at"],
                                      d["media"], d["pid"])
        return nodes

    async def is_alive(self, node_id: str) -> bool:
        return bool(await self._redis.exists(self._node_key(node_id)))

    async def owner(self, room_id: int) -> str | None:
        owner = await self._redis.hget(self._placement_key, str(room_id))
        return str(owner) if owner is not None else None

    async def placements(self) -> dict[int, str]:
        raw = await self._redis.hgetall(self._placement_key)
        return {int(k): str(v) for k, v in raw.items()}

    async def claim(self, room_id: int, seen: str | None, node_id: str) -> bool:
        return await self.compare_and_set(self._placement_key, str(room_id), seen, node_id)

    async def compare_and_set(self, key: str, field: str, seen: str | None,
                              value: str) -> bool:
        """Set the hash field to ``value`` only if it is still ``seen`` (None: unset)."""
        return bool(await self._claim(keys=[key], args=[field, seen or "", value]))

    async def release(self, room_id: int, node_id: str) -> None:
        """Forget the room's placement if it is still on ``node_id`` (the room ended)."""
        await self._release(keys=[self._placement_key], args=[str(room_id), node_id])

    def choose(self, nodes: dict[str, NodeInfo], exclude: str | None = None) -> str | None:
        """The live, not draining media node with the least load; this one on a tie."""
        candidates = [n for n in nodes.values()
                      if n.media and not n.draining and n.node_id != exclude]
        if not candidates:
            return None
        return min(candidates, key=lambda n: (n.load, n.node_id != self.node_id,
                                              n.node_id)).node_id
