"""The synchronized viewer: the controller's view fanned out to the room, the laser pointer,
and members asking the host for control.

Who drives: the control holder; while nobody holds control, the presenter, or the host when
no presenter is in the room (one driver at a time, so two screens never fight). Everyone else
follows (their client may look around locally and come back to the shared state, which the
room snapshot carries for late joiners and reconnections).
"""

from __future__ import annotations

from typing import Any

from app.db.models import RoomRole

from .errors import CONFLICT, FORBIDDEN, NOT_FOUND, SignalingError
from .hub import Ctx
from .schemas import Empty, PointerIn, Target, ViewerStateIn


async def _drives(ctx: Ctx) -> bool:
    holder = await ctx.hub.state.control_holder(ctx.room_id)
    if holder is not None:
        return holder == ctx.member.participant_id
    if ctx.member.role is RoomRole.presenter:
        return True
    if ctx.member.role is not RoomRole.host:
        return False
    members = await ctx.hub.state.members(ctx.room_id)
    return not any(m.role is RoomRole.presenter and m.admitted and m.connected
                   for m in members)


async def _require_control(ctx: Ctx) -> None:
    if not await _drives(ctx):
        raise SignalingError(FORBIDDEN, "you do not have viewer control; request it from "
                             "the host")


async def set_state(ctx: Ctx, p: ViewerStateIn) -> dict[str, Any]:
    await _require_control(ctx)
    state = p.model_dump()
    pid = ctx.member.participant_id
    seq = await ctx.hub.state.set_viewer(ctx.room_id, pid, state)
    await ctx.hub.broadcast(ctx.room_id, "viewer:state",
                            {"seq": seq, "by": pid, "state": state}, skip_sid=ctx.conn.sid)
    return {"ok": True, "seq": seq}


async def pointer(ctx: Ctx, p: PointerIn) -> dict[str, Any]:
    """Not kept: a pointer only matters while it moves."""
    await _require_control(ctx)
    shown = p.x is not None and p.y is not None
    await ctx.hub.broadcast(ctx.room_id, "viewer:pointer", {
        "by": ctx.member.participant_id, "viewport": p.viewport,
        "x": p.x if shown else None, "y": p.y if shown else None},
        skip_sid=ctx.conn.sid)
    return {"ok": True}


async def _host_sid(ctx: Ctx) -> str:
    host = await ctx.hub.host(ctx.room_id)
    if host is None or not host.connected or host.sid is None:
        raise SignalingError(CONFLICT, "the host is not in the room")
    return host.sid


async def request_control(ctx: Ctx, _: Empty) -> dict[str, Any]:
    if ctx.member.role is RoomRole.observer:
        raise SignalingError(FORBIDDEN, "observers watch; they do not take viewer control")
    if await ctx.hub.state.control_holder(ctx.room_id) == ctx.member.participant_id:
        raise SignalingError(CONFLICT, "you already hold viewer control")
    await ctx.hub.emit_to(await _host_sid(ctx), "control:requested",
                          {"participant_id": ctx.member.participant_id,
                           "name": ctx.member.name})
    return {"ok": True}


async def cancel_request(ctx: Ctx, _: Empty) -> dict[str, Any]:
    await ctx.hub.emit_to(await _host_sid(ctx), "control:request_cancelled",
                          {"participant_id": ctx.member.participant_id})
    return {"ok": True}


async def deny_request(ctx: Ctx, p: Target) -> dict[str, Any]:
    target = await ctx.hub.state.member(ctx.room_id, p.participant_id)
    if target is None or not target.admitted:
        raise SignalingError(NOT_FOUND, f"no admitted participant {p.participant_id!r}")
    await ctx.hub.emit_to(target.sid, "control:denied", {"by": ctx.member.participant_id})
    return {"ok": True}
