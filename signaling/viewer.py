"""The synchronized viewer: the controller's view fanned out to the room, the laser pointer,
and members asking the host for control.

Who drives: the control holder; while nobody holds control, the host and the presenter.
Everyone else follows (their client may look around locally and come back to the shared
state, which the room snapshot carries for late joiners and reconnections).
"""

from __future__ import annotations

from typing import Any

from app.db.models import RoomRole

from .errors import CONFLICT, FORBIDDEN, SignalingError
from .hub import Ctx
from .schemas import Empty, PointerIn, ViewerStateIn

_DRIVE_WITHOUT_HOLDER = frozenset({RoomRole.host, RoomRole.presenter})


async def _require_control(ctx: Ctx) -> None:
    holder = await ctx.hub.state.control_holder(ctx.room_id)
    if holder == ctx.member.participant_id:
        return
    if holder is None and ctx.member.role in _DRIVE_WITHOUT_HOLDER:
        return
    raise SignalingError(FORBIDDEN, "you do not have viewer control; request it from the host")


async def set_state(ctx: Ctx, p: ViewerStateIn) -> dict[str, Any]:
    await _require_control(ctx)
    state = p.model_dump()
    seq = await ctx.hub.state.set_viewer(ctx.room_id, state)
    await ctx.hub.broadcast(ctx.room_id, "viewer:state",
                            {"seq": seq, "by": ctx.member.participant_id, "state": state},
                            skip_sid=ctx.conn.sid)
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


async def request_control(ctx: Ctx, _: Empty) -> dict[str, Any]:
    if ctx.member.role is RoomRole.observer:
        raise SignalingError(FORBIDDEN, "observers watch; they do not take viewer control")
    if await ctx.hub.state.control_holder(ctx.room_id) == ctx.member.participant_id:
        raise SignalingError(CONFLICT, "you already hold viewer control")
    host = await ctx.hub.host(ctx.room_id)
    if host is None or not host.connected:
        raise SignalingError(CONFLICT, "the host is not in the room to grant control")
    await ctx.hub.emit_to(host.sid, "control:requested",
                          {"participant_id": ctx.member.participant_id,
                           "name": ctx.member.name})
    return {"ok": True}
