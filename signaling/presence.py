"""Joining, the lobby, leaving, dropped sockets and their grace period, ending the room."""

from __future__ import annotations

import logging
import time
from typing import Any

from app.roles import RoomRole

from . import chat, lifecycle, viewer
from .errors import CONFLICT, FORBIDDEN, NOT_FOUND, SignalingError
from .hub import Connection, Ctx, Hub
from .outbox import NAMESPACE, channel
from .room_state import MediaState, Member, new_participant_id
from .schemas import AutoAdmit, Empty, MediaStateIn, Target

log = logging.getLogger(__name__)


async def snapshot(hub: Hub, room_id: int, member: Member) -> dict[str, Any]:
    """Everything an admitted member needs to draw the room, as of now."""
    members = await hub.state.members(room_id)
    holder = await hub.state.control_holder(room_id)
    view: dict[str, Any] = {
        "consultation_id": room_id,
        "you": member.participant_id,
        "members": [m.public() for m in members if m.admitted],
        "hands": await hub.state.hands(room_id),
        "control_holder": holder,
        "driver": viewer.driver_of(members, holder),
        "viewer": shared.public() if (shared := await hub.state.viewer(room_id)) else None,
        "auto_admit": await hub.state.auto_admit(room_id),
        "chat": await chat.history(hub.sessions, room_id),
    }
    if member.role is RoomRole.host:
        view["lobby"] = [m.public() for m in members if not m.admitted]
    return view


async def lobby_changed(hub: Hub, room_id: int) -> None:
    host = await hub.host(room_id)
    if host is not None and host.admitted:
        lobby = [m.public() for m in await hub.state.members(room_id) if not m.admitted]
        await hub.outbox.emit_to(host.sid, "lobby:update", {"lobby": lobby})


async def _announce_admission(hub: Hub, room_id: int, member: Member, client_addr: str,
                              by: int | None) -> None:
    """The member is now admitted: into the channel, the SFU, everyone's list."""
    if member.sid is not None:
        await hub.sio.enter_room(member.sid, channel(room_id), namespace=NAMESPACE)
    await lifecycle.mark_live(hub.sessions, room_id, member.user_id, client_addr)
    if hub.media is not None:
        await hub.media.add(room_id, member.participant_id)
    await hub.outbox.broadcast(room_id, "presence:join", {"member": member.public()},
                        skip_sid=member.sid)
    await viewer.arrived(hub, room_id, member, "joined")
    await lifecycle.record(hub.sessions, "room.join", user_id=by or member.user_id,
                           consultation_id=room_id, client_addr=client_addr,
                           object_id=member.participant_id,
                           detail={"user_id": member.user_id, "role": member.role.value,
                                   "admitted_by": by})


async def join(hub: Hub, conn: Connection, _: Empty) -> dict[str, Any]:
    """Enter the room (or its lobby); the same user coming back takes its old place."""
    room_id, claims = conn.room_id, conn.claims
    existing = await hub.state.member_by_user(room_id, claims.user_id)
    if existing is not None:
        return await _resume(hub, conn, existing)
    role = RoomRole(claims.room_role)
    admitted = role is RoomRole.host or await hub.state.auto_admit(room_id)
    member = await hub.state.add(room_id, Member(
        participant_id=new_participant_id(), user_id=claims.user_id, name=claims.name,
        hospital_code=claims.hospital_code, hospital_name=claims.hospital_name,
        tier=claims.tier, role=role, admitted=admitted, sid=conn.sid,
        node=hub.settings.node_id,
    ))
    conn.participant_id = member.participant_id
    if not admitted:
        await lobby_changed(hub, room_id)
        return {"participant_id": member.participant_id, "status": "lobby",
                "resumed": False, "snapshot": None}
    await _announce_admission(hub, room_id, member, conn.client_addr, None)
    return {"participant_id": member.participant_id, "status": "admitted", "resumed": False,
            "snapshot": await snapshot(hub, room_id, member)}


