"""Media requests of a multi-node deployment: each goes to the node carrying the room's
media, wherever the member's socket is.

A room without a media node (or whose node died) is placed on the live node with the least
load; when it moved, the new node adopts it: every admitted member joins its SFU and is told
(``media:reset``) to build new connections. Events the SFU sends a member go through the
Socket.IO Redis manager, which finds the member's socket on any node.

A room placed on an SFU worker is spread over its node's workers: its publishers are
received in the room's node (its *home*), and each member's subscribe connection is placed
on its own (subscriber_nodes.py); a worker other than the home mirrors the home's tracks
over the relay (media/relay_edge.py). Publish requests go home, subscribe requests to the
member's subscribe worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, overload

from redis.asyncio import Redis

from .. import errors
from ..errors import SignalingError
from ..ports import PeerConnection
from ..room_state import RoomState
from .bridge import MediaBridge
from .node_rpc import NodeGone, NodeRpc
from .nodes import NodeRegistry
from .subscriber_nodes import SubscriberNodes

log = logging.getLogger(__name__)

# What another node may ask of this node's bridge.
_SERVED = frozenset({"add", "add_subscriber", "remove", "sync_presenter", "reset",
                     "resumed", "close_room", "publish", "subscribe", "subscribe_answer",
                     "ice", "restart"})
ATTEMPTS = 3
#: How long a media request waits for an SFU worker to come up (a node's workers start
#: within a couple of seconds; one that died is started again after a second).
MEDIA_NODE_WAIT_S = 10.0


class MediaRouter:
    def __init__(self, local: MediaBridge, state: RoomState, nodes: NodeRegistry, redis: Redis,
                 prefix: str, *, home_subscribers: int,
                 figures: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """``figures``: this process's media figures, which another node asks for its
        /metrics (stats.media_figures)."""
        self._local = local
        self._state = state
        self._figures = figures
        self.nodes = nodes
        self.subscribers = SubscriberNodes(redis, prefix, nodes, home_subscribers)
        self._rpc = NodeRpc(redis, prefix, nodes.node_id, self._serve)

    async def start(self) -> None:
        await self._rpc.start()

    async def stop(self) -> None:
        await self._rpc.stop()

    async def _serve(self, method: str, args: list[Any]) -> Any:
        if method == "figures":
            return await self._figures()
        if method == "adopt":
            return await self.adopt(*args)
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

    @overload
    async def place(self, room_id: int) -> str: ...

    @overload
    async def place(self, room_id: int, *, create: bool) -> str | None: ...

    async def place(self, room_id: int, *, create: bool = True) -> str | None:
        """The node carrying the room's media; None if it has none and ``create`` is off."""
        while True:
            # Every media request comes here: the common case costs two Redis reads.
            seen = await self.nodes.owner(room_id)
            if seen is not None and await self.nodes.is_alive(seen):
                return seen
            if seen is None and not create:
                return None
            target = await self._media_node()
            if not await self.nodes.claim(room_id, seen, target):
                continue  # another node placed it first: use its choice
            if seen is not None:
                log.warning("room %s: media node %s is gone, moving the room to %s",
                            room_id, seen, target)
                await self._on(target, "adopt", [room_id, "media_moved", seen])
            return target

    async def _media_node(self) -> str:
        """The node to place a room on. An app node whose SFU runs in workers takes none
        itself: it waits for a worker, which may be starting (or starting again)."""
        deadline = asyncio.get_running_loop().time() + MEDIA_NODE_WAIT_S
        while True:
            target = self.nodes.choose(await self.nodes.alive())
            if target is not None:
                return target
            if self.nodes.media:
                return self.nodes.node_id
            if asyncio.get_running_loop().time() >= deadline:
                raise SignalingError(errors.MEDIA_ERROR, "no SFU worker is running")
            await asyncio.sleep(0.2)

    async def adopt(self, room_id: int, reason: str, gone_node: str) -> None:
        """The room's media comes to this node from ``gone_node`` (dead or draining): every
        admitted member joins this SFU and is told to build new connections; those whose
        socket was on ``gone_node`` are told when they resume on another."""
        # Every member's subscribe connection is placed again: the old mirrors close, and
        # no record is left for the sweep to rebuild a second time (recover_subscribers).
        away = await self.subscribers.away(room_id)
        await self.subscribers.forget_room(room_id)
        for node in set(away.values()):
            await self._on_live(node, "close_room", [room_id])
        for member in await self._state.members(room_id):
            if member.admitted:
                await self.reset(room_id, member.participant_id, reason, gone_node)

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

    # -- where members' subscribe connections are --------------------------------------

    async def _join(self, room_id: int, participant_id: str, method: str,
                    *args: Any) -> Any:
        """Place the member's subscribe connection, then run ``method`` (add, reset or
        restart) at the room's home, telling it whether it carries that connection too."""
        for _ in range(ATTEMPTS):
            home = await self.place(room_id)
            sub = await self.subscribers.place(room_id, participant_id, home)
            try:
                if sub != home:
                    try:
                        await self._on(sub, "add_subscriber", [room_id, participant_id, home])
                    except SignalingError as exc:
                        log.warning("room %s: %s cannot mirror the room (%s): %s subscribes "
                                    "at home", room_id, sub, exc.message, participant_id)
                        await self.subscribers.set_home(room_id, participant_id)
                        sub = home
                return await self._on(home, method,
                                      [room_id, participant_id, *args, sub == home])
            except NodeGone as gone:
                await self.nodes.forget(str(gone))
        raise SignalingError(errors.MEDIA_ERROR, "the room's media node does not answer")

    async def _leave_subscriber(self, room_id: int, participant_id: str, home: str) -> None:
        """Close the member's subscribe connection where it is, if not at ``home``."""
        sub = await self.subscribers.of(room_id, participant_id, home)
        if sub != home:
            await self._on_live(sub, "remove", [room_id, participant_id])

    async def _on_live(self, node_id: str, method: str, args: list[Any]) -> None:
        """Ask ``node_id`` unless its heartbeat says it is gone: a stalled node would only
        answer after the request's timeout, and what it held is rebuilt elsewhere."""
        if await self.nodes.is_alive(node_id):
            with contextlib.suppress(NodeGone):
                await self._on(node_id, method, args)

    async def recover_subscribers(self, room_id: int, alive: set[str]) -> None:
        """Members whose subscribe connection was on a node that died rebuild their media
        (whichever node sees it first: the compare-and-set lets one do it)."""
        away = await self.subscribers.away(room_id)
        if all(node in alive for node in away.values()):
            return
        if await self.nodes.owner(room_id) not in alive:
            return  # the room itself moves, and all its members rebuild (adopt)
        for participant_id, node in away.items():
            if node not in alive and \
                    await self.subscribers.take_over(room_id, participant_id, node):
                log.warning("room %s: %s's subscribe connection was on %s, which is gone",
                            room_id, participant_id, node)
                await self.reset(room_id, participant_id, "media_moved", node)

    async def release_subscribers(self, node_id: str, reason: str) -> None:
        """This node leaves (draining) or came back without its connections (restarted):
        the members whose subscribe connection it carried rebuild their media elsewhere."""
        for room_id in await self._state.rooms():
            for participant_id, node in (await self.subscribers.away(room_id)).items():
                if node == node_id:
                    await self.reset(room_id, participant_id, reason, node_id)

    async def forget_room(self, room_id: int, node_id: str) -> None:
        """The room ended: its placement and its subscribers' are dropped."""
        await self.nodes.release(room_id, node_id)
        await self.subscribers.forget_room(room_id)

    # -- the same operations as MediaBridge ------------------------------------------

    async def add(self, room_id: int, participant_id: str) -> None:
        await self._join(room_id, participant_id, "add")

    async def remove(self, room_id: int, participant_id: str) -> None:
        home = await self.nodes.owner(room_id)
        if home is not None:
            await self._leave_subscriber(room_id, participant_id, home)
        await self._call(room_id, "remove", participant_id, create=False)
        await self.subscribers.drop(room_id, participant_id)

    async def sync_presenter(self, room_id: int) -> None:
        await self._call(room_id, "sync_presenter", create=False)

    async def reset(self, room_id: int, participant_id: str, reason: str,
                    gone_node: str = "") -> None:
        await self._leave_subscriber(room_id, participant_id, await self.place(room_id))
        await self._join(room_id, participant_id, "reset", reason, gone_node)

    async def resumed(self, room_id: int, participant_id: str) -> None:
        home = await self.place(room_id, create=False)
        if home is None:
            return
        sub = await self.subscribers.of(room_id, participant_id, home)
        if sub != home:
            # Offers held back while the member was away are the subscribe worker's.
            await self._on_live(sub, "resumed", [room_id, participant_id])
        await self._call(room_id, "resumed", participant_id, create=False)

    async def close_room(self, room_id: int) -> None:
        node = await self.nodes.owner(room_id)
        if node is None:
            return
        with contextlib.suppress(NodeGone):  # its media died with it
            await self._on(node, "close_room", [room_id])
        for sub in set((await self.subscribers.away(room_id)).values()) - {node}:
            await self._on_live(sub, "close_room", [room_id])
        await self.forget_room(room_id, node)

    async def _call_subscriber(self, room_id: int, participant_id: str, method: str,
                               *args: Any) -> Any:
        home = await self.place(room_id)
        sub = await self.subscribers.of(room_id, participant_id, home)
        if sub == home:
            return await self._call(room_id, method, participant_id, *args)
        try:
            return await self._on(sub, method, [room_id, participant_id, *args])
        except NodeGone:
            # Its members rebuild their media elsewhere (recover_subscribers).
            await self.nodes.forget(sub)
            raise SignalingError(errors.MEDIA_ERROR, "your media worker does not answer")\
                from None

    async def publish(self, room_id: int, participant_id: str, sdp: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(room_id, "publish", participant_id, sdp)
        return result

    async def subscribe(self, room_id: int, participant_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call_subscriber(room_id, participant_id,
                                                             "subscribe")
        return result

    async def subscribe_answer(self, room_id: int, participant_id: str, sdp: str,
                               version: int | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._call_subscriber(room_id, participant_id,
                                                             "subscribe_answer", sdp, version)
        return result

    async def ice(self, room_id: int, participant_id: str, pc: PeerConnection,
                  candidate: dict[str, Any] | None) -> dict[str, Any]:
        if pc == "subscribe":
            result: dict[str, Any] = await self._call_subscriber(
                room_id, participant_id, "ice", pc, candidate)
        else:
            result = await self._call(room_id, "ice", participant_id, pc, candidate)
        return result

    async def restart(self, room_id: int, participant_id: str) -> dict[str, Any]:
        await self._leave_subscriber(room_id, participant_id, await self.place(room_id))
        result: dict[str, Any] = await self._join(room_id, participant_id, "restart")
        return result
