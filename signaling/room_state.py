"""Who is in each room and what they hold: THE interface to room state.

Everything else in signaling reads and changes rooms only through :class:`RoomState`.
Every method is a coroutine and does its check-and-change as one step, so a Redis
implementation (multi-node) can keep the same contract with one script per method.
:class:`InProcessRoomState` serves a single process.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from app.db.models import RoomRole

from .errors import CONFLICT, NOT_FOUND, REMOVED, ROOM_FULL, SignalingError


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
                     at: float) -> Member:
        """Bind the member to a socket, or (sid None) mark it reconnecting since ``at``."""
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
class _Room:
    members: dict[str, Member] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    banned: set[int] = field(default_factory=set)
    auto_admit: bool = False
    control_holder: str | None = None
    hands: list[str] = field(default_factory=list)
    viewer: ViewerState | None = None


class InProcessRoomState:
    """Rooms in this process's memory. No method awaits, so each runs as one step."""

    def __init__(self, limits: RoomLimits) -> None:
        self._limits = limits
        self._rooms: dict[int, _Room] = {}
        self._arrivals = itertools.count()

    def _room(self, room_id: int) -> _Room:
        return self._rooms.setdefault(room_id, _Room())

    def _get(self, room_id: int, participant_id: str) -> Member:
        member = self._room(room_id).members.get(participant_id)
        if member is None:
            raise SignalingError(NOT_FOUND, f"no participant {participant_id!r} in this room")
        return member

    def _check_capacity(self, room: _Room, role: RoomRole, leaving: str | None = None) -> None:
        others = [m for pid, m in room.members.items() if pid != leaving]
        if role is RoomRole.observer:
            if sum(not m.publishes for m in others) >= self._limits.max_observers:
                raise SignalingError(ROOM_FULL, f"the room has its maximum of "
                                     f"{self._limits.max_observers} observers")
        elif sum(m.publishes for m in others) >= self._limits.max_publishers:
            raise SignalingError(ROOM_FULL, f"the room has its maximum of "
                                 f"{self._limits.max_publishers} publishers")

    def _put(self, room_id: int, member: Member) -> Member:
        self._room(room_id).members[member.participant_id] = member
        return member

    async def add(self, room_id: int, member: Member) -> Member:
        room = self._room(room_id)
        if member.user_id in room.banned:
            raise SignalingError(REMOVED, "the host removed you from this consultation")
        if any(m.user_id == member.user_id for m in room.members.values()):
            raise SignalingError(CONFLICT, "already a member of this room")
        if member.role is not RoomRole.host:
            self._check_capacity(room, member.role)
        room.order[member.participant_id] = next(self._arrivals)
        return self._put(room_id, member)

    async def member(self, room_id: int, participant_id: str) -> Member | None:
        room = self._rooms.get(room_id)
        return room.members.get(participant_id) if room else None

    async def member_by_user(self, room_id: int, user_id: int) -> Member | None:
        room = self._rooms.get(room_id)
        if room is None:
            return None
        return next((m for m in room.members.values() if m.user_id == user_id), None)

    async def members(self, room_id: int) -> list[Member]:
        room = self._rooms.get(room_id)
        if room is None:
            return []
        return sorted(room.members.values(), key=lambda m: room.order[m.participant_id])

    async def attach(self, room_id: int, participant_id: str, sid: str | None,
                     at: float) -> Member:
        member = self._get(room_id, participant_id)
        return self._put(room_id, replace(
            member, sid=sid, disconnected_at=None if sid is not None else at))

    async def admit(self, room_id: int, participant_id: str) -> Member:
        return self._put(room_id, replace(self._get(room_id, participant_id), admitted=True))

    async def set_media(self, room_id: int, participant_id: str, media: MediaState) -> Member:
        return self._put(room_id, replace(self._get(room_id, participant_id), media=media))

    async def set_role(self, room_id: int, participant_id: str,
                       role: RoomRole) -> list[Member]:
        room = self._room(room_id)
        member = self._get(room_id, participant_id)
        if role is RoomRole.host or member.role is RoomRole.host:
            raise SignalingError(CONFLICT, "the host role cannot be given or taken in the room")
        if member.role is role:
            return []
        if member.publishes != (role is not RoomRole.observer):
            self._check_capacity(room, role, leaving=participant_id)
        changed = [self._put(room_id, replace(
            member, role=role,
            media=MediaState() if role is RoomRole.observer else member.media))]
        if role is RoomRole.presenter:
            for other in list(room.members.values()):
                if other.role is RoomRole.presenter and other.participant_id != participant_id:
                    changed.append(self._put(room_id, replace(other, role=RoomRole.participant)))
        return changed

    async def remove(self, room_id: int, participant_id: str, *,
                     ban: bool = False) -> Member | None:
        room = self._rooms.get(room_id)
        if room is None:
            return None
        member = room.members.pop(participant_id, None)
        room.order.pop(participant_id, None)
        if participant_id in room.hands:
            room.hands.remove(participant_id)
        if room.control_holder == participant_id:
            room.control_holder = None
        if member is not None and ban:
            room.banned.add(member.user_id)
        return member

    async def auto_admit(self, room_id: int) -> bool:
        return self._room(room_id).auto_admit

    async def set_auto_admit(self, room_id: int, on: bool) -> None:
        self._room(room_id).auto_admit = on

    async def control_holder(self, room_id: int) -> str | None:
        room = self._rooms.get(room_id)
        return room.control_holder if room else None

    async def set_control_holder(self, room_id: int, participant_id: str | None) -> None:
        if participant_id is not None and not self._get(room_id, participant_id).admitted:
            raise SignalingError(NOT_FOUND, f"{participant_id!r} is not admitted to the room")
        self._room(room_id).control_holder = participant_id

    async def viewer(self, room_id: int) -> ViewerState | None:
        room = self._rooms.get(room_id)
        return room.viewer if room else None

    async def set_viewer(self, room_id: int, by: str, state: dict[str, Any]) -> int:
        room = self._room(room_id)
        seq = room.viewer.seq + 1 if room.viewer else 1
        room.viewer = ViewerState(seq, by, state)
        return seq

    async def hands(self, room_id: int) -> list[str]:
        room = self._rooms.get(room_id)
        return list(room.hands) if room else []

    async def raise_hand(self, room_id: int, participant_id: str) -> bool:
        room = self._room(room_id)
        self._get(room_id, participant_id)
        if participant_id in room.hands:
            return False
        room.hands.append(participant_id)
        return True

    async def lower_hand(self, room_id: int, participant_id: str) -> bool:
        room = self._room(room_id)
        if participant_id not in room.hands:
            return False
        room.hands.remove(participant_id)
        return True

    async def rooms(self) -> list[int]:
        return [rid for rid, room in self._rooms.items() if room.members]

    async def drop(self, room_id: int) -> list[Member]:
        room = self._rooms.pop(room_id, None)
        return list(room.members.values()) if room else []
