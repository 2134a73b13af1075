"""Once a second: what no single event triggers. Two sweeps, each run by the processes that
have its parts.

``MemberSweeper``, on every node serving clients:
- Members away longer than the reconnect grace are removed (whichever node sees it first;
  the others find them gone).
- Multi-node: members whose socket was on a node that died are marked reconnecting; rooms
  whose media node died are placed on a live node, whose SFU adopts them, and members whose
  subscribe connection was on a worker that died rebuild their media; sockets of members
  the room no longer ties to them are closed.

``MediaSweeper``, multi-node, on every process with an SFU (nodes and SFU workers):
- The heartbeat (its load, whether it drains); a room this process still carries but that
  was moved away (it was unreachable for a while) is closed here, as are subscribe
  connections placed elsewhere since.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from .. import presence
from ..hub import Hub
from .bridge import MediaBridge
from .router import MediaRouter

log = logging.getLogger(__name__)


async def every(interval: float, sweep: Callable[[], Awaitable[None]], what: str) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep()
        except Exception:
            log.exception("%s failed", what)


class MemberSweeper:
    def __init__(self, hub: Hub, router: MediaRouter | None, interval: float = 1.0) -> None:
        self._hub = hub
        self._router = router
        self._interval = interval

    async def recover(self) -> None:
        """At start, multi-node: a node restarting under its old id (a crash, then systemd)
        finds members on sockets it no longer has: they turn reconnecting."""
        router, hub = self._router, self._hub
        if router is None:
            return
        me = router.nodes.node_id
        now = time.time()
        for room_id in await hub.state.rooms():
            for member in await hub.state.members(room_id):
                if member.node == me and member.sid is not None:
                    lost = await hub.state.detach(room_id, member.participant_id,
                                                  member.sid, now)
                    if lost is not None:
                        await presence.away(hub, room_id, lost)

    async def sweep_once(self) -> None:
        hub = self._hub
        alive = set(await self._router.nodes.alive()) if self._router is not None else None
        grace = hub.settings.reconnect_grace_seconds
        # Placements before rooms: a room placed after this read is not taken for ended.
        placements = await self._router.nodes.placements() if self._router is not None else {}
        rooms = await hub.state.rooms()
        for room_id in rooms:
            now = time.time()
            for member in await hub.state.members(room_id):
                if alive is not None and member.sid is not None and member.node not in alive:
                    lost = await hub.state.detach(room_id, member.participant_id,
                                                  member.sid, now)
                    if lost is not None:
                        log.info("room %s: %s was on node %s, which is gone", room_id,
                                 member.participant_id, member.node)
                        await presence.away(hub, room_id, lost)
                elif member.disconnected_at is not None and \
                        now - member.disconnected_at >= grace:
                    await presence.remove(hub, room_id, member.participant_id, "timeout")
            if self._router is not None and alive is not None:
                await self._router.place(room_id, create=False)
                await self._router.recover_subscribers(room_id, alive)
        if self._router is not None:
            for room_id, node in placements.items():
                if room_id not in rooms:
                    await self._router.forget_room(room_id, node)
            await self._drop_stale_sockets()

    async def _drop_stale_sockets(self) -> None:
        """Sockets of members the room no longer ties to them (this node was taken for dead
        while it stalled): closed, so their clients reconnect and resume for real."""
        hub = self._hub
        for conn in list(hub.connections.values()):
            if conn.participant_id is None:
                continue
            member = await hub.state.member(conn.room_id, conn.participant_id)
            if member is not None and member.sid != conn.sid:
                log.info("room %s: %s is no longer on socket %s here: closing it",
                         conn.room_id, conn.participant_id, conn.sid)
                conn.participant_id = None
                hub.spawn(hub.disconnect(conn.sid))

    async def run(self) -> None:
        await every(self._interval, self.sweep_once, "member sweep")


class MediaSweeper:
    def __init__(self, bridge: MediaBridge, router: MediaRouter, interval: float = 1.0) -> None:
        self._bridge = bridge
        self._router = router
        self._interval = interval

    async def beat(self) -> None:
        await self._router.nodes.heartbeat(self._bridge.load())

    async def recover(self) -> None:
        """At start: rooms placed on this process before it restarted under its old id,
        whose SFU it lost, are adopted again."""
        router = self._router
        me = router.nodes.node_id
        for room_id, node in (await router.nodes.placements()).items():
            if node == me:
                log.warning("room %s was placed on this node before it restarted: adopting "
                            "it again", room_id)
                await router.adopt(room_id, "node_restarted", me)
        await router.release_subscribers(me, "node_restarted")

    async def sweep_once(self) -> None:
        await self.beat()
        me = self._router.nodes.node_id
        for room_id in self._bridge.room_ids():
            # Moved away while this node was unreachable: its members are elsewhere now.
            owner = await self._router.nodes.owner(room_id)
            if owner is not None and owner != me:
                log.warning("room %s now lives on %s: closing it here", room_id, owner)
                await self._bridge.close_room(room_id)
        for room_id in self._bridge.mirrored_room_ids():
            await self._drop_stale_subscribers(room_id)

    async def _drop_stale_subscribers(self, room_id: int) -> None:
        """Subscribe connections of a mirrored room that were placed elsewhere since (this
        node was taken for dead while it stalled): closed here."""
        room = self._bridge.room(room_id)
        if room is None:
            return
        placed = await self._router.subscribers.all(room_id)
        for participant_id in room.participant_ids:
            if placed.get(participant_id) != self._router.nodes.node_id:
                log.warning("room %s: %s now subscribes elsewhere: closing its connection "
                            "here", room_id, participant_id)
                await self._bridge.remove(room_id, participant_id)

    async def run(self) -> None:
        await every(self._interval, self.sweep_once, "media sweep")

    async def drain(self) -> None:
        """Stop taking rooms and move this process's rooms to the other live nodes, least
        loaded first; with no other node, the rooms stay until the process ends."""
        router, bridge = self._router, self._bridge
        router.nodes.draining = True
        await self.beat()
        for room_id in bridge.room_ids():
            target = router.nodes.choose(await router.nodes.alive(),
                                         exclude=router.nodes.node_id)
            if target is None:
                log.warning("draining: no other node to take room %s", room_id)
                continue
            try:
                moved = await router.move(room_id, target, "node_draining")
            except Exception:
                log.exception("draining: room %s did not move to %s", room_id, target)
                continue
            log.info("draining: room %s %s to %s", room_id,
                     "moved" if moved else "not moved", target)
        # Rooms received elsewhere whose subscribers this process carries: they go to the
        # room's other workers.
        await router.release_subscribers(router.nodes.node_id, "node_draining")
