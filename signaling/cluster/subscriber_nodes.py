"""Where each member's subscribe connection is, for rooms spread over a node's SFU workers
(router.py): one Redis hash per room, participant id → worker.

A room's first ``home_subscribers`` subscribe connections stay in its home worker (the one
receiving its publishers: no relay cost for small rooms); each later one goes to the live,
not draining worker of the same node carrying the fewest of the room's subscribe
connections, then the least loaded.

A member subscribing in the home is recorded as :data:`HOME`, not by the worker's name:
when the room moves to another home, those members move with it and nothing recorded
points at the old one.
"""

from __future__ import annotations

from collections import Counter

from redis.asyncio import Redis

from .nodes import NodeRegistry, worker_group

HOME = "@home"


class SubscriberNodes:
    def __init__(self, redis: Redis, prefix: str, nodes: NodeRegistry,
                 home_subscribers: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._nodes = nodes
        self._home_subscribers = home_subscribers

    def _key(self, room_id: int) -> str:
        return f"{self._prefix}:room-subscribers:{room_id}"

    async def all(self, room_id: int) -> dict[str, str]:
        """Participant id → its subscribe worker, or :data:`HOME`."""
        raw = await self._redis.hgetall(self._key(room_id))
        return {str(k): str(v) for k, v in raw.items()}

    async def away(self, room_id: int) -> dict[str, str]:
        """The members subscribing on a worker other than the room's home, and where."""
        return {pid: node for pid, node in (await self.all(room_id)).items() if node != HOME}

    async def of(self, room_id: int, participant_id: str, home: str) -> str:
        """The member's subscribe worker (``home`` if it subscribes there)."""
        node = await self._redis.hget(self._key(room_id), participant_id)
        return str(node) if node and node != HOME else home

    async def place(self, room_id: int, participant_id: str, home: str) -> str:
        """Choose the member's subscribe worker afresh, and record it."""
        others = await self.all(room_id)
        others.pop(participant_id, None)
        target = home
        group = worker_group(home)
        at_home = sum(1 for node in others.values() if node == HOME)
        if group is not None and at_home >= self._home_subscribers:
            siblings = [n for n in (await self._nodes.alive()).values()
                        if n.media and not n.draining and worker_group(n.node_id) == group]
            if siblings:
                counts = Counter(home if node == HOME else node for node in others.values())
                target = min(siblings, key=lambda n: (counts[n.node_id], n.load,
                                                      n.node_id != home, n.node_id)).node_id
        await self._redis.hset(self._key(room_id), participant_id,
                               HOME if target == home else target)
        return target

    async def set_home(self, room_id: int, participant_id: str) -> None:
        await self._redis.hset(self._key(room_id), participant_id, HOME)

    async def take_over(self, room_id: int, participant_id: str, seen: str) -> bool:
        """Record the member at home if its record still says ``seen``: of several nodes
        noticing that ``seen`` died, one wins."""
        return await self._nodes.compare_and_set(self._key(room_id), participant_id, seen,
                                                 HOME)

    async def drop(self, room_id: int, participant_id: str) -> None:
        await self._redis.hdel(self._key(room_id), participant_id)

    async def forget_room(self, room_id: int) -> None:
        await self._redis.delete(self._key(room_id))
