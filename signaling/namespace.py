"""The ``/room`` namespace: authenticates connections and puts every event through the same
gate: rate limit, size, known event, payload schema, membership, permission, handler."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import socketio
from pydantic import ValidationError

from app.auth.rate_limit import CONNECT_ADDRESS, CONNECT_USER, RateLimiter
from app.auth.tokens import TokenError, verify_join
from app.roles import RoomRole

from . import errors, lifecycle, presence
from .errors import SignalingError
from .events import EVENTS, JOIN
from .hub import Connection, Ctx, Hub
from .outbox import NAMESPACE
from .permissions import require
from .ratelimit import TokenBucket
from .schemas import Empty

log = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 8192
THROTTLE_NOTICE_SECONDS = 1.0


def _refuse(code: str, message: str, **more: Any) -> socketio.exceptions.ConnectionRefusedError:
    # Socket.IO clients see {"message": ..., "data": {"code", "message"}} in connect_error.
    return socketio.exceptions.ConnectionRefusedError(
        message, {"code": code, "message": message, **more})


def _rate_limited(retry_after_s: int) -> socketio.exceptions.ConnectionRefusedError:
    return _refuse(errors.RATE_LIMITED, f"too many connections: try again in {retry_after_s} s",
                   retry_after_s=retry_after_s)


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
    return f"{where}: {first.get('msg', 'invalid')}"


class RoomNamespace(socketio.AsyncNamespace):  # type: ignore[misc]  # socketio has no types
    def __init__(self, hub: Hub, limiter: RateLimiter) -> None:
        super().__init__(NAMESPACE)
        self.hub = hub
        self.limiter = limiter

    async def trigger_event(self, event: str, *args: Any) -> Any:
        # One entry point for everything, so no event can bypass the gate by name.
        if event == "connect":
            sid, environ = args[0], args[1]
            return await self._connect(sid, environ, args[2] if len(args) > 2 else None)
        if event == "disconnect":
            return await self._disconnect(args[0])
        return await self._event(args[0], event, args[1:])

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> bool:
        request = environ.get("aiohttp.request")
        addr = (request.remote if request is not None else None) or environ.get(
            "REMOTE_ADDR", "")
        # Counted before the token is looked at, so a flood of bad tokens is stopped too;
        # the user's own budget once the token says who it is.
        refusal = await self.limiter.hit((CONNECT_ADDRESS, addr or ""))
        if refusal is not None:
            raise _rate_limited(refusal.retry_after_s)
        if not isinstance(auth, dict) or not isinstance(auth.get("token"), str):
            raise _refuse(errors.AUTH_REQUIRED, 'connect with auth {"token": <join token>}')
        token = auth["token"]
        if len(token) > MAX_TOKEN_CHARS:
            raise _refuse(errors.INVALID_TOKEN, "invalid token: too long")
        try:
            claims = verify_join(token, self.hub.settings.jwt_secret)
        except TokenError as exc:
            code = errors.TOKEN_EXPIRED if "expired" in str(exc) else errors.INVALID_TOKEN
            raise _refuse(code, str(exc)) from None
        wanted = auth.get("consultation_id")
        if wanted is not None and wanted != claims.consultation_id:
            raise _refuse(errors.WRONG_ROOM,
                          f"this token is for consultation {claims.consultation_id}, "
                          f"not {wanted}")
        if claims.room_role not in {r.value for r in RoomRole}:
            raise _refuse(errors.INVALID_TOKEN, "invalid token: unknown room role")
        refusal = await self.limiter.hit((CONNECT_USER, claims.user_id))
        if refusal is not None:
            raise _rate_limited(refusal.retry_after_s)
        status = await lifecycle.status(self.hub.sessions, claims.consultation_id)
        if status is None:
            raise _refuse(errors.WRONG_ROOM, "no such consultation")
        if status not in lifecycle.OPEN:
            raise _refuse(errors.ROOM_CLOSED, f"the consultation is {status.value}")
        settings = self.hub.settings
        self.hub.connections[sid] = Connection(
            sid=sid, claims=claims, client_addr=addr or "",
            bucket=TokenBucket(settings.signaling_event_rate, settings.signaling_event_burst),
        )
        return True

    async def _disconnect(self, sid: str) -> None:
        conn = self.hub.connections.pop(sid, None)
        if conn is None:
            return
        async with conn.lock:
            await presence.dropped(self.hub, conn)

    async def _event(self, sid: str, event: str, args: tuple[Any, ...]) -> dict[str, Any]:
        conn = self.hub.connections.get(sid)
        if conn is None:
            return await self._error(sid, event, SignalingError(
                errors.NOT_JOINED, "connect with a join token first"))
        spec = EVENTS.get(event)
        if not conn.bucket.take(spec.cost if spec is not None else 1.0):
            return await self._throttled(conn, event)
        try:
            return await self._run(conn, event, args)
        except SignalingError as exc:
            return await self._error(sid, event, exc)
        except Exception:
            log.exception("event %s from %s failed", event, sid)
            return await self._error(sid, event, SignalingError(
                errors.INTERNAL, "the server failed while handling this event"))

    async def _run(self, conn: Connection, event: str, args: tuple[Any, ...]) -> dict[str, Any]:
        try:
            size = len(json.dumps(args, separators=(",", ":")))
        except (TypeError, ValueError):
            raise SignalingError(errors.INVALID_PAYLOAD, "payload must be JSON") from None
        limit = self.hub.settings.signaling_max_event_bytes
        if size > limit:
            raise SignalingError(errors.PAYLOAD_TOO_LARGE,
                                 f"{event} payload is {size} bytes, the limit is {limit}")
        spec = EVENTS.get(event)
        if spec is None and event != JOIN:
            raise SignalingError(errors.UNKNOWN_EVENT, f"unknown event {event!r}")
        if len(args) > 1:
            raise SignalingError(errors.INVALID_PAYLOAD, "send one payload object")
        data = args[0] if args and args[0] is not None else {}
        if not isinstance(data, dict):
            raise SignalingError(errors.INVALID_PAYLOAD, "payload must be an object")
        model = Empty if spec is None else spec.model
        try:
            payload = model.model_validate(data)
        except ValidationError as exc:
            raise SignalingError(errors.INVALID_PAYLOAD, _validation_message(exc)) from None
        async with conn.lock:
            if spec is None:
                assert isinstance(payload, Empty)  # the join event's model
                return await presence.join(self.hub, conn, payload)
            if conn.participant_id is None:
                raise SignalingError(errors.NOT_JOINED, f"send {JOIN} before {event}")
            member = await self.hub.state.member(conn.room_id, conn.participant_id)
            if member is None:
                conn.participant_id = None
                raise SignalingError(errors.NOT_JOINED, f"send {JOIN} before {event}")
            require(member, spec.action)
            return await spec.handler(Ctx(self.hub, conn, member), payload)

    async def _error(self, sid: str, event: str, exc: SignalingError) -> dict[str, Any]:
        body = exc.body()
        await self.hub.outbox.emit_to(sid, "error", {**body, "event": event})
        return {"error": body}

    async def _throttled(self, conn: Connection, event: str) -> dict[str, Any]:
        exc = SignalingError(errors.RATE_LIMITED,
                             f"too many events: at most {self.hub.settings.signaling_event_rate:g}"
                             f" a second (bursts of {self.hub.settings.signaling_event_burst})")
        now = time.monotonic()
        if now - conn.last_throttle_notice >= THROTTLE_NOTICE_SECONDS:
            conn.last_throttle_notice = now
            return await self._error(conn.sid, event, exc)
        return {"error": exc.body()}
