"""Who is in each room and what they hold: THE interface to room state.

Everything else in signaling reads and changes rooms only through :class:`RoomState`.
Every method is a coroutine and does its check-and-change as one step, so a Redis
implementation (multi-node) can keep the same contract with one script per method.
:class:`InProcessRoomState` serves a single process, :class:`~signaling.redis_state.RedisRoomState`
several; both apply the same rules (:class:`StoredRoomState`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from app.roles import RoomRole

from .errors import CONFLICT, NOT_FOUND, REMOVED, ROOM_FULL, SignalingError

T = TypeVar("T")


@dataclass(frozen=True)
class MediaState:
    mic: bool = False
    camera: bool = False
    screen: bool = False
    speaking: bool = False


@dataclass(frozen=True)
class Member:
    """One person in one room, in the lobby or admitted, connected or reconnecting."""

    participant_id: str
    user_id: int
    name: str
    hospital_code: str
    hospital_name: str
    tier: str
    role: RoomRole
    admitted: bool = False
    #: The socket currently carrying this member; None while reconnecting.
    sid: str | None = None
    #: time.time() of the drop while reconnecting, else None.
    disconnected_at: float | None = None
    #: The node (app process) holding that socket: its sockets die with it.
    node: str = ""
    media: MediaState = field(default_factory=MediaState)

    @property
    def publishes(self) -> bool:
        return self.role is not RoomRole.observer

    @property
    def connected(self) -> bool:
        return self.sid is not None

    def public(self) -> dict[str, Any]:
        """What other members see: never the socket id."""
        return {
            "participant_id": self.participant_id,
            "user_id": self.user_id,
            "name": self.name,
            "hospital": {"code": self.hospital_code, "name": self.hospital_name,
                         "tier": self.tier},
            "role": self.role.value,
            "status": "connected" if self.connected else "reconnecting",
            "media": {"mic": self.media.mic, "camera": self.media.camera,
                      "screen": self.media.screen, "speaking": self.media.speaking},
        }


@dataclass(frozen=True)
class ViewerState:
    """The room's shared view: who set it last, and its sequence number."""

    seq: int
    by: str
    state: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {"seq": self.seq, "by": self.by, "state": self.state}


@dataclass(frozen=True)
class RoomLimits:
    max_publishers: int
    max_observers: int


def new_participant_id() -> str:
    return "p-" + secrets.token_hex(6)


class RoomState(Protocol):
    """Presence, roles, lobby, media state, viewer-control holder and raised hands."""

    async def add(self, room_id: int, member: Member) -> Member:
        """Add a new member. SignalingError ``room_full`` past the role's limit (the host
        is exempt), ``removed`` if the host removed this user, ``conflict`` if the user is
        already a member."""
        ...

    async def member(self, room_id: int, participant_id: str) -> Member | None: ...

    async def member_by_user(self, room_id: int, user_id: int) -> Member | None: ...

    async def members(self, room_id: int) -> list[Member]:
        """Every member, lobby included, in order of arrival."""
        ...

    async def attach(self, room_id: int, participant_id: str, sid: str | None,
                     at: float, node: str = "") -> Member:
        """Bind the member to a socket on ``node``, or (sid None) mark it reconnecting
        since ``at``."""
        ...

    async def detach(self, room_id: int, participant_id: str, sid: str,
                     at: float) -> Member | None:
        """Mark the member reconnecting since ``at`` if it is still on socket ``sid``;
        None if it is gone or already on another socket (it came back meanwhile)."""
        ...

    async def admit(self, room_id: int, participant_id: str) -> Member: ...

    async def set_media(self, room_id: int, participant_id: str, media: MediaState) -> Member: ...

    async def set_role(self, room_id: int, participant_id: str,
                       role: RoomRole) -> list[Member]:
        """Change a role within the limits; the host role cannot be given or taken. Handing
        over ``presenter`` makes the previous presenter a participant. Returns every member
        whose role changed, the target first."""
        ...

    async def remove(self, room_id: int, participant_id: str, *,
                     ban: bool = False) -> Member | None:
        """Take the member out (its hand and viewer control with it); ``ban`` keeps the
        user out of this room until it is dropped."""
        ...

    async def auto_admit(self, room_id: int) -> bool: ...

    async def set_auto_admit(self, room_id: int, on: bool) -> None: ...

    async def control_holder(self, room_id: int) -> str | None: ...

    async def set_control_holder(self, room_id: int, participant_id: str | None) -> None:
        """NOT_FOUND unless ``participant_id`` is an admitted member (or None)."""
        ...

    async def viewer(self, room_id: int) -> ViewerState | None:
        """The shared viewer state, or None before the first."""
        ...

    async def set_viewer(self, room_id: int, by: str, state: dict[str, Any]) -> int:
        """Replaces the shared viewer state; returns its new sequence number."""
        ...

    async def hands(self, room_id: int) -> list[str]:
        """Participant ids with a raised hand, first raised first."""
        ...

    async def raise_hand(self, room_id: int, participant_id: str) -> bool:
        """False if the hand was already up."""
        ...

    async def lower_hand(self, room_id: int, participant_id: str) -> bool:
        """False if the hand was not up."""
        ...

    async def rooms(self) -> list[int]: ...

    async def drop(self, room_id: int) -> list[Member]:
        """Forget the room entirely (it ended); returns who was in it."""
        ...


