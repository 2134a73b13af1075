"""Media requests of a multi-node deployment: each goes to the node carrying the room's
media, wherever the member's socket is.

A room without a media node (or whose node died) is placed on the live node with the least
load; when it moved, the new node adopts it: every admitted member joins its SFU and is told
(``media:reset``) to build new connections. Events the SFU sends a member go through the
Socket.IO Redis manager, which finds the member's socket on any node.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from redis.asyncio import Redis

from . import errors
from .errors import SignalingError
from .hub import Hub
from .media_bridge import MediaBridge
from .node_rpc import NodeGone, NodeRpc
from .nodes import NodeRegistry
from .stats import media_figures

log = logging.getLogger(__name__)

# What another node may ask of this node's bridge.
_SERVED = frozenset({"add", "adopt", "remove", "sync_presenter", "reset", "resumed",
                     "close_room", "publish", "subscribe", "subscribe_answer", "ice",
                     "restart"})
ATTEMPTS = 3


class MediaRouter:
    def __init__(self, hub: Hub, local: MediaBridge, nodes: NodeRegistry, redis: Redis,
                 prefix: str) -> None:
        self._hub = hub
        self._local = local
        self.nodes = nodes
        self._rpc = NodeRpc(redis, prefix, nodes.node_id, self._serve)

    async def start(self) -> None:
        await self._rpc.start()

    async def stop(self) -> None:
        await self._rpc.stop()

    async def _serve(self, method: str, args: list[Any]) -> Any:
        if method == "figures":
            return await media_figures(self._hub)
        if method not in _SERVED:
            raise SignalingError(errors.MEDIA_ERROR, f"unknown media request {method!r}")
        return await getattr(self._local, method)(*args)

    async def _on(self, node_id: str, method: str, args: list[Any]) -> Any:
        if node_id == self.nodes.node_id:
            return await self._serve(method, args)
        return await self._rpc.call(node_id, method, args)

    async def figures(self, node_id: str) -> dict[str, Any] | None:
        """:func:`media_figures` of another node (one of this node's workers); None if it
        does not answer."""
        try:
            figures: dict[str, Any] = await self._rpc.call(node_id, "figures", [])
        except (NodeGone, SignalingError):
            return None
        return figures

    async def place(self, room_id: int, *, create: bool = True) -> str | None:
        """The node carrying the room's media; None if it has none and ``create`` is off."""
        while True:
            # Every media request comes here: the common case costs two Redis reads.
            seen = await self.nodes.owner(room_id)
            if seen is not None and await self.nodes.is_alive(seen):
                return seen
            if seen is None and not create:
                return None
            target = self.nodes.choose(await self.nodes.alive()) or self.nodes.node_id
            if not await self.nodes.claim(room_id, seen, target):
                continue  # another node placed it first: use its choice
            if seen is not None:
                log.warning("room %s: media node %s is gone, moving the room to %s",
                            room_id, seen, target)
                await self._on(target, "adopt", [room_id, "media_moved", seen])
            return target

    async def move(self, room_id: int, target: str, reason: str) -> bool:
        """Hand this node's room to ``target`` (draining)."""
        if not await self.nodes.claim(room_id, self.nodes.node_id, target):
            return False
        await self._local.close_room(room_id)
        await self._on(target, "adopt", [room_id, reason, self.nodes.node_id])
        return True

    async def _call(self, room_id: int, method: str, *args: Any, create: bool = True) -> Any:
        for _ in range(ATTEMPTS):
            node = await self.place(room_id, create=create)
            if node is None:
                return None
            try:
                return await self._on(node, method, [room_id, *args])
            except NodeGone:
                # Nobody listens for it: dead, whatever its heartbeat still says.
                await self.nodes.forget(node)
        raise SignalingError(errors.MEDIA_ERROR, "the room's media node does not answer")

    # -- the same operations as MediaBridge ------------------------------------------

    async def add(self, room_id: int, participant_id: str) -> None:
        await self._call(room_id, "add", participant_id)

    async def remove(self, room_id: int, participant_id: str) -> None:
        await self._call(room_id, "remove", participant_id, create=False)

    async def sync_presenter(self, room_id: int) -> None:
        await self._call(room_id, "sync_presenter", create=False)

    async def reset(self, room_id: int, participant_id: str, reason: str) -> None:
        await self._call(room_id, "reset", participant_id, reason)

    async def resumed(self, room_id: int, participant_id: str) -> None:
        await self._call(room_id, "resumed", participant_id, create=False)

    async def close_room(self, room_id: int) -> None:
        node = await self.nodes.owner(room_id)
        if node is None:
            return
        try:
            await self._on(node, "close_room", [room_id])
        except NodeGone:
            pass  # its media died with it
        await self.nodes.release(room_id, node)

    async def publish(self, room_id: int, participant_id: str, sdp: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(room_id, "publish", participant_id, sdp)
        return result

    async def subscribe(self, room_id: int, participant_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(room_id, "subscribe", participant_id)
        return result

    async def subscribe_answer(self, room_id: int, participant_id: str,
                               sdp: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(room_id, "subscribe_answer",
                                                  participant_id, sdp)
        return result

    async def ice(self, room_id: int, participant_id: str, pc: Literal["publish", "subscribe"],
                  candidate: dict[str, Any] | None) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(room_id, "ice", participant_id, pc,
                                                  candidate)
        return result

    async def restart(self, room_id: int, participant_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(room_id, "restart", participant_id)
        return result
