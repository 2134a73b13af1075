"""The host's controls (mute requests, removal, roles, viewer control) and raised hands."""

from __future__ import annotations

from typing import Any

from app.roles import RoomRole

from . import lifecycle, presence, viewer
from .errors import CONFLICT, FORBIDDEN, NOT_FOUND, SignalingError
from .hub import Ctx
from .permissions import Action, require
from .room_state import Member
from .schemas import Empty, GiveControl, LowerHand, Mute, Remove, SetRole


async def _admitted(ctx: Ctx, participant_id: str) -> Member:
    target = await ctx.hub.state.member(ctx.room_id, participant_id)
    if target is None or not target.admitted:
        raise SignalingError(NOT_FOUND, f"no admitted participant {participant_id!r}")
    return target


async def _audit(ctx: Ctx, action: str, target: str, detail: dict[str, Any]) -> None:
    await lifecycle.record(ctx.hub.sessions, action, user_id=ctx.member.user_id,
                           consultation_id=ctx.room_id, client_addr=ctx.conn.client_addr,
                           object_id=target, detail=detail)


async def mute(ctx: Ctx, p: Mute) -> dict[str, Any]:
    """Only a request: the server cannot switch a microphone off, the client must."""
    target = await _admitted(ctx, p.participant_id)
    if not target.publishes:
        raise SignalingError(CONFLICT, f"{target.name} is an observer and sends no media")
    await ctx.hub.outbox.emit_to(target.sid, "mute:requested",
                          {"by": ctx.member.participant_id, "audio": p.audio, "video": p.video})
    await _audit(ctx, "room.mute_request", target.participant_id,
                 {"user_id": target.user_id, "audio": p.audio, "video": p.video})
    return {"ok": True}


async def remove(ctx: Ctx, p: Remove) -> dict[str, Any]:
    target = await ctx.hub.state.member(ctx.room_id, p.participant_id)
    if target is None:
        raise SignalingError(NOT_FOUND, f"no participant {p.participant_id!r} in this room")
    if target.participant_id == ctx.member.participant_id:
        raise SignalingError(CONFLICT, "the host leaves or ends the room instead")
    await ctx.hub.outbox.emit_to(target.sid, "room:removed",
                          {"by": ctx.member.participant_id, "reason": p.reason})
    await presence.remove(ctx.hub, ctx.room_id, target.participant_id, "removed",
                          actor_user_id=ctx.member.user_id, client_addr=ctx.conn.client_addr,
                          ban=True)
    await _audit(ctx, "room.remove", target.participant_id,
                 {"user_id": target.user_id, "reason": p.reason})
    if target.sid is not None:
        ctx.hub.spawn(ctx.hub.disconnect(target.sid))
    return {"ok": True}


async def set_role(ctx: Ctx, p: SetRole) -> dict[str, Any]:
    before = await _admitted(ctx, p.participant_id)
    control_before = await viewer.control(ctx.hub, ctx.room_id)
    changed = await ctx.hub.state.set_role(ctx.room_id, p.participant_id, RoomRole(p.role))
    previous = {before.participant_id: before.role}
    for member in changed[1:]:
        previous[member.participant_id] = RoomRole.presenter
    for member in changed:
        old = previous[member.participant_id]
        await ctx.hub.outbox.broadcast(ctx.room_id, "role:changed", {
            "participant_id": member.participant_id, "role": member.role.value,
            "previous": old.value, "by": ctx.member.participant_id,
        })
        await ctx.hub.outbox.broadcast(ctx.room_id, "presence:update", {"member": member.public()})
        await _audit(ctx, "room.role_change", member.participant_id,
                     {"user_id": member.user_id, "from": old.value, "to": member.role.value})
        if ctx.hub.media is not None and member.publishes != (old is not RoomRole.observer):
            # Publishing or not is fixed per SFU participant: it rejoins the SFU and the
            # client builds new peer connections.
            await ctx.hub.media.reset(ctx.room_id, member.participant_id, "role_changed")
    if ctx.hub.media is not None:
        await ctx.hub.media.sync_presenter(ctx.room_id)
    # A new or demoted presenter moves the default driver.
    await viewer.announce_if_changed(ctx.hub, ctx.room_id, control_before, "role_changed",
                                     by=ctx.member.participant_id)
    return {"ok": True, "changed": [m.participant_id for m in changed]}


async def _hand_over(ctx: Ctx, to: str) -> dict[str, Any]:
    host = ctx.member.participant_id
    previous = await ctx.hub.state.control_holder(ctx.room_id)
    if previous == to:
        return {"ok": True}
    await ctx.hub.state.set_control_holder(ctx.room_id, to)
    await viewer.announce(ctx.hub, ctx.room_id, "taken" if to == host else "given", by=host)
    await _audit(ctx, "room.control_handover", to, {"from": previous, "to": to})
    return {"ok": True}


async def give_control(ctx: Ctx, p: GiveControl) -> dict[str, Any]:
    """``null`` is "take it back": to the host, who then drives (not the default driver)."""
    return await _hand_over(ctx, p.participant_id or ctx.member.participant_id)


async def take_control(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """The host drives from now on, whoever drove before, in one step."""
    return await _hand_over(ctx, ctx.member.participant_id)


async def release_control(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """Back to the default driver: the presenter, else the host."""
    pid = ctx.member.participant_id
    if await ctx.hub.state.control_holder(ctx.room_id) != pid:
        raise SignalingError(CONFLICT, "you do not hold viewer control")
    await ctx.hub.state.set_control_holder(ctx.room_id, None)
    await viewer.announce(ctx.hub, ctx.room_id, "released", by=pid)
    await _audit(ctx, "room.control_handover", pid, {"from": pid, "to": None})
    return {"ok": True}


async def raise_hand(ctx: Ctx, _: Empty) -> dict[str, Any]:
    if await ctx.hub.state.raise_hand(ctx.room_id, ctx.member.participant_id):
        await ctx.hub.outbox.broadcast(ctx.room_id, "hands:update",
                                {"hands": await ctx.hub.state.hands(ctx.room_id)})
    return {"ok": True}


async def lower_hand(ctx: Ctx, p: LowerHand) -> dict[str, Any]:
    pid = p.participant_id or ctx.member.participant_id
    if pid != ctx.member.participant_id:
        try:
            require(ctx.member, Action.MODERATE)
        except SignalingError:
            raise SignalingError(FORBIDDEN, "only the host lowers someone else's hand") from None
    if await ctx.hub.state.lower_hand(ctx.room_id, pid):
        await ctx.hub.outbox.broadcast(ctx.room_id, "hands:update",
                                {"hands": await ctx.hub.state.hands(ctx.room_id)})
    return {"ok": True}
