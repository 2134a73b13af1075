"""Who may do what in a room. Checked on every event, before its handler runs."""

from __future__ import annotations

import enum

from app.roles import RoomRole

from .errors import FORBIDDEN, IN_LOBBY, SignalingError
from .room_state import Member


class Action(str, enum.Enum):
    #: Any member, lobby included.
    LEAVE = "leave"
    #: Admitted members.
    PRESENCE = "presence"
    CHAT = "chat"
    RAISE_HAND = "raise_hand"
    SUBSCRIBE = "subscribe"
    RELEASE_CONTROL = "release_control"
    #: Members who send media: host, presenter, participants.
    PUBLISH = "publish"
    #: The host alone.
    MODERATE = "moderate"


_PUBLISHING_ROLES = frozenset({RoomRole.host, RoomRole.presenter, RoomRole.participant})


def allowed(member: Member, action: Action) -> bool:
    if action is Action.LEAVE:
        return True
    if not member.admitted:
        return False
    if action is Action.PUBLISH:
        return member.role in _PUBLISHING_ROLES
    if action is Action.MODERATE:
        return member.role is RoomRole.host
    return True


def require(member: Member, action: Action) -> None:
    if allowed(member, action):
        return
    if not member.admitted:
        raise SignalingError(IN_LOBBY, "wait in the lobby until the host admits you")
    if action is Action.PUBLISH:
        raise SignalingError(FORBIDDEN, f"a {member.role.value} may not publish media; "
                             "ask the host to make you a participant")
    raise SignalingError(FORBIDDEN, f"only the host may do this, you are {member.role.value}")
