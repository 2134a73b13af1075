"""A member's media events (docs/signaling.md, "Media"): checked here, served through the
media port by the node carrying the room's media."""

from __future__ import annotations

from typing import Any

from . import errors
from .errors import SignalingError
from .hub import Ctx
from .permissions import Action, require
from .ports import MediaPort
from .schemas import Empty, Ice, Publish, SubscribeAnswer


def _media(ctx: Ctx) -> MediaPort:
    if ctx.hub.media is None:
        raise SignalingError(errors.MEDIA_ERROR, "media is not enabled on this server")
    return ctx.hub.media


async def publish(ctx: Ctx, p: Publish) -> dict[str, Any]:
    result: dict[str, Any] = await _media(ctx).publish(
        ctx.room_id, ctx.member.participant_id, p.sdp)
    return result


async def subscribe(ctx: Ctx, _: Empty) -> dict[str, Any]:
    result: dict[str, Any] = await _media(ctx).subscribe(
        ctx.room_id, ctx.member.participant_id)
    return result


async def subscribe_answer(ctx: Ctx, p: SubscribeAnswer) -> dict[str, Any]:
    result: dict[str, Any] = await _media(ctx).subscribe_answer(
        ctx.room_id, ctx.member.participant_id, p.sdp, p.version)
    return result


async def ice(ctx: Ctx, p: Ice) -> dict[str, Any]:
    if p.pc == "publish":
        require(ctx.member, Action.PUBLISH)
    candidate = p.candidate.model_dump() if p.candidate is not None else None
    result: dict[str, Any] = await _media(ctx).ice(
        ctx.room_id, ctx.member.participant_id, p.pc, candidate)
    return result


async def restart(ctx: Ctx, _: Empty) -> dict[str, Any]:
    result: dict[str, Any] = await _media(ctx).restart(
        ctx.room_id, ctx.member.participant_id)
    return result