async def _resume(hub: Hub, conn: Connection, existing: Member) -> dict[str, Any]:
    room_id, pid = conn.room_id, existing.participant_id
    old_sid = existing.sid
    if old_sid is not None and old_sid != conn.sid:
        # The same user on a new socket wins: the old one is most likely a dead
        # connection the server has not noticed yet.
        old = hub.connections.get(old_sid)
        if old is not None:
            old.participant_id = None
        await hub.outbox.emit_to(old_sid, "room:replaced",
                          {"message": "you joined this room from another connection"})
        await hub.sio.leave_room(old_sid, channel(room_id), namespace=NAMESPACE)
        hub.spawn(hub.disconnect(old_sid))
    member = await hub.state.attach(room_id, pid, conn.sid, time.time(), hub.settings.node_id)
    conn.participant_id = pid
    if not member.admitted:
        await lobby_changed(hub, room_id)
        return {"participant_id": pid, "status": "lobby", "resumed": True, "snapshot": None}
    await hub.sio.enter_room(conn.sid, channel(room_id), namespace=NAMESPACE)
    if old_sid is None:
        await hub.outbox.broadcast(room_id, "presence:update", {"member": member.public()},
                            skip_sid=conn.sid)
        await viewer.arrived(hub, room_id, member, "resumed")
    if hub.media is not None:
        await hub.media.resumed(room_id, pid)
    return {"participant_id": pid, "status": "admitted", "resumed": True,
            "snapshot": await snapshot(hub, room_id, member)}


async def remove(hub: Hub, room_id: int, participant_id: str, reason: str, *,
                 actor_user_id: int | None = None, client_addr: str = "",
                 ban: bool = False) -> Member | None:
    """Take a member out of the room for good and tell whoever needs to know."""
    hands_before = await hub.state.hands(room_id)
    control_before = await viewer.control(hub, room_id)
    member = await hub.state.remove(room_id, participant_id, ban=ban)
    if member is None:
        return None
    conn = hub.connections.get(member.sid) if member.sid else None
    if conn is not None:
        conn.participant_id = None
    if member.sid is not None:
        await hub.sio.leave_room(member.sid, channel(room_id), namespace=NAMESPACE)
    if not member.admitted:
        await lobby_changed(hub, room_id)
        return member
    if hub.media is not None:
        await hub.media.remove(room_id, participant_id)
    await hub.outbox.broadcast(room_id, "presence:leave",
                        {"participant_id": participant_id, "reason": reason})
    if participant_id in hands_before:
        await hub.outbox.broadcast(room_id, "hands:update",
                                   {"hands": await hub.state.hands(room_id)})
    await viewer.announce_if_changed(hub, room_id, control_before, "left")
    await lifecycle.record(hub.sessions, "room.leave", user_id=actor_user_id or member.user_id,
                           consultation_id=room_id, client_addr=client_addr,
                           object_id=participant_id,
                           detail={"user_id": member.user_id, "reason": reason})
    return member


async def leave(ctx: Ctx, _: Empty) -> dict[str, Any]:
    await remove(ctx.hub, ctx.room_id, ctx.member.participant_id, "left",
                 client_addr=ctx.conn.client_addr)
    return {"ok": True}


async def dropped(hub: Hub, conn: Connection) -> None:
    """The socket is gone: the member keeps its place for the grace period (the sweeper
    removes it after that)."""
    if conn.participant_id is None:
        return
    member = await hub.state.detach(conn.room_id, conn.participant_id, conn.sid, time.time())
    if member is not None:
        await away(hub, conn.room_id, member)


async def away(hub: Hub, room_id: int, member: Member) -> None:
    """Tell the room that ``member`` is reconnecting."""
    if member.admitted:
        await hub.outbox.broadcast(room_id, "presence:update", {"member": member.public()})
        await viewer.dropped(hub, room_id, member)
    else:
        await lobby_changed(hub, room_id)