@dataclass
class RoomData:
    """Everything kept of one room but its viewer state (which changes many times a second
    and is kept apart). Plain data, so a store can serialize it whole."""

    members: dict[str, Member] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    next_order: int = 0
    banned: set[int] = field(default_factory=set)
    auto_admit: bool = False
    control_holder: str | None = None
    hands: list[str] = field(default_factory=list)

    def copy(self) -> RoomData:
        """Its own containers; the members themselves are immutable."""
        return replace(self, members=dict(self.members), order=dict(self.order),
                       banned=set(self.banned), hands=list(self.hands))

    def get(self, participant_id: str) -> Member:
        member = self.members.get(participant_id)
        if member is None:
            raise SignalingError(NOT_FOUND, f"no participant {participant_id!r} in this room")
        return member

    def put(self, member: Member) -> Member:
        self.members[member.participant_id] = member
        return member

    def sorted_members(self) -> list[Member]:
        return sorted(self.members.values(), key=lambda m: self.order[m.participant_id])

    def check_capacity(self, limits: RoomLimits, role: RoomRole,
                       leaving: str | None = None) -> None:
        others = [m for pid, m in self.members.items() if pid != leaving]
        if role is RoomRole.observer:
            if sum(not m.publishes for m in others) >= limits.max_observers:
                raise SignalingError(ROOM_FULL, f"the room has its maximum of "
                                     f"{limits.max_observers} observers")
        elif sum(m.publishes for m in others) >= limits.max_publishers:
            raise SignalingError(ROOM_FULL, f"the room has its maximum of "
                                 f"{limits.max_publishers} publishers")


