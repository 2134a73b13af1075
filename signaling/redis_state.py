"""Room state in Redis, shared by every app process of a deployment (multi-node).

Each room is one JSON value changed under WATCH/MULTI (optimistic: a change that raced with
another node's is simply run again on the new value), so the rules are exactly those of
:class:`~signaling.room_state.StoredRoomState`. The viewer state, which the driver changes
many times a second, is a hash of its own bumped by one script.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from app.roles import RoomRole

from .room_state import (
    MediaState,
    Member,
    RoomData,
    RoomLimits,
    StoredRoomState,
    ViewerState,
)

T = TypeVar("T")

# HINCRBY then HSET in one step: readers never see a sequence number without its state.
_SET_VIEWER = """
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'by', ARGV[1], 'state', ARGV[2])
return seq
"""


def _member_json(m: Member) -> dict[str, Any]:
    return {"participant_id": m.participant_id, "user_id": m.user_id, "name": m.name,
            "hospital_code": m.hospital_code, "hospital_name": m.hospital_name,
            "tier": m.tier, "role": m.role.value, "admitted": m.admitted, "sid": m.sid,
            "disconnected_at": m.disconnected_at, "node": m.node,
            "media": [m.media.mic, m.media.camera, m.media.screen, m.media.speaking]}


def _member(d: dict[str, Any]) -> Member:
    mic, camera, screen, speaking = d["media"]
    return Member(participant_id=d["participant_id"], user_id=d["user_id"], name=d["name"],
                  hospital_code=d["hospital_code"], hospital_name=d["hospital_name"],
                  tier=d["tier"], role=RoomRole(d["role"]), admitted=d["admitted"],
                  sid=d["sid"], disconnected_at=d["disconnected_at"], node=d["node"],
                  media=MediaState(mic, camera, screen, speaking))


def encode(room: RoomData) -> str:
    return json.dumps({
        "members": [_member_json(m) for m in room.members.values()],
        "order": room.order, "next_order": room.next_order, "banned": sorted(room.banned),
        "auto_admit": room.auto_admit, "control_holder": room.control_holder,
        "hands": room.hands,
    }, separators=(",", ":"))


def decode(raw: str | bytes) -> RoomData:
    d = json.loads(raw)
    return RoomData(members={m["participant_id"]: _member(m) for m in d["members"]},
                    order=d["order"], next_order=d["next_order"], banned=set(d["banned"]),
                    auto_admit=d["auto_admit"], control_holder=d["control_holder"],
                    hands=d["hands"])


class RedisRoomState(StoredRoomState):
    def __init__(self, redis: Redis, prefix: str, limits: RoomLimits) -> None:
        super().__init__(limits)
        self._redis = redis
        self._prefix = prefix
        self._rooms_key = f"{prefix}:rooms"
        self._set_viewer = redis.register_script(_SET_VIEWER)

    def _key(self, room_id: int) -> str:
        return f"{self._prefix}:room:{room_id}"

    def _viewer_key(self, room_id: int) -> str:
        return f"{self._prefix}:room:{room_id}:viewer"

    async def _read(self, room_id: int) -> RoomData | None:
        raw = await self._redis.get(self._key(room_id))
        return decode(raw) if raw is not None else None

    async def _watched(self, key: str, write: Callable[[Pipeline, str | None], T]) -> T:
        """Read ``key``, queue ``write``'s commands and commit them unless another node
        changed the key meanwhile; then run again on the new value."""
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it bare
                    result = write(pipe, str(raw) if raw is not None else None)
                    await pipe.execute()
                    return result
                except WatchError:
                    continue

    async def _change(self, room_id: int, change: Callable[[RoomData], T]) -> T:
        def write(pipe: Pipeline, raw: str | None) -> T:
            room = decode(raw) if raw is not None else RoomData()
            result = change(room)  # may raise: nothing queued is then sent
            pipe.set(self._key(room_id), encode(room))
            pipe.sadd(self._rooms_key, room_id)
            return result
        return await self._watched(self._key(room_id), write)

    async def viewer(self, room_id: int) -> ViewerState | None:
        raw = await self._redis.hgetall(self._viewer_key(room_id))
        if not raw:
            return None
        return ViewerState(int(raw["seq"]), str(raw["by"]), json.loads(raw["state"]))

    async def set_viewer(self, room_id: int, by: str, state: dict[str, Any]) -> int:
        seq = await self._set_viewer(keys=[self._viewer_key(room_id)],
                                     args=[by, json.dumps(state, separators=(",", ":"))])
        return int(seq)

    async def rooms(self) -> list[int]:
        ids = sorted(int(r) for r in await self._redis.smembers(self._rooms_key))
        live = []
        for room_id in ids:
            room = await self._read(room_id)
            if room is not None and room.members:
                live.append(room_id)
        return live

    async def drop(self, room_id: int) -> list[Member]:
        def write(pipe: Pipeline, raw: str | None) -> list[Member]:
            pipe.delete(self._key(room_id), self._viewer_key(room_id))
            pipe.srem(self._rooms_key, room_id)
            return list(decode(raw).members.values()) if raw is not None else []
        return await self._watched(self._key(room_id), write)