async def set_media(ctx: Ctx, p: MediaStateIn) -> dict[str, Any]:
    if not ctx.member.publishes and (p.mic or p.camera or p.screen or p.speaking):
        raise SignalingError(FORBIDDEN, "an observer sends no media")
    member = await ctx.hub.state.set_media(
        ctx.room_id, ctx.member.participant_id,
        MediaState(mic=p.mic, camera=p.camera, screen=p.screen, speaking=p.speaking))
    await ctx.hub.outbox.broadcast(ctx.room_id, "presence:update", {"member": member.public()})
    return {"ok": True}


async def _admit(ctx: Ctx, target: Member) -> None:
    member = await ctx.hub.state.admit(ctx.room_id, target.participant_id)
    await _announce_admission(ctx.hub, ctx.room_id, member, ctx.conn.client_addr,
                              ctx.member.user_id)
    await ctx.hub.outbox.emit_to(member.sid, "room:admitted",
                          {"snapshot": await snapshot(ctx.hub, ctx.room_id, member)})


async def _waiting(ctx: Ctx, participant_id: str) -> Member:
    target = await ctx.hub.state.member(ctx.room_id, participant_id)
    if target is None:
        raise SignalingError(NOT_FOUND, f"no participant {participant_id!r} in this room")
    if target.admitted:
        raise SignalingError(CONFLICT, f"{target.name} is already admitted")
    return target


async def admit(ctx: Ctx, p: Target) -> dict[str, Any]:
    await _admit(ctx, await _waiting(ctx, p.participant_id))
    await lobby_changed(ctx.hub, ctx.room_id)
    return {"ok": True}


async def admit_all(ctx: Ctx, _: Empty) -> dict[str, Any]:
    waiting = [m for m in await ctx.hub.state.members(ctx.room_id) if not m.admitted]
    for member in waiting:
        await _admit(ctx, member)
    await lobby_changed(ctx.hub, ctx.room_id)
    return {"ok": True, "admitted": [m.participant_id for m in waiting]}


async def deny(ctx: Ctx, p: Target) -> dict[str, Any]:
    target = await _waiting(ctx, p.participant_id)
    await ctx.hub.outbox.emit_to(target.sid, "room:denied",
                          {"message": "the host did not admit you to this consultation"})
    await remove(ctx.hub, ctx.room_id, target.participant_id, "denied",
                 actor_user_id=ctx.member.user_id, client_addr=ctx.conn.client_addr,
                 ban=True)
    await lifecycle.record(ctx.hub.sessions, "room.deny", user_id=ctx.member.user_id,
                           consultation_id=ctx.room_id, client_addr=ctx.conn.client_addr,
                           object_id=target.participant_id,
                           detail={"user_id": target.user_id})
    if target.sid is not None:
        ctx.hub.spawn(ctx.hub.disconnect(target.sid))
    return {"ok": True}


async def set_auto_admit(ctx: Ctx, p: AutoAdmit) -> dict[str, Any]:
    await ctx.hub.state.set_auto_admit(ctx.room_id, p.on)
    await ctx.hub.outbox.broadcast(ctx.room_id, "room:auto_admit", {"on": p.on})
    if p.on:
        return await admit_all(ctx, Empty())
    return {"ok": True}


async def end(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """End the consultation for everyone: database first, then the room goes."""
    hub, room_id = ctx.hub, ctx.room_id
    await lifecycle.mark_ended(hub.sessions, room_id, ctx.member.user_id,
                               ctx.conn.client_addr)
    members = await hub.state.drop(room_id)
    await hub.outbox.broadcast(room_id, "room:ended", {"by": ctx.member.participant_id})
    for m in members:
        if not m.admitted:
            await hub.outbox.emit_to(m.sid, "room:ended", {"by": ctx.member.participant_id})
    if hub.media is not None:
        await hub.media.close_room(room_id)
    for m in members:
        conn = hub.connections.get(m.sid) if m.sid else None
        if conn is not None:
            conn.participant_id = None
        if m.sid is not None:
            # Spawned: the host's own ack goes out before its socket closes.
            hub.spawn(hub.disconnect(m.sid))
    return {"ok": True}