class StoredRoomState:
    """The rules of :class:`RoomState` over a store of :class:`RoomData`.

    A store supplies ``_read`` (None for an unknown room) and ``_change``, which applies a
    function to the room as one atomic step (creating the room if needed) and returns its
    result; the function may raise, and then nothing changes. Viewer state, the room list
    and dropping a room are the store's own."""

    def __init__(self, limits: RoomLimits) -> None:
        self._limits = limits

    async def _read(self, room_id: int) -> RoomData | None:
        raise NotImplementedError

    async def _change(self, room_id: int, change: Callable[[RoomData], T]) -> T:
        raise NotImplementedError

    async def add(self, room_id: int, member: Member) -> Member:
        def change(room: RoomData) -> Member:
            if member.user_id in room.banned:
                raise SignalingError(REMOVED, "the host removed you from this consultation")
            if any(m.user_id == member.user_id for m in room.members.values()):
                raise SignalingError(CONFLICT, "already a member of this room")
            if member.role is not RoomRole.host:
                room.check_capacity(self._limits, member.role)
            room.order[member.participant_id] = room.next_order
            room.next_order += 1
            return room.put(member)
        return await self._change(room_id, change)

    async def member(self, room_id: int, participant_id: str) -> Member | None:
        room = await self._read(room_id)
        return room.members.get(participant_id) if room else None

    async def member_by_user(self, room_id: int, user_id: int) -> Member | None:
        room = await self._read(room_id)
        if room is None:
            return None
        return next((m for m in room.members.values() if m.user_id == user_id), None)

    async def members(self, room_id: int) -> list[Member]:
        room = await self._read(room_id)
        return room.sorted_members() if room else []

    async def attach(self, room_id: int, participant_id: str, sid: str | None,
                     at: float, node: str = "") -> Member:
        return await self._change(room_id, lambda room: room.put(replace(
            room.get(participant_id), sid=sid, node=node if sid is not None else "",
            disconnected_at=None if sid is not None else at)))

    async def detach(self, room_id: int, participant_id: str, sid: str,
                     at: float) -> Member | None:
        if await self._read(room_id) is None:
            return None

        def change(room: RoomData) -> Member | None:
            member = room.members.get(participant_id)
            if member is None or member.sid != sid:
                return None
            return room.put(replace(member, sid=None, node="", disconnected_at=at))
        return await self._change(room_id, change)

    async def admit(self, room_id: int, participant_id: str) -> Member:
        return await self._change(room_id, lambda room: room.put(replace(
            room.get(participant_id), admitted=True)))

    async def set_media(self, room_id: int, participant_id: str, media: MediaState) -> Member:
        return await self._change(room_id, lambda room: room.put(replace(
            room.get(participant_id), media=media)))

    async def set_role(self, room_id: int, participant_id: str,
                       role: RoomRole) -> list[Member]:
        def change(room: RoomData) -> list[Member]:
            member = room.get(participant_id)
            if role is RoomRole.host or member.role is RoomRole.host:
                raise SignalingError(CONFLICT,
                                     "the host role cannot be given or taken in the room")
            if member.role is role:
                return []
            if member.publishes != (role is not RoomRole.observer):
                room.check_capacity(self._limits, role, leaving=participant_id)
            changed = [room.put(replace(
                member, role=role,
                media=MediaState() if role is RoomRole.observer else member.media))]
            if role is RoomRole.presenter:
                for other in list(room.members.values()):
                    if other.role is RoomRole.presenter and other.participant_id != participant_id:
                        changed.append(room.put(replace(other, role=RoomRole.participant)))
            return changed
        return await self._change(room_id, change)

    async def remove(self, room_id: int, participant_id: str, *,
                     ban: bool = False) -> Member | None:
        if await self._read(room_id) is None:
            return None

        def change(room: RoomData) -> Member | None:
            member = room.members.pop(participant_id, None)
            room.order.pop(participant_id, None)
            if participant_id in room.hands:
                room.hands.remove(participant_id)
            if room.control_holder == participant_id:
                room.control_holder = None
            if member is not None and ban:
                room.banned.add(member.user_id)
            return member
        return await self._change(room_id, change)

    async def auto_admit(self, room_id: int) -> bool:
        room = await self._read(room_id)
        return room.auto_admit if room else False

    async def set_auto_admit(self, room_id: int, on: bool) -> None:
        def change(room: RoomData) -> None:
            room.auto_admit = on
        await self._change(room_id, change)

    async def control_holder(self, room_id: int) -> str | None:
        room = await self._read(room_id)
        return room.control_holder if room else None

    async def set_control_holder(self, room_id: int, participant_id: str | None) -> None:
        def change(room: RoomData) -> None:
            if participant_id is not None and not room.get(participant_id).admitted:
                raise SignalingError(NOT_FOUND,
                                     f"{participant_id!r} is not admitted to the room")
            room.control_holder = participant_id
        await self._change(room_id, change)

    async def hands(self, room_id: int) -> list[str]:
        room = await self._read(room_id)
        return list(room.hands) if room else []

    async def raise_hand(self, room_id: int, participant_id: str) -> bool:
        def change(room: RoomData) -> bool:
            room.get(participant_id)
            if participant_id in room.hands:
                return False
            room.hands.append(participant_id)
            return True
        return await self._change(room_id, change)

    async def lower_hand(self, room_id: int, participant_id: str) -> bool:
        def change(room: RoomData) -> bool:
            if participant_id not in room.hands:
                return False
            room.hands.remove(participant_id)
            return True
        return await self._change(room_id, change)


class InProcessRoomState(StoredRoomState):
    """Rooms in this process's memory. No change awaits, so each runs as one step."""

    def __init__(self, limits: RoomLimits) -> None:
        super().__init__(limits)
        self._rooms: dict[int, RoomData] = {}
        self._viewers: dict[int, ViewerState] = {}

    async def _read(self, room_id: int) -> RoomData | None:
        return self._rooms.get(room_id)

    async def _change(self, room_id: int, change: Callable[[RoomData], T]) -> T:
        room = self._rooms.get(room_id)
        # A copy, so a change that raises halfway leaves the room as it was.
        work = room.copy() if room is not None else RoomData()
        result = change(work)
        self._rooms[room_id] = work
        return result

    async def viewer(self, room_id: int) -> ViewerState | None:
        return self._viewers.get(room_id)

    async def set_viewer(self, room_id: int, by: str, state: dict[str, Any]) -> int:
        old = self._viewers.get(room_id)
        seq = old.seq + 1 if old else 1
        self._viewers[room_id] = ViewerState(seq, by, state)
        return seq

    async def rooms(self) -> list[int]:
        return [rid for rid, room in self._rooms.items() if room.members]

    async def drop(self, room_id: int) -> list[Member]:
        self._viewers.pop(room_id, None)
        room = self._rooms.pop(room_id, None)
        return list(room.members.values()) if room else []
