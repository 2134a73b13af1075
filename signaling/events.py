"""Every client → server event: its payload model, the permission it needs, its handler.

An event not in this table is refused as unknown. ``room:join`` is the one event a
connection may send before it is a member; see namespace.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import chat, controls, media_events, presence, viewer
from .hub import Ctx
from .permissions import Action
from .schemas import (
    AutoAdmit,
    ChatSend,
    Empty,
    GiveControl,
    Ice,
    LowerHand,
    MediaStateIn,
    Mute,
    Payload,
    PointerIn,
    Publish,
    Remove,
    SetRole,
    SubscribeAnswer,
    Target,
    ViewerStateIn,
)

JOIN = "room:join"

Handler = Callable[[Ctx, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class EventSpec:
    model: type[Payload]
    action: Action
    handler: Handler
    #: Tokens of the connection's rate limit one event takes: the laser pointer streams.
    cost: float = 1.0


EVENTS: dict[str, EventSpec] = {
    "room:leave": EventSpec(Empty, Action.LEAVE, presence.leave),
    "room:end": EventSpec(Empty, Action.MODERATE, presence.end),
    "lobby:admit": EventSpec(Target, Action.MODERATE, presence.admit),
    "lobby:admit_all": EventSpec(Empty, Action.MODERATE, presence.admit_all),
    "lobby:deny": EventSpec(Target, Action.MODERATE, presence.deny),
    "lobby:auto_admit": EventSpec(AutoAdmit, Action.MODERATE, presence.set_auto_admit),
    "host:mute": EventSpec(Mute, Action.MODERATE, controls.mute),
    "host:remove": EventSpec(Remove, Action.MODERATE, controls.remove),
    "host:set_role": EventSpec(SetRole, Action.MODERATE, controls.set_role),
    "host:give_control": EventSpec(GiveControl, Action.MODERATE, controls.give_control),
    "control:take": EventSpec(Empty, Action.MODERATE, controls.take_control),
    "control:release": EventSpec(Empty, Action.RELEASE_CONTROL, controls.release_control),
    "control:request": EventSpec(Empty, Action.PRESENCE, viewer.request_control),
    "viewer:state": EventSpec(ViewerStateIn, Action.PRESENCE, viewer.set_state),
    "viewer:pointer": EventSpec(PointerIn, Action.PRESENCE, viewer.pointer, cost=0.25),
    "control:cancel": EventSpec(Empty, Action.PRESENCE, viewer.cancel_request),
    "control:deny": EventSpec(Target, Action.MODERATE, viewer.deny_request),
    "hand:raise": EventSpec(Empty, Action.RAISE_HAND, controls.raise_hand),
    "hand:lower": EventSpec(LowerHand, Action.RAISE_HAND, controls.lower_hand),
    "chat:send": EventSpec(ChatSend, Action.CHAT, chat.send),
    "media:state": EventSpec(MediaStateIn, Action.PRESENCE, presence.set_media),
    "media:publish": EventSpec(Publish, Action.PUBLISH, media_events.publish),
    "media:subscribe": EventSpec(Empty, Action.SUBSCRIBE, media_events.subscribe),
    "media:subscribe_answer": EventSpec(SubscribeAnswer, Action.SUBSCRIBE,
                                        media_events.subscribe_answer),
    "media:ice": EventSpec(Ice, Action.SUBSCRIBE, media_events.ice),
    "media:restart": EventSpec(Empty, Action.SUBSCRIBE, media_events.restart),
}
