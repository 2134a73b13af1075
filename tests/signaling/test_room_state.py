"""The room state contract, the same for one process (memory) and for several (the real
Redis): the rules, and that racing changes from many nodes keep them."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from app.roles import RoomRole
from signaling.errors import SignalingError
from signaling.redis_state import RedisRoomState
from signaling.room_state import (
    InProcessRoomState,
    MediaState,
    Member,
    RoomLimits,
    RoomState,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
LIMITS = RoomLimits(max_publishers=3, max_observers=2)
ROOM = 7


@pytest.fixture(params=["memory", "redis"])
async def states(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], RoomState]]:
    """Makes room states over one store: several Redis nodes, or the one process."""
    if request.param == "memory":
        only = InProcessRoomState(LIMITS)
        yield lambda: only
        return
    prefix = f"test-{secrets.token_hex(4)}"
    clients: list[Redis] = []

    def node() -> RoomState:
        clients.append(Redis.from_url(REDIS_URL, decode_responses=True))
        return RedisRoomState(clients[-1], prefix, LIMITS)
    yield node
    keys = [k async for k in clients[0].scan_iter(f"{prefix}:*")] if clients else []
    if keys:
        await clients[0].delete(*keys)
    for client in clients:
        await client.aclose()


def member(n: int, role: RoomRole = RoomRole.participant, **kw: Any) -> Member:
    return Member(participant_id=f"p-{n}", user_id=n, name=f"Dr {n}", hospital_code="H",
                  hospital_name="Hospital", tier="district", role=role, **kw)


async def test_rules(states: Callable[[], RoomState]) -> None:
    state = states()
    host = await state.add(ROOM, member(1, RoomRole.host, admitted=True, sid="s1", node="a"))
    await state.add(ROOM, member(2, sid="s2"))
    await state.add(ROOM, member(3, RoomRole.observer))
    assert [m.participant_id for m in await state.members(ROOM)] == ["p-1", "p-2", "p-3"]
    assert await state.member(ROOM, "p-1") == host
    assert (await state.member_by_user(ROOM, 2)).participant_id == "p-2"  # type: ignore[union-attr]
    with pytest.raises(SignalingError) as err:
        await state.add(ROOM, member(2))
    assert err.value.code == "conflict"

    # Roles: one presenter at a time, the host's role is fixed, limits hold.
    await state.add(ROOM, member(4, RoomRole.presenter))
    changed = await state.set_role(ROOM, "p-2", RoomRole.presenter)
    assert [(m.participant_id, m.role) for m in changed] == [
        ("p-2", RoomRole.presenter), ("p-4", RoomRole.participant)]
    with pytest.raises(SignalingError) as err:
        await state.set_role(ROOM, "p-1", RoomRole.observer)
    assert err.value.code == "conflict"
    with pytest.raises(SignalingError) as err:
        await state.set_role(ROOM, "p-3", RoomRole.participant)  # 3 publishers already
    assert err.value.code == "room_full"
    assert (await state.member(ROOM, "p-3")).role is RoomRole.observer  # type: ignore[union-attr]

    # Presence: a drop is only the drop of the socket the member is still on.
    assert await state.detach(ROOM, "p-2", "old-socket", 10.0) is None
    away = await state.detach(ROOM, "p-2", "s2", 10.0)
    assert away is not None and away.sid is None and away.disconnected_at == 10.0
    back = await state.attach(ROOM, "p-2", "s9", 11.0, "b")
    assert (back.sid, back.node, back.disconnected_at) == ("s9", "b", None)
    assert (await state.set_media(ROOM, "p-2", MediaState(mic=True))).media.mic is True

    # Hands, control, viewer.
    assert await state.raise_hand(ROOM, "p-2") is True
    assert await state.raise_hand(ROOM, "p-2") is False
    await state.admit(ROOM, "p-2")
    await state.set_control_holder(ROOM, "p-2")
    with pytest.raises(SignalingError):
        await state.set_control_holder(ROOM, "p-3")  # not admitted
    assert await state.control_holder(ROOM) == "p-2"
    assert await state.set_viewer(ROOM, "p-2", {"index": 1}) == 1
    assert await state.set_viewer(ROOM, "p-2", {"index": 2}) == 2
    viewer = await state.viewer(ROOM)
    assert viewer is not None and (viewer.seq, viewer.by, viewer.state) == (2, "p-2",
                                                                            {"index": 2})

    # Leaving takes the hand and control along; a ban keeps the user out.
    gone = await state.remove(ROOM, "p-2", ban=True)
    assert gone is not None and await state.hands(ROOM) == []
    assert await state.control_holder(ROOM) is None
    with pytest.raises(SignalingError) as err:
        await state.add(ROOM, member(2))
    assert err.value.code == "removed"
    assert await state.rooms() == [ROOM]
    assert {m.participant_id for m in await state.drop(ROOM)} == {"p-1", "p-3", "p-4"}
    assert await state.members(ROOM) == [] and await state.viewer(ROOM) is None
    assert await state.rooms() == []


async def test_racing_nodes_keep_the_limits(states: Callable[[], RoomState]) -> None:
    """Twenty doctors joining through four nodes at once: exactly the room's three
    publishers get in, every hand raised is kept, and the viewer's numbers do not repeat."""
    nodes = [states() for _ in range(4)]

    async def join(n: int) -> bool:
        try:
            await nodes[n % 4].add(ROOM, member(n))
        except SignalingError as exc:
            assert exc.code == "room_full"
            return False
        return True
    admitted = await asyncio.gather(*(join(n) for n in range(20)))
    assert sum(admitted) == LIMITS.max_publishers
    inside = [m.participant_id for m in await nodes[0].members(ROOM)]
    assert len(inside) == LIMITS.max_publishers
    await asyncio.gather(*(nodes[i % 4].raise_hand(ROOM, pid) for i, pid in enumerate(inside)))
    assert sorted(await nodes[1].hands(ROOM)) == sorted(inside)
    seqs = await asyncio.gather(*(nodes[i % 4].set_viewer(ROOM, inside[0], {"i": i})
                                  for i in range(40)))
    assert sorted(seqs) == list(range(1, 41))
