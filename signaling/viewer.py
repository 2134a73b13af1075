"""The synchronized viewer: who drives it, the driver's view fanned out to the room, the laser
pointer, and members asking the host for control.

Who drives: the first *connected* one of

1. the control holder (whoever the host gave control to, or the host once he took it);
2. the presenter;
3. the host.

One driver at a time, so two screens never fight. The presenter drives by default only until
the host takes control or hands it to someone; the holder keeps it until the host hands it
on or takes it back, the holder releases it, or the holder leaves. A holder who drops keeps
the place through the reconnect grace (a reload does not cost control), and meanwhile the
room follows the next in line rather than a screen that is gone.

Everyone else follows (their client may look around locally and come back to the shared
state, which the room snapshot carries for late joiners and reconnections). Every change of
holder or driver reaches the room as ``control:changed`` carrying both, so clients read who
drives from the server and never work this rule out themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.roles import RoomRole

from .errors import CONFLICT, FORBIDDEN, NOT_FOUND, SignalingError
from .hub import Ctx, Hub
from .room_state import Member
from .schemas import (
    ControlChanged,
    Empty,
    PointerIn,
    PointerOut,
    SharedViewer,
    Target,
    ViewerStateIn,
)
from .schemas import ControlReason as Reason


@dataclass(frozen=True)
class Control:
    holder: str | None
    driver: str | None


def driver_of(members: Iterable[Member], holder: str | None, *,
              counting_connected: str | None = None) -> str | None:
    """The rule above. ``counting_connected`` counts that member as connected: who drove
    just before it dropped."""
    admitted = [m for m in members if m.admitted]
    line = ([m for m in admitted if m.participant_id == holder]
            + [m for m in admitted if m.role is RoomRole.presenter]
            + [m for m in admitted if m.role is RoomRole.host])
    for m in line:
        if m.connected or m.participant_id == counting_connected:
            return m.participant_id
    return None


async def control(hub: Hub, room_id: int) -> Control:
    holder = await hub.state.control_holder(room_id)
    return Control(holder, driver_of(await hub.state.members(room_id), holder))


async def _broadcast(hub: Hub, room_id: int, now: Control, reason: Reason, by: str | None,
                     skip_sid: str | None = None) -> None:
    changed = ControlChanged(holder=now.holder, driver=now.driver, by=by, reason=reason)
    await hub.outbox.broadcast(room_id, "control:changed", changed.model_dump(), skip_sid=skip_sid)


async def announce(hub: Hub, room_id: int, reason: Reason, by: str | None) -> None:
    """After a handover: the room learns the holder and the driver as they are now."""
    await _broadcast(hub, room_id, await control(hub, room_id), reason, by)


async def announce_if_changed(hub: Hub, room_id: int, before: Control, reason: Reason,
                              by: str | None = None) -> None:
    now = await control(hub, room_id)
    if now != before:
        await _broadcast(hub, room_id, now, reason, by)


async def arrived(hub: Hub, room_id: int, member: Member, reason: Reason) -> None:
    """``member`` was just admitted or came back: it was not driving while away, so the
    driver changed exactly when it drives now. It learns that from its snapshot."""
    now = await control(hub, room_id)
    if now.driver == member.participant_id:
        await _broadcast(hub, room_id, now, reason, None, skip_sid=member.sid)


async def dropped(hub: Hub, room_id: int, member: Member) -> None:
    """``member`` just lost its socket: if it drove, the room follows the next in line."""
    holder = await hub.state.control_holder(room_id)
    members = await hub.state.members(room_id)
    if driver_of(members, holder, counting_connected=member.participant_id) \
            == member.participant_id:
        await _broadcast(hub, room_id, Control(holder, driver_of(members, holder)),
                         "reconnecting", None)


async def _require_driver(ctx: Ctx) -> None:
    if (await control(ctx.hub, ctx.room_id)).driver != ctx.member.participant_id:
        raise SignalingError(FORBIDDEN, "you are not driving the viewer; request control "
                             "from the host")


async def set_state(ctx: Ctx, p: ViewerStateIn) -> dict[str, Any]:
    await _require_driver(ctx)
    state = p.model_dump()
    pid = ctx.member.participant_id
    seq = await ctx.hub.state.set_viewer(ctx.room_id, pid, state)
    shared = SharedViewer(seq=seq, by=pid, state=p)
    await ctx.hub.outbox.broadcast(ctx.room_id, "viewer:state", shared.model_dump(),
                            skip_sid=ctx.conn.sid)
    return {"ok": True, "seq": seq}


async def pointer(ctx: Ctx, p: PointerIn) -> dict[str, Any]:
    """Not kept: a pointer only matters while it moves."""
    await _require_driver(ctx)
    shown = p.x is not None and p.y is not None
    out = PointerOut(by=ctx.member.participant_id, viewport=p.viewport,
                     x=p.x if shown else None, y=p.y if shown else None)
    await ctx.hub.outbox.broadcast(ctx.room_id, "viewer:pointer", out.model_dump(),
                            skip_sid=ctx.conn.sid)
    return {"ok": True}


async def request_control(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """Everyone sees the request (the host answers it), so nobody wonders who asked."""
    pid = ctx.member.participant_id
    if ctx.member.role is RoomRole.observer:
        raise SignalingError(FORBIDDEN, "observers watch; they do not take viewer control")
    if ctx.member.role is RoomRole.host:
        raise SignalingError(CONFLICT, "the host takes control directly (control:take)")
    now = await control(ctx.hub, ctx.room_id)
    if pid in (now.holder, now.driver):
        raise SignalingError(CONFLICT, "you already drive the viewer")
    host = await ctx.hub.host(ctx.room_id)
    if host is None or not host.connected:
        raise SignalingError(CONFLICT, "the host is not in the room")
    await ctx.hub.outbox.broadcast(ctx.room_id, "control:requested",
                            {"participant_id": pid, "name": ctx.member.name})
    return {"ok": True}


async def cancel_request(ctx: Ctx, _: Empty) -> dict[str, Any]:
    pid = ctx.member.participant_id
    await ctx.hub.outbox.broadcast(ctx.room_id, "control:request_cancelled",
                            {"participant_id": pid, "by": pid})
    return {"ok": True}


async def deny_request(ctx: Ctx, p: Target) -> dict[str, Any]:
    target = await ctx.hub.state.member(ctx.room_id, p.participant_id)
    if target is None or not target.admitted:
        raise SignalingError(NOT_FOUND, f"no admitted participant {p.participant_id!r}")
    await ctx.hub.outbox.emit_to(target.sid, "control:denied", {"by": ctx.member.participant_id})
    await ctx.hub.outbox.broadcast(ctx.room_id, "control:request_cancelled",
                            {"participant_id": target.participant_id,
                             "by": ctx.member.participant_id})
    return {"ok": True}
